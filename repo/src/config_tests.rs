use super::*;

/// A config as written before `image_compression_level` existed.
fn old_json(level: i32) -> Vec<u8> {
    let mut v = serde_json::to_value(Config::new(Encryption::None)).unwrap();
    let o = v.as_object_mut().unwrap();
    assert!(o.remove("image_compression_level").is_some());
    o.insert("compression_level".into(), level.into());
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn an_old_config_keeps_one_level_for_everything() {
    let c = Config::parse(&old_json(5)).unwrap();
    assert_eq!(c.image_compression_level, None);
    assert_eq!(c.image_level(), 5);
    // Written back, it stays as it was: no field appears.
    let again = serde_json::to_value(&c).unwrap();
    assert!(again.get("image_compression_level").is_none(), "{again}");
}

#[test]
fn new_configs_have_their_own_image_level() {
    let c = Config::new(Encryption::Repokey);
    assert_eq!(c.compression_level, 3);
    assert_eq!(c.image_level(), DEFAULT_IMAGE_COMPRESSION_LEVEL);
    let back = Config::parse(&serde_json::to_vec(&c).unwrap()).unwrap();
    assert_eq!(
        back.image_compression_level,
        Some(DEFAULT_IMAGE_COMPRESSION_LEVEL)
    );
}

#[test]
fn an_image_level_out_of_range_is_refused() {
    let mut c = Config::new(Encryption::None);
    for bad in [23, -8, i32::MAX] {
        c.image_compression_level = Some(bad);
        assert!(c.validate().is_err(), "{bad}");
    }
    c.image_compression_level = Some(19);
    assert!(c.validate().is_ok());
}

use super::*;

/// A definition as `virsh dumpxml --inactive` prints it (libvirt 11.3),
/// trimmed, with a CD-ROM, a raw block disk, a NIC and NVRAM.
const DOMAIN: &str = r#"<domain type='kvm'>
  <name>web1</name>
  <uuid>9149b38d-3ee6-420b-9e08-887d3a2e9a37</uuid>
  <memory unit='KiB'>65536</memory>
  <os>
    <type arch='x86_64' machine='pc-q35-10.0'>hvm</type>
    <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>
    <nvram>/var/lib/libvirt/qemu/nvram/web1_VARS.fd</nvram>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/web1.qcow2'/>
      <backingStore type='file'>
        <format type='qcow2'/>
        <source file='/var/lib/libvirt/images/base.qcow2'/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source dev='/dev/vg0/web1-data'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/srv/iso/debian.iso'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:12:34:56'/>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>
"#;

#[test]
fn parses_a_definition() {
    let d = parse_domain(DOMAIN).expect("parse");
    assert_eq!(d.name, "web1");
    assert_eq!(d.uuid, "9149b38d-3ee6-420b-9e08-887d3a2e9a37");
    assert_eq!(d.disks.len(), 3);
    assert_eq!(d.disks[0].target, "vda");
    assert_eq!(d.disks[0].format.as_deref(), Some("qcow2"));
    assert_eq!(
        d.disks[0].source.as_deref(),
        Some("/var/lib/libvirt/images/web1.qcow2")
    );
    assert!(d.disks[0].backed_up());
    assert_eq!(d.disks[1].kind, "block");
    assert_eq!(d.disks[1].source.as_deref(), Some("/dev/vg0/web1-data"));
    assert!(d.disks[1].backed_up());
    assert!(!d.disks[2].backed_up());
    assert_eq!(d.disks[2].skip_reason(), "sda is a cdrom");
}

#[test]
fn bad_documents_are_errors() {
    for bad in [
        "",
        "<domain>",
        "<domain><uuid>x</uuid></domain>",
        "<pool><name>x</name></pool>",
        "<domain><name>x</name><devices><disk/></devices></domain>",
        "<!DOCTYPE d [<!ENTITY a 'aaaa'>]><domain><name>&a;</name></domain>",
    ] {
        assert!(parse_domain(bad).is_err(), "{bad:?} parsed");
    }
    let huge = format!("<domain><name>{}</name></domain>", "x".repeat(MAX_XML));
    assert!(matches!(parse_domain(&huge), Err(Error::Xml(m)) if m.contains("at most")));
}

#[test]
fn checkpoint_and_backup_documents_parse_and_escape() {
    let c = checkpoint_xml("arca-1", &["vda"], &["vdb", "sda"]);
    let doc = roxmltree::Document::parse(&c).expect("checkpoint xml");
    let disks: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("disk"))
        .map(|n| (n.attribute("name"), n.attribute("checkpoint")))
        .collect();
    assert_eq!(
        disks,
        [
            (Some("vda"), Some("bitmap")),
            (Some("vdb"), Some("no")),
            (Some("sda"), Some("no"))
        ]
    );
    let b = backup_xml(
        Some("a'<&"),
        10811,
        &["vda", "vdb"],
        &["vdb"],
        &["sda"],
        &[("vdb", "/var/lib/libvirt/images/d.vdb.arca-1.scratch".into())],
    );
    let doc = roxmltree::Document::parse(&b).expect("backup xml");
    let inc = doc
        .descendants()
        .find(|n| n.has_tag_name("incremental"))
        .and_then(|n| n.text());
    assert_eq!(inc, Some("a'<&"));
    let vdb = doc
        .descendants()
        .find(|n| n.attribute("name") == Some("vdb"))
        .expect("vdb");
    assert_eq!(vdb.attribute("backupmode"), Some("full"));
    // A block device's scratch overlay where it was put; a file's left
    // to libvirt (next to the image).
    fn scratch<'a>(d: roxmltree::Node<'a, '_>) -> Option<&'a str> {
        d.children()
            .find(|n| n.has_tag_name("scratch"))
            .and_then(|n| n.attribute("file"))
    }
    assert_eq!(
        scratch(vdb),
        Some("/var/lib/libvirt/images/d.vdb.arca-1.scratch")
    );
    let vda = doc
        .descendants()
        .find(|n| n.attribute("name") == Some("vda"))
        .expect("vda");
    assert_eq!(scratch(vda), None);
    let server = doc
        .descendants()
        .find(|n| n.has_tag_name("server"))
        .expect("server");
    assert_eq!(server.attribute("name"), Some("127.0.0.1"));
    assert_eq!(server.attribute("port"), Some("10811"));
}

#[test]
fn parses_a_running_job() {
    // `virsh backup-dumpxml` of an incremental pull-mode job (libvirt 11.3).
    let job = r#"<domainbackup mode='pull'>
  <incremental>arca-1</incremental>
  <server transport='tcp' name='127.0.0.1' port='10811'/>
  <disks>
    <disk name='vda' backup='yes' type='file' backupmode='incremental' incremental='arca-1' exportname='vda' exportbitmap='backup-vda' index='5'>
      <driver type='qcow2'/>
      <scratch file='/tmp/lvx/d.qcow2.arca-2'/>
    </disk>
    <disk name='sda' backup='no'/>
  </disks>
</domainbackup>"#;
    let d = parse_backup_job(job).expect("job");
    assert_eq!(
        d,
        [ExportedDisk {
            target: "vda".into(),
            export: "vda".into(),
            bitmap: Some("backup-vda".into()),
            mode: "incremental".into(),
        }]
    );
    assert!(parse_backup_job("<domain/>").is_err());
}

#[test]
fn import_rewrites_name_disks_and_identity_only() {
    let mut disks = BTreeMap::new();
    for t in ["vda", "vdb"] {
        disks.insert(
            t.to_string(),
            NewDisk {
                path: format!("/srv/new/copy's-{t}.qcow2"),
                format: "qcow2".into(),
            },
        );
    }
    let out = import_xml(DOMAIN, "copy <1>", &disks).expect("import");
    let d = parse_domain(&out).expect("parse the result");
    assert_eq!(d.name, "copy <1>");
    assert_eq!(d.uuid, "");
    assert_eq!(
        d.disks[0].source.as_deref(),
        Some("/srv/new/copy's-vda.qcow2")
    );
    assert_eq!(
        d.disks[1].source.as_deref(),
        Some("/srv/new/copy's-vdb.qcow2")
    );
    assert_eq!(d.disks[1].kind, "file");
    assert_eq!(d.disks[1].format.as_deref(), Some("qcow2"));
    // The CD-ROM is kept as it was.
    assert_eq!(d.disks[2].source.as_deref(), Some("/srv/iso/debian.iso"));
    assert!(!out.contains("<mac"), "{out}");
    assert!(!out.contains("<nvram"), "{out}");
    assert!(!out.contains("backingStore"), "{out}");
    assert!(!out.contains("base.qcow2"), "{out}");
    // What we did not touch is byte for byte the same.
    assert!(
        out.contains("<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>")
    );
    assert!(
        out.contains("<driver name='qemu' type='qcow2' cache='none'/>"),
        "{out}"
    );
    assert!(out.contains("<source network='default'/>"));
    // A disk the definition lacks is an error, not a silent skip.
    let mut extra = disks.clone();
    extra.insert(
        "vdz".into(),
        NewDisk {
            path: "/x".into(),
            format: "raw".into(),
        },
    );
    assert!(import_xml(DOMAIN, "c", &extra).is_err());
}

/// libvirt's own schemas (`virt-xml-validate`, from libvirt-clients)
/// accept the documents Arca sends: a checkpoint, a full and an
/// incremental backup job, and an import's definition.
#[test]
fn libvirt_schemas_accept_what_we_send() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut disks = BTreeMap::new();
    disks.insert(
        "vda".to_string(),
        NewDisk {
            path: "/srv/new/c-vda.qcow2".into(),
            format: "qcow2".into(),
        },
    );
    let docs = [
        (
            "domaincheckpoint",
            checkpoint_xml("arca-1", &["vda"], &["vdb", "sda"]),
        ),
        (
            "domainbackup",
            backup_xml(None, 10811, &["vda", "vdb"], &[], &["sda"], &[]),
        ),
        (
            "domainbackup",
            backup_xml(
                Some("arca-1"),
                10811,
                &["vda", "vdb"],
                &["vdb"],
                &["sda"],
                &[("vdb", "/var/lib/libvirt/images/d.vdb.scratch".into())],
            ),
        ),
        (
            "domain",
            import_xml(DOMAIN, "copy", &disks).expect("import"),
        ),
    ];
    for (i, (schema, doc)) in docs.iter().enumerate() {
        let p = dir.path().join(format!("{i}.xml"));
        std::fs::write(&p, doc).expect("write");
        let out = std::process::Command::new("virt-xml-validate")
            .arg(&p)
            .arg(schema)
            .output()
            .expect("virt-xml-validate (libvirt-clients) runs");
        assert!(
            out.status.success(),
            "{schema}: {}\n{doc}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every prefix of a real definition, and every single-byte change of it
/// to a character XML cares about, is parsed without a panic; whatever
/// parses and rewrites for an import rewrites to a document that parses
/// (what `fuzz/fuzz_targets/libvirt_xml.rs` checks at large).
#[test]
fn damaged_definitions_never_panic() {
    let mut disks = BTreeMap::new();
    disks.insert(
        "vda".to_string(),
        NewDisk {
            path: "/n/'<&\".qcow2".into(),
            format: "raw".into(),
        },
    );
    let check = |s: &str| {
        let _ = parse_backup_job(s);
        if parse_domain(s).is_ok() {
            if let Ok(out) = import_xml(s, "c<'&", &disks) {
                assert_eq!(parse_domain(&out).expect("rewrite parses").name, "c<'&");
            }
        }
    };
    for end in 0..DOMAIN.len() {
        if DOMAIN.is_char_boundary(end) {
            check(&DOMAIN[..end]);
        }
    }
    let bytes = DOMAIN.as_bytes();
    for i in 0..bytes.len() {
        for c in [b'<', b'>', b'\'', b'"', b'&', b'/', b'=', b' '] {
            let mut b = bytes.to_vec();
            b[i] = c;
            if let Ok(s) = std::str::from_utf8(&b) {
                check(s);
            }
        }
    }
}

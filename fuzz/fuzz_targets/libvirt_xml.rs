//! The libvirt XML a host sends (domain definitions, backup jobs,
//! `domblkinfo` tables), parsed and, for a definition that parses,
//! rewritten for an import: never a panic, and a rewrite always parses.
#![no_main]

use std::collections::BTreeMap;

use arca_ingest::libvirt::xml::{import_xml, parse_backup_job, parse_domain, NewDisk};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_backup_job(s);
    let _ = arca_ingest::libvirt::parse_blkinfo(s);
    let Ok(d) = parse_domain(s) else {
        return;
    };
    let disks: BTreeMap<String, NewDisk> = d
        .disks
        .iter()
        .map(|k| {
            (
                k.target.clone(),
                NewDisk {
                    path: format!("/new/{}'<&\".qcow2", k.target),
                    format: "qcow2".into(),
                },
            )
        })
        .collect();
    if let Ok(out) = import_xml(s, "copy<'&\">", &disks) {
        let again = parse_domain(&out).expect("an import rewrite parses");
        assert_eq!(again.name, "copy<'&\">");
        assert!(again.uuid.is_empty());
    }
});

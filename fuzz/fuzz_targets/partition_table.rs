//! Partition tables (MBR with logical partitions, GPT) and the file-system
//! signatures of the partitions: the root of an image restore point's
//! tree built from arbitrary disk bytes, then every partition file read.
#![no_main]

use std::sync::Arc;

use arca_frontends::reader::RamDisk;
use arca_frontends::tree::image::ImageTree;
use arca_frontends::tree::{FileTree, TreePath};
use arca_frontends::BlockSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The tree turns a panic inside the crates into `Io` (catch_unwind);
    // libfuzzer-sys' panic hook would abort on those. A panic that
    // reaches this function still aborts (libfuzzer-sys catches it).
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let disk: Arc<dyn BlockSource> = Arc::new(RamDisk::new(data.to_vec()));
    let tree = ImageTree::from_disk(disk, 0);
    let mut names = Vec::new();
    let _ = tree.read_dir(&TreePath::root(), 0, &mut |e| {
        names.push(e.name);
        true
    });
    for n in names {
        let Ok(p) = TreePath::root().join(&n) else {
            continue;
        };
        let _ = tree.stat(&p);
        if let Ok(f) = tree.open(&p) {
            let mut b = [0u8; 512];
            let _ = f.read_at(f.size().saturating_sub(100), &mut b);
        }
    }
});

//! File systems inside images (ext2/3/4 with ext4-view, FAT12/16/32 with
//! fatfs, NTFS with the ntfs crate and the adapter's reparse-point and
//! Interix-link parsing; seeds in fuzz/seeds/fs_image): arbitrary bytes as a whole disk, every directory listed, every
//! entry stat'ed, every file and symlink read, a few levels deep.
#![no_main]

use std::sync::Arc;

use arca_frontends::reader::RamDisk;
use arca_frontends::tree::image::ImageTree;
use arca_frontends::tree::{FileTree, Kind, TreePath};
use arca_frontends::BlockSource;
use libfuzzer_sys::fuzz_target;

fn walk(tree: &dyn FileTree, path: &TreePath, depth: usize, budget: &mut usize) {
    let mut entries = Vec::new();
    let _ = tree.read_dir(path, 0, &mut |e| {
        entries.push(e);
        entries.len() < 64
    });
    for e in entries {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let Ok(p) = path.join(&e.name) else {
            continue;
        };
        let _ = tree.stat(&p);
        match e.attr.kind {
            Kind::Dir if depth < 6 => walk(tree, &p, depth + 1, budget),
            Kind::File => {
                if let Ok(f) = tree.open(&p) {
                    let mut b = vec![0u8; 8192];
                    let _ = f.read_at(0, &mut b);
                    let _ = f.read_at(f.size().saturating_sub(10), &mut b);
                }
            }
            Kind::Symlink => {
                let _ = tree.read_link(&p);
            }
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The tree turns a panic inside the crates into `Io` (catch_unwind);
    // libfuzzer-sys' panic hook would abort on those. A panic that
    // reaches this function still aborts (libfuzzer-sys catches it).
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let disk: Arc<dyn BlockSource> = Arc::new(RamDisk::new(data.to_vec()));
    let tree = ImageTree::from_disk(disk, 0);
    let mut budget = 500;
    walk(&tree, &TreePath::root(), 0, &mut budget);
});

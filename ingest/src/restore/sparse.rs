//! Writing chunks into a restored file so that all-zero blocks stay holes.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Write `data` at `offset` of a file that reads as zeros there, skipping
/// all-zero 4 KiB blocks so that they stay holes.
pub(crate) fn write_sparse(f: &File, offset: u64, data: &[u8]) -> std::io::Result<()> {
    write_sparse_end(f, offset, data).map(|_| ())
}

/// [`write_sparse`], answering the end of the last byte written (`offset`
/// when all is zero): the file's length unless it ends in a hole.
pub(super) fn write_sparse_end(f: &File, offset: u64, data: &[u8]) -> std::io::Result<u64> {
    let mut end_written = offset;
    const B: usize = 4096;
    let mut i = 0;
    while i < data.len() {
        // Blocks aligned to the file offset, so that holes are whole blocks.
        let end = (((offset as usize + i) / B + 1) * B - offset as usize).min(data.len());
        if is_zero(&data[i..end]) {
            i = end;
            continue;
        }
        // Extend the run over following non-zero blocks.
        let mut run_end = end;
        while run_end < data.len() {
            let next = (run_end + B).min(data.len());
            if is_zero(&data[run_end..next]) {
                break;
            }
            run_end = next;
        }
        f.write_all_at(&data[i..run_end], offset + i as u64)?;
        end_written = offset + run_end as u64;
        i = run_end;
    }
    Ok(end_written)
}

pub(crate) fn is_zero(data: &[u8]) -> bool {
    let mut blocks = data.chunks_exact(64);
    // The fold has no early exit, so it vectorises; `all` stops per block.
    blocks.all(|c| c.iter().fold(0u8, |a, &b| a | b) == 0)
        && blocks.remainder().iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// The end answered is the file's length unless it ends in a hole,
    /// and zero blocks are not written.
    #[test]
    fn sparse_end_tells_a_trailing_hole() {
        let d = tempfile::tempdir().unwrap();
        let f = File::create(d.path().join("f")).unwrap();
        let mut data = vec![7u8; 8192];
        data.extend(vec![0u8; 3 * 4096]);
        assert_eq!(write_sparse_end(&f, 0, &data).unwrap(), 8192);
        assert_eq!(f.metadata().unwrap().len(), 8192);
        assert_eq!(write_sparse_end(&f, 20480, &[0u8; 4096]).unwrap(), 20480);
        assert_eq!(write_sparse_end(&f, 20480, &[1u8; 100]).unwrap(), 20580);
        f.set_len(20580).unwrap();
        let m = f.metadata().unwrap();
        assert_eq!(m.len(), 20580);
        // 8 KiB of data and the last block: the 12 KiB between are a hole.
        assert!(m.blocks() * 512 <= 3 * 4096, "{} blocks", m.blocks());
    }
}

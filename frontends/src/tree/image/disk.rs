//! What is on a disk: its partition table (GPT or MBR, read with the
//! `gpt` and `mbrman` crates) and the file system of each partition,
//! recognised by its own signature (the partition type is not trusted).

use std::io::{Read, Seek, SeekFrom};

use super::volume::Volume;

/// Sector size of the partition tables read (512-byte logical sectors,
/// what disk images and virtual disks use).
const SECTOR: u64 = 512;

/// A file system this view reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FsKind {
    /// ext2, ext3 or ext4.
    Ext,
    /// FAT12, FAT16 or FAT32.
    Fat,
    /// NTFS.
    Ntfs,
}

/// One partition: its number as the table numbers it (GPT: entry index +
/// 1; MBR: 1-4 primary, 5 and up logical) and its byte range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Partition {
    pub number: u32,
    pub start: u64,
    pub len: u64,
}

/// The partitions of `disk`: empty when it has no partition table, a
/// damaged one (logged), or a table of another kind. Extended MBR
/// partitions (the containers of logical ones) are not listed.
pub(crate) fn partitions(disk: &Volume) -> Vec<Partition> {
    let mut sector0 = [0u8; SECTOR as usize];
    if disk.len() < 2 * SECTOR || disk.read_exact_at(0, &mut sector0).is_err() {
        return Vec::new();
    }
    if sector0[510..512] != [0x55, 0xAA] {
        return Vec::new();
    }
    // A file system on the whole disk also ends its first sector with
    // 55 AA; its boot sector is not a partition table.
    if detect(disk).is_some() {
        return Vec::new();
    }
    let protective = (0..4).any(|i| sector0[446 + 16 * i + 4] == 0xEE);
    // A used entry starting at sector 0 (over the table itself) is
    // damage; mbrman panics on one (its alignment guess divides by the
    // partitions' starts).
    let at_zero = (0..4).any(|i| {
        let e = &sector0[446 + 16 * i..446 + 16 * (i + 1)];
        e[4] != 0 && e[8..12] == [0, 0, 0, 0]
    });
    if at_zero && !protective {
        tracing::warn!("the disk's MBR has a partition at sector 0: only the whole disk is shown");
        return Vec::new();
    }
    let found = if protective {
        gpt_partitions(disk)
    } else {
        mbr_partitions(disk)
    };
    match found {
        Ok(mut parts) => {
            parts.retain(|p| p.len > 0 && p.start < disk.len());
            for p in parts.iter_mut() {
                p.len = p.len.min(disk.len() - p.start);
            }
            parts
        }
        Err(e) => {
            tracing::warn!(
                table = if protective { "GPT" } else { "MBR" },
                error = %e,
                "the disk's partition table is damaged: only the whole disk is shown"
            );
            Vec::new()
        }
    }
}

fn gpt_partitions(disk: &Volume) -> std::result::Result<Vec<Partition>, String> {
    let table = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        gpt::GptConfig::new()
            .writable(false)
            .logical_block_size(gpt::disk::LogicalBlockSize::Lb512)
            .open_from_device(disk.clone())
    }))
    .map_err(|_| "malformed GPT".to_string())?
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (&number, p) in table.partitions() {
        if !p.is_used() || p.last_lba < p.first_lba {
            continue;
        }
        let (Some(start), Some(len)) = (
            p.first_lba.checked_mul(SECTOR),
            (p.last_lba - p.first_lba + 1).checked_mul(SECTOR),
        ) else {
            continue;
        };
        out.push(Partition { number, start, len });
    }
    Ok(out)
}

fn mbr_partitions(disk: &Volume) -> std::result::Result<Vec<Partition>, String> {
    let mbr = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut v = disk.clone();
        mbrman::MBR::read_from(&mut v, SECTOR as u32)
    }))
    .map_err(|_| "malformed MBR".to_string())?
    .map_err(|e| e.to_string())?;
    Ok(mbr
        .iter()
        .filter(|(_, p)| p.is_used() && !matches!(p.sys, 0x05 | 0x0F | 0x85))
        .map(|(i, p)| Partition {
            number: i as u32,
            start: u64::from(p.starting_lba) * SECTOR,
            len: u64::from(p.sectors) * SECTOR,
        })
        .collect())
}

/// The file system at the start of `vol`, by its signature: the ext
/// superblock's magic, a FAT boot sector with a sane BIOS parameter
/// block, or an NTFS boot sector (its OEM id).
pub(crate) fn detect(vol: &Volume) -> Option<FsKind> {
    let mut head = [0u8; 2048];
    let n = head.len().min(vol.len() as usize);
    let mut v = vol.clone();
    if v.seek(SeekFrom::Start(0)).is_err() || v.read_exact(&mut head[..n]).is_err() {
        return None;
    }
    let head = &head[..n];
    if n >= 1082 && head[1080..1082] == [0x53, 0xEF] {
        return Some(FsKind::Ext);
    }
    if n >= 512 && is_fat_boot_sector(head) {
        return Some(FsKind::Fat);
    }
    if n >= 512 && is_ntfs_boot_sector(head) {
        return Some(FsKind::Ntfs);
    }
    None
}

fn is_fat_boot_sector(s: &[u8]) -> bool {
    let u16_at = |i: usize| u16::from_le_bytes([s[i], s[i + 1]]);
    let bytes_per_sector = u16_at(11);
    let sectors_per_cluster = s[13];
    let reserved = u16_at(14);
    let fats = s[16];
    s[510..512] == [0x55, 0xAA]
        && matches!(s[0], 0xEB | 0xE9)
        && matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096)
        && sectors_per_cluster.is_power_of_two()
        && reserved > 0
        && fats > 0
        && (&s[54..59] == b"FAT12" || &s[54..59] == b"FAT16" || &s[82..87] == b"FAT32")
}

/// An NTFS boot sector: the OEM id `NTFS    ` and the boot signature (the
/// crate checks the rest when the file system is loaded).
fn is_ntfs_boot_sector(s: &[u8]) -> bool {
    &s[3..11] == b"NTFS    " && s[510..512] == [0x55, 0xAA]
}

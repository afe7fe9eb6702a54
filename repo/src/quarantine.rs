//! Quarantine: stored copies of blobs that verify found damaged.
//!
//! A damaged copy must not stay usable for deduplication: a new backup of
//! the same data would find the chunk id in the index, store nothing and be
//! born damaged. [`Datastore::quarantine`] therefore records each bad copy
//! (chunk id, pack id) in the `quarantine` object and removes the index
//! entries that point at it. The next backup that meets the chunk stores a
//! good copy in a new pack and the index points there; restore points that
//! referenced the chunk are whole again (verify then reports them clean).
//! [`Datastore::rebuild_index`] skips listed copies, so a rebuild never
//! brings a bad copy back. Entries of packs that no longer exist (gc removed
//! or repacked them) are dropped the next time the list is written.
//!
//! Backups also consult [`Datastore::quarantined_ids`]: a file unchanged
//! since its parent snapshot, whose content references a quarantined chunk,
//! is read again instead of being taken from the parent.
//!
//! Format (text, one entry per line, written whole and atomically):
//! `arca-quarantine 1` then `<chunk id hex> <pack id hex>` lines.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::datastore::{Datastore, PACKS};
use crate::error::{Error, Result};
use crate::id::{ChunkId, PackId};
use crate::pack;

/// Name of the quarantine list in the datastore.
pub const QUARANTINE: &str = "quarantine";
const HEADER: &str = "arca-quarantine 1";
/// More entries than this means the file is not ours.
const MAX_ENTRIES: usize = 10_000_000;

/// The bad copies: (chunk, pack holding the bad copy).
pub type Entries = BTreeSet<(ChunkId, PackId)>;

/// Decode a quarantine list. Refuses anything but the documented format.
pub fn parse(b: &[u8]) -> Result<Entries> {
    let text =
        std::str::from_utf8(b).map_err(|_| Error::Corrupt("quarantine list is not text".into()))?;
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(Error::Corrupt(
            "quarantine list has an unknown header".into(),
        ));
    }
    let mut out = Entries::new();
    for (n, line) in lines.enumerate() {
        if line.is_empty() {
            continue;
        }
        if out.len() >= MAX_ENTRIES {
            return Err(Error::Corrupt("quarantine list is too long".into()));
        }
        let bad = || Error::Corrupt(format!("quarantine list line {}: {line:?}", n + 2));
        let (c, p) = line.split_once(' ').ok_or_else(bad)?;
        let c = ChunkId::from_hex(c).map_err(|_| bad())?;
        let p = PackId::from_hex(p).map_err(|_| bad())?;
        out.insert((c, p));
    }
    Ok(out)
}

/// Encode a quarantine list.
pub fn encode(e: &Entries) -> Vec<u8> {
    let mut s = String::with_capacity(16 + e.len() * 130);
    s.push_str(HEADER);
    s.push('\n');
    for (c, p) in e {
        s.push_str(&c.to_hex());
        s.push(' ');
        s.push_str(&p.to_hex());
        s.push('\n');
    }
    s.into_bytes()
}

impl Datastore {
    /// The listed bad copies (empty when there is no list).
    pub fn quarantined(&self) -> Result<Entries> {
        match self.backend.get(QUARANTINE) {
            Ok(b) => parse(&b),
            Err(Error::NotFound(_)) => Ok(Entries::new()),
            Err(e) => Err(e),
        }
    }

    /// Chunk ids with a listed bad copy that the index does not resolve to
    /// another (good) copy: backups must store these again.
    pub fn quarantined_ids(&self) -> Result<HashSet<ChunkId>> {
        let mut out = HashSet::new();
        for (c, p) in self.quarantined()? {
            match self.index.get(&c)? {
                Some(loc) if loc.pack != p => {}
                _ => {
                    out.insert(c);
                }
            }
        }
        Ok(out)
    }

    /// Take bad copies out of use: list them (first, durably), then remove
    /// the index entries that point at them. Returns how many index
    /// entries went. Idempotent.
    pub fn quarantine(&self, bad: &[(ChunkId, PackId)]) -> Result<usize> {
        self.check_writable()?;
        if bad.is_empty() {
            return Ok(0);
        }
        let _g = self.gc_lock.write().unwrap_or_else(|e| e.into_inner());
        let mut list = self.quarantined()?;
        let on_disk: HashSet<PackId> = self
            .backend
            .list(PACKS)?
            .iter()
            .filter_map(|o| pack::id_from_name(&o.name))
            .collect();
        list.retain(|(_, p)| on_disk.contains(p));
        list.extend(bad.iter().copied());
        self.backend.put(QUARANTINE, &encode(&list))?;
        let mut by_pack: HashMap<PackId, Vec<ChunkId>> = HashMap::new();
        for (c, p) in bad {
            if self.index.get(c)?.is_some_and(|l| l.pack == *p) {
                by_pack.entry(*p).or_default().push(*c);
            }
        }
        let mut removed = 0;
        for (p, ids) in by_pack {
            removed += ids.len();
            self.index.remove_blobs(&p, &ids, false)?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_garbage() {
        let mut e = Entries::new();
        e.insert((ChunkId([1; 32]), PackId([2; 32])));
        e.insert((ChunkId([3; 32]), PackId([2; 32])));
        assert_eq!(parse(&encode(&e)).unwrap(), e);
        assert!(parse(b"").is_err());
        assert!(parse(b"arca-quarantine 2\n").is_err());
        assert!(parse(b"arca-quarantine 1\nzz zz\n").is_err());
        assert!(parse(&[0xff, 0xfe]).is_err());
        assert_eq!(parse(b"arca-quarantine 1\n").unwrap().len(), 0);
    }
}

//! A bounded cache of open read descriptors for the local backend.
//!
//! A restore reads many small ranges from the same few packs; opening and
//! closing the pack for every range costs two system calls per read. Packs
//! are named by the hash of their content, so a descriptor reads the right
//! bytes for as long as the name exists. The local backend drops a name it
//! deletes or rewrites, and checks before each use that the cached file is
//! still linked (`st_nlink > 0`, one fstat): a pack deleted behind its back
//! (another process, an admin, a lost file) is reported as gone, as
//! without the cache.

use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Mutex};

/// Descriptors kept open per backend.
pub const CAPACITY: usize = 64;

struct Slot {
    file: Arc<File>,
    /// Tick of the last use: the smallest is evicted first.
    used: u64,
}

#[derive(Default)]
struct Inner {
    slots: HashMap<String, Slot>,
    tick: u64,
}

/// Open files by object name, least recently used evicted beyond the
/// capacity. The lock is held only to look up or insert, never during a
/// read: the files are shared and read with positioned reads.
pub struct FdCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl FdCache {
    /// A cache holding at most `capacity` descriptors (0 caches nothing).
    pub fn new(capacity: usize) -> Self {
        FdCache {
            inner: Mutex::new(Inner::default()),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached file for `name`, if any (marked as just used).
    pub fn get(&self, name: &str) -> Option<Arc<File>> {
        let mut g = self.lock();
        g.tick += 1;
        let tick = g.tick;
        g.slots.get_mut(name).map(|s| {
            s.used = tick;
            Arc::clone(&s.file)
        })
    }

    /// Keep `file` open under `name`, evicting the least recently used
    /// descriptor when full. Returns the file to read from (the one already
    /// cached if another thread opened it first).
    pub fn insert(&self, name: &str, file: File) -> Arc<File> {
        let file = Arc::new(file);
        if self.capacity == 0 {
            return file;
        }
        let mut g = self.lock();
        g.tick += 1;
        let tick = g.tick;
        if let Some(s) = g.slots.get_mut(name) {
            s.used = tick;
            return Arc::clone(&s.file);
        }
        if g.slots.len() >= self.capacity {
            let oldest = g
                .slots
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                g.slots.remove(&k);
            }
        }
        g.slots.insert(
            name.to_string(),
            Slot {
                file: Arc::clone(&file),
                used: tick,
            },
        );
        file
    }

    /// Forget `name` (it is being replaced or deleted by this backend).
    pub fn remove(&self, name: &str) {
        self.lock().slots.remove(name);
    }

    /// Descriptors held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }

    /// No descriptor held.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_least_recently_used_goes() {
        let d = tempfile::tempdir().unwrap();
        let c = FdCache::new(2);
        let open = |n: &str| {
            let p = d.path().join(n);
            std::fs::write(&p, n).unwrap();
            File::open(p).unwrap()
        };
        c.insert("a", open("a"));
        c.insert("b", open("b"));
        assert!(c.get("a").is_some()); // b is now the oldest
        c.insert("c", open("c"));
        assert_eq!(c.len(), 2);
        assert!(c.get("b").is_none());
        assert!(c.get("a").is_some() && c.get("c").is_some());
        // A second insert of a cached name keeps the first descriptor.
        let first = c.get("a").unwrap();
        let again = c.insert("a", open("a"));
        assert!(Arc::ptr_eq(&first, &again));
        c.remove("a");
        assert!(c.get("a").is_none());
        let none = FdCache::new(0);
        none.insert("x", open("x"));
        assert!(none.is_empty());
    }
}

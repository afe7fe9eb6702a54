//! Loaded file systems kept per thread. ext4-view's `Ext4` is `Rc`-based
//! (not `Send`) and fatfs' `FileSystem` is not `Sync`, while a tree is
//! read by many threads at once (NFS and HTTP answer concurrently): each
//! thread loads its own instance of a mounted file system (its superblock
//! and descriptors, a few KiB read through the shared chunk cache) and
//! keeps the [`PER_THREAD`] most recently used ones.

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::super::Result;

/// Loaded file systems a thread keeps.
const PER_THREAD: usize = 8;

thread_local! {
    static LOADED: RefCell<Vec<(u64, Rc<dyn Any>)>> = const { RefCell::new(Vec::new()) };
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A number no other mounted file system of the process has (the key of
/// its per-thread instances).
pub(crate) fn new_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// This thread's instance of mounted file system `id`, loaded with `load`
/// when the thread has none. The cache is not borrowed while `load` runs
/// nor after this returns, so callers may come back in.
pub(crate) fn get<T: 'static>(id: u64, load: impl FnOnce() -> Result<T>) -> Result<Rc<T>> {
    let hit = LOADED.with(|l| {
        let mut l = l.borrow_mut();
        let i = l.iter().position(|(k, _)| *k == id)?;
        let e = l.remove(i);
        let v = e.1.clone().downcast::<T>().ok();
        l.push(e);
        v
    });
    if let Some(v) = hit {
        return Ok(v);
    }
    let v = Rc::new(load()?);
    LOADED.with(|l| {
        let mut l = l.borrow_mut();
        if l.len() >= PER_THREAD {
            l.remove(0);
        }
        l.push((id, v.clone() as Rc<dyn Any>));
    });
    Ok(v)
}

/// Drop this thread's instance of `id` (a tree being dropped; other
/// threads' instances age out of their caches).
pub(crate) fn forget(id: u64) {
    // try_with: a thread being torn down has no cache left.
    let _ = LOADED.try_with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            l.retain(|(k, _)| *k != id);
        }
    });
}

//! A bound on the requests one connection has in flight (NBD reads, iSCSI
//! READ commands): their number and bytes, with a wait for room
//! (back-pressure: the connection stops reading requests) and a wait for
//! none (ordering: what must come after every earlier read).

use std::sync::{Condvar, Mutex, MutexGuard};

/// Requests one connection may have in flight.
pub(crate) const MAX_IN_FLIGHT: usize = 32;
/// Bytes of requests one connection may have in flight (a single larger
/// request is still served, alone).
pub(crate) const MAX_IN_FLIGHT_BYTES: u64 = 64 << 20;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Requests in flight: their number and bytes.
#[derive(Default)]
pub(crate) struct Budget {
    used: Mutex<(usize, u64)>,
    freed: Condvar,
}

impl Budget {
    /// Wait until a request of `bytes` fits, and count it; the share is
    /// given back when the returned [`Taken`] is dropped.
    pub(crate) fn take(&self, bytes: u64) -> Taken<'_> {
        let mut g = lock(&self.used);
        while g.0 >= MAX_IN_FLIGHT || (g.0 > 0 && g.1 + bytes > MAX_IN_FLIGHT_BYTES) {
            g = self.freed.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        g.0 += 1;
        g.1 += bytes;
        Taken(self, bytes)
    }

    fn give(&self, bytes: u64) {
        let mut g = lock(&self.used);
        g.0 -= 1;
        g.1 -= bytes;
        self.freed.notify_all();
    }

    /// Wait until nothing is in flight.
    pub(crate) fn wait_idle(&self) {
        let mut g = lock(&self.used);
        while g.0 > 0 {
            g = self.freed.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A request's share of the budget, given back when dropped (even when the
/// worker serving it panics).
pub(crate) struct Taken<'a>(&'a Budget, u64);

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        self.0.give(self.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_bounds_count_and_bytes_and_waits_for_idle() {
        let b = Budget::default();
        let big = b.take(MAX_IN_FLIGHT_BYTES + 1); // alone, larger than the bound
        std::thread::scope(|s| {
            let t = s.spawn(|| {
                let _small = b.take(1);
                let n = lock(&b.used).0;
                n
            });
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert_eq!(lock(&b.used).0, 1, "the small one waits for room");
            drop(big);
            assert!(t.join().unwrap() >= 1);
        });
        b.wait_idle();
        let held: Vec<_> = (0..MAX_IN_FLIGHT).map(|_| b.take(4096)).collect();
        assert_eq!(*lock(&b.used), (MAX_IN_FLIGHT, 4096 * MAX_IN_FLIGHT as u64));
        drop(held);
        assert_eq!(*lock(&b.used), (0, 0));
    }
}

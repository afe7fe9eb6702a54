//! Sign-in rate limiting, per user name and per client address.
//!
//! Failed sign-ins (a wrong password, an unknown or disabled user, a wrong
//! current password when changing it) are counted in a sliding window:
//! with `per_user` failures for one user name, or `per_address` from one
//! address, within `window`, further attempts for that name or from that
//! address are refused with 429 and `Retry-After` until the oldest of
//! those failures leaves the window, even with the right password (so a
//! guess that happens to be right during the lockout tells nothing). A
//! successful sign-in clears the user's count, not the address's: one
//! valid account must not reset an address that guesses others.
//!
//! Memory is bounded: each key keeps at most its limit of timestamps, keys
//! whose failures all left the window are dropped, and when more than
//! `max_keys` names or addresses are tracked the least recently failed
//! ones are forgotten first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The limits. [`Limits::default`] is what `arca server` uses.
#[derive(Clone, Debug)]
pub struct Limits {
    pub per_user: usize,
    pub per_address: usize,
    pub window: Duration,
    /// Most names (and, apart, addresses) tracked at once.
    pub max_keys: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_user: 5,
            per_address: 20,
            window: Duration::from_secs(15 * 60),
            max_keys: 10_000,
        }
    }
}

/// Why an attempt is refused now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limited {
    /// "user" or "address".
    pub by: &'static str,
    /// Whole seconds until the next attempt may be made (at least 1).
    pub retry_after: u64,
}

/// Failure times per key, oldest first, at most `limit` of them.
struct Window {
    limit: usize,
    keys: HashMap<String, VecDeque<Instant>>,
}

impl Window {
    fn new(limit: usize) -> Self {
        Window {
            limit: limit.max(1),
            keys: HashMap::new(),
        }
    }

    fn limited(&self, key: &str, now: Instant, window: Duration) -> Option<u64> {
        let q = self.keys.get(key)?;
        if q.len() < self.limit {
            return None;
        }
        // The `limit`-th most recent failure decides: while it is inside
        // the window, so are at least `limit` failures.
        let oldest = *q.front()?;
        let free_at = oldest + window;
        (free_at > now).then(|| (free_at - now).as_secs_f64().ceil().max(1.0) as u64)
    }

    fn record(&mut self, key: &str, now: Instant, window: Duration, max_keys: usize) {
        if !self.keys.contains_key(key) && self.keys.len() >= max_keys {
            self.prune(now, window, max_keys);
        }
        let q = self.keys.entry(key.to_string()).or_default();
        q.push_back(now);
        while q.len() > self.limit {
            q.pop_front();
        }
    }

    /// Drop keys with no failure inside the window; if still at
    /// `max_keys`, drop the least recently failed until there is room.
    fn prune(&mut self, now: Instant, window: Duration, max_keys: usize) {
        self.keys
            .retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        if self.keys.len() >= max_keys {
            let mut by_last: Vec<(Instant, String)> = self
                .keys
                .iter()
                .filter_map(|(k, q)| q.back().map(|t| (*t, k.clone())))
                .collect();
            by_last.sort();
            let excess = self.keys.len() + 1 - max_keys.max(1);
            for (_, k) in by_last.into_iter().take(excess) {
                self.keys.remove(&k);
            }
        }
    }
}

struct Inner {
    users: Window,
    addresses: Window,
}

/// The limiter shared by all requests of a server.
pub struct SigninLimiter {
    limits: Limits,
    inner: Mutex<Inner>,
}

impl SigninLimiter {
    pub fn new(limits: Limits) -> Self {
        SigninLimiter {
            inner: Mutex::new(Inner {
                users: Window::new(limits.per_user),
                addresses: Window::new(limits.per_address),
            }),
            limits,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Only counters live here; a panic elsewhere leaves them usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// May `user` try to sign in from `address` now?
    pub fn check(&self, user: &str, address: &str) -> Result<(), Limited> {
        self.check_at(user, address, Instant::now())
    }

    /// Count a failed attempt.
    pub fn failure(&self, user: &str, address: &str) {
        self.failure_at(user, address, Instant::now())
    }

    /// A successful sign-in: the user's count starts over.
    pub fn success(&self, user: &str) {
        self.lock().users.keys.remove(user);
    }

    /// Names and addresses tracked now.
    pub fn tracked(&self) -> (usize, usize) {
        let g = self.lock();
        (g.users.keys.len(), g.addresses.keys.len())
    }

    fn check_at(&self, user: &str, address: &str, now: Instant) -> Result<(), Limited> {
        let g = self.lock();
        let w = self.limits.window;
        let by_user = g.users.limited(user, now, w);
        let by_addr = g.addresses.limited(address, now, w);
        match (by_user, by_addr) {
            (None, None) => Ok(()),
            (u, a) => {
                let (by, retry_after) = if u.unwrap_or(0) >= a.unwrap_or(0) {
                    ("user", u.unwrap_or(0))
                } else {
                    ("address", a.unwrap_or(0))
                };
                Err(Limited { by, retry_after })
            }
        }
    }

    fn failure_at(&self, user: &str, address: &str, now: Instant) {
        let mut g = self.lock();
        let (w, max) = (self.limits.window, self.limits.max_keys);
        g.users.record(user, now, w, max);
        g.addresses.record(address, now, w, max);
    }
}

impl Default for SigninLimiter {
    fn default() -> Self {
        SigninLimiter::new(Limits::default())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn limiter(per_user: usize, per_address: usize, max_keys: usize) -> SigninLimiter {
        SigninLimiter::new(Limits {
            per_user,
            per_address,
            window: Duration::from_secs(900),
            max_keys,
        })
    }

    #[test]
    fn the_window_slides() {
        let l = limiter(3, 100, 100);
        let t0 = Instant::now();
        let s = Duration::from_secs;
        l.failure_at("ann", "a", t0);
        l.failure_at("ann", "a", t0 + s(100));
        assert_eq!(l.check_at("ann", "a", t0 + s(101)), Ok(()));
        l.failure_at("ann", "a", t0 + s(200));
        // Three in the window: refused until the first leaves it.
        assert_eq!(
            l.check_at("ann", "b", t0 + s(300)),
            Err(Limited {
                by: "user",
                retry_after: 600
            })
        );
        assert_eq!(l.check_at("bob", "a", t0 + s(300)), Ok(()));
        assert_eq!(l.check_at("ann", "a", t0 + s(900)), Ok(()));
        // A new failure at 900: the window now holds 100, 200, 900.
        l.failure_at("ann", "a", t0 + s(900));
        assert_eq!(
            l.check_at("ann", "a", t0 + s(950)).unwrap_err().retry_after,
            50
        );
        assert_eq!(l.check_at("ann", "a", t0 + s(1000)), Ok(()));
    }

    #[test]
    fn addresses_are_limited_apart_and_success_clears_only_the_user() {
        let l = limiter(5, 4, 100);
        let t0 = Instant::now();
        for (i, u) in ["a", "b", "c", "d"].iter().enumerate() {
            l.failure_at(u, "10.0.0.1", t0 + Duration::from_secs(i as u64));
        }
        let e = l
            .check_at("e", "10.0.0.1", t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(e.by, "address");
        assert_eq!(e.retry_after, 890);
        assert!(l
            .check_at("e", "10.0.0.2", t0 + Duration::from_secs(10))
            .is_ok());
        l.success("a");
        assert!(l
            .check_at("e", "10.0.0.1", t0 + Duration::from_secs(10))
            .is_err());
        let l = limiter(2, 100, 100);
        l.failure_at("a", "x", t0);
        l.failure_at("a", "x", t0);
        assert!(l.check_at("a", "x", t0).is_err());
        l.success("a");
        assert!(l.check_at("a", "x", t0).is_ok());
    }

    #[test]
    fn memory_stays_bounded() {
        let l = limiter(5, 1_000_000, 100);
        let t0 = Instant::now();
        for i in 0..10_000u64 {
            l.failure_at(
                &format!("user{i}"),
                &format!("10.0.{}.{}", i / 256, i % 256),
                t0 + Duration::from_millis(i),
            );
        }
        let (users, addrs) = l.tracked();
        assert!(users <= 100 && addrs <= 100, "{users} {addrs}");
        // The most recent ones are the ones kept.
        l.failure_at("user9999", "z", t0 + Duration::from_secs(20));
        for _ in 0..3 {
            l.failure_at("user9999", "z", t0 + Duration::from_secs(20));
        }
        assert!(l
            .check_at("user9999", "y", t0 + Duration::from_secs(21))
            .is_err());
        // Entries whose failures left the window go first.
        let later = t0 + Duration::from_secs(2000);
        l.failure_at("fresh", "w", later);
        assert_eq!(l.tracked(), (1, 1));
        // One key never holds more than its limit.
        for _ in 0..1000 {
            l.failure_at("fresh", "w", later);
        }
        assert_eq!(l.lock().users.keys["fresh"].len(), 5);
    }
}

//! The token check without a catalog round trip.
//!
//! Every API request carries a bearer token, and checking it reads the
//! token, its user and the user's roles: three queries and a hop to the
//! blocking pool before the handler starts. Most requests come with a
//! token that was checked a moment ago, so the answer is kept here, keyed
//! by the secret's SHA-256, and trusted only while nothing has been
//! written to the catalog since it was read ([`Catalog::write_generation`]
//! read *before* the check). A revoked token, a disabled user or a changed
//! role binding is therefore seen by the very next request, as without the
//! cache. Expiry is checked at every use. Only tokens without a parent are
//! kept: a minted token is also dead when a token it was made with
//! expires, which the catalog walk decides.
//!
//! [`Catalog::write_generation`]: arca_catalog::Catalog::write_generation

use std::collections::HashMap;
use std::sync::Mutex;

use arca_catalog::{Token, User};

/// At most this many tokens are kept; when full, the cache starts over.
const CAPACITY: usize = 4096;

struct Entry {
    generation: u64,
    token: Token,
    user: User,
}

/// Checked tokens, by the SHA-256 of their secret.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<Vec<u8>, Entry>>,
}

impl TokenCache {
    /// The token and user of `hash`, if they were checked at catalog
    /// generation `generation` (the current one) and the token has not
    /// expired by `now`.
    pub fn get(&self, hash: &[u8], generation: u64, now: i64) -> Option<(Token, User)> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let e = entries.get(hash)?;
        if e.generation != generation || e.token.expires_at.is_some_and(|x| x <= now) {
            return None;
        }
        Some((e.token.clone(), e.user.clone()))
    }

    /// Keep a token found live (with its enabled user) by reads that
    /// started at catalog generation `generation`.
    pub fn insert(&self, hash: Vec<u8>, generation: u64, token: &Token, user: &User) {
        if token.parent_token_id.is_some() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Entries of older generations are dead anyway.
        entries.retain(|_, e| e.generation == generation);
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(
            hash,
            Entry {
                generation,
                token: token.clone(),
                user: user.clone(),
            },
        );
    }
}

//! Password changes: the new hash and the sign-out of the user's other
//! sessions in one transaction, so that no session signed in with the old
//! password outlives the change.
//!
//! Session tokens (from sign-in) are revoked; API tokens stay unless the
//! caller asks for them too: they are separate credentials, made on
//! purpose for scripts, listed and revoked one by one (docs/control-plane.md).

use rusqlite::params;

use crate::{now, Catalog, Error, Result, TokenId, TokenKind, UserId};

/// What a password change signed out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignedOut {
    /// Session tokens revoked.
    pub sessions: usize,
    /// API tokens revoked (only when asked for).
    pub api_tokens: usize,
}

impl Catalog {
    /// Set a user's password hash and revoke their live session tokens
    /// except `keep` (the caller's own session), and their API tokens too
    /// when `api_tokens` is set. `NotFound` for an unknown user.
    pub fn change_password(
        &self,
        user_id: UserId,
        hash: &str,
        keep: Option<TokenId>,
        api_tokens: bool,
    ) -> Result<SignedOut> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE users SET password_hash = ?2 WHERE id = ?1",
            params![user_id, hash],
        )?;
        if n == 0 {
            return Err(Error::NotFound(format!("user {user_id}")));
        }
        let t = now();
        // The ids first: tokens minted from a revoked one are revoked too.
        let revoke = |kind: TokenKind| -> Result<Vec<TokenId>> {
            let ids: Vec<TokenId> = tx
                .prepare(
                    "SELECT id FROM tokens
                     WHERE user_id = ?1 AND kind = ?2 AND revoked_at IS NULL
                       AND (expires_at IS NULL OR expires_at > ?3)
                       AND id IS NOT ?4",
                )?
                .query_map(params![user_id, kind, t, keep], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for id in &ids {
                tx.execute(
                    "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1",
                    params![id, t],
                )?;
            }
            Ok(ids)
        };
        let sessions = revoke(TokenKind::Session)?;
        let api = if api_tokens {
            revoke(TokenKind::Api)?
        } else {
            Vec::new()
        };
        let roots: Vec<TokenId> = sessions.iter().chain(&api).copied().collect();
        crate::tokens::revoke_descendants(&tx, &roots, t)?;
        let (sessions, api) = (sessions.len(), api.len());
        tx.commit()?;
        Ok(SignedOut {
            sessions,
            api_tokens: api,
        })
    }
}

//! API tokens with lifetimes and scopes, and the admin settings that bound
//! them (issue 18; docs/control-plane.md, "Tokens").
//!
//! A token minted by a request that was authenticated with API token T
//! has T as its parent. A token is usable only while every ancestor is:
//! revoking or expiring T makes all its descendants unusable at once
//! (checked at authentication through the chain, [`Catalog::token_problem`]),
//! and revoking T through the API also marks the descendants revoked so
//! that listings say so. Sign-in sessions, node tokens and tokens minted
//! by a session are roots: a session is the user who typed the password,
//! and an API token made from the web UI must outlive the 12-hour session.

use std::ops::RangeInclusive;

use crate::{now, Catalog, Error, ProjectId, Result, Token, TokenId, TokenKind, UserId};
use rusqlite::types::Type;
use rusqlite::{params, OptionalExtension, Row, Transaction};

/// The longest lifetime of a new API token when no admin has set one.
pub const DEFAULT_TOKEN_MAX_LIFETIME_S: i64 = 90 * 86_400;

/// What an admin may set as the longest lifetime: an hour to ten years.
/// There is no "unlimited".
pub const TOKEN_MAX_LIFETIME_RANGE: RangeInclusive<i64> = 3600..=10 * 366 * 86_400;

const TOKEN_MAX_LIFETIME_KEY: &str = "token_max_lifetime_s";

/// A new API token. The caller (the web layer) has checked the name, the
/// scope and projects against the minting token, and the lifetime against
/// the maximum; the catalog checks that the parent is a live token of the
/// same user and that the new token does not outlive it.
#[derive(Clone, Debug)]
pub struct NewApiToken<'a> {
    pub user_id: UserId,
    pub name: &'a str,
    pub secret_sha256: &'a [u8],
    pub expires_at: i64,
    pub scope: crate::TokenScope,
    pub projects: Option<Vec<ProjectId>>,
    pub parent_token_id: Option<TokenId>,
}

/// The admin-set settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The longest lifetime of a new API token, in seconds; a token made
    /// without `expires_in_s` gets this.
    pub token_max_lifetime_s: i64,
}

pub(crate) fn projects_column(r: &Row, i: usize) -> rusqlite::Result<Option<Vec<ProjectId>>> {
    let s: Option<String> = r.get(i)?;
    s.map(|s| {
        serde_json::from_str(&s)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Text, e.into()))
    })
    .transpose()
}

/// Mark revoked (at `t`) every live token minted, at any depth, from one
/// of `roots`. Returns how many.
pub(crate) fn revoke_descendants(tx: &Transaction, roots: &[TokenId], t: i64) -> Result<usize> {
    let mut n = 0;
    for root in roots {
        n += tx.execute(
            "WITH RECURSIVE d(id) AS (
                 SELECT id FROM tokens WHERE parent_token_id = ?1
                 UNION
                 SELECT k.id FROM tokens k JOIN d ON k.parent_token_id = d.id
             )
             UPDATE tokens SET revoked_at = ?2
             WHERE revoked_at IS NULL AND id IN (SELECT id FROM d)",
            params![root, t],
        )?;
    }
    Ok(n)
}

impl Catalog {
    /// Store an API token (kind `api`).
    pub fn add_api_token(&self, t: &NewApiToken) -> Result<Token> {
        if let Some(pid) = t.parent_token_id {
            let parent = self
                .token(pid)
                .map_err(|_| Error::Invalid(format!("the parent token {pid} does not exist")))?;
            if parent.user_id != Some(t.user_id) {
                return Err(Error::Invalid(format!(
                    "the parent token {pid} belongs to another user"
                )));
            }
            if let Some(why) = self.token_problem(&parent)? {
                return Err(Error::Invalid(format!("the parent token {pid}: {why}")));
            }
            if parent.expires_at.is_some_and(|e| t.expires_at > e) {
                return Err(Error::Invalid(format!(
                    "a token cannot outlive the token {pid} that makes it"
                )));
            }
            if !t.scope.within(parent.scope) {
                return Err(Error::Invalid(format!(
                    "a {} token cannot make a {} token",
                    parent.scope.as_str(),
                    t.scope.as_str()
                )));
            }
        }
        let projects = t
            .projects
            .as_ref()
            .map(|p| serde_json::to_string(p).map_err(|e| Error::Invalid(e.to_string())))
            .transpose()?;
        let db = self.db();
        db.execute(
            "INSERT INTO tokens (user_id, name, kind, secret_sha256, created_at, expires_at, parent_token_id, scope, projects)
             VALUES (?1, ?2, 'api', ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                t.user_id,
                t.name,
                t.secret_sha256,
                now(),
                t.expires_at,
                t.parent_token_id,
                t.scope,
                projects
            ],
        )
        .map_err(crate::unique("token"))?;
        let id = TokenId(db.last_insert_rowid());
        drop(db);
        self.token(id)
    }

    /// Why `t` cannot be used now, if it cannot: it, or a token it was
    /// minted from, is revoked or expired. `None`: usable.
    pub fn token_problem(&self, t: &Token) -> Result<Option<&'static str>> {
        let n = now();
        if t.revoked_at.is_some() {
            return Ok(Some("token revoked"));
        }
        if t.expires_at.is_some_and(|e| e <= n) {
            return Ok(Some(if t.kind == TokenKind::Session {
                "token expired; sign in again"
            } else {
                "token expired"
            }));
        }
        let Some(parent) = t.parent_token_id else {
            return Ok(None);
        };
        // The nearest dead ancestor. Parents are always older (smaller
        // ids), which bounds the walk whatever the table holds.
        let dead: Option<(Option<i64>, Option<i64>)> = self
            .rd()
            .query_row(
                "WITH RECURSIVE up(id, parent, revoked_at, expires_at) AS (
                     SELECT id, parent_token_id, revoked_at, expires_at FROM tokens WHERE id = ?1
                     UNION ALL
                     SELECT k.id, k.parent_token_id, k.revoked_at, k.expires_at
                     FROM tokens k JOIN up ON k.id = up.parent AND k.id < up.id
                 )
                 SELECT revoked_at, expires_at FROM up
                 WHERE revoked_at IS NOT NULL OR expires_at <= ?2
                 LIMIT 1",
                params![parent, n],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(match dead {
            Some((Some(_), _)) => Some("token revoked: a token it was made with is revoked"),
            Some((None, _)) => Some("token expired: a token it was made with expired"),
            None => None,
        })
    }

    /// The tokens minted, at any depth, from token `id` (oldest first).
    pub fn token_descendants(&self, id: TokenId) -> Result<Vec<Token>> {
        let db = self.rd();
        let mut st = db.prepare_cached(&format!(
            "WITH RECURSIVE d(id) AS (
                 SELECT id FROM tokens WHERE parent_token_id = ?1
                 UNION
                 SELECT k.id FROM tokens k JOIN d ON k.parent_token_id = d.id
             )
             SELECT {} FROM tokens WHERE id IN (SELECT id FROM d) ORDER BY id",
            Self::TOKEN_COLS
        ))?;
        let rows = st.query_map([id], Self::token_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The settings, with defaults for those never set.
    pub fn settings(&self) -> Result<Settings> {
        let v: Option<String> = self
            .rd()
            .query_row(
                "SELECT value FROM settings WHERE key = ?1",
                [TOKEN_MAX_LIFETIME_KEY],
                |r| r.get(0),
            )
            .optional()?;
        let token_max_lifetime_s = v
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|v| TOKEN_MAX_LIFETIME_RANGE.contains(v))
            .unwrap_or(DEFAULT_TOKEN_MAX_LIFETIME_S);
        Ok(Settings {
            token_max_lifetime_s,
        })
    }

    /// Set the longest lifetime of new API tokens (within
    /// [`TOKEN_MAX_LIFETIME_RANGE`]). Existing tokens keep their expiry.
    pub fn set_token_max_lifetime(&self, seconds: i64) -> Result<Settings> {
        if !TOKEN_MAX_LIFETIME_RANGE.contains(&seconds) {
            return Err(Error::Invalid(format!(
                "token_max_lifetime_s must be between {} (1 hour) and {} (10 years)",
                TOKEN_MAX_LIFETIME_RANGE.start(),
                TOKEN_MAX_LIFETIME_RANGE.end()
            )));
        }
        self.db().execute(
            "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = ?2, updated_at = ?3",
            params![TOKEN_MAX_LIFETIME_KEY, seconds.to_string(), now()],
        )?;
        self.settings()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Role, RoleBinding, TokenScope};

    fn user(c: &Catalog, name: &str) -> UserId {
        c.add_user(
            name,
            "hash",
            &[RoleBinding {
                role: Role::Operator,
                project_id: None,
            }],
        )
        .unwrap()
        .id
    }

    fn api<'a>(
        user_id: UserId,
        secret: &'a [u8],
        expires_in: i64,
        parent: Option<TokenId>,
    ) -> NewApiToken<'a> {
        NewApiToken {
            user_id,
            name: "t",
            secret_sha256: secret,
            expires_at: now() + expires_in,
            scope: TokenScope::Full,
            projects: None,
            parent_token_id: parent,
        }
    }

    #[test]
    fn scope_and_projects_are_stored_and_plain_tokens_are_full_roots() {
        let c = Catalog::open_in_memory().unwrap();
        let u = user(&c, "ann");
        let plain = c
            .add_token(Some(u), None, "old", TokenKind::Api, &[1; 32], None)
            .unwrap();
        assert_eq!(
            (plain.scope, plain.projects, plain.parent_token_id),
            (TokenScope::Full, None, None)
        );
        let t = c
            .add_api_token(&NewApiToken {
                scope: TokenScope::ReadOnly,
                projects: Some(vec![ProjectId(1), ProjectId(2)]),
                ..api(u, &[2; 32], 3600, None)
            })
            .unwrap();
        let back = c.token_by_secret(&[2; 32]).unwrap().unwrap();
        assert_eq!(back.id, t.id);
        assert_eq!(back.scope, TokenScope::ReadOnly);
        assert_eq!(back.projects, Some(vec![ProjectId(1), ProjectId(2)]));
        assert_eq!(back.kind, TokenKind::Api);
        assert!(TokenScope::Metrics.within(TokenScope::ReadOnly));
        assert!(TokenScope::ReadOnly.within(TokenScope::Full));
        assert!(!TokenScope::Full.within(TokenScope::ReadOnly));
        assert_eq!("read-only".parse(), Ok(TokenScope::ReadOnly));
        assert!("all".parse::<TokenScope>().is_err());
    }

    #[test]
    fn revoking_a_token_kills_its_children_and_grandchildren() {
        let c = Catalog::open_in_memory().unwrap();
        let u = user(&c, "ann");
        let root = c.add_api_token(&api(u, &[1; 32], 3600, None)).unwrap();
        let child = c
            .add_api_token(&api(u, &[2; 32], 1800, Some(root.id)))
            .unwrap();
        let grandchild = c
            .add_api_token(&api(u, &[3; 32], 900, Some(child.id)))
            .unwrap();
        let sibling = c.add_api_token(&api(u, &[4; 32], 3600, None)).unwrap();
        assert_eq!(grandchild.parent_token_id, Some(child.id));
        assert!(c.live_token(&[3; 32]).unwrap().is_ok());
        let ids: Vec<TokenId> = c
            .token_descendants(root.id)
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(ids, vec![child.id, grandchild.id]);

        // Unusable through the chain even before they are marked.
        c.db()
            .execute("UPDATE tokens SET revoked_at = 1 WHERE id = ?1", [root.id])
            .unwrap();
        for s in [[2u8; 32], [3; 32]] {
            let why = c.live_token(&s).unwrap().unwrap_err();
            assert!(why.contains("revoked"), "{why}");
        }
        c.db()
            .execute(
                "UPDATE tokens SET revoked_at = NULL WHERE id = ?1",
                [root.id],
            )
            .unwrap();
        assert!(c.live_token(&[3; 32]).unwrap().is_ok());

        // Revoking marks the descendants, and only them.
        assert_eq!(c.revoke_token(root.id).unwrap(), 2);
        for id in [root.id, child.id, grandchild.id] {
            assert!(c.token(id).unwrap().revoked_at.is_some(), "token {id}");
        }
        assert!(c.token(sibling.id).unwrap().revoked_at.is_none());
        assert!(c.live_token(&[4; 32]).unwrap().is_ok());
        assert!(matches!(c.revoke_token(root.id), Err(Error::NotFound(_))));
    }

    #[test]
    fn an_expired_ancestor_makes_descendants_unusable() {
        let c = Catalog::open_in_memory().unwrap();
        let u = user(&c, "ann");
        let root = c.add_api_token(&api(u, &[1; 32], 3600, None)).unwrap();
        let child = c
            .add_api_token(&api(u, &[2; 32], 3600, Some(root.id)))
            .unwrap();
        c.add_api_token(&api(u, &[3; 32], 60, Some(child.id)))
            .unwrap();
        c.db()
            .execute(
                "UPDATE tokens SET expires_at = ?2 WHERE id = ?1",
                params![root.id, now() - 1],
            )
            .unwrap();
        for s in [[2u8; 32], [3; 32]] {
            let why = c.live_token(&s).unwrap().unwrap_err();
            assert!(why.contains("expired"), "{why}");
        }
    }

    #[test]
    fn a_child_cannot_outlive_widen_or_cross_users() {
        let c = Catalog::open_in_memory().unwrap();
        let (ann, bob) = (user(&c, "ann"), user(&c, "bob"));
        let root = c
            .add_api_token(&NewApiToken {
                scope: TokenScope::ReadOnly,
                ..api(ann, &[1; 32], 3600, None)
            })
            .unwrap();
        let err = |t: &NewApiToken| match c.add_api_token(t) {
            Err(Error::Invalid(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(err(&NewApiToken {
            scope: TokenScope::ReadOnly,
            ..api(ann, &[2; 32], 7200, Some(root.id))
        })
        .contains("outlive"));
        assert!(err(&api(ann, &[2; 32], 60, Some(root.id)))
            .contains("read-only token cannot make a full"));
        assert!(err(&NewApiToken {
            scope: TokenScope::ReadOnly,
            ..api(bob, &[2; 32], 60, Some(root.id))
        })
        .contains("another user"));
        assert!(err(&api(ann, &[2; 32], 60, Some(TokenId(999)))).contains("does not exist"));
        c.revoke_token(root.id).unwrap();
        assert!(err(&NewApiToken {
            scope: TokenScope::Metrics,
            ..api(ann, &[2; 32], 60, Some(root.id))
        })
        .contains("revoked"));
        // Narrower and shorter is fine.
        let root = c.add_api_token(&api(ann, &[5; 32], 3600, None)).unwrap();
        let m = c
            .add_api_token(&NewApiToken {
                scope: TokenScope::Metrics,
                ..api(ann, &[6; 32], 60, Some(root.id))
            })
            .unwrap();
        assert_eq!(m.scope, TokenScope::Metrics);
    }

    #[test]
    fn a_password_change_that_revokes_api_tokens_revokes_their_descendants() {
        let c = Catalog::open_in_memory().unwrap();
        let u = user(&c, "ann");
        let root = c.add_api_token(&api(u, &[1; 32], 3600, None)).unwrap();
        let child = c
            .add_api_token(&api(u, &[2; 32], 60, Some(root.id)))
            .unwrap();
        // Even the token kept for the caller goes when its parent does.
        let out = c.change_password(u, "new", Some(child.id), true).unwrap();
        assert_eq!(out.api_tokens, 1);
        assert!(c.token(root.id).unwrap().revoked_at.is_some());
        assert!(c.token(child.id).unwrap().revoked_at.is_some());
    }

    #[test]
    fn the_max_lifetime_defaults_to_90_days_and_has_bounds() {
        let c = Catalog::open_in_memory().unwrap();
        assert_eq!(
            c.settings().unwrap().token_max_lifetime_s,
            DEFAULT_TOKEN_MAX_LIFETIME_S
        );
        assert_eq!(DEFAULT_TOKEN_MAX_LIFETIME_S, 7_776_000);
        assert_eq!(
            c.set_token_max_lifetime(7 * 86_400)
                .unwrap()
                .token_max_lifetime_s,
            7 * 86_400
        );
        assert_eq!(c.settings().unwrap().token_max_lifetime_s, 7 * 86_400);
        for bad in [0, -1, 3599, 10 * 366 * 86_400 + 1, i64::MAX] {
            assert!(
                matches!(c.set_token_max_lifetime(bad), Err(Error::Invalid(_))),
                "{bad}"
            );
        }
        assert_eq!(c.settings().unwrap().token_max_lifetime_s, 7 * 86_400);
    }

    /// Upgrading caps API tokens that would outlive the new default.
    #[test]
    fn the_migration_gives_unlimited_api_tokens_the_default_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("catalog.db");
        // Migration 6 (token lifetimes) is the one under test.
        let before = 5;
        {
            let conn = rusqlite::Connection::open(&p).unwrap();
            for m in &crate::schema::MIGRATIONS[..before] {
                conn.execute_batch(m).unwrap();
            }
            conn.pragma_update(None, "user_version", before as i64)
                .unwrap();
            conn.execute_batch(
                "INSERT INTO users (id, name, password_hash, created_at) VALUES (7, 'ann', 'h', 0);
                 INSERT INTO tokens (user_id, name, kind, secret_sha256, created_at, expires_at)
                 VALUES (7, 'forever', 'api', x'01', 0, NULL),
                        (7, 'ten-years', 'api', x'02', 0, 4000000000),
                        (7, 'soon', 'api', x'03', 0, 1000),
                        (7, 'session', 'session', x'04', 0, 2000);",
            )
            .unwrap();
        }
        let c = Catalog::open(&p).unwrap();
        let t = |s: u8| c.token_by_secret(&[s]).unwrap().unwrap();
        let cap = now() + DEFAULT_TOKEN_MAX_LIFETIME_S;
        for s in [1, 2] {
            let e = t(s).expires_at.unwrap();
            assert!((cap - 60..=cap).contains(&e), "{s}: {e}");
            assert_eq!(t(s).scope, TokenScope::Full);
        }
        assert_eq!(t(3).expires_at, Some(1000));
        assert_eq!(t(4).expires_at, Some(2000));
    }
}

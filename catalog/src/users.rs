//! Users, their role bindings, and the token records every caller signs
//! in with (API-token rules: [`crate::tokens`]; password changes:
//! [`crate::accounts`]).

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::{
    now, tokens, unique, Catalog, Error, NodeId, Result, Role, RoleBinding, Token, TokenId,
    TokenKind, User, UserId,
};

impl Catalog {
    pub fn add_user(&self, name: &str, password_hash: &str, roles: &[RoleBinding]) -> Result<User> {
        let mut db = self.db();
        let tx = db.transaction()?;
        tx.execute(
            "INSERT INTO users (name, password_hash, created_at) VALUES (?1, ?2, ?3)",
            params![name, password_hash, now()],
        )
        .map_err(unique(format!("user {name:?}")))?;
        let id = UserId(tx.last_insert_rowid());
        for b in roles {
            tx.execute(
                "INSERT INTO role_bindings (user_id, role, project_id) VALUES (?1, ?2, ?3)",
                params![id, b.role, b.project_id],
            )
            .map_err(unique("role binding"))?;
        }
        tx.commit()?;
        drop(db);
        self.user(id)
    }

    /// Replace a user's roles. Returns the user as it is now.
    pub fn set_roles(&self, user_id: UserId, roles: &[RoleBinding]) -> Result<User> {
        self.update_user(user_id, Some(roles), None)
    }

    /// Replace a user's roles (when given) and set its disabled flag (when
    /// given), in one transaction.
    pub fn update_user(
        &self,
        user_id: UserId,
        roles: Option<&[RoleBinding]>,
        disabled: Option<bool>,
    ) -> Result<User> {
        let mut db = self.db();
        let tx = db.transaction()?;
        let n: i64 = tx.query_row("SELECT COUNT(*) FROM users WHERE id = ?1", [user_id], |r| {
            r.get(0)
        })?;
        if n == 0 {
            return Err(Error::NotFound(format!("user {user_id}")));
        }
        if let Some(roles) = roles {
            tx.execute("DELETE FROM role_bindings WHERE user_id = ?1", [user_id])?;
            for b in roles {
                tx.execute(
                    "INSERT INTO role_bindings (user_id, role, project_id) VALUES (?1, ?2, ?3)",
                    params![user_id, b.role, b.project_id],
                )
                .map_err(unique("role binding"))?;
            }
        }
        if let Some(d) = disabled {
            tx.execute(
                "UPDATE users SET disabled = ?2 WHERE id = ?1",
                params![user_id, d],
            )?;
        }
        tx.commit()?;
        drop(db);
        self.user(user_id)
    }

    fn roles_of(db: &Connection, user_id: UserId) -> Result<Vec<RoleBinding>> {
        let mut st = db.prepare_cached(
            "SELECT role, project_id FROM role_bindings WHERE user_id = ?1 ORDER BY id",
        )?;
        let rows = st.query_map([user_id], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (role, project_id) = row?;
            if let Ok(role) = role.parse::<Role>() {
                out.push(RoleBinding { role, project_id });
            }
        }
        Ok(out)
    }

    fn user_where(&self, clause: &str, arg: &dyn rusqlite::ToSql) -> Result<Option<User>> {
        let db = self.rd();
        let u = db
            .query_row(
                &format!(
                    "SELECT id, name, password_hash, disabled, created_at FROM users WHERE {clause}"
                ),
                [arg],
                |r| {
                    Ok(User {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        password_hash: r.get(2)?,
                        disabled: r.get(3)?,
                        roles: Vec::new(),
                        created_at: r.get(4)?,
                    })
                },
            )
            .optional()?;
        match u {
            Some(mut u) => {
                u.roles = Self::roles_of(&db, u.id)?;
                Ok(Some(u))
            }
            None => Ok(None),
        }
    }

    pub fn user(&self, id: UserId) -> Result<User> {
        self.user_where("id = ?1", &id)?
            .ok_or_else(|| Error::NotFound(format!("user {id}")))
    }

    pub fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        self.user_where("name = ?1", &name)
    }

    pub fn users(&self) -> Result<Vec<User>> {
        let ids: Vec<UserId> = {
            let db = self.rd();
            let mut st = db.prepare_cached("SELECT id FROM users ORDER BY id")?;
            let ids = st.query_map([], |r| r.get(0))?;
            ids.collect::<rusqlite::Result<_>>()?
        };
        ids.into_iter().map(|id| self.user(id)).collect()
    }

    pub fn set_user_disabled(&self, id: UserId, disabled: bool) -> Result<()> {
        let n = self.db().execute(
            "UPDATE users SET disabled = ?2 WHERE id = ?1",
            params![id, disabled],
        )?;
        if n == 0 {
            return Err(Error::NotFound(format!("user {id}")));
        }
        Ok(())
    }

    pub fn set_password_hash(&self, id: UserId, hash: &str) -> Result<()> {
        let n = self.db().execute(
            "UPDATE users SET password_hash = ?2 WHERE id = ?1",
            params![id, hash],
        )?;
        if n == 0 {
            return Err(Error::NotFound(format!("user {id}")));
        }
        Ok(())
    }

    pub fn delete_user(&self, id: UserId) -> Result<()> {
        let n = self.db().execute("DELETE FROM users WHERE id = ?1", [id])?;
        if n == 0 {
            return Err(Error::NotFound(format!("user {id}")));
        }
        Ok(())
    }

    /// Store a token; `secret_sha256` is the SHA-256 of the secret.
    #[allow(clippy::too_many_arguments)]
    pub fn add_token(
        &self,
        user_id: Option<UserId>,
        node_id: Option<NodeId>,
        name: &str,
        kind: TokenKind,
        secret_sha256: &[u8],
        expires_at: Option<i64>,
    ) -> Result<Token> {
        let db = self.db();
        db.execute(
            "INSERT INTO tokens (user_id, node_id, name, kind, secret_sha256, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![user_id, node_id, name, kind, secret_sha256, now(), expires_at],
        )
        .map_err(unique("token"))?;
        let id = TokenId(db.last_insert_rowid());
        drop(db);
        self.token(id)
    }

    pub(crate) const TOKEN_COLS: &'static str =
        "id, user_id, node_id, name, kind, created_at, expires_at, revoked_at, last_used_at, parent_token_id, scope, projects";

    pub(crate) fn token_row(r: &Row) -> rusqlite::Result<Token> {
        Ok(Token {
            id: r.get(0)?,
            user_id: r.get(1)?,
            node_id: r.get(2)?,
            name: r.get(3)?,
            kind: r.get(4)?,
            created_at: r.get(5)?,
            expires_at: r.get(6)?,
            revoked_at: r.get(7)?,
            last_used_at: r.get(8)?,
            parent_token_id: r.get(9)?,
            scope: r.get(10)?,
            projects: tokens::projects_column(r, 11)?,
        })
    }

    pub fn token(&self, id: TokenId) -> Result<Token> {
        self.rd()
            .query_row(
                &format!("SELECT {} FROM tokens WHERE id = ?1", Self::TOKEN_COLS),
                [id],
                Self::token_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("token {id}")))
    }

    /// The token with this secret hash, if it exists (valid or not).
    pub fn token_by_secret(&self, secret_sha256: &[u8]) -> Result<Option<Token>> {
        Ok(self
            .rd()
            .query_row(
                &format!(
                    "SELECT {} FROM tokens WHERE secret_sha256 = ?1",
                    Self::TOKEN_COLS
                ),
                [secret_sha256],
                Self::token_row,
            )
            .optional()?)
    }

    /// The token with this secret hash if it can be used now; otherwise
    /// why not (unknown, revoked, expired), for the caller's 401.
    pub fn live_token(
        &self,
        secret_sha256: &[u8],
    ) -> Result<std::result::Result<Token, &'static str>> {
        let Some(t) = self.token_by_secret(secret_sha256)? else {
            return Ok(Err("unknown token"));
        };
        Ok(match self.token_problem(&t)? {
            Some(why) => Err(why),
            None => Ok(t),
        })
    }

    pub fn tokens_of_user(&self, user_id: UserId) -> Result<Vec<Token>> {
        let db = self.rd();
        let mut st = db.prepare_cached(&format!(
            "SELECT {} FROM tokens WHERE user_id = ?1 AND kind = 'api' ORDER BY id",
            Self::TOKEN_COLS
        ))?;
        let rows = st.query_map([user_id], Self::token_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn touch_token(&self, id: TokenId) -> Result<()> {
        self.db().execute(
            "UPDATE tokens SET last_used_at = ?2 WHERE id = ?1",
            params![id, now()],
        )?;
        Ok(())
    }

    /// Revoke a token and every token minted from it, at any depth.
    /// Returns how many descendants were revoked with it.
    /// Rename a token. Returns it as it is now.
    pub fn rename_token(&self, id: TokenId, name: &str) -> Result<Token> {
        let n = self.db().execute(
            "UPDATE tokens SET name = ?2 WHERE id = ?1",
            params![id, name],
        )?;
        if n == 0 {
            return Err(Error::NotFound(format!("token {id}")));
        }
        self.token(id)
    }

    pub fn revoke_token(&self, id: TokenId) -> Result<usize> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let t = now();
        let n = tx.execute(
            "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, t],
        )?;
        if n == 0 {
            return Err(Error::NotFound(format!("active token {id}")));
        }
        let descendants = tokens::revoke_descendants(&tx, &[id], t)?;
        tx.commit()?;
        Ok(descendants)
    }
}

//! S3 access keys (issue 15): a user's keys for the S3 gateway. The
//! catalog stores the secret sealed by the caller (the server seals it
//! under a key file of its data directory) and never sees it in the clear.

use rusqlite::{params, OptionalExtension, Row};

use crate::{now, unique, Catalog, Error, Result, UserId};

/// An S3 access key, without its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Key {
    pub id: i64,
    pub user_id: UserId,
    /// The key id clients send (`AKIA…`, 20 characters).
    pub access_key_id: String,
    pub description: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const COLS: &str = "id, user_id, access_key_id, description, created_at, last_used_at, revoked_at";

fn row(r: &Row) -> rusqlite::Result<S3Key> {
    Ok(S3Key {
        id: r.get(0)?,
        user_id: r.get(1)?,
        access_key_id: r.get(2)?,
        description: r.get(3)?,
        created_at: r.get(4)?,
        last_used_at: r.get(5)?,
        revoked_at: r.get(6)?,
    })
}

impl Catalog {
    /// Store a new key of `user_id` with its sealed secret.
    pub fn add_s3_key(
        &self,
        user_id: UserId,
        access_key_id: &str,
        secret_sealed: &[u8],
        description: &str,
    ) -> Result<S3Key> {
        let db = self.db();
        db.execute(
            "INSERT INTO s3_keys (user_id, access_key_id, secret_sealed, description, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![user_id, access_key_id, secret_sealed, description, now()],
        )
        .map_err(unique(format!("S3 access key {access_key_id}")))?;
        let id = db.last_insert_rowid();
        drop(db);
        self.s3_key(id)
    }

    /// The key `id` (revoked or not).
    pub fn s3_key(&self, id: i64) -> Result<S3Key> {
        self.rd()
            .query_row(
                &format!("SELECT {COLS} FROM s3_keys WHERE id = ?1"),
                [id],
                row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("S3 key {id}")))
    }

    /// The keys of `user` (all users' with `None`), oldest first,
    /// revoked ones included.
    pub fn s3_keys(&self, user: Option<UserId>) -> Result<Vec<S3Key>> {
        let db = self.rd();
        let mut st = db.prepare(&format!(
            "SELECT {COLS} FROM s3_keys WHERE ?1 IS NULL OR user_id = ?1 ORDER BY id"
        ))?;
        let v = st
            .query_map([user], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(v)
    }

    /// The key with this access key id and its sealed secret, if it
    /// exists (revoked or not).
    pub fn s3_key_by_access_key(&self, access_key_id: &str) -> Result<Option<(S3Key, Vec<u8>)>> {
        Ok(self
            .rd()
            .query_row(
                &format!("SELECT {COLS}, secret_sealed FROM s3_keys WHERE access_key_id = ?1"),
                [access_key_id],
                |r| Ok((row(r)?, r.get(7)?)),
            )
            .optional()?)
    }

    /// Revoke key `id`; false when it was revoked already.
    pub fn revoke_s3_key(&self, id: i64) -> Result<bool> {
        self.s3_key(id)?;
        let n = self.db().execute(
            "UPDATE s3_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, now()],
        )?;
        Ok(n == 1)
    }

    /// The restore points of a source in every datastore, oldest first
    /// (the folders of the source's bucket in the S3 gateway).
    pub fn s3_restore_points_of_source(
        &self,
        source_id: crate::SourceId,
    ) -> Result<Vec<crate::RestorePoint>> {
        let db = self.rd();
        let mut st = db.prepare_cached(&format!(
            "SELECT {} FROM restore_points WHERE source_id = ?1 ORDER BY time, id",
            crate::restore_points::RP_COLS
        ))?;
        let rows = st.query_map([source_id], crate::restore_points::rp_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Note that key `id` was used at `t`.
    pub fn touch_s3_key(&self, id: i64, t: i64) -> Result<()> {
        self.db().execute(
            "UPDATE s3_keys SET last_used_at = ?2 WHERE id = ?1",
            params![id, t],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_added_listed_found_and_revoked() {
        let c = Catalog::open_in_memory().unwrap();
        let u = c.add_user("alice", "x", &[]).unwrap();
        let k = c
            .add_s3_key(u.id, "AKIAAAAAAAAAAAAAAAAA", b"sealed", "laptop")
            .unwrap();
        assert_eq!(k.user_id, u.id);
        assert_eq!(k.description, "laptop");
        assert!(k.revoked_at.is_none());
        assert!(matches!(
            c.add_s3_key(u.id, "AKIAAAAAAAAAAAAAAAAA", b"s", ""),
            Err(Error::Conflict(_))
        ));
        let (found, sealed) = c
            .s3_key_by_access_key("AKIAAAAAAAAAAAAAAAAA")
            .unwrap()
            .unwrap();
        assert_eq!(found, k);
        assert_eq!(sealed, b"sealed");
        assert!(c.s3_key_by_access_key("AKIANOPE").unwrap().is_none());
        assert_eq!(c.s3_keys(Some(u.id)).unwrap(), vec![k.clone()]);
        assert_eq!(c.s3_keys(None).unwrap().len(), 1);
        c.touch_s3_key(k.id, 1234).unwrap();
        assert_eq!(c.s3_key(k.id).unwrap().last_used_at, Some(1234));
        assert!(c.revoke_s3_key(k.id).unwrap());
        assert!(!c.revoke_s3_key(k.id).unwrap());
        assert!(c.s3_key(k.id).unwrap().revoked_at.is_some());
        assert!(matches!(c.revoke_s3_key(999), Err(Error::NotFound(_))));
    }
}

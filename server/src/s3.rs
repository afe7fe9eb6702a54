//! The S3 gateway of `arca server` (`--s3-listen`, on by default on
//! loopback): the catalog's sources as buckets, per-user access keys
//! (`/api/v1/s3-keys`), files read through the embedded node
//! ([`arca_web::browse::Browse::file_tree`]).
//!
//! - A key acts as its user; its buckets are the sources of the projects
//!   where the user may restore. Key, user and rights are read from the
//!   catalog on every request: a revoked key or a disabled user is
//!   refused at once.
//! - Bucket names are made from all the catalog's sources (by id), so a
//!   source's bucket name does not depend on who lists it.
//! - A source whose restore points are on a remote node's datastore is
//!   read through that node (file queries, [`crate::remote_tree`]): a
//!   node that is offline or not answering is `ServiceUnavailable` (503).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arca_catalog::{Catalog, Source, User};
use arca_frontends::tree::FileTree;
use arca_s3::{Backend, BackendError, BucketInfo, KeyInfo, PointInfo};
use arca_web::auth::{allows, Action};
use arca_web::browse::{Browse, BrowseError};
use arca_web::s3_secrets::SecretBox;

/// How often a key's `last_used_at` is written (seconds).
const TOUCH_EVERY: i64 = 60;

/// The catalog's sources as buckets, for per-user keys.
pub struct ServerS3 {
    catalog: Arc<Catalog>,
    browse: Arc<dyn Browse>,
    secrets: Arc<SecretBox>,
    /// When each key's use was last written.
    touched: Mutex<HashMap<i64, i64>>,
}

fn internal(e: impl std::fmt::Display) -> BackendError {
    BackendError::Internal(e.to_string())
}

impl ServerS3 {
    pub fn new(catalog: Arc<Catalog>, browse: Arc<dyn Browse>, secrets: Arc<SecretBox>) -> Self {
        ServerS3 {
            catalog,
            browse,
            secrets,
            touched: Mutex::new(HashMap::new()),
        }
    }

    /// The live key's user (None: unknown or revoked key, disabled
    /// user), and the sealed secret.
    fn user_of(&self, access_key: &str) -> Result<Option<(User, i64, Vec<u8>)>, BackendError> {
        let Some((k, sealed)) = self
            .catalog
            .s3_key_by_access_key(access_key)
            .map_err(internal)?
        else {
            return Ok(None);
        };
        if k.revoked_at.is_some() {
            return Ok(None);
        }
        let user = match self.catalog.user(k.user_id) {
            Ok(u) => u,
            Err(arca_catalog::Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(internal(e)),
        };
        if user.disabled {
            return Ok(None);
        }
        Ok(Some((user, k.id, sealed)))
    }

    /// The sources the key's user may restore from, with their bucket
    /// names.
    fn visible(&self, access_key: &str) -> Result<Vec<(String, Source)>, BackendError> {
        let (user, _, _) = self
            .user_of(access_key)?
            .ok_or_else(|| BackendError::Denied("the access key is unknown or revoked".into()))?;
        let mut all = self.catalog.sources().map_err(internal)?;
        all.sort_by_key(|s| s.id);
        let names = arca_s3::names::bucket_names(
            &all.iter()
                .map(|s| (s.id.to_string(), s.name.clone()))
                .collect::<Vec<_>>(),
        );
        let may = |s: &Source| {
            user.roles.iter().any(|b| {
                allows(b.role, Action::Restore) && b.project_id.is_none_or(|p| p == s.project_id)
            })
        };
        Ok(names.into_iter().zip(all).filter(|(_, s)| may(s)).collect())
    }

    fn source(&self, access_key: &str, bucket: &str) -> Result<Source, BackendError> {
        self.visible(access_key)?
            .into_iter()
            .find(|(n, _)| n == bucket)
            .map(|(_, s)| s)
            .ok_or(BackendError::NoSuchBucket)
    }
}

impl Backend for ServerS3 {
    fn key(&self, access_key: &str) -> Result<Option<KeyInfo>, BackendError> {
        let Some((user, id, sealed)) = self.user_of(access_key)? else {
            return Ok(None);
        };
        let secret = self
            .secrets
            .open(access_key.as_bytes(), &sealed)
            .map_err(BackendError::Internal)?;
        let secret = String::from_utf8(secret).map_err(internal)?;
        let now = arca_catalog::now();
        let due = self
            .touched
            .lock()
            .map(|mut t| {
                let due = t.get(&id).is_none_or(|at| now - at >= TOUCH_EVERY);
                if due {
                    t.insert(id, now);
                }
                due
            })
            .unwrap_or(false);
        if due {
            if let Err(e) = self.catalog.touch_s3_key(id, now) {
                tracing::warn!(key = id, error = %e, "s3: noting a key's use failed");
            }
        }
        Ok(Some(KeyInfo {
            secret,
            user: user.name,
        }))
    }

    fn buckets(&self, access_key: &str) -> Result<Vec<BucketInfo>, BackendError> {
        let mut v: Vec<BucketInfo> = self
            .visible(access_key)?
            .into_iter()
            .map(|(name, s)| BucketInfo {
                name,
                created_ns: s.created_at.saturating_mul(1_000_000_000),
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    fn points(&self, access_key: &str, bucket: &str) -> Result<Vec<PointInfo>, BackendError> {
        let s = self.source(access_key, bucket)?;
        Ok(self
            .catalog
            .s3_restore_points_of_source(s.id)
            .map_err(internal)?
            .into_iter()
            .map(|rp| PointInfo {
                id: rp.id.to_string(),
                time_ns: rp.time.saturating_mul(1_000_000_000),
            })
            .collect())
    }

    fn tree(
        &self,
        access_key: &str,
        bucket: &str,
        id: &str,
    ) -> Result<Arc<dyn FileTree>, BackendError> {
        let s = self.source(access_key, bucket)?;
        let rp = self
            .catalog
            .s3_restore_points_of_source(s.id)
            .map_err(internal)?
            .into_iter()
            .find(|rp| rp.id.to_string() == id)
            .ok_or_else(|| BackendError::NotFound(format!("no restore point {id} in {bucket}")))?;
        let ds = self.catalog.datastore(rp.datastore_id).map_err(internal)?;
        self.browse.file_tree(&ds, rp.id).map_err(|e| match e {
            BrowseError::NotFound(m) => BackendError::NotFound(m),
            BrowseError::Unavailable(m) | BrowseError::Timeout(m) => BackendError::Unavailable(m),
            BrowseError::Conflict(m) | BrowseError::Invalid(m) | BrowseError::Internal(m) => {
                BackendError::Internal(m)
            }
        })
    }
}

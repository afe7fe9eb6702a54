//! The backend of `arca serve s3`: one datastore opened by this process,
//! its sources as buckets (the source names of its snapshot manifests),
//! one access key pair.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arca_frontends::tree::{FileTree, Trees};
use arca_repo::{Datastore, SnapshotId};

use crate::{Backend, BackendError, BucketInfo, KeyInfo, PointInfo};

/// A datastore's sources as buckets, for one key pair.
pub struct LocalBackend {
    ds: Arc<Datastore>,
    trees: Arc<Trees>,
    access_key: String,
    secret: String,
    /// The last listing, with the snapshot ids it was made from.
    listing: Mutex<Option<(Vec<arca_repo::SnapshotId>, Arc<Listing>)>>,
}

/// The buckets and their restore points (oldest first).
struct Listing {
    buckets: Vec<BucketInfo>,
    points: HashMap<String, Vec<PointInfo>>,
}

impl LocalBackend {
    /// Serve `ds` through `trees` to the one key `access_key`/`secret`.
    pub fn new(ds: Arc<Datastore>, trees: Arc<Trees>, access_key: &str, secret: &str) -> Self {
        LocalBackend {
            ds,
            trees,
            access_key: access_key.to_string(),
            secret: secret.to_string(),
            listing: Mutex::new(None),
        }
    }

    fn listing(&self) -> Result<Arc<Listing>, BackendError> {
        let mut cached = self
            .listing
            .lock()
            .map_err(|_| BackendError::Internal("the listing lock is poisoned".into()))?;
        // The snapshot files are listed on every call (one directory
        // read): a restore point made a moment ago is visible at once, and
        // the manifests are read again only when the set changed.
        let ids = self
            .ds
            .snapshot_files()
            .map_err(|e| BackendError::Internal(format!("listing restore points: {e}")))?;
        if let Some((seen, l)) = cached.as_ref() {
            if *seen == ids {
                return Ok(l.clone());
            }
        }
        let snaps = self
            .ds
            .snapshots()
            .map_err(|e| BackendError::Internal(format!("listing restore points: {e}")))?;
        let mut sources: Vec<String> = snaps.iter().map(|s| s.manifest.source.clone()).collect();
        sources.sort();
        sources.dedup();
        // A source has no id in a datastore: a hash of its name stands in
        // for one where bucket names collide.
        let named: Vec<(String, String)> = sources
            .iter()
            .map(|s| {
                (
                    hex::encode(&blake3::hash(s.as_bytes()).as_bytes()[..4]),
                    s.clone(),
                )
            })
            .collect();
        let names = crate::names::bucket_names(&named);
        let by_source: HashMap<&str, &str> = sources
            .iter()
            .map(String::as_str)
            .zip(names.iter().map(String::as_str))
            .collect();
        let mut points: HashMap<String, Vec<PointInfo>> = HashMap::new();
        for s in &snaps {
            if let Some(b) = by_source.get(s.manifest.source.as_str()) {
                points.entry(b.to_string()).or_default().push(PointInfo {
                    id: s.id.to_string(),
                    time_ns: s.manifest.time_ns,
                });
            }
        }
        let mut buckets: Vec<BucketInfo> = points
            .iter()
            .map(|(name, p)| BucketInfo {
                name: name.clone(),
                created_ns: p.first().map_or(0, |p| p.time_ns),
            })
            .collect();
        buckets.sort_by(|a, b| a.name.cmp(&b.name));
        let l = Arc::new(Listing { buckets, points });
        *cached = Some((ids, l.clone()));
        Ok(l)
    }

    fn check_key(&self, access_key: &str) -> Result<(), BackendError> {
        if access_key == self.access_key {
            Ok(())
        } else {
            Err(BackendError::Denied("unknown access key".into()))
        }
    }
}

impl Backend for LocalBackend {
    fn key(&self, access_key: &str) -> Result<Option<KeyInfo>, BackendError> {
        Ok((access_key == self.access_key).then(|| KeyInfo {
            secret: self.secret.clone(),
            user: "local".into(),
        }))
    }

    fn buckets(&self, access_key: &str) -> Result<Vec<BucketInfo>, BackendError> {
        self.check_key(access_key)?;
        Ok(self.listing()?.buckets.clone())
    }

    fn points(&self, access_key: &str, bucket: &str) -> Result<Vec<PointInfo>, BackendError> {
        self.check_key(access_key)?;
        self.listing()?
            .points
            .get(bucket)
            .cloned()
            .ok_or(BackendError::NoSuchBucket)
    }

    fn tree(
        &self,
        access_key: &str,
        bucket: &str,
        id: &str,
    ) -> Result<Arc<dyn FileTree>, BackendError> {
        self.check_key(access_key)?;
        let listing = self.listing()?;
        let points = listing
            .points
            .get(bucket)
            .ok_or(BackendError::NoSuchBucket)?;
        if !points.iter().any(|p| p.id == id) {
            return Err(BackendError::NotFound(format!(
                "no restore point {id} in {bucket}"
            )));
        }
        let sid = SnapshotId::from_hex(id)
            .map_err(|e| BackendError::NotFound(format!("restore point {id}: {e}")))?;
        self.trees.get(&self.ds, &sid).map_err(|e| match e {
            arca_frontends::tree::TreeError::NotFound(m) => BackendError::NotFound(m),
            e => BackendError::Internal(e.to_string()),
        })
    }
}

//! Confinement: where a node's sources may live and where its restores
//! may write.
//!
//! An admin sets, per node, *source roots* and *restore roots* (absolute
//! directories) and whether restores may write block devices
//! (`PATCH /api/v1/nodes/{id}`, `arca node set`, or `arca server
//! --source-root/--restore-root` for the built-in node). The rules:
//!
//! - A source's path must be at or under one of its node's source roots.
//!   A node without source roots takes no source at all.
//! - A restore's target must be at or under one of its node's restore
//!   roots; a node without any has one: `<data-dir>/restores`.
//! - Whatever the roots: no source inside or containing the node's data
//!   directory or one of its datastores; no restore target inside or
//!   containing a datastore, nor inside the data directory other than
//!   `<data-dir>/restores`, nor containing the data directory.
//! - `/` is no root: it would allow everything, the node's secrets included.
//! - A block device is written only when the node allows block devices
//!   (and a restore root covers the device, e.g. `/dev/vdb`).
//!
//! The rules are checked twice. The API checks paths lexically (after
//! normalising `//`, `.` and a trailing `/`; `..` is refused) when a
//! source is added or a restore is asked for, and answers 422 naming the
//! allowed roots. The node checks again when the task runs, on the real
//! path (links resolved), against the rules the server put in the task's
//! parameters (`params.confine`, computed from the catalog at each lease,
//! so a change applies to queued tasks too): a symbolic link that leads out
//! of a root fails the task with the reason. Inside the target, the restore
//! itself never follows a link (see `arca_ingest::restore`).

use std::path::{Path, PathBuf};

use arca_catalog::{self as catalog, Catalog, NodeId, Task, TaskKind};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Most roots of each kind a node may have.
pub const MAX_ROOTS: usize = 64;

/// One node's rules, as the API checks them and as a task carries them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confinement {
    /// The node's name, for messages.
    pub node: String,
    pub source_roots: Vec<String>,
    /// As the admin set them; empty: `<data_dir>/restores`.
    pub restore_roots: Vec<String>,
    pub allow_block_devices: bool,
    /// The node's data directory ("" if it never said).
    pub data_dir: String,
    /// The paths of the node's datastores.
    pub datastores: Vec<String>,
}

/// `path` absolute and normalised: no empty or `.` components, no
/// trailing `/`; `..` is refused rather than resolved (it would be
/// resolved differently on the node when links are involved).
pub fn normalize(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err(format!("{path:?} is not an absolute path"));
    }
    if path.len() > 4096 || path.contains('\0') {
        return Err("a path is at most 4096 bytes, without NUL".into());
    }
    let mut out = String::with_capacity(path.len());
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(format!("{path:?} contains '..'; give the path without it")),
            c => {
                out.push('/');
                out.push_str(c);
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// Is `path` `root` or under it (both normalised)?
pub fn within(path: &str, root: &str) -> bool {
    root == "/"
        || path == root
        || (path.starts_with(root) && path.as_bytes().get(root.len()) == Some(&b'/'))
}

/// Validate roots an admin gives: normalised, deduplicated, not `/`.
pub fn check_roots(what: &str, roots: &[String]) -> Result<Vec<String>, String> {
    if roots.len() > MAX_ROOTS {
        return Err(format!("at most {MAX_ROOTS} {what}"));
    }
    let mut out: Vec<String> = Vec::new();
    for r in roots {
        let n = normalize(r).map_err(|e| format!("{what}: {e}"))?;
        if n == "/" {
            return Err(format!(
                "{what}: / is not accepted (it would allow every path, the node's own secrets included); name the directories, e.g. /srv or /home"
            ));
        }
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

fn list(roots: &[String]) -> String {
    if roots.is_empty() {
        "none".into()
    } else {
        roots.join(", ")
    }
}

/// `canonicalize`, or the path itself where it does not exist (yet).
fn real_or_self(p: &str) -> String {
    std::fs::canonicalize(p)
        .map(|r| r.display().to_string())
        .unwrap_or_else(|_| p.to_string())
}

impl Confinement {
    /// The rules of `node_id` as the catalog has them.
    pub fn load(c: &Catalog, node_id: NodeId) -> catalog::Result<Confinement> {
        let n = c.node(node_id)?;
        let datastores = c
            .datastores()?
            .into_iter()
            .filter(|d| d.node_id == node_id)
            .map(|d| d.path)
            .collect();
        Ok(Confinement {
            node: n.name,
            source_roots: n.source_roots,
            restore_roots: n.restore_roots,
            allow_block_devices: n.allow_block_devices,
            data_dir: n.data_dir,
            datastores,
        })
    }

    /// `<data_dir>/restores`, when the node told its data directory.
    pub fn default_restore_root(&self) -> Option<String> {
        (!self.data_dir.is_empty())
            .then(|| format!("{}/restores", self.data_dir.trim_end_matches('/')))
    }

    /// The restore roots in force.
    pub fn restore_roots(&self) -> Vec<String> {
        if self.restore_roots.is_empty() {
            self.default_restore_root().into_iter().collect()
        } else {
            self.restore_roots.clone()
        }
    }

    /// How an admin changes the rules, for messages.
    fn how(&self, flag: &str) -> String {
        format!(
            "an admin changes them with `arca node set {} {flag}` (PATCH /api/v1/nodes/ID)",
            self.node
        )
    }

    /// Check a normalised source path against roots and protected paths
    /// (lexical, or all real paths on the node).
    fn source_rules(
        &self,
        path: &str,
        shown: &str,
        roots: &[String],
        data_dir: &str,
        datastores: &[String],
    ) -> Result<(), String> {
        let n = &self.node;
        let protected = std::iter::once(("data directory", data_dir))
            .chain(datastores.iter().map(|d| ("datastore", d.as_str())))
            .filter(|(_, p)| !p.is_empty());
        for (what, p) in protected {
            if within(path, p) {
                return Err(format!(
                    "source path {shown} is inside the {what} of node {n} ({p}); the node's own data is never a source"
                ));
            }
            if within(p, path) {
                return Err(format!(
                    "source path {shown} contains the {what} of node {n} ({p}); the node's own data is never a source, choose a directory that does not hold it"
                ));
            }
        }
        if roots.is_empty() {
            return Err(format!(
                "node {n} has no source roots, so no source may be added on it (allowed: none); {}",
                self.how("--source-root DIR")
            ));
        }
        self.under_roots("source path", "source", path, shown, roots)
    }

    fn restore_rules(
        &self,
        target: &str,
        shown: &str,
        roots: &[String],
        data_dir: &str,
        datastores: &[String],
    ) -> Result<(), String> {
        let n = &self.node;
        for d in datastores.iter().filter(|d| !d.is_empty()) {
            if within(target, d) || within(d, target) {
                return Err(format!(
                    "restore target {shown} is inside or contains datastore {d} of node {n}; restores never write there"
                ));
            }
        }
        if !data_dir.is_empty() {
            let restores = format!("{}/restores", data_dir.trim_end_matches('/'));
            if within(target, data_dir) && !within(target, &restores) {
                return Err(format!(
                    "restore target {shown} is inside the data directory of node {n} ({data_dir}); only {restores} there takes restores"
                ));
            }
            if within(data_dir, target) {
                return Err(format!(
                    "restore target {shown} contains the data directory of node {n} ({data_dir}); restores never write over it"
                ));
            }
        }
        if roots.is_empty() {
            return Err(format!(
                "node {n} has no restore roots (it has not reported its data directory, so there is no default); {}",
                self.how("--restore-root DIR")
            ));
        }
        self.under_roots("restore target", "restore", target, shown, roots)
    }

    /// `path` must lie under one of `roots` (the `kind` roots of the node).
    fn under_roots(
        &self,
        what: &str,
        kind: &str,
        path: &str,
        shown: &str,
        roots: &[String],
    ) -> Result<(), String> {
        if roots.iter().any(|r| within(path, r)) {
            return Ok(());
        }
        Err(format!(
            "{what} {shown} is outside the {kind} roots of node {} (allowed: {}); {}",
            self.node,
            list(roots),
            self.how(&format!("--{kind}-root DIR"))
        ))
    }

    fn block_devices_refused(&self, target: &str) -> String {
        format!(
            "restore target {target} is a block device, and node {} does not allow restores onto block devices; {}",
            self.node,
            self.how("--allow-block-devices true")
        )
    }

    /// The API's check of a source path; returns it normalised.
    pub fn check_source(&self, path: &str) -> Result<String, String> {
        let p = normalize(path).map_err(|e| format!("source path: {e}"))?;
        self.source_rules(&p, &p, &self.source_roots, &self.data_dir, &self.datastores)?;
        Ok(p)
    }

    /// The API's check of a restore target; returns it normalised.
    pub fn check_restore(&self, target: &str) -> Result<String, String> {
        let t = normalize(target).map_err(|e| format!("restore target: {e}"))?;
        self.restore_rules(
            &t,
            &t,
            &self.restore_roots(),
            &self.data_dir,
            &self.datastores,
        )?;
        if !self.allow_block_devices && within(&t, "/dev") {
            return Err(self.block_devices_refused(&t));
        }
        Ok(t)
    }

    /// Roots and protected paths as they really are on this node.
    fn real(&self, roots: &[String]) -> (Vec<String>, String, Vec<String>) {
        let data_dir = if self.data_dir.is_empty() {
            String::new()
        } else {
            real_or_self(&self.data_dir)
        };
        (
            roots.iter().map(|r| real_or_self(r)).collect(),
            data_dir,
            self.datastores.iter().map(|d| real_or_self(d)).collect(),
        )
    }

    /// The node's check of a source before a backup: the real path
    /// (which it returns), links resolved, under a real source root.
    pub fn real_source(&self, path: &str) -> Result<PathBuf, String> {
        let p = normalize(path).map_err(|e| format!("source path: {e}"))?;
        let real = std::fs::canonicalize(&p).map_err(|e| format!("source path {p}: {e}"))?;
        let r = real.display().to_string();
        let shown = if r == p {
            p.clone()
        } else {
            format!("{p} (a link to {r})")
        };
        let (roots, data_dir, datastores) = self.real(&self.source_roots);
        self.source_rules(&r, &shown, &roots, &data_dir, &datastores)?;
        Ok(real)
    }

    /// The node's check of a restore target before it is written: the
    /// real path (which it returns): the longest part that exists with
    /// links resolved, plus the rest, which does not exist yet.
    pub fn real_restore(&self, target: &str) -> Result<PathBuf, String> {
        let t = normalize(target).map_err(|e| format!("restore target: {e}"))?;
        let mut existing = PathBuf::from(&t);
        let mut rest = Vec::new();
        while std::fs::symlink_metadata(&existing).is_err() {
            match (existing.file_name(), existing.parent()) {
                (Some(name), Some(parent)) => {
                    rest.push(name.to_os_string());
                    existing = parent.to_path_buf();
                }
                _ => break,
            }
        }
        let mut real = std::fs::canonicalize(&existing)
            .map_err(|e| format!("restore target {t}: {}: {e}", existing.display()))?;
        for name in rest.iter().rev() {
            real.push(name);
        }
        let r = real.display().to_string();
        let shown = if r == t {
            t.clone()
        } else {
            format!("{t} (really {r})")
        };
        let (roots, data_dir, datastores) = self.real(&self.restore_roots());
        self.restore_rules(&r, &shown, &roots, &data_dir, &datastores)?;
        let device = std::fs::metadata(&real).is_ok_and(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_block_device()
        });
        if device && !self.allow_block_devices {
            return Err(self.block_devices_refused(&shown));
        }
        Ok(real)
    }

    /// The rules a task carries (see [`attach`]).
    pub fn of_task(params: &Value) -> Result<Confinement, String> {
        match params.get("confine") {
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| format!("the task's confinement rules: {e}")),
            None => Err(
                "the task carries no confinement rules (is the server older than this node?); not running it"
                    .into(),
            ),
        }
    }
}

/// Put the rules of `node_id` into a backup or restore task's parameters,
/// where the node finds them ([`Confinement::of_task`]). Whatever the
/// parameters had under `confine` is replaced.
pub fn attach(c: &Catalog, node_id: NodeId, task: &mut Task) -> Result<(), String> {
    if !matches!(task.kind, TaskKind::Backup | TaskKind::Restore) {
        return Ok(());
    }
    let conf = Confinement::load(c, node_id).map_err(|e| e.to_string())?;
    if !task.params.is_object() {
        task.params = json!({});
    }
    task.params["confine"] = json!(conf);
    Ok(())
}

/// `<data_dir>/restores`, made (0700) if missing: the default restore root.
pub fn make_restores_dir(data_dir: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let d = data_dir.join("restores");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&d)?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf() -> Confinement {
        Confinement {
            node: "n1".into(),
            source_roots: vec!["/srv".into(), "/home".into()],
            restore_roots: vec![],
            allow_block_devices: false,
            data_dir: "/var/lib/arca".into(),
            datastores: vec!["/var/lib/arca/datastores/default".into(), "/srv/ds2".into()],
        }
    }

    #[test]
    fn normalize_and_within() {
        assert_eq!(normalize("/a//b/./c/").unwrap(), "/a/b/c");
        assert_eq!(normalize("/").unwrap(), "/");
        assert!(normalize("a/b").is_err());
        assert!(normalize("/a/../b").unwrap_err().contains(".."));
        assert!(within("/srv/a", "/srv"));
        assert!(within("/srv", "/srv"));
        assert!(!within("/srvx", "/srv"));
        assert!(!within("/sr", "/srv"));
    }

    #[test]
    fn roots_are_checked() {
        assert_eq!(
            check_roots(
                "source roots",
                &["/srv/".into(), "/srv".into(), "/a//b".into()]
            )
            .unwrap(),
            vec!["/srv".to_string(), "/a/b".to_string()]
        );
        assert!(check_roots("source roots", &["/".into()])
            .unwrap_err()
            .contains("not accepted"));
        assert!(check_roots("source roots", &["rel".into()]).is_err());
        assert!(check_roots("source roots", &["/a/../b".into()]).is_err());
    }

    #[test]
    fn sources() {
        let c = conf();
        assert_eq!(c.check_source("/srv/www/").unwrap(), "/srv/www");
        let e = c.check_source("/etc/shadow").unwrap_err();
        assert!(
            e.contains("outside the source roots") && e.contains("/srv, /home"),
            "{e}"
        );
        assert!(c
            .check_source("/var/lib/arca/catalog.db")
            .unwrap_err()
            .contains("data directory"));
        assert!(c
            .check_source("/srv/ds2/packs")
            .unwrap_err()
            .contains("datastore"));
        assert!(c
            .check_source("/srv")
            .unwrap_err()
            .contains("contains the datastore"));
        assert!(c.check_source("/srv/../etc").is_err());
        let none = Confinement {
            source_roots: vec![],
            ..conf()
        };
        assert!(none
            .check_source("/srv/www")
            .unwrap_err()
            .contains("allowed: none"));
    }

    #[test]
    fn restores() {
        let c = conf();
        assert_eq!(
            c.check_restore("/var/lib/arca/restores/x").unwrap(),
            "/var/lib/arca/restores/x"
        );
        let e = c.check_restore("/etc").unwrap_err();
        assert!(
            e.contains("outside the restore roots") && e.contains("/var/lib/arca/restores"),
            "{e}"
        );
        assert!(c
            .check_restore("/var/lib/arca/catalog.db")
            .unwrap_err()
            .contains("data directory"));
        assert!(c
            .check_restore("/var/lib")
            .unwrap_err()
            .contains("contains"));
        let bare = Confinement {
            datastores: vec![],
            ..conf()
        };
        assert!(bare
            .check_restore("/var/lib")
            .unwrap_err()
            .contains("contains the data directory"));
        assert!(c
            .check_restore("/var/lib/arca/datastores/default/x")
            .unwrap_err()
            .contains("datastore"));
        let own = Confinement {
            restore_roots: vec!["/srv/restore".into(), "/dev/vdb".into()],
            ..conf()
        };
        assert!(own.check_restore("/srv/restore/a").is_ok());
        let e = own.check_restore("/var/lib/arca/restores/x").unwrap_err();
        assert!(e.contains("/srv/restore, /dev/vdb"), "{e}");
        assert!(own
            .check_restore("/dev/vdb")
            .unwrap_err()
            .contains("block device"));
        let dev = Confinement {
            allow_block_devices: true,
            ..own
        };
        assert_eq!(dev.check_restore("/dev/vdb").unwrap(), "/dev/vdb");
        let unknown = Confinement {
            data_dir: String::new(),
            ..conf()
        };
        assert!(unknown
            .check_restore("/tmp/x")
            .unwrap_err()
            .contains("no restore roots"));
    }

    #[test]
    fn real_paths_resolve_links() {
        let d = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(d.path()).unwrap();
        let root = base.join("root");
        let outside = base.join("outside");
        std::fs::create_dir_all(root.join("in")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        let c = Confinement {
            node: "n".into(),
            source_roots: vec![root.display().to_string()],
            restore_roots: vec![root.display().to_string()],
            data_dir: base.join("data").display().to_string(),
            ..Default::default()
        };
        let link = root.join("link").display().to_string();
        assert!(c.check_source(&link).is_ok(), "lexically inside");
        let e = c.real_source(&link).unwrap_err();
        assert!(
            e.contains("a link to") && e.contains("outside the source roots"),
            "{e}"
        );
        assert_eq!(
            c.real_source(&root.join("in").display().to_string())
                .unwrap(),
            root.join("in")
        );
        let e = c.real_restore(&format!("{link}/new/dir")).unwrap_err();
        assert!(e.contains("outside the restore roots"), "{e}");
        assert_eq!(
            c.real_restore(&root.join("in/new").display().to_string())
                .unwrap(),
            root.join("in/new")
        );
    }
}

//! Every kind and state that was compared as text: one enum each, whose
//! serde names are exactly the strings stored in the catalog and sent in
//! the API (the `CHECK (... IN (...))` constraints of catalog/src/schema.rs
//! list the same values), so switching a field to its enum changes no JSON
//! and needs no migration. Each has `as_str`, `Display`, `FromStr` (whose
//! error names the valid values) and `ALL`.

use std::fmt;
use std::str::FromStr;

/// A string that is none of an enum's values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownValue {
    /// What was parsed ("task kind").
    pub what: &'static str,
    pub value: String,
    /// The valid values.
    pub valid: &'static [&'static str],
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} {:?}; valid: {}",
            self.what,
            self.value,
            self.valid.join(", ")
        )
    }
}

impl std::error::Error for UnknownValue {}

macro_rules! string_enum {
    (
        $(#[doc = $doc:literal])*
        $(#[derive($($extra:ident),+)])?
        $name:ident, $what:literal {
            $( $(#[$vattr:meta])* $variant:ident = $s:literal ),+ $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize $($(, $extra)+)?
        )]
        pub enum $name {
            $( $(#[$vattr])* #[serde(rename = $s)] $variant ),+
        }

        // By hand: utoipa's derive does not see serde renames made by a
        // macro, and these names are the contract.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some(Self::NAMES.iter().copied()))
                    .description(Some(concat!($($doc),*).trim()))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The names, as stored and sent.
            pub const NAMES: &'static [&'static str] = &[$($s),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $s),+
                }
            }
        }

        // `pad`: widths and alignment apply (`{:<8}` in a table).
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $($s => Ok($name::$variant),)+
                    _ => Err(UnknownValue {
                        what: $what,
                        value: s.to_string(),
                        valid: Self::NAMES,
                    }),
                }
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
    };
}

string_enum!(
    /// What a source is: a directory tree or a block device / image file.
    /// Restore points have the kind of their source.
    SourceKind, "source kind" {
        /// A directory tree.
        Files = "files",
        /// A disk image: a block device or an image file.
        Image = "image",
        /// A virtual machine of a libvirt host (its disks and definition),
        /// listed by the host's inventory sync.
        Libvirt = "libvirt",
    }
);

impl SourceKind {
    /// Whether its restore points hold disks (served as disks, with a
    /// file tree found inside them).
    pub fn has_disks(self) -> bool {
        matches!(self, SourceKind::Image | SourceKind::Libvirt)
    }
}

string_enum!(
    /// What a task does. Its parameters are a [`crate::TaskSpec`].
    TaskKind, "task kind" {
        Backup = "backup",
        Restore = "restore",
        Verify = "verify",
        Prune = "prune",
        Gc = "gc",
        /// Write a stopped writable export's changes as a new restore point.
        CommitExport = "commit-export",
        /// Delete named restore points from a datastore.
        Forget = "forget",
    }
);

string_enum!(
    /// Where a task is in its life.
    TaskState, "task state" {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
    }
);

impl TaskState {
    /// Succeeded, failed or cancelled: the task will not run again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled
        )
    }
}

string_enum!(
    /// Whether a node is reachable (heartbeats within the timeout).
    NodeState, "node state" {
        Online = "online",
        Offline = "offline",
    }
);

string_enum!(
    /// The protocol an export is served with (NBD by default). NBD and
    /// iSCSI serve an image restore point as a disk; NFS (NFSv3,
    /// read-only) serves any restore point's file tree.
    #[derive(Default)]
    ExportProtocol, "export protocol" {
        #[default]
        Nbd = "nbd",
        Iscsi = "iscsi",
        Nfs = "nfs",
    }
);

string_enum!(
    /// Where an export is in its life. `starting` and `active` are live.
    ExportState, "export state" {
        /// Queued for its node to serve.
        Starting = "starting",
        /// Served; its address is set.
        Active = "active",
        /// Its node could not serve it (see `error`).
        Failed = "failed",
        /// Stopped by a user.
        Stopped = "stopped",
        /// Its lifetime ran out.
        Expired = "expired",
    }
);

impl ExportState {
    pub fn is_live(self) -> bool {
        matches!(self, ExportState::Starting | ExportState::Active)
    }
}

string_enum!(
    /// What happens to a writable export's changes when it ends.
    ExportOnStop, "export stop mode" {
        Discard = "discard",
        /// A commit-export task writes them as a new restore point.
        Commit = "commit",
    }
);

string_enum!(
    /// What the last verify that read a restore point found.
    #[derive(Default)]
    RestorePointState, "restore point state" {
        /// Not known to be damaged.
        #[default]
        Ok = "ok",
        /// Verify found chunks of it missing or corrupt (see `damage`).
        Damaged = "damaged",
    }
);

string_enum!(
    /// A role, in one project or in all.
    Role, "role" {
        /// Everything, including users, nodes and settings.
        Admin = "admin",
        /// Sources, policies, backups, restores and exports of the project.
        Operator = "operator",
        /// Read the project, restore and make read-only exports.
        RestoreOnly = "restore-only",
        /// Read the project and the audit log.
        Auditor = "auditor",
    }
);

string_enum!(
    /// What a token may do, whatever its user's roles allow.
    #[derive(Default)]
    TokenScope, "token scope" {
        /// The user's rights (limited to the token's projects, if any).
        #[default]
        Full = "full",
        /// Only GET (and HEAD) routes; no restores, no export credentials.
        ReadOnly = "read-only",
        /// Only `GET /metrics`.
        Metrics = "metrics",
    }
);

impl TokenScope {
    /// Does this scope allow no more than `other`? full ⊇ read-only ⊇ metrics.
    pub fn within(self, other: TokenScope) -> bool {
        self.rank() <= other.rank()
    }

    fn rank(self) -> u8 {
        match self {
            TokenScope::Metrics => 0,
            TokenScope::ReadOnly => 1,
            TokenScope::Full => 2,
        }
    }
}

string_enum!(
    /// What a token was made for.
    TokenKind, "token kind" {
        /// A sign-in session (12 hours at most).
        Session = "session",
        /// An API token a user made.
        Api = "api",
        /// A remote node's token.
        Node = "node",
    }
);

string_enum!(
    /// Whether a token can be used, as the token list shows it.
    TokenState, "token state" {
        Active = "active",
        Revoked = "revoked",
        Expired = "expired",
        /// A token it was made with is revoked.
        ParentRevoked = "parent-revoked",
        /// A token it was made with has expired.
        ParentExpired = "parent-expired",
    }
);

string_enum!(
    /// How a source got its policy.
    AssignedBy, "policy assignment" {
        /// It has none.
        None = "none",
        /// Named when the source was added (or set by hand).
        Explicit = "explicit",
        /// A policy's match pattern or tags chose it.
        Rule = "rule",
    }
);

string_enum!(
    /// How a datastore encrypts its blobs.
    Encryption, "encryption" {
        None = "none",
        /// A key stored in the datastore, wrapped by a passphrase.
        Repokey = "repokey",
    }
);

string_enum!(
    /// The level of a task log line.
    LogLevel, "log level" {
        Debug = "debug",
        Info = "info",
        Warn = "warn",
        Error = "error",
    }
);

string_enum!(
    /// The outcome of an audited change.
    AuditResult, "audit result" {
        Ok = "ok",
        /// The caller's role did not allow it.
        Denied = "denied",
        Failed = "failed",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The serde names, `as_str`, `Display` and `FromStr` agree, for every
    /// value of every enum.
    macro_rules! names {
        ($($t:ty),+) => {
            #[test]
            fn every_enum_round_trips() {
                $(
                    assert_eq!(<$t>::ALL.len(), <$t>::NAMES.len());
                    let schema = serde_json::to_value(
                        <$t as utoipa::PartialSchema>::schema(),
                    )
                    .unwrap();
                    assert_eq!(schema["enum"], serde_json::json!(<$t>::NAMES));
                    for (v, n) in <$t>::ALL.iter().zip(<$t>::NAMES) {
                        assert_eq!(v.as_str(), *n);
                        assert_eq!(v.to_string(), *n);
                        assert_eq!(n.parse::<$t>().unwrap(), *v);
                        assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(n));
                        assert_eq!(
                            serde_json::from_value::<$t>(serde_json::json!(n)).unwrap(),
                            *v
                        );
                    }
                )+
            }
        };
    }

    names!(
        SourceKind,
        TaskKind,
        TaskState,
        NodeState,
        ExportProtocol,
        ExportState,
        ExportOnStop,
        RestorePointState,
        Role,
        TokenScope,
        TokenKind,
        TokenState,
        AssignedBy,
        Encryption,
        LogLevel,
        AuditResult
    );

    #[test]
    fn today_s_strings() {
        assert_eq!(TaskKind::CommitExport.as_str(), "commit-export");
        assert_eq!(Role::RestoreOnly.as_str(), "restore-only");
        assert_eq!(TokenScope::ReadOnly.as_str(), "read-only");
        assert_eq!(TokenState::ParentExpired.as_str(), "parent-expired");
        assert_eq!(
            serde_json::to_value(Role::RestoreOnly).unwrap(),
            "restore-only"
        );
    }

    #[test]
    fn display_pads_in_tables() {
        assert_eq!(format!("[{:<8}]", TaskKind::Gc), "[gc      ]");
        assert_eq!(format!("[{:>6}]", TaskState::Queued), "[queued]");
    }

    #[test]
    fn unknown_values_name_the_valid_ones() {
        let e = "snapshot".parse::<TaskKind>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown task kind \"snapshot\"; valid: backup, restore, verify, prune, gc, commit-export, forget"
        );
        let e = serde_json::from_value::<SourceKind>(serde_json::json!("vm")).unwrap_err();
        assert!(e.to_string().contains("unknown variant `vm`"), "{e}");
    }

    #[test]
    fn scopes_nest() {
        assert!(TokenScope::Metrics.within(TokenScope::ReadOnly));
        assert!(TokenScope::ReadOnly.within(TokenScope::Full));
        assert!(!TokenScope::Full.within(TokenScope::ReadOnly));
    }
}

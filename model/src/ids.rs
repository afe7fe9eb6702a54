//! Typed ids: a [`SourceId`] cannot be passed where a [`PolicyId`] is
//! expected. Catalog rows are numbered by SQLite (`i64`); in JSON an id is
//! the bare number (`#[serde(transparent)]`), so the API and the stored
//! values are what they were with plain integers. Restore points are
//! named by their datastore snapshot id ([`RestorePointId`]).

use std::fmt;
use std::str::FromStr;

use arca_repo::id::SnapshotId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// A string that is not a valid id of the kind named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadId {
    pub what: &'static str,
    pub value: String,
}

impl fmt::Display for BadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a {} id", self.value, self.what)
    }
}

impl std::error::Error for BadId {}

macro_rules! catalog_id {
    ($(#[doc = $doc:literal])* $name:ident, $what:literal) => {
        $(#[doc = $doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        /// An integer (the catalog numbers rows from 1).
        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .minimum(Some(1))
                    .description(Some(concat!($($doc),*).trim()))
                    .into()
            }
        }

        impl ToSchema for $name {}

        impl $name {
            pub const fn new(id: i64) -> Self {
                Self(id)
            }
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = BadId;
            fn from_str(s: &str) -> Result<Self, BadId> {
                s.trim().parse().map(Self).map_err(|_| BadId {
                    what: $what,
                    value: s.to_string(),
                })
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                Self(id)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }
    };
}

catalog_id!(
    /// Id of a project (project 1, `default`, always exists).
    ProjectId,
    "project"
);
catalog_id!(
    /// Id of a user.
    UserId,
    "user"
);
catalog_id!(
    /// Id of a token (sign-in session, API token or node token).
    TokenId,
    "token"
);
catalog_id!(
    /// Id of a node.
    NodeId,
    "node"
);
catalog_id!(
    /// Id of a datastore in the catalog.
    DatastoreId,
    "datastore"
);
catalog_id!(
    /// Id of a source.
    SourceId,
    "source"
);
catalog_id!(
    /// Id of a policy.
    PolicyId,
    "policy"
);
catalog_id!(
    /// Id of a hypervisor (a libvirt host).
    HypervisorId,
    "hypervisor"
);
catalog_id!(
    /// Id of a task.
    TaskId,
    "task"
);
catalog_id!(
    /// Id of an export.
    ExportId,
    "export"
);
catalog_id!(
    /// Id of an audit log entry.
    AuditId,
    "audit"
);

/// A restore point: the datastore's snapshot id. In JSON and in the
/// catalog it is the 64 lower-case hex digits of the id. (The API also
/// takes unique prefixes of it in paths and `NewExport.restore_point`;
/// those are plain strings until resolved.)
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RestorePointId(pub SnapshotId);

impl RestorePointId {
    pub fn snapshot_id(self) -> SnapshotId {
        self.0
    }
    pub fn to_hex(self) -> String {
        self.0.to_hex()
    }
    /// The first 8 hex digits, for messages.
    pub fn short(self) -> String {
        self.0.short()
    }
}

impl fmt::Debug for RestorePointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RestorePointId({})", self.0.to_hex())
    }
}

impl fmt::Display for RestorePointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_hex())
    }
}

impl FromStr for RestorePointId {
    type Err = BadId;
    /// Exactly 64 hex digits (upper-case ones are taken, and printed back
    /// in lower case).
    fn from_str(s: &str) -> Result<Self, BadId> {
        let bad = || BadId {
            what: "restore point",
            value: s.to_string(),
        };
        if s.len() != 64 {
            return Err(bad());
        }
        SnapshotId::from_hex(s).map(Self).map_err(|_| bad())
    }
}

impl From<SnapshotId> for RestorePointId {
    fn from(id: SnapshotId) -> Self {
        Self(id)
    }
}

impl From<RestorePointId> for SnapshotId {
    fn from(id: RestorePointId) -> Self {
        id.0
    }
}

impl Serialize for RestorePointId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_hex())
    }
}

impl<'de> Deserialize<'de> for RestorePointId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl PartialSchema for RestorePointId {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[0-9a-f]{64}$"))
            .description(Some(
                "A restore point: the 64 hex digits of its datastore snapshot id",
            ))
            .into()
    }
}

impl ToSchema for RestorePointId {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_bare_numbers_in_json() {
        let id = SourceId(7);
        assert_eq!(serde_json::to_string(&id).unwrap(), "7");
        assert_eq!(serde_json::from_str::<SourceId>("7").unwrap(), id);
        assert_eq!(id.to_string(), "7");
        assert_eq!("7".parse::<SourceId>().unwrap(), id);
        let e = "x7".parse::<PolicyId>().unwrap_err();
        assert_eq!(e.to_string(), "\"x7\" is not a policy id");
    }

    #[test]
    fn restore_point_ids_are_64_hex_digits() {
        let hex = "ab".repeat(32);
        let id: RestorePointId = hex.parse().unwrap();
        assert_eq!(id.to_string(), hex);
        assert_eq!(serde_json::to_value(id).unwrap(), serde_json::json!(hex));
        let back: RestorePointId = serde_json::from_value(serde_json::json!(hex)).unwrap();
        assert_eq!(back, id);
        assert_eq!(
            "AB".repeat(32)
                .parse::<RestorePointId>()
                .unwrap()
                .to_string(),
            hex
        );
        for bad in ["", "ab", &"ab".repeat(33), &"zz".repeat(32)] {
            assert!(bad.parse::<RestorePointId>().is_err(), "{bad}");
        }
        let e = serde_json::from_value::<RestorePointId>(serde_json::json!("abc")).unwrap_err();
        assert!(e.to_string().contains("not a restore point id"), "{e}");
    }
}

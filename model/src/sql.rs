//! SQLite columns (the catalog's): an id is its INTEGER, a restore point
//! id its 64 hex digits, a kind or state its name, exactly the values
//! stored before these types existed, so the catalog binds and reads the
//! model's types directly and no migration is needed. A stored value that
//! is none of a type's values is a conversion error of its row.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::ids::*;
use crate::kinds::*;

macro_rules! integer_column {
    ($($t:ty),+) => {$(
        impl ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.0))
            }
        }

        impl FromSql for $t {
            fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
                i64::column_result(v).map(Self)
            }
        }
    )+};
}

macro_rules! text_column {
    ($($t:ty),+) => {$(
        impl ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $t {
            fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
                v.as_str()?
                    .parse()
                    .map_err(|e| FromSqlError::Other(Box::new(e)))
            }
        }
    )+};
}

integer_column!(
    ProjectId,
    UserId,
    TokenId,
    NodeId,
    DatastoreId,
    SourceId,
    PolicyId,
    TaskId,
    ExportId,
    AuditId,
    HypervisorId
);

text_column!(
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

impl ToSql for RestorePointId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.to_hex()))
    }
}

impl FromSql for RestorePointId {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        v.as_str()?
            .parse()
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    #[test]
    fn columns_hold_today_s_values() {
        let db = Connection::open_in_memory().unwrap();
        let rp: RestorePointId = "ab".repeat(32).parse().unwrap();
        let (id, kind, text): (i64, String, String) = db
            .query_row(
                "SELECT ?1, ?2, ?3",
                rusqlite::params![SourceId(7), TaskKind::CommitExport, rp],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((id, kind.as_str()), (7, "commit-export"));
        assert_eq!(text, "ab".repeat(32));
        let back: (PolicyId, Role, RestorePointId) = db
            .query_row("SELECT 3, 'restore-only', ?1", [&text], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(back, (PolicyId(3), Role::RestoreOnly, rp));
        let bad = db.query_row("SELECT 'snapshot'", [], |r| r.get::<_, TaskKind>(0));
        assert!(bad.unwrap_err().to_string().contains("unknown task kind"));
    }
}

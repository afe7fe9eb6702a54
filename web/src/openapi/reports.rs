//! The answers of the reports in the OpenAPI document: JSON, or CSV with
//! `format=csv`.

use serde_json::{json, Value};

use super::Route;

/// The 200 answer of a report whose JSON is `schema`.
pub(super) fn ok(schema: &str) -> Value {
    json!({
        "description": "The report: JSON, or with format=csv a CSV attachment (a header row, RFC 4180 quoting, text cells starting with =, +, -, @, tab or CR prefixed with ')",
        "headers": {
            "Content-Disposition": {"schema": {"type": "string"}, "description": "with format=csv: attachment; filename=\"arca-<report>-<from>-<to>.csv\""}
        },
        "content": {
            "application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}},
            "text/csv": {"schema": {"type": "string"}}
        }
    })
}

/// Whether a report's query names an object that may not exist (404).
pub(super) fn names_object(r: &Route) -> bool {
    r.path.starts_with("/api/v1/reports/")
        && r.query
            .iter()
            .any(|(n, _)| matches!(*n, "datastore" | "source"))
}

/// The schema of a query parameter: `{"type": t}`, or for the reports'
/// `format` and `kind` the values they take.
pub(super) fn param(r: &Route, name: &str, t: &str) -> Value {
    if !r.path.starts_with("/api/v1/reports/") {
        return json!({"type": t});
    }
    match name {
        "format" => json!({"type": "string", "enum": ["json", "csv"]}),
        "kind" => json!({"type": "string", "enum": arca_model::TaskKind::NAMES}),
        _ => json!({"type": t}),
    }
}

use std::collections::BTreeSet;

use super::*;

/// Every (method, path) the document had when its schemas were still
/// written by hand: generating them from the model types keeps each.
const BEFORE: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/api/v1/openapi.json"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/password"),
    ("get", "/api/v1/me"),
    ("get", "/api/v1/users"),
    ("post", "/api/v1/users"),
    ("get", "/api/v1/users/{id}"),
    ("delete", "/api/v1/users/{id}"),
    ("post", "/api/v1/users/{id}/password"),
    ("get", "/api/v1/tokens"),
    ("post", "/api/v1/tokens"),
    ("delete", "/api/v1/tokens/{id}"),
    ("get", "/api/v1/settings"),
    ("patch", "/api/v1/settings"),
    ("post", "/api/v1/keys/{name}/rotate"),
    ("get", "/api/v1/projects"),
    ("post", "/api/v1/projects"),
    ("get", "/api/v1/nodes"),
    ("post", "/api/v1/nodes"),
    ("patch", "/api/v1/nodes/{id}"),
    ("get", "/api/v1/datastores"),
    ("patch", "/api/v1/datastores/{id}"),
    ("post", "/api/v1/datastores/{id}/gc"),
    ("post", "/api/v1/datastores/{id}/verify"),
    ("get", "/api/v1/sources"),
    ("post", "/api/v1/sources"),
    ("get", "/api/v1/sources/{id}"),
    ("delete", "/api/v1/sources/{id}"),
    ("post", "/api/v1/sources/{id}/backup"),
    ("get", "/api/v1/hypervisors"),
    ("post", "/api/v1/hypervisors"),
    ("get", "/api/v1/hypervisors/{id}"),
    ("delete", "/api/v1/hypervisors/{id}"),
    ("post", "/api/v1/hypervisors/{id}/sync"),
    ("post", "/api/v1/restore-points/{id}/import"),
    ("get", "/api/v1/policies"),
    ("post", "/api/v1/policies"),
    ("get", "/api/v1/policies/{id}"),
    ("delete", "/api/v1/policies/{id}"),
    ("get", "/api/v1/tasks"),
    ("get", "/api/v1/tasks/{id}"),
    ("get", "/api/v1/tasks/{id}/logs"),
    ("post", "/api/v1/tasks/{id}/cancel"),
    ("get", "/api/v1/restore-points"),
    ("get", "/api/v1/restore-points/{id}"),
    ("get", "/api/v1/restore-points/{id}/tree"),
    ("post", "/api/v1/restore-points/{id}/restore"),
    ("get", "/api/v1/exports"),
    ("post", "/api/v1/exports"),
    ("get", "/api/v1/exports/{id}"),
    ("patch", "/api/v1/exports/{id}"),
    ("delete", "/api/v1/exports/{id}"),
    ("get", "/api/v1/audit"),
];

/// Routes added since (issue 13: change sources and policies, protect
/// restore points, find files across restore points).
const ADDED: &[(&str, &str)] = &[
    ("patch", "/api/v1/sources/{id}"),
    ("patch", "/api/v1/policies/{id}"),
    ("patch", "/api/v1/restore-points/{id}"),
    ("delete", "/api/v1/nodes/{id}"),
    ("patch", "/api/v1/users/{id}"),
    ("patch", "/api/v1/tokens/{id}"),
    // Delete restore points (issue 13).
    ("delete", "/api/v1/restore-points/{id}"),
    // Finding files across restore points.
    ("get", "/api/v1/restore-points/search"),
    // Retention preview.
    ("get", "/api/v1/policies/{id}/preview"),
    // Prune on demand.
    ("post", "/api/v1/policies/{id}/prune"),
    // S3 access keys and the server's status (issue 15).
    ("get", "/api/v1/s3-keys"),
    ("post", "/api/v1/s3-keys"),
    ("delete", "/api/v1/s3-keys/{id}"),
    ("get", "/api/v1/status"),
    // Downloads (issue 15).
    ("get", "/api/v1/restore-points/{id}/files"),
    // Reports and retrying tasks (issue 16).
    ("post", "/api/v1/tasks/{id}/retry"),
    ("get", "/api/v1/reports/protection"),
    ("get", "/api/v1/reports/storage"),
    ("get", "/api/v1/reports/tasks"),
    // Signing out of a cookie session (the web UI, issue 16).
    ("post", "/api/v1/auth/logout"),
];

#[test]
fn every_route_and_method_of_before_is_kept() {
    let doc = document();
    let mut now = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            now.insert((method.clone(), path.clone()));
        }
    }
    let before: BTreeSet<_> = BEFORE
        .iter()
        .chain(ADDED)
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        before.len(),
        BEFORE.len() + ADDED.len(),
        "a route is listed twice"
    );
    assert_eq!(now, before);
}

fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r);
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

/// Every `$ref` (in paths and in schemas) names a component schema,
/// and every schema the routes name exists.
#[test]
fn every_reference_resolves() {
    let doc = document();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 100, "{}", all.len());
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or(r);
        assert!(schemas.contains_key(name), "{r} is not a schema");
    }
    for r in ROUTES {
        for name in r.request.iter().chain(r.ok.1.iter()) {
            assert!(
                schemas.contains_key(*name),
                "{} {}: {name}",
                r.method,
                r.path
            );
        }
    }
}

/// The schemas are the model's: typed ids and enums, required fields,
/// the handlers' constraints, and doc comments as descriptions.
#[test]
fn schemas_come_from_the_model_types() {
    let doc = document();
    let s = &doc["components"]["schemas"];
    assert_eq!(
        s["TaskState"]["enum"],
        json!(["queued", "running", "succeeded", "failed", "cancelled"])
    );
    assert_eq!(
        s["Task"]["properties"]["state"]["$ref"],
        "#/components/schemas/TaskState"
    );
    assert_eq!(s["SourceId"]["type"], "integer");
    assert_eq!(s["RestorePointId"]["pattern"], "^[0-9a-f]{64}$");
    let required = s["NewSource"]["required"].as_array().unwrap();
    for f in ["name", "kind", "path"] {
        assert!(required.contains(&json!(f)), "{f}");
    }
    assert_eq!(s["NewSource"]["additionalProperties"], false);
    assert_eq!(
        s["NewProject"]["properties"]["name"]["pattern"],
        api::NAME_PATTERN
    );
    assert_eq!(s["NewPolicy"]["properties"]["match_tags"]["maxItems"], 64);
    assert!(s["RestorePoint"]["properties"]["time"]["description"]
        .as_str()
        .unwrap()
        .contains("seconds since the Unix epoch"));
    assert_eq!(s["Error"]["required"], json!(["error", "message"]));
}

/// Deleting a restore point answers its task; deleting a source with
/// restore_points=remove answers the forget tasks (202) or nothing (204).
#[test]
fn deletes_answer_their_tasks() {
    let doc = document();
    let rp = &doc["paths"]["/api/v1/restore-points/{id}"]["delete"]["responses"];
    assert_eq!(
        rp["202"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Task"
    );
    assert!(rp["409"].is_object());
    let src = &doc["paths"]["/api/v1/sources/{id}"]["delete"]["responses"];
    assert!(src["204"].is_object());
    assert_eq!(
        src["202"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Tasks"
    );
}

/// The `project` filter of restore points is documented, with its 404.
#[test]
fn restore_points_take_a_project_filter() {
    let doc = document();
    let op = &doc["paths"]["/api/v1/restore-points"]["get"];
    let params = op["parameters"].as_array().unwrap();
    assert!(params.iter().any(|p| p["name"] == "project"), "{op}");
    assert!(op["responses"]["404"].is_object(), "{op}");
    let preview = &doc["paths"]["/api/v1/policies/{id}/preview"]["get"];
    assert_eq!(
        preview["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/RetentionPreview"
    );
    let s = &doc["components"]["schemas"];
    assert!(s["Policy"]["properties"]["next_run"].is_object());
}

/// Downloads document their headers, ranges and conditional answers.
#[test]
fn downloads_document_headers_and_ranges() {
    let doc = document();
    let op = &doc["paths"]["/api/v1/restore-points/{id}/files"]["get"];
    let r = &op["responses"];
    for h in [
        "ETag",
        "Last-Modified",
        "Content-Disposition",
        "Accept-Ranges",
    ] {
        assert!(r["200"]["headers"][h].is_object(), "{h}: {op}");
    }
    assert!(r["206"]["headers"]["Content-Range"].is_object(), "{op}");
    assert!(r["416"]["headers"]["Content-Range"].is_object(), "{op}");
    for code in ["304", "400", "404", "409", "412"] {
        assert!(r[code].is_object(), "{code}: {op}");
    }
    let params = op["parameters"].as_array().unwrap();
    for name in ["id", "path", "format"] {
        assert!(params.iter().any(|p| p["name"] == name), "{name}");
    }
    assert_eq!(
        r["200"]["content"]["application/octet-stream"]["schema"]["format"],
        "binary"
    );
}

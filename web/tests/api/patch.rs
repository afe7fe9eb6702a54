//! A PATCH body is a JSON merge patch: `{}` changes nothing, on every
//! PATCH route of the OpenAPI document, and answers 200 with the resource
//! as it is, without an audit record. Unknown fields and wrong types stay
//! 422; a caller who may not change the resource still gets 403 (and
//! that is audited).

use arca_catalog::{ProjectId, Role, RoleBinding};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::bad_input::populate;
use super::{setup, token_for, T};

/// One PATCH route: the concrete path, where to read the resource (a GET
/// of it, or a list and the item's id), a field and a value of the wrong
/// type for it.
struct Case {
    route: &'static str,
    path: String,
    read: String,
    item: Option<Value>,
    field: &'static str,
    mistyped: Value,
}

/// The resource as a GET shows it now.
async fn read(t: &T, c: &Case) -> Value {
    let (s, v) = t.call(Method::GET, &c.read, Some(&t.admin), None).await;
    assert_eq!(s, StatusCode::OK, "GET {}: {v}", c.read);
    match &c.item {
        Some(id) => v
            .as_array()
            .unwrap()
            .iter()
            .find(|x| &x["id"] == id)
            .unwrap_or_else(|| panic!("{id} not in {v}"))
            .clone(),
        None => v,
    }
}

async fn audit(t: &T) -> Value {
    let (s, v) = t
        .call(
            Method::GET,
            "/api/v1/audit?limit=1000",
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

#[tokio::test]
async fn an_empty_patch_changes_nothing_on_every_patch_route() {
    let t = setup();
    let mine = populate(&t.state.catalog, 1, 'a');
    let a = t.admin.clone();
    let (_, tokens) = t.call(Method::GET, "/api/v1/tokens", Some(&a), None).await;
    let token = tokens[0]["id"].clone();
    let case = |route, path: String, read: String, item: Option<Value>, field, mistyped| Case {
        route,
        path,
        read,
        item,
        field,
        mistyped,
    };
    let rp = format!("/api/v1/restore-points/{}", mine.restore_point);
    let cases = vec![
        case(
            "/api/v1/sources/{id}",
            format!("/api/v1/sources/{}", mine.source),
            format!("/api/v1/sources/{}", mine.source),
            None,
            "tags",
            json!("blue"),
        ),
        case(
            "/api/v1/policies/{id}",
            format!("/api/v1/policies/{}", mine.policy),
            format!("/api/v1/policies/{}", mine.policy),
            None,
            "priority",
            json!("high"),
        ),
        case(
            "/api/v1/restore-points/{id}",
            rp.clone(),
            rp,
            None,
            "protected",
            json!("yes"),
        ),
        case(
            "/api/v1/exports/{id}",
            format!("/api/v1/exports/{}", mine.export),
            format!("/api/v1/exports/{}", mine.export),
            None,
            "ttl",
            json!(3600),
        ),
        case(
            "/api/v1/nodes/{id}",
            "/api/v1/nodes/1".into(),
            "/api/v1/nodes".into(),
            Some(json!(1)),
            "allow_block_devices",
            json!("no"),
        ),
        case(
            "/api/v1/users/{id}",
            "/api/v1/users/1".into(),
            "/api/v1/users/1".into(),
            None,
            "roles",
            json!("admin"),
        ),
        case(
            "/api/v1/tokens/{id}",
            format!("/api/v1/tokens/{token}"),
            "/api/v1/tokens".into(),
            Some(token.clone()),
            "name",
            json!(["a"]),
        ),
        case(
            "/api/v1/datastores/{id}",
            "/api/v1/datastores/1".into(),
            "/api/v1/datastores".into(),
            Some(json!(1)),
            "verify_max_age_days",
            json!("ten"),
        ),
        case(
            "/api/v1/settings",
            "/api/v1/settings".into(),
            "/api/v1/settings".into(),
            None,
            "token_max_lifetime_s",
            json!("long"),
        ),
    ];
    // Every PATCH route of the document is in the table.
    let mut documented: Vec<&str> = arca_web::openapi::ROUTES
        .iter()
        .filter(|r| r.method == "patch")
        .map(|r| r.path)
        .collect();
    let mut covered: Vec<&str> = cases.iter().map(|c| c.route).collect();
    documented.sort();
    covered.sort();
    assert_eq!(covered, documented);

    let mut wrong = Vec::new();
    for c in &cases {
        let before = read(&t, c).await;
        let log = audit(&t).await;
        let (s, v) = t
            .call(Method::PATCH, &c.path, Some(&a), Some(json!({})))
            .await;
        // The answer is the resource (the fields it has, as a GET shows
        // them), nothing changed and nothing was audited.
        let same = v
            .as_object()
            .is_some_and(|o| !o.is_empty() && o.iter().all(|(k, x)| before.get(k) == Some(x)));
        if s != StatusCode::OK || !same {
            wrong.push(format!("PATCH {} {{}}: {s} {v}, not {before}", c.path));
        }
        let after = read(&t, c).await;
        if after != before {
            wrong.push(format!("PATCH {} {{}} changed {before} to {after}", c.path));
        }
        if audit(&t).await != log {
            wrong.push(format!("PATCH {} {{}} wrote an audit record", c.path));
        }
        // Unknown fields and wrong types are still 422, and change nothing.
        for body in [json!({"frobnicate": 1}), json!({ c.field: c.mistyped })] {
            let (s, v) = t
                .call(Method::PATCH, &c.path, Some(&a), Some(body.clone()))
                .await;
            if s != StatusCode::UNPROCESSABLE_ENTITY {
                wrong.push(format!("PATCH {} {body}: {s} {v}, not 422", c.path));
            }
        }
        if read(&t, c).await != before {
            wrong.push(format!("a refused PATCH {} changed it", c.path));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `{}` from a caller who may not change the resource is still refused
/// (403 on an admin-only one, 404 on another project's), and the refusal
/// is audited as any.
#[tokio::test]
async fn an_empty_patch_is_still_checked_for_rights() {
    let t = setup();
    let c = &t.state.catalog;
    populate(c, 1, 'a');
    let theirs = populate(c, 2, 'b');
    let opr = token_for(
        c,
        "opr",
        &[RoleBinding {
            role: Role::Operator,
            project_id: Some(ProjectId(1)),
        }],
    );
    let log = audit(&t).await.as_array().unwrap().len();
    let (s, v) = t
        .call(
            Method::PATCH,
            "/api/v1/nodes/1",
            Some(&opr),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = t
        .call(
            Method::PATCH,
            &format!("/api/v1/sources/{}", theirs.source),
            Some(&opr),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let after = audit(&t).await;
    assert_eq!(after.as_array().unwrap().len(), log + 2, "{after}");
    assert_eq!(after[0]["actor"], "opr");
    assert_eq!(after[1]["result"], "denied");
}

//! The web UI's sessions: sign-in with `cookie: true` puts the secret in
//! an HttpOnly, SameSite=Strict cookie (not in the answer); requests signed
//! in by the cookie that change something need the session's X-Arca-CSRF
//! value; sign-out revokes the session and removes the cookie; the UI and
//! its security headers are served.

use arca_web::app;
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::{setup, T};

async fn send(
    t: &T,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, HeaderMap, Value) {
    let mut req = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = app(t.state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let h = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 4 << 20)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, h, v)
}

#[tokio::test]
async fn cookie_sessions_need_the_csrf_value_to_change_anything() {
    let t = setup();
    let (s, h, v) = send(
        &t,
        Method::POST,
        "/api/v1/auth/login",
        &[],
        Some(json!({"username": "admin", "password": "password123", "cookie": true})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["token"], "", "the secret stays out of the answer: {v}");
    let csrf = v["csrf"].as_str().unwrap().to_string();
    assert_eq!(csrf.len(), 32);
    let set = h.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP here: {set}");
    let cookie = set.split(';').next().unwrap().to_string();
    assert!(cookie.starts_with("arca_session=arca_"), "{cookie}");

    // Reading with the cookie alone works, and tells the CSRF value.
    let (s, _, me) = send(&t, Method::GET, "/api/v1/me", &[("cookie", &cookie)], None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["user"]["name"], "admin");
    assert_eq!(me["csrf"], csrf.as_str());
    // Other cookies beside it do not matter.
    let both = format!("theme=dark; {cookie}; x=1");
    let (s, _, _) = send(&t, Method::GET, "/api/v1/me", &[("cookie", &both)], None).await;
    assert_eq!(s, StatusCode::OK);

    // A change without the CSRF value, or with a wrong one, is refused.
    let body = json!({"name": "p-from-ui"});
    for extra in [None, Some("0".repeat(32))] {
        let mut hs = vec![("cookie", cookie.as_str())];
        if let Some(x) = &extra {
            hs.push(("x-arca-csrf", x.as_str()));
        }
        let (s, _, v) = send(
            &t,
            Method::POST,
            "/api/v1/projects",
            &hs,
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert!(
            v["message"].as_str().unwrap().contains("X-Arca-CSRF"),
            "{v}"
        );
    }
    let (s, _, v) = send(
        &t,
        Method::POST,
        "/api/v1/projects",
        &[("cookie", &cookie), ("x-arca-csrf", &csrf)],
        Some(body),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Bearer tokens need no CSRF value (browsers never send them alone).
    let (s, _) = t
        .call(
            Method::POST,
            "/api/v1/projects",
            Some(&t.admin),
            Some(json!({"name": "p2"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);

    // Sign-out: the cookie is removed and the session no longer works.
    let (s, h, _) = send(
        &t,
        Method::POST,
        "/api/v1/auth/logout",
        &[("cookie", &cookie), ("x-arca-csrf", &csrf)],
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let gone = h.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    assert!(
        gone.starts_with("arca_session=;") && gone.contains("Max-Age=0"),
        "{gone}"
    );
    let (s, _, v) = send(&t, Method::GET, "/api/v1/me", &[("cookie", &cookie)], None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    // The sign-out is in the audit log.
    let (_, log) = t
        .call(
            Method::GET,
            "/api/v1/audit?limit=1000",
            Some(&t.admin),
            None,
        )
        .await;
    assert!(log.to_string().contains("auth.logout"), "{log}");
}

#[tokio::test]
async fn the_ui_is_served_with_strict_headers() {
    let t = setup();
    let (s, h, _) = send(&t, Method::GET, "/", &[], None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let etag = h[header::ETAG].to_str().unwrap().to_string();
    let (s, _, _) = send(&t, Method::GET, "/", &[("if-none-match", &etag)], None).await;
    assert_eq!(s, StatusCode::NOT_MODIFIED);
    let (s, h, _) = send(
        &t,
        Method::GET,
        "/ui/app.js",
        &[("accept-encoding", "gzip")],
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h[header::CONTENT_ENCODING], "gzip");
    // The API's answers carry the same headers; unknown files are 404.
    let (s, h, _) = send(&t, Method::GET, "/api/v1/me", &[], None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(h.contains_key(header::CONTENT_SECURITY_POLICY));
    for p in [
        "/ui/nope.js",
        "/ui/../Cargo.toml",
        "/ui/%2e%2e/Cargo.toml",
        "/index.html",
    ] {
        let (s, _, v) = send(&t, Method::GET, p, &[], None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{p}: {v}");
    }
}

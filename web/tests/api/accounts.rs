//! Password changes, admin resets, sign-in rate limits, and Argon2 off the
//! async runtime.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arca_catalog::{ProjectId, Role, RoleBinding};
use arca_web::signin_limit::Limits;
use arca_web::{app, AppState};
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::{setup, token_for, T};

fn operator() -> Vec<RoleBinding> {
    vec![RoleBinding {
        role: Role::Operator,
        project_id: Some(ProjectId(1)),
    }]
}

/// Sign in; the status, headers and body.
async fn login_raw(state: &AppState, user: &str, pw: &str) -> (StatusCode, HeaderMap, Value) {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/auth/login")
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"username": user, "password": pw}).to_string(),
        ))
        .unwrap();
    let resp = app(state.clone()).oneshot(req).await.unwrap();
    let (s, h) = (resp.status(), resp.headers().clone());
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (s, h, serde_json::from_slice(&bytes).unwrap())
}

async fn session(t: &T, user: &str, pw: &str) -> String {
    let (s, _, v) = login_raw(&t.state, user, pw).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["token"].as_str().unwrap().to_string()
}

async fn audit_actions(t: &T) -> Vec<(String, String)> {
    let (_, v) = t
        .call(Method::GET, "/api/v1/audit", Some(&t.admin), None)
        .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn changing_your_password_signs_out_your_other_sessions() {
    let t = setup();
    let api = token_for(&t.state.catalog, "long-user-name", &operator());
    let s1 = session(&t, "long-user-name", "password123").await;
    let s2 = session(&t, "long-user-name", "password123").await;
    let change = |cur: &str, new: &str| json!({"current_password": cur, "new_password": new});
    let p = "/api/v1/auth/password";

    // Wrong current password: 403, nothing changes.
    let (s, v) = t
        .call(
            Method::POST,
            p,
            Some(&s1),
            Some(change("nope", "a-new-password")),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("current password is wrong"));
    // The rule: at least 10 characters, not the user name.
    for (new, says) in [("short", "10"), ("Long-User-Name", "user name")] {
        let (s, v) = t
            .call(Method::POST, p, Some(&s1), Some(change("password123", new)))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        let m = v["message"].as_str().unwrap();
        assert!(
            m.contains(says) && m.contains("10 to 1024 characters"),
            "{m}"
        );
    }
    // Missing fields: a clear 4xx.
    let (s, _) = t
        .call(
            Method::POST,
            p,
            Some(&s1),
            Some(json!({"new_password": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Not signed in: 401.
    let (s, _) = t
        .call(
            Method::POST,
            p,
            None,
            Some(change("password123", "a-new-password")),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (s, v) = t
        .call(
            Method::POST,
            p,
            Some(&s1),
            Some(change("password123", "a-new-password")),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["signed_out"], json!({"sessions": 1, "api_tokens": 0}));
    // This session and the API token stay; the other session is gone.
    for (tok, want) in [
        (&s1, StatusCode::OK),
        (&api, StatusCode::OK),
        (&s2, StatusCode::UNAUTHORIZED),
    ] {
        let (s, v) = t.call(Method::GET, "/api/v1/me", Some(tok), None).await;
        assert_eq!(s, want, "{v}");
    }
    assert_eq!(
        login_raw(&t.state, "long-user-name", "password123").await.0,
        StatusCode::UNAUTHORIZED
    );
    let s3 = session(&t, "long-user-name", "a-new-password").await;

    // With revoke_api_tokens, the API tokens go too.
    let (s, v) = t
        .call(
            Method::POST,
            p,
            Some(&s3),
            Some(json!({"current_password": "a-new-password", "new_password": "another-password", "revoke_api_tokens": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["signed_out"], json!({"sessions": 1, "api_tokens": 1}));
    assert_eq!(
        t.call(Method::GET, "/api/v1/me", Some(&api), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.call(Method::GET, "/api/v1/me", Some(&s3), None).await.0,
        StatusCode::OK
    );
    let actions = audit_actions(&t).await;
    for want in [
        ("user.password", "ok"),
        ("user.password", "denied"),
        ("user.password", "failed"),
    ] {
        assert!(
            actions.contains(&(want.0.into(), want.1.into())),
            "{want:?} in {actions:?}"
        );
    }
}

#[tokio::test]
async fn an_admin_resets_a_password() {
    let t = setup();
    let c = &t.state.catalog;
    let op = token_for(c, "operator1", &operator());
    let ann_api = token_for(c, "ann", &operator());
    let ann = c.user_by_name("ann").unwrap().unwrap().id;
    let ann_session = session(&t, "ann", "password123").await;
    let path = format!("/api/v1/users/{ann}/password");
    let body = json!({"new_password": "reset-by-admin"});

    // Not an admin: 403, even for yourself; unknown user: 404.
    let (s, v) = t
        .call(Method::POST, &path, Some(&op), Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _) = t
        .call(Method::POST, &path, Some(&ann_api), Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/users/999/password",
            Some(&t.admin),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = t
        .call(
            Method::POST,
            &path,
            Some(&t.admin),
            Some(json!({"new_password": "ann"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    let (s, v) = t
        .call(Method::POST, &path, Some(&t.admin), Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["signed_out"], json!({"sessions": 1, "api_tokens": 0}));
    assert!(v.get("password").is_none());
    assert_eq!(
        t.call(Method::GET, "/api/v1/me", Some(&ann_session), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    session(&t, "ann", "reset-by-admin").await;

    // Without a password, one is generated and shown once.
    let (s, v) = t
        .call(Method::POST, &path, Some(&t.admin), Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let generated = v["password"].as_str().unwrap();
    assert_eq!(generated.len(), 20);
    session(&t, "ann", generated).await;
    let actions = audit_actions(&t).await;
    for want in [
        ("user.password_reset", "ok"),
        ("user.password_reset", "denied"),
        ("user.password_reset", "failed"),
    ] {
        assert!(
            actions.contains(&(want.0.into(), want.1.into())),
            "{want:?} in {actions:?}"
        );
    }
    // New users follow the same rule.
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&t.admin),
            Some(json!({"name": "bob", "password": "12345678"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}

/// Captures what the server logs, as text.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn lines(&self, with: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains(with))
            .map(String::from)
            .collect()
    }
}

#[tokio::test]
async fn sign_in_is_rate_limited_per_user() {
    // The process-wide subscriber (a scoped one misses events while other
    // tests run); only this test's user names are looked at.
    let logs = Logs::default();
    let w = logs.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || w.clone())
            .finish(),
    )
    .unwrap();
    let t = setup();
    let c = &t.state.catalog;
    token_for(c, "rl-ann", &operator());
    token_for(c, "rl-bob", &operator());
    for _ in 0..5 {
        let (s, _, v) = login_raw(&t.state, "rl-ann", "wrong-password").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    }
    // Limited now, even with the right password.
    let (s, h, v) = login_raw(&t.state, "rl-ann", "password123").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"], "too_many_requests");
    let m = v["message"].as_str().unwrap();
    assert!(
        m.contains("\"rl-ann\"") && m.contains("try again in"),
        "{m}"
    );
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    // Another user from the same address is not limited.
    assert_eq!(
        login_raw(&t.state, "rl-bob", "password123").await.0,
        StatusCode::OK
    );
    // A success starts the user's count over.
    for _ in 0..4 {
        login_raw(&t.state, "rl-bob", "wrong-password").await;
    }
    assert_eq!(
        login_raw(&t.state, "rl-bob", "password123").await.0,
        StatusCode::OK
    );
    for _ in 0..4 {
        assert_eq!(
            login_raw(&t.state, "rl-bob", "wrong-password").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_raw(&t.state, "rl-bob", "password123").await.0,
        StatusCode::OK
    );
    // Each refused sign-in left a structured record.
    let of = |user: &str, reason: &str| {
        logs.lines(&format!("user=\"{user}\""))
            .into_iter()
            .filter(|l| l.contains(&format!("reason=\"{reason}\"")) && l.contains("arca::signin"))
            .collect::<Vec<_>>()
    };
    assert_eq!(of("rl-ann", "wrong_password").len(), 5);
    assert_eq!(of("rl-bob", "wrong_password").len(), 8);
    let limited = of("rl-ann", "rate_limited");
    assert_eq!(limited.len(), 1, "{limited:?}");
    assert!(limited[0].contains("retry_after_s="), "{}", limited[0]);
    // An admin's reset ends a lockout.
    for _ in 0..5 {
        login_raw(&t.state, "rl-bob", "wrong-password").await;
    }
    assert_eq!(
        login_raw(&t.state, "rl-bob", "password123").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let bob = c.user_by_name("rl-bob").unwrap().unwrap().id;
    let (s, v) = t
        .call(
            Method::POST,
            &format!("/api/v1/users/{bob}/password"),
            Some(&t.admin),
            Some(json!({"new_password": "fresh-password"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        login_raw(&t.state, "rl-bob", "fresh-password").await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn sign_in_is_rate_limited_per_address_and_password_checks_count() {
    let mut t = setup();
    t.state = t.state.clone().with_signin_limits(Limits {
        per_user: 2,
        per_address: 3,
        ..Limits::default()
    });
    let c = t.state.catalog.clone();
    token_for(&c, "bob", &operator());
    let s = session(&t, "bob", "password123").await;
    // A wrong current password counts like a failed sign-in.
    let p = "/api/v1/auth/password";
    let body = |cur: &str| json!({"current_password": cur, "new_password": "a-new-password"});
    for _ in 0..2 {
        let (st, v) = t.call(Method::POST, p, Some(&s), Some(body("nope"))).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    }
    let (st, v) = t
        .call(Method::POST, p, Some(&s), Some(body("password123")))
        .await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(
        login_raw(&t.state, "bob", "password123").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The address has 2 failures; a third (for any name) closes it.
    assert_eq!(
        login_raw(&t.state, "ghost", "x").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (st, h, v) = login_raw(&t.state, "admin", "password123").await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert!(v["message"].as_str().unwrap().contains("address"), "{v}");
    assert!(h.contains_key("retry-after"));
}

/// Argon2 runs on the blocking pool: while a sign-in, a password change, a
/// user creation and a reset run, other tasks on the same single-threaded
/// runtime keep running.
#[tokio::test(flavor = "current_thread")]
async fn argon2_never_runs_on_the_async_runtime() {
    let t = setup();
    let ticks = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (ticks, stop) = (ticks.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                ticks.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        })
    };
    let during = |before: u64| ticks.load(Ordering::Relaxed) - before;
    let n = ticks.load(Ordering::Relaxed);
    let s = session(&t, "admin", "password123").await;
    let mut seen = vec![("sign-in", during(n))];
    let n = ticks.load(Ordering::Relaxed);
    let (st, v) = t
        .call(
            Method::POST,
            "/api/v1/auth/password",
            Some(&s),
            Some(json!({"current_password": "password123", "new_password": "another-password"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    seen.push(("password change", during(n)));
    let n = ticks.load(Ordering::Relaxed);
    let (st, v) = t
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&s),
            Some(json!({"name": "carol", "password": "carol-password"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    seen.push(("user creation", during(n)));
    let n = ticks.load(Ordering::Relaxed);
    let id = v["user"]["id"].as_i64().unwrap();
    let (st, v) = t
        .call(
            Method::POST,
            &format!("/api/v1/users/{id}/password"),
            Some(&s),
            Some(json!({"new_password": "carol-password-2"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    seen.push(("password reset", during(n)));
    stop.store(true, Ordering::Relaxed);
    ticker.await.unwrap();
    // Inline, the ticker would run only at the handful of points where a
    // request yields; with Argon2 on the blocking pool it spins meanwhile.
    for (what, n) in seen {
        assert!(n >= 100, "{what}: other tasks ran only {n} times meanwhile");
    }
}

//! The token check's cache (web/src/token_cache.rs) on a catalog file,
//! where reads go through the read-only connections: a token checked
//! once is not read again until the catalog changes, and every change made
//! through the catalog (a revocation, a disabled user) is seen by the very
//! next request.

use super::*;

fn file_setup(dir: &std::path::Path) -> (AppState, String, std::path::PathBuf) {
    let path = dir.join("catalog.db");
    let c = Arc::new(Catalog::open(&path).unwrap());
    assert!(c.read_connections() > 0, "the test needs the reader pool");
    let secret = token_for(
        &c,
        "admin",
        &[RoleBinding {
            role: Role::Admin,
            project_id: None,
        }],
    );
    // Recently used: the request does not record the use (a write).
    c.touch_token(c.tokens_of_user(arca_catalog::UserId(1)).unwrap()[0].id)
        .unwrap();
    (AppState::new(c), secret, path)
}

async fn me(state: &AppState, token: &str) -> StatusCode {
    let req = Request::builder()
        .uri("/api/v1/me")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    app(state.clone()).oneshot(req).await.unwrap().status()
}

#[tokio::test]
async fn a_checked_token_is_not_read_again_until_the_catalog_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (state, secret, path) = file_setup(dir.path());
    assert_eq!(me(&state, &secret).await, StatusCode::OK);
    // Behind the catalog's back (another connection, as another process
    // would): the token is gone, but nothing was written through the
    // catalog, so the checked answer stands.
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute("UPDATE tokens SET revoked_at = 1", [])
        .unwrap();
    assert_eq!(me(&state, &secret).await, StatusCode::OK);
    // Any write through the catalog: the next request reads the token
    // again and finds it revoked.
    state.catalog.add_project("p").unwrap();
    assert_eq!(me(&state, &secret).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revocation_and_disabling_are_seen_by_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let (state, secret, _) = file_setup(dir.path());
    let token = state
        .catalog
        .tokens_of_user(arca_catalog::UserId(1))
        .unwrap()[0]
        .clone();
    assert_eq!(me(&state, &secret).await, StatusCode::OK);
    assert_eq!(me(&state, &secret).await, StatusCode::OK);
    state.catalog.revoke_token(token.id).unwrap();
    assert_eq!(me(&state, &secret).await, StatusCode::UNAUTHORIZED);

    let (secret2, hash) = auth::new_secret();
    let t2 = state
        .catalog
        .add_token(
            Some(arca_catalog::UserId(1)),
            None,
            "t2",
            arca_catalog::TokenKind::Api,
            &hash,
            None,
        )
        .unwrap();
    state.catalog.touch_token(t2.id).unwrap();
    assert_eq!(me(&state, &secret2).await, StatusCode::OK);
    assert_eq!(me(&state, &secret2).await, StatusCode::OK);
    state
        .catalog
        .set_user_disabled(arca_catalog::UserId(1), true)
        .unwrap();
    assert_eq!(me(&state, &secret2).await, StatusCode::UNAUTHORIZED);
}

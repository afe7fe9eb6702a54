//! The Arca REST API under `/api/v1`, plus `/healthz` (open) and
//! `/metrics` (any valid token whose scope allows it: full, read-only or
//! metrics).
//!
//! `app(state)` builds the whole router, so tests drive it in process with
//! `tower::ServiceExt::oneshot`. Every mutating call is written to the
//! audit log with who, what, from where and the result. Errors are JSON
//! (see [`error`]); bad input is always a 4xx.
#![recursion_limit = "256"]

mod accounts;
pub mod auth;
pub mod error;
pub mod exports;
mod maintenance;
mod nodes;
pub mod openapi;
mod routes;
pub mod signin_limit;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;

use arca_catalog::{AsyncCatalog, Catalog};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

pub use error::{ApiError, ApiResult};

/// Largest accepted request body.
pub const MAX_BODY: usize = 1 << 20;

/// What every handler gets. Handlers run on the async workers and never
/// call the (synchronous) catalog there: they go through [`AppState::db`]
/// or [`AppState::call`], which run on tokio's blocking pool.
#[derive(Clone)]
pub struct AppState {
    /// The catalog itself, for code already off the runtime (inside
    /// [`AppState::call`]).
    pub catalog: Arc<Catalog>,
    /// The catalog for async code.
    pub db: AsyncCatalog,
    /// Wakes the scheduler after changes to sources and policies.
    pub changed: Arc<tokio::sync::Notify>,
    /// Failed sign-ins per user name and address.
    pub signin: Arc<signin_limit::SigninLimiter>,
}

impl AppState {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        AppState {
            db: AsyncCatalog::new(catalog.clone()),
            catalog,
            changed: Arc::new(tokio::sync::Notify::new()),
            signin: Arc::default(),
        }
    }

    /// Run `f` with the state on tokio's blocking pool: a handler's
    /// catalog reads and writes, and the control-plane logic that makes
    /// them, in one go.
    pub async fn call<T, F>(&self, f: F) -> ApiResult<T>
    where
        F: FnOnce(&AppState) -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let s = self.clone();
        arca_catalog::blocking(move || f(&s)).await
    }

    /// Other sign-in limits than the defaults.
    pub fn with_signin_limits(mut self, l: signin_limit::Limits) -> Self {
        self.signin = Arc::new(signin_limit::SigninLimiter::new(l));
        self
    }
}

/// The caller's address, for the audit log ("" in in-process tests).
pub(crate) fn remote(req_ext: &axum::http::Extensions) -> String {
    req_ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default()
}

pub fn app(state: AppState) -> Router {
    use routes::*;
    let api = Router::new()
        .route("/auth/login", post(accounts::login))
        .route("/auth/password", post(accounts::change_password))
        .route("/me", get(me))
        .route("/users", get(list_users).post(add_user))
        .route("/users/{id}", get(get_user).delete(delete_user))
        .route("/users/{id}/password", post(accounts::reset_password))
        .route("/tokens", get(tokens::list_tokens).post(tokens::add_token))
        .route("/tokens/{id}", axum::routing::delete(tokens::revoke_token))
        .route(
            "/settings",
            get(tokens::get_settings).patch(tokens::update_settings),
        )
        .route("/nodes/{id}", axum::routing::patch(nodes::update_node))
        .route("/projects", get(list_projects).post(add_project))
        .route("/nodes", get(list_nodes).post(add_node))
        .route("/datastores", get(list_datastores))
        .route(
            "/datastores/{id}",
            axum::routing::patch(maintenance::update_datastore),
        )
        .route("/datastores/{id}/gc", post(maintenance::gc_now))
        .route("/datastores/{id}/verify", post(maintenance::verify_now))
        .route("/sources", get(list_sources).post(add_source))
        .route("/sources/{id}", get(get_source).delete(delete_source))
        .route("/sources/{id}/backup", post(backup_now))
        .route("/policies", get(list_policies).post(add_policy))
        .route("/policies/{id}", get(get_policy).delete(delete_policy))
        .route("/tasks", get(list_tasks))
        .route("/tasks/{id}", get(get_task))
        .route("/tasks/{id}/logs", get(task_logs))
        .route("/tasks/{id}/cancel", post(cancel_task))
        .route("/restore-points", get(list_restore_points))
        .route("/restore-points/{id}", get(get_restore_point))
        .route("/restore-points/{id}/restore", post(restore))
        .route("/exports", get(list_exports).post(add_export))
        .route(
            "/exports/{id}",
            get(get_export).delete(stop_export).patch(extend_export),
        )
        .route("/audit", get(audit_log))
        .route("/openapi.json", get(openapi_json));
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(request_log))
        .with_state(state)
}

/// Who made a request, filled by the auth extractors once the token is
/// checked and read by [`request_log`] after the handler ran.
#[derive(Clone, Default)]
pub(crate) struct RequestUser(Arc<std::sync::Mutex<Option<String>>>);

impl RequestUser {
    pub(crate) fn set(ext: &axum::http::Extensions, name: &str) {
        if let Some(u) = ext.get::<RequestUser>() {
            if let Ok(mut g) = u.0.lock() {
                *g = Some(name.to_string());
            }
        }
    }

    fn get(&self) -> String {
        self.0
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .unwrap_or_default()
    }
}

/// One log record per request: method, matched route (not the raw path,
/// so ids and query strings stay out), status, duration and the signed-in
/// user ("" when none). 5xx answers are errors, the rest info.
async fn request_log(mut req: Request, next: axum::middleware::Next) -> axum::response::Response {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "(unmatched)".to_string());
    let remote = remote(req.extensions());
    let user = RequestUser::default();
    req.extensions_mut().insert(user.clone());
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let user = user.get();
    if status >= 500 {
        tracing::error!(
            target: "arca::http",
            method = %method,
            route,
            status,
            duration_ms,
            user,
            remote,
            "request"
        );
    } else {
        tracing::info!(
            target: "arca::http",
            method = %method,
            route,
            status,
            duration_ms,
            user,
            remote,
            "request"
        );
    }
    resp
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {}", req.uri().path()))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}

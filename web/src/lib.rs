//! The Arca REST API under `/api/v1`, plus `/healthz` (open) and
//! `/metrics` (any valid token whose scope allows it: full, read-only or
//! metrics).
//!
//! `app(state)` builds the whole router, so tests drive it in process with
//! `tower::ServiceExt::oneshot`. Every mutating call is written to the
//! audit log with who, what, from where and the result. Errors are JSON
//! (see [`error`]); bad input is always a 4xx.
#![recursion_limit = "256"]

pub mod auth;
pub mod browse;
pub mod convert;
mod csv;
pub mod error;
pub mod inventory;
mod json_object;
pub mod openapi;
mod routes;
pub mod s3_secrets;
pub mod signin_limit;
pub mod token_cache;
pub mod ui;

pub use routes::download::fuzz_headers;
pub use routes::{exports, tokens};

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
    /// Tokens checked since the catalog last changed.
    pub tokens: Arc<token_cache::TokenCache>,
    /// Lists restore points' trees and searches them (None: browsing is
    /// not available, and the tree and search routes answer 409).
    pub browse: Option<Arc<dyn browse::Browse>>,
    /// Seals the secrets of new S3 keys (None: this server has no S3
    /// gateway, and `POST /s3-keys` answers 409).
    pub s3_secrets: Option<Arc<s3_secrets::SecretBox>>,
    /// The S3 gateway's address, for `GET /status` (None: off).
    pub s3_endpoint: Option<String>,
    /// Mark session cookies `Secure` (the server speaks TLS).
    pub secure_cookies: bool,
    /// Seals hypervisors' SSH keys (None: `POST /hypervisors` answers 409).
    pub credentials: Option<Arc<s3_secrets::SecretBox>>,
    /// Lists hypervisors' domains (None: syncs answer 409).
    pub inventory: Option<Arc<dyn inventory::Inventory>>,
}

impl AppState {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        AppState {
            db: AsyncCatalog::new(catalog.clone()),
            catalog,
            changed: Arc::new(tokio::sync::Notify::new()),
            signin: Arc::default(),
            tokens: Arc::default(),
            browse: None,
            s3_secrets: None,
            s3_endpoint: None,
            secure_cookies: false,
            credentials: None,
            inventory: None,
        }
    }

    /// Keep hypervisors' credentials sealed with `b`, and list their
    /// domains with `inv`.
    pub fn with_hypervisors(
        mut self,
        b: Arc<s3_secrets::SecretBox>,
        inv: Arc<dyn inventory::Inventory>,
    ) -> Self {
        self.credentials = Some(b);
        self.inventory = Some(inv);
        self
    }

    /// Serve S3 keys sealed with `b`, for the gateway at `endpoint`.
    pub fn with_s3(mut self, b: Arc<s3_secrets::SecretBox>, endpoint: Option<String>) -> Self {
        self.s3_secrets = Some(b);
        self.s3_endpoint = endpoint;
        self
    }

    /// Browse restore points with `b`.
    pub fn with_browse(mut self, b: Arc<dyn browse::Browse>) -> Self {
        self.browse = Some(b);
        self
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
    use routes::{
        accounts, audit, datastores, download, exports, healthz, hypervisors, keys, me, metrics,
        nodes, openapi_json, policies, projects, reports, restore_points, s3_keys, search, sources,
        status, tasks, tokens, users,
    };
    let api = Router::new()
        .route("/auth/login", post(accounts::login))
        .route("/auth/logout", post(accounts::logout))
        .route("/auth/password", post(accounts::change_password))
        .route("/me", get(me))
        .route("/users", get(users::list_users).post(users::add_user))
        .route(
            "/users/{id}",
            get(users::get_user)
                .patch(users::update_user)
                .delete(users::delete_user),
        )
        .route("/users/{id}/password", post(accounts::reset_password))
        .route("/tokens", get(tokens::list_tokens).post(tokens::add_token))
        .route(
            "/s3-keys",
            get(s3_keys::list_s3_keys).post(s3_keys::add_s3_key),
        )
        .route(
            "/s3-keys/{id}",
            axum::routing::delete(s3_keys::revoke_s3_key),
        )
        .route("/status", get(status))
        .route(
            "/tokens/{id}",
            axum::routing::delete(tokens::revoke_token).patch(tokens::update_token),
        )
        .route(
            "/settings",
            get(tokens::get_settings).patch(tokens::update_settings),
        )
        .route("/keys/{name}/rotate", post(keys::rotate_key))
        .route(
            "/nodes/{id}",
            axum::routing::patch(nodes::update_node).delete(nodes::delete_node),
        )
        .route(
            "/projects",
            get(projects::list_projects).post(projects::add_project),
        )
        .route("/nodes", get(nodes::list_nodes).post(nodes::add_node))
        .route("/datastores", get(datastores::list_datastores))
        .route(
            "/datastores/{id}",
            axum::routing::patch(datastores::update_datastore),
        )
        .route("/datastores/{id}/gc", post(datastores::gc_now))
        .route("/datastores/{id}/verify", post(datastores::verify_now))
        .route(
            "/sources",
            get(sources::list_sources).post(sources::add_source),
        )
        .route(
            "/sources/{id}",
            get(sources::get_source)
                .patch(sources::update_source)
                .delete(sources::delete_source),
        )
        .route("/sources/{id}/backup", post(sources::backup_now))
        .route(
            "/hypervisors",
            get(hypervisors::list_hypervisors).post(hypervisors::add_hypervisor),
        )
        .route(
            "/hypervisors/{id}",
            get(hypervisors::get_hypervisor).delete(hypervisors::delete_hypervisor),
        )
        .route("/hypervisors/{id}/sync", post(hypervisors::sync_hypervisor))
        .route(
            "/policies",
            get(policies::list_policies).post(policies::add_policy),
        )
        .route(
            "/policies/{id}",
            get(policies::get_policy)
                .patch(policies::update_policy)
                .delete(policies::delete_policy),
        )
        .route("/policies/{id}/preview", get(policies::preview_policy))
        .route("/policies/{id}/prune", post(policies::prune_policy))
        .route("/tasks", get(tasks::list_tasks))
        .route("/tasks/{id}", get(tasks::get_task))
        .route("/tasks/{id}/logs", get(tasks::task_logs))
        .route("/tasks/{id}/cancel", post(tasks::cancel_task))
        .route("/tasks/{id}/retry", post(tasks::retry_task))
        .route("/reports/protection", get(reports::protection))
        .route("/reports/storage", get(reports::storage))
        .route("/reports/tasks", get(reports::tasks))
        .route("/restore-points", get(restore_points::list_restore_points))
        .route("/restore-points/search", get(search::search))
        .route(
            "/restore-points/{id}",
            get(restore_points::get_restore_point)
                .patch(restore_points::update_restore_point)
                .delete(restore_points::delete_restore_point),
        )
        .route(
            "/restore-points/{id}/restore",
            post(restore_points::restore),
        )
        .route("/restore-points/{id}/import", post(restore_points::import))
        .route("/restore-points/{id}/tree", get(restore_points::tree))
        .route("/restore-points/{id}/files", get(download::files))
        .route(
            "/exports",
            get(exports::list_exports).post(exports::add_export),
        )
        .route(
            "/exports/{id}",
            get(exports::get_export)
                .delete(exports::stop_export)
                .patch(exports::extend_export),
        )
        .route("/audit", get(audit::audit_log))
        .route("/openapi.json", get(openapi_json));
    Router::new()
        .route("/", get(ui::index))
        .route("/ui/{*path}", get(ui::asset))
        .nest("/api/v1", api)
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(json_object::objects_only))
        .layer(axum::middleware::from_fn(ui::security_headers))
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

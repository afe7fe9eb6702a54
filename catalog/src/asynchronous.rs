//! The catalog for async code.
//!
//! The catalog is synchronous: a call runs SQLite on the calling thread
//! and may wait for the writer connection. On a tokio worker that would
//! stall every other request the worker serves, so async code (the REST
//! handlers, the node service) calls the catalog through [`AsyncCatalog`],
//! which runs each call on tokio's blocking pool.

use std::sync::Arc;

use crate::Catalog;

/// An async handle on the catalog: [`AsyncCatalog::call`] runs a closure
/// with the catalog on tokio's blocking pool and awaits its result.
#[derive(Clone)]
pub struct AsyncCatalog {
    catalog: Arc<Catalog>,
}

impl AsyncCatalog {
    pub fn new(catalog: Arc<Catalog>) -> AsyncCatalog {
        AsyncCatalog { catalog }
    }

    /// The synchronous catalog, for code already off the runtime (inside
    /// a [`blocking`] closure, a dedicated thread).
    pub fn sync(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Run `f` with the catalog on the blocking pool. Several calls of a
    /// closure run in sequence on one blocking thread: put the reads and
    /// writes of one request in one call.
    pub async fn call<T, F>(&self, f: F) -> T
    where
        F: FnOnce(&Catalog) -> T + Send + 'static,
        T: Send + 'static,
    {
        let c = self.catalog.clone();
        blocking(move || f(&c)).await
    }
}

impl From<Arc<Catalog>> for AsyncCatalog {
    fn from(catalog: Arc<Catalog>) -> Self {
        AsyncCatalog::new(catalog)
    }
}

/// Run blocking work (catalog calls, Argon2, opening a datastore) on
/// tokio's blocking pool and await it. A panic in `f` resumes in the
/// caller, as if `f` had run inline.
pub async fn blocking<T, F>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => match e.try_into_panic() {
            Ok(p) => std::panic::resume_unwind(p),
            // Only when the runtime shuts down under the call.
            Err(e) => panic!("catalog call abandoned: {e}"),
        },
    }
}

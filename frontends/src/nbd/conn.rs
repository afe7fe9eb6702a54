//! One client's session state, shared by the handshake and the
//! transmission phase.

use std::io::Write;
use std::sync::Arc;

use crate::reader::BlockSource;
use crate::Exports;

/// How option negotiation ended.
pub(super) enum Negotiated {
    Export(String, Arc<dyn BlockSource>),
    /// The client aborted.
    Abort,
    /// STARTTLS was acknowledged: go on inside TLS.
    StartTls,
}

pub(super) struct Session<'e, W: Write> {
    pub(super) w: W,
    pub(super) exports: &'e dyn Exports,
    /// FORCEDTLS and not yet in TLS: only STARTTLS and ABORT are served.
    pub(super) tls_required: bool,
    /// Inside TLS.
    pub(super) tls_active: bool,
    pub(super) structured: bool,
    /// The export `base:allocation` was selected for, if any.
    pub(super) meta_for: Option<String>,
}

pub(super) fn new_session<W: Write>(w: W, exports: &dyn Exports, tls: bool) -> Session<'_, W> {
    Session {
        w,
        exports,
        tls_required: tls,
        tls_active: false,
        structured: false,
        meta_for: None,
    }
}

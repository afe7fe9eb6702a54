//! An NBD server (the protocol of <https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md>,
//! written from the document): fixed newstyle handshake; `NBD_OPT_GO`,
//! `INFO`, `LIST`, `EXPORT_NAME`, `ABORT`; structured replies; block status
//! for the `base:allocation` meta context, so holes are reported; any
//! number of exports and connections. Read-only exports refuse writes with
//! `EPERM`; writable ones (an [`crate::overlay::Overlay`]) take writes,
//! trims and write-zeroes into their overlay.
//!
//! A session is generic over `Read + Write`, so the fuzz target drives the
//! whole parser (options and requests) from bytes in memory. Bad input
//! gets the protocol's error (`NBD_REP_ERR_*` while negotiating, `EINVAL`
//! and friends in transmission), or, where the stream can no longer be
//! framed (a wrong magic, an oversized option or write), the connection is
//! closed; the server goes on serving everyone else.

mod conn;
mod handshake;
mod proto;
#[cfg(test)]
mod testutil;
mod tls;
mod transmit;

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use crate::Exports;
use conn::{new_session, Negotiated};
use handshake::greet;
use tls::tls_session;

pub use proto::{parse_go, parse_meta, parse_request, Request, MAX_PAYLOAD};
pub use tls::{before_tls, tls_config};

/// Accept connections forever, one thread each (no TLS).
pub fn serve(listener: TcpListener, exports: Arc<dyn Exports>) -> io::Result<()> {
    serve_with(listener, exports, None)
}

/// Accept connections forever, one thread each; with `tls`, every client
/// must negotiate STARTTLS first (the protocol's FORCEDTLS mode).
pub fn serve_with(
    listener: TcpListener,
    exports: Arc<dyn Exports>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> io::Result<()> {
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("nbd accept: {e}");
                continue;
            }
        };
        let _ = conn.set_nodelay(true);
        let peer = conn.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        let exports = exports.clone();
        let tls = tls.clone();
        std::thread::Builder::new()
            .name("nbd-conn".into())
            .spawn(move || {
                let _span = tracing::info_span!("client", peer = %peer).entered();
                let r = match tls {
                    Some(cfg) => tls_session(conn, exports.as_ref(), cfg),
                    None => match conn.try_clone() {
                        Ok(w) => session(
                            io::BufReader::with_capacity(64 << 10, conn),
                            io::BufWriter::with_capacity(256 << 10, w),
                            exports.as_ref(),
                        ),
                        Err(e) => Err(e),
                    },
                };
                if let Err(e) = r {
                    if e.kind() != io::ErrorKind::UnexpectedEof {
                        tracing::info!(error = %e, "nbd client connection ended with an error");
                    }
                }
            })?;
    }
    Ok(())
}

/// Serve one client from handshake to disconnect (no TLS); reads are
/// served concurrently (see the transmission phase).
pub fn session<R: Read, W: Write + Send>(
    mut r: R,
    mut w: W,
    exports: &dyn Exports,
) -> io::Result<()> {
    let no_zeroes = greet(&mut r, &mut w)?;
    let mut s = new_session(w, exports, false);
    match s.negotiate(&mut r, no_zeroes)? {
        Negotiated::Export(name, disk) => {
            let _log = crate::ClientLog::connected("nbd", s.exports.label(&name));
            s.transmit(&mut r, &name, disk.as_ref(), transmit::WORKERS)
        }
        Negotiated::Abort | Negotiated::StartTls => Ok(()),
    }
}

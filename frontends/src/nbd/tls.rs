//! NBD over TLS (the FORCEDTLS mode): options before STARTTLS, the
//! server's certificate, and a session inside TLS.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use super::conn::{new_session, Negotiated};
use super::handshake::greet;
use crate::Exports;

/// The part of a TLS-only (FORCEDTLS) session before the TLS handshake:
/// greeting, then options until STARTTLS. Returns `Some(no_zeroes)` when
/// STARTTLS was acknowledged, `None` when the client aborted.
pub fn before_tls<R: Read, W: Write>(
    mut r: R,
    mut w: W,
    exports: &dyn Exports,
) -> io::Result<Option<bool>> {
    let no_zeroes = greet(&mut r, &mut w)?;
    let mut s = new_session(w, exports, true);
    Ok(match s.negotiate(&mut r, no_zeroes)? {
        Negotiated::StartTls => Some(no_zeroes),
        _ => None,
    })
}

/// A rustls server configuration from PEM files (certificate chain and
/// private key).
pub fn tls_config(cert: &Path, key: &Path) -> io::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| io::Error::other(format!("{}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| io::Error::other(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| io::Error::other(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| io::Error::other(format!("certificate and key: {e}")))?;
    Ok(Arc::new(cfg))
}

/// One object as both halves of a session (a TLS stream): the session
/// reads and writes from one thread, never at once (no read workers: a
/// reader blocked on the socket would hold the stream).
struct Half<S>(Arc<Mutex<S>>);

impl<S> Half<S> {
    fn get(&self) -> MutexGuard<'_, S> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<S: Read> Read for Half<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.get().read(buf)
    }
}

impl<S: Write> Write for Half<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.get().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.get().flush()
    }
}

/// A TLS-only session on a TCP connection.
pub(super) fn tls_session(
    conn: TcpStream,
    exports: &dyn Exports,
    cfg: Arc<rustls::ServerConfig>,
) -> io::Result<()> {
    let Some(no_zeroes) = before_tls(&conn, &conn, exports)? else {
        return Ok(());
    };
    let tls = rustls::ServerConnection::new(cfg).map_err(io::Error::other)?;
    let stream = Arc::new(Mutex::new(rustls::StreamOwned::new(tls, conn)));
    let mut r = io::BufReader::with_capacity(64 << 10, Half(stream.clone()));
    let w = io::BufWriter::with_capacity(256 << 10, Half(stream));
    let mut s = new_session(w, exports, true);
    s.tls_active = true;
    match s.negotiate(&mut r, no_zeroes)? {
        Negotiated::Export(name, disk) => {
            let _log = crate::ClientLog::connected("nbd", s.exports.label(&name));
            s.transmit(&mut r, &name, disk.as_ref(), 0)
        }
        Negotiated::Abort | Negotiated::StartTls => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::nbd::proto::*;
    use crate::nbd::testutil::{go, opt, reply_types, run, One};
    use crate::reader::MemDisk;

    #[test]
    fn a_tls_server_refuses_options_before_starttls() {
        let e = One(Arc::new(MemDisk {
            data: vec![0; 4096],
        }));
        let mut input = 3u32.to_be_bytes().to_vec();
        input.extend(go("disk"));
        input.extend(opt(OPT_LIST, b""));
        input.extend(opt(OPT_STARTTLS, b"x"));
        input.extend(opt(OPT_STARTTLS, b""));
        let mut out = Vec::new();
        assert_eq!(before_tls(&input[..], &mut out, &e).unwrap(), Some(true));
        assert_eq!(
            reply_types(&out),
            [REP_ERR_TLS_REQD, REP_ERR_TLS_REQD, REP_ERR_INVALID, REP_ACK]
        );
        // EXPORT_NAME cannot be answered with an error: the connection ends.
        let mut input = 3u32.to_be_bytes().to_vec();
        input.extend(opt(OPT_EXPORT_NAME, b"disk"));
        assert!(before_tls(&input[..], &mut Vec::new(), &e).is_err());
        // Without TLS configured, STARTTLS is unsupported and GO still works.
        let mut input = 3u32.to_be_bytes().to_vec();
        input.extend(opt(OPT_STARTTLS, b""));
        input.extend(go("disk"));
        let (r, out) = run(&input);
        assert!(r.is_err()); // EOF after GO
        assert_eq!(reply_types(&out)[..2], [REP_ERR_UNSUP, REP_INFO]);
    }
}

//! NBD over TLS (the FORCEDTLS mode): options before STARTTLS, the
//! server's certificate, and a session inside TLS (reads served
//! concurrently, as on a plain connection).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use super::conn::{new_session, Negotiated};
use super::handshake::greet;
use super::transmit::WORKERS;
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

/// The read half of a TLS session: socket reads happen without the lock
/// on the TLS state, so the write half can send replies meanwhile.
struct TlsReader {
    tls: Arc<Mutex<rustls::ServerConnection>>,
    sock: TcpStream,
    /// Bytes read from the socket, `raw[at..end]` not yet given to TLS.
    raw: Vec<u8>,
    at: usize,
    end: usize,
}

/// The write half: encrypts under the lock, sends outside it.
struct TlsWriter {
    tls: Arc<Mutex<rustls::ServerConnection>>,
    sock: TcpStream,
    /// TLS records waiting for the socket.
    out: Vec<u8>,
}

fn lock(m: &Mutex<rustls::ServerConnection>) -> MutexGuard<'_, rustls::ServerConnection> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl Read for TlsReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            {
                let mut c = lock(&self.tls);
                match c.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if self.at < self.end {
                    let n = c.read_tls(&mut &self.raw[self.at..self.end])?;
                    self.at += n;
                    c.process_new_packets().map_err(tls_error)?;
                    continue;
                }
            }
            // Wait for the client without holding the TLS state.
            let n = self.sock.read(&mut self.raw)?;
            (self.at, self.end) = (0, n);
            if n == 0 {
                let mut c = lock(&self.tls);
                c.read_tls(&mut io::empty())?;
                c.process_new_packets().map_err(tls_error)?;
                return match c.reader().read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        Err(io::ErrorKind::UnexpectedEof.into())
                    }
                    r => r,
                };
            }
        }
    }
}

impl TlsWriter {
    /// Send every TLS record waiting (replies, and what reading queued).
    fn push(&mut self) -> io::Result<()> {
        {
            let mut c = lock(&self.tls);
            while c.wants_write() {
                c.write_tls(&mut self.out)?;
            }
        }
        let r = self.sock.write_all(&self.out);
        self.out.clear();
        r
    }
}

impl Write for TlsWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = lock(&self.tls).writer().write(buf)?;
        self.push()?;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.push()?;
        self.sock.flush()
    }
}

/// A TLS-only session on a TCP connection. After the handshake, the TLS
/// state is shared by a read half and a write half, so reads are served
/// by workers as on a plain connection.
pub(super) fn tls_session(
    mut conn: TcpStream,
    exports: &dyn Exports,
    cfg: Arc<rustls::ServerConfig>,
) -> io::Result<()> {
    let Some(no_zeroes) = before_tls(&conn, &conn, exports)? else {
        return Ok(());
    };
    let mut tls = rustls::ServerConnection::new(cfg).map_err(io::Error::other)?;
    while tls.is_handshaking() {
        tls.complete_io(&mut conn)?;
    }
    let tls = Arc::new(Mutex::new(tls));
    let reader = TlsReader {
        tls: tls.clone(),
        sock: conn.try_clone()?,
        raw: vec![0; 64 << 10],
        at: 0,
        end: 0,
    };
    let writer = TlsWriter {
        tls,
        sock: conn,
        out: Vec::new(),
    };
    let mut r = io::BufReader::with_capacity(64 << 10, reader);
    let w = io::BufWriter::with_capacity(256 << 10, writer);
    let mut s = new_session(w, exports, true);
    s.tls_active = true;
    match s.negotiate(&mut r, no_zeroes)? {
        Negotiated::Export(name, disk) => {
            let _log = crate::ClientLog::connected("nbd", s.exports.label(&name));
            s.transmit(&mut r, &name, disk.as_ref(), WORKERS)
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

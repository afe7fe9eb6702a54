//! An iSCSI target (RFC 7143) for image restore points: one target per
//! export, named by [`crate::iscsi_target_name`], with one LUN (0) of
//! 512-byte logical blocks.
//!
//! - Discovery sessions answer `SendTargets` with every export.
//! - Login with `AuthMethod=None`, or CHAP (MD5, one-way) when the
//!   target has a user and secret; then only CHAP logins are accepted.
//! - Exports with their own credential ([`Exports::chap`], exports started
//!   through the server) take only CHAP logins with it. When the list is
//!   private ([`Exports::private`]), discovery sessions must authenticate
//!   as one export's CHAP user and `SendTargets` shows only that export.
//!   A failed authentication is the login status 0x0201 (authentication
//!   failure), whatever was wrong.
//! - Error recovery level 0, one connection per session, no digests
//!   (`HeaderDigest=None`, `DataDigest=None`), `InitialR2T=Yes`,
//!   `ImmediateData=Yes`: writes bring at most `FirstBurstLength` bytes
//!   with the command and the rest after R2Ts.
//! - The SCSI command set Linux and libiscsi use is in [`Lun::execute`];
//!   anything else is CHECK CONDITION, ILLEGAL REQUEST, INVALID COMMAND
//!   OPERATION CODE. Bad PDUs get a Reject or end the connection; the
//!   server keeps serving other clients.
//!
//! The image's last bytes beyond a multiple of 512 (rare: disks are sized
//! in sectors) are not visible over iSCSI.

mod login;
mod pdu;
mod scsi;
mod session;
#[cfg(test)]
mod testutil;

use std::io;
use std::net::TcpListener;
use std::sync::Arc;

use crate::Exports;

pub use pdu::{op, parse_text, read_pdu, Bhs, Pdu, PduError, MAX_RECV_DSL};
pub use scsi::{decode_rw, sense, sense_data, Lun, Outcome, BLOCK, MAX_TRANSFER};
pub use session::{session, IscsiConfig};

/// Accept connections forever, one thread each.
pub fn serve(
    listener: TcpListener,
    exports: Arc<dyn Exports>,
    cfg: Arc<IscsiConfig>,
) -> io::Result<()> {
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("iscsi accept: {e}");
                continue;
            }
        };
        let _ = conn.set_nodelay(true);
        let peer = conn.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        let portal = conn.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let (exports, cfg) = (exports.clone(), cfg.clone());
        std::thread::Builder::new()
            .name("iscsi-conn".into())
            .spawn(move || {
                let _span = tracing::info_span!("client", peer = %peer).entered();
                let w = match conn.try_clone() {
                    Ok(w) => io::BufWriter::with_capacity(256 << 10, w),
                    Err(_) => return,
                };
                let r = io::BufReader::with_capacity(64 << 10, conn);
                if let Err(e) = session(r, w, exports.as_ref(), &cfg, &portal) {
                    if e.kind() != io::ErrorKind::UnexpectedEof {
                        tracing::info!(error = %e, "iscsi client connection ended with an error");
                    }
                }
            })?;
    }
    Ok(())
}

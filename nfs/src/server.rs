//! The NFS listener: NFSv3, MOUNT and portmap on one TCP port, with the
//! client's address checked before nfsserve sees a byte.
//!
//! nfsserve's file system trait is not told which client asks, and its
//! per-connection handler is private. So this listener accepts every
//! connection itself, logs it, closes it at once when the namespace
//! admits no export to that address, and otherwise serves it through an
//! nfsserve listener of its own whose file system is the namespace as
//! that address sees it ([`ArcaFs`]): the connection's bytes are copied
//! to and from it. That inner listener is on a loopback port picked by
//! the system and stops accepting as soon as the connection is through
//! (its first RPC, a NULL call made here, is answered), so it is open
//! only for that moment.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use nfsserve::tcp::{NFSTcp, NFSTcpListener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::fs::ArcaFs;
use crate::handles::HandleTable;
use crate::namespace::{canonical, Namespace};

/// An NFS server over a namespace.
pub struct NfsServer {
    ns: Arc<dyn Namespace>,
    table: Arc<HandleTable>,
}

/// An RPC NULL call to the NFS program (v3), record-marked: it proves
/// the inner listener accepted the connection.
fn null_call() -> Vec<u8> {
    let words: [u32; 11] = [
        0x8000_0028, // record mark: last fragment, 40 bytes
        0x4172_6361, // xid
        0,           // CALL
        2,           // RPC version
        100_003,     // NFS
        3,           // version 3
        0,           // NULL
        0,           // credentials: AUTH_NULL,
        0,           // empty
        0,           // verifier: AUTH_NULL,
        0,           // empty
    ];
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

/// Read one record-marked reply (all fragments) and drop it.
async fn skip_reply(s: &mut TcpStream) -> std::io::Result<()> {
    loop {
        let mark = s.read_u32().await?;
        let len = (mark & 0x7fff_ffff) as usize;
        if len > 1 << 16 {
            return Err(std::io::Error::other("unexpected reply to the NULL call"));
        }
        let mut buf = vec![0u8; len];
        s.read_exact(&mut buf).await?;
        if mark & 0x8000_0000 != 0 {
            return Ok(());
        }
    }
}

impl NfsServer {
    /// A server of `ns`, ids and handles from `table`.
    pub fn new(ns: Arc<dyn Namespace>, table: Arc<HandleTable>) -> NfsServer {
        NfsServer { ns, table }
    }

    /// Serve connections from `listener` until it fails.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        loop {
            let (sock, peer) = listener.accept().await?;
            let me = self.clone();
            tokio::spawn(async move { me.connection(sock, peer).await });
        }
    }

    async fn connection(&self, mut sock: TcpStream, peer: SocketAddr) {
        let client = canonical(peer.ip());
        if !self.ns.admits(client) {
            tracing::warn!(client = %peer, "nfs: connection refused (address not allowed)");
            let _ = sock.shutdown().await;
            return;
        }
        tracing::info!(client = %peer, "nfs: connection");
        match self.relay(sock, client, peer).await {
            Ok((up, down)) => {
                tracing::info!(client = %peer, bytes_in = up, bytes_out = down, "nfs: connection closed")
            }
            // Clients often reset the connection when they are done.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                tracing::info!(client = %peer, "nfs: connection closed (reset by the client)")
            }
            Err(e) => tracing::warn!(client = %peer, error = %e, "nfs: connection failed"),
        }
    }

    /// Serve one connection through an inner nfsserve listener.
    async fn relay(
        &self,
        mut sock: TcpStream,
        client: IpAddr,
        peer: SocketAddr,
    ) -> std::io::Result<(u64, u64)> {
        let fs = ArcaFs::new(self.ns.clone(), self.table.clone(), client);
        let mut inner = NFSTcpListener::bind("127.0.0.1:0", fs).await?;
        let port = inner.get_listen_port();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<bool>(4);
        inner.set_mount_listener(tx);
        let accept = tokio::spawn(async move {
            let _ = inner.handle_forever().await;
        });
        let connected = async {
            let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
            s.set_nodelay(true)?;
            s.write_all(&null_call()).await?;
            skip_reply(&mut s).await?;
            Ok::<_, std::io::Error>(s)
        }
        .await;
        // The inner listener has accepted ours (or failed): close it.
        accept.abort();
        let mut s = connected?;
        let _ = sock.set_nodelay(true);
        tokio::spawn(async move {
            while let Some(mounted) = rx.recv().await {
                if mounted {
                    tracing::info!(client = %peer, "nfs: mount");
                } else {
                    tracing::info!(client = %peer, "nfs: unmount");
                }
            }
        });
        tokio::io::copy_bidirectional(&mut sock, &mut s).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_null_call_is_one_whole_record() {
        let c = super::null_call();
        assert_eq!(c.len(), 44);
        let mark = u32::from_be_bytes(c[..4].try_into().unwrap_or_default());
        assert_eq!(mark, 0x8000_0000 | 40);
    }
}

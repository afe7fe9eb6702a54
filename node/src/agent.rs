//! `arca agent backup`: back up disks on a hypervisor into a server's
//! datastore over gRPC, sending only the chunks the datastore lacks
//! (docs/vm-ingest.md, "Agent"; the server's side is arca-server's
//! `agent` module over [`crate::ingest_sessions`]).
//!
//! ```text
//!  reader ──blocks not in the parent──▶ Have (batches) ──missing──▶ compressors ──▶ Put stream
//!  (read, skip holes, hash)                                          (zstd, one per core)
//! ```
//! The reader cuts each disk into the datastore's chunk size, skips
//! all-zero blocks as holes, hashes the rest with the datastore's id key
//! (from `Begin`) and drops those in the parent restore point's tables;
//! the others are asked for in batches, and only the ones the datastore
//! lacks are compressed and streamed, several in flight. The tables go
//! last, in `Commit`. Every request's encoded size is counted: the bytes
//! the agent puts on the wire (`bytes_sent`).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use arca_ingest::Progress;
use arca_proto::agent_pb as pb;
use crossbeam_channel::{bounded, Receiver, Sender};
use prost::Message;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::remote::{auth, channel, status_msg, Auth};

mod disk;
mod libvirt;
use disk::Disk;
pub use libvirt::{backup_libvirt, next, sync, Claimed, Synced};

/// Chunks asked for in one `Have` call.
const HAVE_BATCH: usize = 32;
/// Largest request the agent sends or reply it reads (a chunk of the
/// largest chunk size, 64 MiB, compressed, and the parent's tables).
pub const MAX_MESSAGE: usize = 80 << 20;

pub type Client = pb::ingest_client::IngestClient<InterceptedService<Channel, Auth>>;

/// What to back up, and where to.
#[derive(Clone, Debug, Default)]
pub struct AgentOptions {
    /// The server (https://host:port).
    pub server: String,
    /// An API token of a user with the backup permission on the source.
    pub token: String,
    /// A PEM CA certificate to trust (a self-signed server).
    pub ca_pem: Option<Vec<u8>>,
    /// The source's name in the catalog.
    pub source: String,
    /// Raw disk images, block devices or qcow2 images.
    pub disks: Vec<PathBuf>,
    /// A task claimed with [`next`]; 0: the server starts one.
    pub task_id: i64,
    /// Run the pre/post commands the server sets for a libvirt source
    /// (else such a backup fails, saying so).
    pub allow_hooks: bool,
}

/// What an agent backup did.
#[derive(Clone, Debug, Default)]
pub struct AgentOutcome {
    pub snapshot: String,
    pub task_id: i64,
    pub bytes_read: u64,
    pub bytes_total: u64,
    /// Bytes of the encoded requests the agent sent (gRPC framing
    /// included; TLS and HTTP/2 framing not).
    pub bytes_sent: u64,
    pub chunks_sent: u64,
    pub bytes_added: u64,
    pub mode: String,
    /// What the user should know (a dirty bitmap not added or removed).
    pub warnings: Vec<String>,
    /// A domain's restore point: crash- or application-consistent.
    pub consistency: Option<arca_model::api::Consistency>,
}

/// Bytes a message takes on the wire in a gRPC stream: the encoded
/// message and its 5-byte frame header.
fn wire<M: Message>(m: &M) -> u64 {
    m.encoded_len() as u64 + 5
}

/// The client of `opts.server`, without a per-call timeout (an upload
/// takes as long as the disks).
pub fn client(opts: &AgentOptions) -> Result<Client, String> {
    Ok(pb::ingest_client::IngestClient::with_interceptor(
        channel(&opts.server, opts.ca_pem.as_deref(), None)?,
        auth(&opts.token)?,
    )
    .max_decoding_message_size(MAX_MESSAGE)
    .max_encoding_message_size(MAX_MESSAGE))
}

/// The first error of any stage; later ones are its echoes.
#[derive(Default)]
struct FirstError(Mutex<Option<String>>);

impl FirstError {
    fn set(&self, e: String) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(e);
    }
    fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Back up `opts.disks` as one restore point of `opts.source`.
pub fn backup(opts: &AgentOptions, progress: &Progress) -> Result<AgentOutcome, String> {
    let mut disks = opts
        .disks
        .iter()
        .map(|p| disk::open(p))
        .collect::<Result<Vec<_>, _>>()?;
    let info = disks
        .iter()
        .map(|d| pb::DiskInfo {
            name: d.name.clone(),
            size: d.size,
        })
        .collect();
    let Opened { rt, mut c, b, sent } = open(opts, info)?;
    let path = opts
        .disks
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let r = prepare(&mut disks, &b).and_then(|()| {
        let up = Upload {
            rt: &rt,
            c: &c,
            b: &b,
            sent: &sent,
            path,
            metadata_json: String::new(),
        };
        up.run(&disks, progress)
    });
    // Bitmaps: the old ones go once the restore point is listed; a
    // failed backup takes back the one it added.
    let mut warnings: Vec<String> = disks.iter().flat_map(|d| d.warnings.clone()).collect();
    for d in &mut disks {
        warnings.extend(d.finish(r.is_ok()));
    }
    match r {
        Ok(mut o) => {
            o.warnings = warnings;
            Ok(o)
        }
        Err(e) => {
            // Nothing is listed either way; this ends the session (and
            // its task) at once instead of after the server's timeout.
            let _ = rt.block_on(c.abort(pb::AbortRequest {
                session: b.session.clone(),
                reason: e.clone(),
            }));
            Err(e)
        }
    }
}

/// A session opened with `Begin`: the runtime its client runs on, the
/// client, the reply, and the bytes sent so far.
struct Opened {
    rt: tokio::runtime::Runtime,
    c: Client,
    b: pb::BeginReply,
    sent: AtomicU64,
}

/// Connect to the server and open a session for `disks`.
fn open(opts: &AgentOptions, disks: Vec<pb::DiskInfo>) -> Result<Opened, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    // The channel spawns its connection task on the runtime.
    let mut c = {
        let _rt = rt.enter();
        client(opts)?
    };
    let begin = pb::BeginRequest {
        source: opts.source.clone(),
        disks,
        hostname: arca_ingest::hostname(),
        task_id: opts.task_id,
    };
    let sent = AtomicU64::new(wire(&begin));
    let b = rt
        .block_on(c.begin(begin))
        .map_err(|s| format!("{}: {}", opts.server, status_msg(s)))?
        .into_inner();
    Ok(Opened { rt, c, b, sent })
}

/// Plan each disk's reads against the parent's disk of the same name.
fn prepare(disks: &mut [Disk], b: &pb::BeginReply) -> Result<(), String> {
    let p = &b.parent[..b.parent.len().min(12)];
    for d in disks.iter_mut() {
        let parent = b.parent_disks.iter().find(|pd| pd.name == d.name);
        d.prepare(b.chunk_size, parent, p, &b.bitmap_prefix)?;
        if parent.is_none() && b.tables_omitted {
            // Have still finds what the datastore holds.
            d.mode =
                format!("full read, dedup against {p} (its chunk tables are too large to send)");
        }
    }
    Ok(())
}

/// A chunk to upload: its id and bytes.
type Chunk = ([u8; 32], Vec<u8>);

/// An upload into an open session, and what its commit records.
struct Upload<'a> {
    rt: &'a tokio::runtime::Runtime,
    c: &'a Client,
    b: &'a pb::BeginReply,
    sent: &'a AtomicU64,
    /// Where the disks were read from.
    path: String,
    /// The restore point's metadata (a libvirt record), or empty.
    metadata_json: String,
}

impl Upload<'_> {
    /// Read, send and commit `disks`.
    fn run(self, disks: &[Disk], progress: &Progress) -> Result<AgentOutcome, String> {
        let Upload {
            rt,
            c,
            b,
            sent,
            path,
            metadata_json,
        } = self;
        let key: [u8; 32] = b
            .id_key
            .as_slice()
            .try_into()
            .map_err(|_| "the server sent an id key that is not 32 bytes".to_string())?;
        let cs = b.chunk_size;
        if !cs.is_power_of_two() || cs < 4096 || cs as usize > MAX_MESSAGE / 2 {
            return Err(format!("the server's chunk size {cs} is not usable"));
        }
        let parent: HashSet<[u8; 32]> = b
            .parent_disks
            .iter()
            .flat_map(|d| d.ids.chunks_exact(32))
            .filter_map(|id| <[u8; 32]>::try_from(id).ok())
            .filter(|id| *id != [0; 32])
            .collect();
        let total: u64 = disks.iter().map(|d| d.to_read(cs)).sum();
        progress.total.store(total, Ordering::Relaxed);

        // The Put stream, fed by the compressors; it ends when they all have.
        let (put_tx, put_rx) = tokio::sync::mpsc::channel::<pb::PutRequest>(8);
        // The first message names the session, even when no chunk follows.
        let hello = pb::PutRequest {
            session: b.session.clone(),
            chunks: Vec::new(),
        };
        sent.fetch_add(wire(&hello), Ordering::Relaxed);
        put_tx
            .try_send(hello)
            .map_err(|_| "the upload stream is closed".to_string())?;
        let stream = receiver_stream(put_rx);
        let mut pc = c.clone();
        let put = rt.spawn(async move { pc.put(stream).await });

        let err = FirstError::default();
        let chunks_sent = AtomicU64::new(0);
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (batch_tx, batch_rx) = bounded::<Vec<Chunk>>(1);
        let (comp_tx, comp_rx) = bounded::<Chunk>(workers * 2);
        let tables = std::thread::scope(|s| {
            let (err, chunks_sent) = (&err, &chunks_sent);
            s.spawn(move || {
                if let Err(e) = ask(rt, c, &b.session, batch_rx, comp_tx, sent) {
                    err.set(e);
                }
            });
            for _ in 0..workers {
                let (rx, tx) = (comp_rx.clone(), put_tx.clone());
                let session = b.session.clone();
                s.spawn(move || {
                    if let Err(e) = compress(&session, rx, tx, sent, chunks_sent) {
                        err.set(e);
                    }
                });
            }
            drop((comp_rx, put_tx));
            let r = read(disks, cs, &key, &parent, batch_tx, progress);
            if let Err(e) = &r {
                err.set(e.clone());
            }
            r
        });
        // The server's answer to the stream says why it ended early, if it
        // did: that is the cause of the stages' errors.
        let put = rt
            .block_on(put)
            .map_err(|e| format!("the upload: {e}"))?
            .map_err(|s| format!("uploading: {}", status_msg(s)));
        if let Some(e) = put.as_ref().err().cloned().or_else(|| err.take()) {
            return Err(e);
        }
        let tables = tables?;
        let chunks_sent = chunks_sent.load(Ordering::Relaxed);
        let blocks: usize = tables.iter().map(|t| t.0.len() / 32).sum();
        let modes = match disks {
            [d] => d.mode.clone(),
            _ => disks
                .iter()
                .map(|d| format!("{}: {}", d.name, d.mode))
                .collect::<Vec<_>>()
                .join("; "),
        };
        let mode = format!("{modes}; {chunks_sent} of {blocks} blocks sent");
        let commit = pb::CommitRequest {
            session: b.session.clone(),
            disks: disks
                .iter()
                .zip(tables)
                .map(|(d, (ids, bytes_read))| pb::DiskTable {
                    name: d.name.clone(),
                    size: d.size,
                    ids,
                    format: d.format.into(),
                    cbt: d.cbt.clone(),
                    mode: d.mode.clone(),
                    bytes_read,
                })
                .collect(),
            backup_mode: mode.clone(),
            bytes_read: progress.bytes.load(Ordering::Relaxed),
            bytes_sent: 0,
            path,
            metadata_json,
        };
        let mut commit = commit;
        // What was sent before the commit (the server logs it per session).
        commit.bytes_sent = sent.load(Ordering::Relaxed);
        sent.fetch_add(wire(&commit), Ordering::Relaxed);
        let bytes_sent = sent.load(Ordering::Relaxed);
        let r = rt
            .block_on(c.clone().commit(commit))
            .map_err(|s| format!("commit: {}", status_msg(s)))?
            .into_inner();
        Ok(AgentOutcome {
            snapshot: r.restore_point,
            task_id: r.task_id,
            bytes_read: progress.bytes.load(Ordering::Relaxed),
            bytes_total: r.bytes_total,
            bytes_sent,
            chunks_sent,
            bytes_added: r.bytes_added,
            mode,
            warnings: Vec::new(),
            consistency: None,
        })
    }
}

/// The messages of `rx` as a stream, for the upload.
fn receiver_stream(
    rx: tokio::sync::mpsc::Receiver<pb::PutRequest>,
) -> impl futures_util::Stream<Item = pb::PutRequest> + Send + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) })
}

/// The reader: every disk block by block. Holes, blocks the plan takes
/// from the parent, and the parent's chunks only go into the tables;
/// other chunks (each once) go to `out` in batches. Returns each disk's
/// table (32 bytes per block) and the bytes read from it.
fn read(
    disks: &[Disk],
    cs: u32,
    key: &[u8; 32],
    parent: &HashSet<[u8; 32]>,
    out: Sender<Vec<Chunk>>,
    progress: &Progress,
) -> Result<Vec<(Vec<u8>, u64)>, String> {
    let stopped = || "stopped: a later stage failed".to_string();
    let mut asked: HashSet<[u8; 32]> = HashSet::new();
    let mut batch = Vec::with_capacity(HAVE_BATCH);
    let mut tables = Vec::new();
    for d in disks {
        let blocks = d.size.div_ceil(cs as u64);
        let mut table = Vec::with_capacity(blocks as usize * 32);
        let mut bytes_read = 0u64;
        for i in 0..blocks {
            if progress.cancel.load(Ordering::Relaxed) {
                return Err("interrupted".into());
            }
            match d.block(i as usize) {
                disk::Block::Hole => {
                    table.extend_from_slice(&[0; 32]);
                    continue;
                }
                disk::Block::Parent(id) => {
                    table.extend_from_slice(&id);
                    continue;
                }
                disk::Block::Read => {}
            }
            let off = i * cs as u64;
            let len = (d.size - off).min(cs as u64) as usize;
            let mut buf = vec![0u8; len];
            d.read_at(off, &mut buf)?;
            progress.add(len as u64);
            bytes_read += len as u64;
            if buf.iter().all(|b| *b == 0) {
                table.extend_from_slice(&[0; 32]);
                continue;
            }
            let id = *blake3::keyed_hash(key, &buf).as_bytes();
            table.extend_from_slice(&id);
            if parent.contains(&id) || !asked.insert(id) {
                continue;
            }
            batch.push((id, buf));
            if batch.len() == HAVE_BATCH {
                out.send(std::mem::take(&mut batch))
                    .map_err(|_| stopped())?;
            }
        }
        tables.push((table, bytes_read));
    }
    if !batch.is_empty() {
        out.send(batch).map_err(|_| stopped())?;
    }
    Ok(tables)
}

/// Ask the server which chunks of each batch it lacks; pass those on.
fn ask(
    rt: &tokio::runtime::Runtime,
    c: &Client,
    session: &str,
    batches: Receiver<Vec<Chunk>>,
    out: Sender<Chunk>,
    sent: &AtomicU64,
) -> Result<(), String> {
    for batch in batches {
        let req = pb::HaveRequest {
            session: session.to_string(),
            ids: batch.iter().map(|(id, _)| id.to_vec()).collect(),
        };
        sent.fetch_add(wire(&req), Ordering::Relaxed);
        let missing = rt
            .block_on(c.clone().have(req))
            .map_err(|s| format!("asking which chunks the server has: {}", status_msg(s)))?
            .into_inner()
            .missing;
        let n = batch.len();
        let mut batch: Vec<Option<Chunk>> = batch.into_iter().map(Some).collect();
        for m in missing {
            let b = batch
                .get_mut(m as usize)
                .and_then(Option::take)
                .ok_or_else(|| format!("the server named chunk {m} of a batch of {n}"))?;
            out.send(b)
                .map_err(|_| "stopped: the upload failed".to_string())?;
        }
    }
    Ok(())
}

/// A compressor: zstd each chunk and put it on the upload stream.
fn compress(
    session: &str,
    rx: Receiver<Chunk>,
    tx: tokio::sync::mpsc::Sender<pb::PutRequest>,
    sent: &AtomicU64,
    chunks: &AtomicU64,
) -> Result<(), String> {
    for (id, data) in rx {
        let z = zstd::bulk::compress(&data, 3).map_err(|e| format!("compressing: {e}"))?;
        let req = pb::PutRequest {
            session: session.to_string(),
            chunks: vec![pb::Chunk {
                id: id.to_vec(),
                length: data.len() as u32,
                data: z,
            }],
        };
        sent.fetch_add(wire(&req), Ordering::Relaxed);
        chunks.fetch_add(1, Ordering::Relaxed);
        tx.blocking_send(req)
            .map_err(|_| "stopped: the upload stream ended".to_string())?;
    }
    Ok(())
}

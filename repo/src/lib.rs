//! # arca-repo: the datastore
//!
//! A datastore is a directory (later: any [`backend::Backend`]) holding
//!
//! ```text
//! config            JSON: format version, chunker parameters, pack size, cipher
//! keyfile           JSON: master keys, wrapped with Argon2id(passphrase) (repokey)
//! packs/ab/ab12…    pack files: blobs + sealed header + trailer (see [`pack`])
//! snapshots/…       one sealed manifest per snapshot (restore point)
//! index/            RocksDB: chunk id → (pack, offset, length); a rebuildable cache
//! space-reserve     zeros kept free so that prune and gc work on a full disk ([`reserve`])
//! ```
//!
//! Every byte layout is documented in `docs/formats.md` and beside the code
//! that writes it ([`blob`], [`pack`], [`format`], [`image`], [`catalog`]).
//!
//! ## Data model
//! - A **chunk** is a piece of content; its id is `blake3::keyed_hash(id_key,
//!   plaintext)`. Files are cut by FastCDC ([`chunker`]), images into fixed
//!   power-of-two blocks with all-zero blocks recorded as holes ([`image`]).
//! - A **blob** is a stored chunk: zstd (skipped when it does not shrink the
//!   data) then AES-256-GCM with the chunk id as associated data, under a key
//!   derived by HKDF from the master key and a per-session salt that is
//!   recorded in every pack's trailer ([`crypto`]).
//!   Data blobs of image backups are framed (blob version 2, [`frame`]):
//!   cut into frames (64 KiB by default) compressed and sealed one by one,
//!   so that [`Datastore::read_blob_range`] decodes only the frames a read
//!   needs ([`range`]).
//! - A **pack** collects blobs up to ~32 MiB and ends with a sealed header
//!   listing them, so the index can always be rebuilt from packs alone.
//!   A pack is written to a temporary file, fsynced, renamed to its hash and
//!   the directory fsynced; only then does the index learn about it.
//! - A **snapshot** is a manifest: source, time, parent, root tree or disk
//!   tables, catalog, statistics. Trees are Merkle trees of directory blobs.
//!
//! ## Writing: sessions
//! Backups write through a [`session::BackupSession`]: a pipeline of reader,
//! per-core workers (hash, dedup, compress, encrypt) and pack writers. A
//! snapshot becomes visible only when `commit` has made all its packs and
//! the index durable and then written the manifest (atomically). A crash at
//! any point leaves, at worst, packs that no snapshot references.
//!
//! ## Garbage collection and the rule that protects running backups
//! `prune` only deletes snapshot manifests (one atomic unlink each). `gc`
//! reclaims space in three phases:
//! 1. **mark** (no lock): walk every snapshot's trees, catalogs and image
//!    tables and collect the live chunk ids.
//! 2. **decide** (exclusive GC lock): read every chunk id any open session
//!    has referenced and the roots (parent tree or tables) open sessions
//!    build on, *then* list snapshots again and mark those written since
//!    phase 1, then everything under the sessions' roots; then remove the
//!    index entries of dead blobs in packs older than the grace period.
//!    The order matters: a session writes its snapshot before it leaves the
//!    registry, so a backup that commits during phase 2 is seen either as a
//!    session or as a snapshot, never as neither.
//! 3. **sweep** (no lock): delete packs without live blobs; copy the live
//!    blobs of packs that are mostly garbage into new packs, index those, and
//!    only then delete the old packs.
//!
//! A session records a chunk id in its reference set *while holding the GC
//! lock shared*, in the same critical section in which it asks the index
//! whether the chunk exists. So either the session recorded the reference
//! before phase 2 (and the chunk is live), or it asked the index after
//! phase 2 removed the dead entry (and stores the chunk again).
//!
//! **Readers follow gc.** A repack writes the new pack, indexes it (a
//! synced write), removes the old entries (synced) and only then deletes
//! the old pack. A reader whose lookup came before that finds the pack gone
//! ([`Error::PackMissing`]); a reader opened read-only in another process
//! holds a RocksDB view as old as its open, which also lacks every chunk
//! written since ([`Error::ChunkMissing`]). On either error
//! [`Datastore::read_blob`] refreshes the view (reopens the read-only
//! index; an index built from the packs re-reads the pack list; a writer's
//! index is live and is simply asked again) and looks again, up to four
//! times, so that repacks following each other are followed too. Readers
//! that hit the same stale view at once refresh it once. Only when the
//! chunk is still missing from a fresh view, or its pack still absent, is
//! the error returned: the chunk is lost. Every reader goes through
//! `read_blob`: restore, image restore, the NBD/iSCSI restore-point
//! reader, trees, catalogs and image tables.
//!
//! **Damaged snapshot files.** A snapshot file whose bytes fail to
//! authenticate or decode ([`Error::Corrupt`]) cannot be marked: gc goes
//! on without it, so that the datastore stays collectable, keeps nothing
//! for it, and names it in its report (`damaged_snapshots`, `warnings`).
//! Any other error reading a snapshot (I/O, a manifest of a newer arca)
//! still stops gc, because the snapshot may be intact and its data must not
//! look dead. Listing returns damaged files beside the readable snapshots
//! ([`Datastore::snapshots_checked`]), resolving an id or prefix of one
//! gives [`Error::SnapshotDamaged`] (not "not found"), and
//! [`Datastore::resolve`] resolves it for removal.
//!
//! **Grace period.** Packs modified less than `GcOptions::grace` ago (default
//! one hour) are never deleted or repacked, whatever the mark says. This
//! covers packs whose index entries are not yet written (a flusher between
//! rename and index update) and clocks that disagree.
//!
//! Only one process opens a datastore for writing: the RocksDB index is
//! locked by the first writer; a second writing process gets a clear
//! "in use" error. Read-only commands open the index read-only and can run
//! beside a writer.
//!
//! | may run together with → | backup | restore / mount | verify | prune | gc mark | gc decide | gc sweep | index rebuild |
//! |---|---|---|---|---|---|---|---|---|
//! | **backup**          | yes | yes | yes | yes | yes | waits (dedup checks pause) | yes | waits |
//! | **restore / mount** | yes | yes | yes | yes¹ | yes | yes | yes² | no³ |
//! | **verify**          | yes⁴ | yes | yes | yes¹ | yes | yes | yes⁴ | no³ |
//! | **prune**           | yes | yes¹ | yes¹ | yes | yes | yes | yes | yes |
//! | **gc**              | see above | yes | yes | yes | one gc at a time | | | no |
//!
//! ¹ a snapshot that prune deletes while it is being read stays readable
//! until gc reclaims its data. ² a repacked blob is looked up again in a
//! refreshed view (above). ³ rebuild clears the index first; run it alone.
//! ⁴ verify refreshes its view after listing snapshots, and before it
//! reports anything looks again at a refreshed view: a pack gc deleted or
//! a snapshot forgotten meanwhile is not reported, damage that is still
//! there is (see [`verify`]).

pub mod backend;
pub mod blob;
pub mod catalog;
pub mod chunker;
pub mod config;
pub mod crypto;
pub mod datastore;
pub mod error;
pub mod format;
pub mod frame;
pub mod gc;
pub(crate) mod gc_live;
pub mod id;
mod id_parse;
pub mod image;
pub mod index;
mod options;
pub mod pack;
pub mod prune;
pub mod quarantine;
pub mod range;
pub mod reserve;
pub mod session;
mod sessions;
#[cfg(test)]
mod test_util;
pub mod verify;
pub mod walk;

pub use blob::BlobKind;
pub use config::{Config, Encryption};
pub use datastore::{Datastore, IndexKind, OpenOptions, Snapshot};
pub use error::{Error, Result};
pub use id::{ChunkId, PackId, SnapshotId};
pub use session::{BackupSession, PendingChunk};

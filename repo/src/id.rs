//! Typed 32-byte identifiers. A `ChunkId` cannot be passed where a `PackId`
//! is expected, and every id prints as lower-case hex. Parsing one (which
//! fails with the crate's [`Error`](crate::Error)) is in `id_parse`.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
            pub fn is_zero(&self) -> bool {
                self.0 == [0u8; 32]
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }
    };
}

id_type!(
    /// Id of a blob: `blake3::keyed_hash(id_key, plaintext)`. Data chunks,
    /// tree blobs, catalog chunks and image tables all use it.
    ChunkId
);
id_type!(
    /// Id of a pack file: the unkeyed BLAKE3 hash of all its bytes.
    PackId
);
id_type!(
    /// Id of a snapshot (restore point): the keyed hash of its manifest.
    SnapshotId
);

//! Parsing the typed ids of `id` from hex and from decoded bytes. Apart
//! from the types, so that the error type can carry ids and ids can fail
//! with it without the two modules importing each other.

use crate::error::{Error, Result};
use crate::id::{ChunkId, PackId, SnapshotId};

macro_rules! id_parse {
    ($($name:ident),*) => {$(
        impl $name {
            /// Parse exactly 64 hex digits.
            pub fn from_hex(s: &str) -> Result<Self> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s, &mut out)
                    .map_err(|_| Error::InvalidInput(format!("not a {} id: {s:?}", stringify!($name))))?;
                Ok(Self(out))
            }
            /// Take 32 bytes from a decoded structure; anything else is corrupt.
            pub fn from_slice(b: &[u8]) -> Result<Self> {
                let arr: [u8; 32] = b
                    .try_into()
                    .map_err(|_| Error::Corrupt(format!("{} of {} bytes", stringify!($name), b.len())))?;
                Ok(Self(arr))
            }
        }
    )*};
}

id_parse!(ChunkId, PackId, SnapshotId);

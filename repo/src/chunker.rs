//! Content-defined chunking (FastCDC 2020) over a stream with one reusable
//! buffer. Cut points depend only on content, never on read sizes: a chunk
//! is emitted only once at least `max_size` bytes after its start are in the
//! buffer (or the stream ended), so a cut is never forced by the buffer edge.

use std::io::{ErrorKind, Read};

use fastcdc::v2020::{FastCDC, Normalization};

use crate::config::ChunkerParams;
use crate::error::{Error, Result};

pub struct Chunker {
    min: u32,
    avg: u32,
    max: u32,
    seed: u64,
    buf: Vec<u8>,
}

impl Chunker {
    pub fn new(p: &ChunkerParams, seed: u64) -> Self {
        Chunker {
            min: p.min_size,
            avg: p.avg_size,
            max: p.max_size,
            seed,
            buf: Vec::new(),
        }
    }

    /// Split everything `r` yields into chunks, calling `emit` with each in
    /// order. Returns the number of bytes read.
    pub fn chunk(
        &mut self,
        mut r: impl Read,
        mut emit: impl FnMut(Vec<u8>) -> Result<()>,
    ) -> Result<u64> {
        let max = self.max as usize;
        let cap = (max * 4).max(1 << 20);
        if self.buf.len() != cap {
            self.buf = vec![0u8; cap];
        }
        let mut filled = 0usize;
        let mut total = 0u64;
        let mut eof = false;
        loop {
            while !eof && filled < cap {
                match r.read(&mut self.buf[filled..]) {
                    Ok(0) => eof = true,
                    Ok(n) => {
                        filled += n;
                        total += n as u64;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::io("read", e)),
                }
            }
            if filled == 0 {
                return Ok(total);
            }
            let mut consumed = 0usize;
            if (filled as u32) <= self.min {
                // Too short for any cut point (and only possible at EOF).
                emit(self.buf[..filled].to_vec())?;
                consumed = filled;
            } else {
                let cdc = FastCDC::with_level_and_seed(
                    &self.buf[..filled],
                    self.min,
                    self.avg,
                    self.max,
                    Normalization::Level1,
                    self.seed,
                );
                for c in cdc {
                    if !eof && c.offset + max > filled {
                        break;
                    }
                    emit(self.buf[c.offset..c.offset + c.length].to_vec())?;
                    consumed = c.offset + c.length;
                }
            }
            self.buf.copy_within(consumed..filled, 0);
            filled -= consumed;
            if eof && filled == 0 {
                return Ok(total);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::pseudo_random;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn params() -> ChunkerParams {
        ChunkerParams {
            min_size: 256,
            avg_size: 1024,
            max_size: 4096,
        }
    }

    fn chunks(data: &[u8], read_size: usize) -> Vec<Vec<u8>> {
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(b.len()).min(self.1);
                b[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        Chunker::new(&params(), 42)
            .chunk(Trickle(data, read_size), |c| {
                out.push(c);
                Ok(())
            })
            .unwrap();
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn boundaries_survive_an_insertion(seed: u64, at in 0usize..200_000, ins in proptest::collection::vec(any::<u8>(), 1..500), rs in 1usize..100_000) {
            let data = pseudo_random(200_000, seed);
            let mut edited = data[..at].to_vec();
            edited.extend_from_slice(&ins);
            edited.extend_from_slice(&data[at..]);
            let a = chunks(&data, 1 << 20);
            // Read sizes never change the cut points.
            prop_assert_eq!(&a, &chunks(&data, rs));
            prop_assert_eq!(a.concat(), data);
            let b = chunks(&edited, rs);
            prop_assert_eq!(b.concat(), edited);
            // Only the chunks around the insertion point change: the changed
            // ones are contiguous and cover a few max-size chunks at most.
            let set: HashSet<_> = a.iter().collect();
            let pos: Vec<usize> = b.iter().enumerate().filter(|(_, c)| !set.contains(c)).map(|(i, _)| i).collect();
            if let (Some(first), Some(last)) = (pos.first(), pos.last()) {
                prop_assert_eq!(last - first + 1, pos.len(), "changed chunks not contiguous: {:?}", pos);
                let span: usize = b[*first..=*last].iter().map(|c| c.len()).sum();
                prop_assert!(span <= ins.len() + 4 * 4096, "changed span {} bytes", span);
            }
        }
    }

    #[test]
    fn empty_and_tiny() {
        assert!(chunks(&[], 10).is_empty());
        assert_eq!(chunks(b"abc", 10), vec![b"abc".to_vec()]);
    }
}

//! Shared pieces of the benchmark binaries: a small deterministic PRNG, the
//! generators of synthetic content (source-like text, structured binary
//! records, incompressible bytes) and a few reporting helpers.
//!
//! Everything here is deterministic for a given seed and independent of the
//! platform and of crate versions, so two runs of `arca-datagen` with the
//! same arguments produce identical bytes.

use std::path::Path;

pub mod busy_catalog;

/// xoshiro256** seeded through splitmix64. Fast (several GB/s when filling
/// buffers) and stable: the output depends only on the seed.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

/// One step of splitmix64; also a good 64-bit mixing function.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Derive an independent seed from a seed and a stream number.
pub fn derive_seed(seed: u64, stream: u64) -> u64 {
    let mut s = seed ^ stream.wrapping_mul(0xD134_2543_DE82_EF95);
    splitmix64(&mut s)
}

/// A 32-byte id: number `i` of stream `domain`, without keeping a copy.
pub fn id_bytes(seed: u64, domain: u64, i: u64) -> [u8; 32] {
    let mut s = derive_seed(seed ^ domain.rotate_left(32), i);
    let mut out = [0u8; 32];
    for c in out.chunks_exact_mut(8) {
        c.copy_from_slice(&splitmix64(&mut s).to_le_bytes());
    }
    out
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Rng { s }
    }

    /// A generator for sub-stream `stream` of `seed`.
    pub fn derive(seed: u64, stream: u64) -> Self {
        Rng::new(derive_seed(seed, stream))
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (`n > 0`; returns 0 for `n == 0`).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    #[inline]
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo).saturating_add(1))
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// Pick an element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Fill `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        let n = rest.len();
        rest.copy_from_slice(&last[..n]);
    }
}

/// The kinds of synthetic content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// Prose, source code, logs and CSV from a word list: compresses ~3-5x.
    Text,
    /// Fixed-size records with counters, timestamps and random fields,
    /// interleaved with zeroed pages: compresses ~2-3x.
    Binary,
    /// Uniformly random bytes, like JPEG/ZIP/video: incompressible.
    Random,
}

impl Content {
    pub fn name(self) -> &'static str {
        match self {
            Content::Text => "text",
            Content::Binary => "binary",
            Content::Random => "compressed",
        }
    }

    /// Fill `buf` entirely with this kind of content.
    pub fn fill(self, rng: &mut Rng, buf: &mut [u8]) {
        match self {
            Content::Text => fill_text(rng, buf),
            Content::Binary => fill_binary(rng, buf),
            Content::Random => rng.fill(buf),
        }
    }
}

#[rustfmt::skip]
pub const WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "with", "on", "be", "by",
    "this", "are", "or", "from", "at", "an", "which", "not", "have", "was", "but", "all", "can",
    "data", "backup", "restore", "chunk", "index", "pack", "file", "tree", "image", "disk",
    "volume", "snapshot", "server", "client", "network", "storage", "block", "offset", "length",
    "buffer", "stream", "reader", "writer", "error", "result", "value", "option", "config",
    "system", "process", "thread", "memory", "cache", "table", "record", "field", "string",
    "number", "vector", "matrix", "request", "response", "header", "payload", "session", "token",
    "user", "group", "account", "policy", "schedule", "retention", "daily", "weekly", "monthly",
    "report", "status", "health", "metric", "latency", "throughput", "timeout", "retry", "queue",
    "worker", "manager", "handler", "service", "module", "package", "library", "version",
    "release", "update", "change", "commit", "branch", "merge", "review", "test", "build",
    "deploy", "cluster", "node", "replica", "primary", "secondary", "encrypt", "decrypt", "key",
    "hash", "verify", "check", "compress", "archive", "export", "import", "mailbox", "message",
    "folder", "document", "calendar", "contact", "invoice", "customer", "order", "product",
    "price", "quantity", "address", "country", "city", "project", "meeting", "quarterly", "budget",
    "forecast", "analysis", "summary", "detail", "appendix", "section", "chapter", "figure",
    "example", "however", "therefore", "because", "although", "between", "during", "within",
    "without", "before", "after", "should", "would", "could", "must", "may", "will", "new", "old",
    "large", "small", "fast", "slow", "first", "last", "next", "previous", "each", "every", "some",
    "many", "few", "more", "less", "most", "other", "same", "different",
];

const CODE_KEYWORDS: &[&str] = &[
    "fn", "let", "mut", "if", "else", "match", "return", "for", "while", "impl", "pub", "struct",
    "enum", "use", "const", "static", "def", "class", "import", "int", "void", "char", "self",
];

const LOG_LEVELS: &[&str] = &["INFO", "INFO", "INFO", "DEBUG", "DEBUG", "WARN", "ERROR"];

/// Append `s` to `out` without growing past `cap`; returns false when full.
#[inline]
fn push(out: &mut Vec<u8>, cap: usize, s: &[u8]) -> bool {
    let room = cap - out.len();
    if s.len() >= room {
        out.extend_from_slice(&s[..room]);
        return false;
    }
    out.extend_from_slice(s);
    true
}

fn push_num(out: &mut Vec<u8>, cap: usize, mut n: u64) -> bool {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    push(out, cap, &digits[i..])
}

fn ident(rng: &mut Rng, out: &mut Vec<u8>, cap: usize) -> bool {
    let a = rng.pick(WORDS).as_bytes();
    let b = rng.pick(WORDS).as_bytes();
    push(out, cap, a) && push(out, cap, b"_") && push(out, cap, b)
}

/// Fill `buf` with text: the style (prose, code, log, CSV) changes every few
/// KiB so that one buffer holds a realistic mix.
pub fn fill_text(rng: &mut Rng, buf: &mut [u8]) {
    let cap = buf.len();
    let mut out = Vec::with_capacity(cap);
    let mut ts: u64 = 1_700_000_000 + rng.below(10_000_000);
    'outer: while out.len() < cap {
        let style = rng.below(4);
        let lines = rng.range(20, 200);
        for _ in 0..lines {
            let ok = match style {
                0 => {
                    // Prose paragraph line.
                    let n = rng.range(6, 18);
                    let mut ok = true;
                    for i in 0..n {
                        let w = rng.pick(WORDS).as_bytes();
                        ok = ok && (i == 0 || push(&mut out, cap, b" ")) && push(&mut out, cap, w);
                    }
                    ok && push(&mut out, cap, if rng.chance(0.3) { b".\n" } else { b",\n" })
                }
                1 => {
                    // Source code.
                    let depth = rng.below(5) as usize;
                    let mut ok = push(&mut out, cap, &b"                    "[..depth * 4]);
                    ok = ok && push(&mut out, cap, rng.pick(CODE_KEYWORDS).as_bytes());
                    ok = ok && push(&mut out, cap, b" ") && ident(rng, &mut out, cap);
                    ok = ok && push(&mut out, cap, b" = ") && ident(rng, &mut out, cap);
                    ok =
                        ok && push(&mut out, cap, b"(") && push_num(&mut out, cap, rng.below(4096));
                    ok && push(
                        &mut out,
                        cap,
                        if rng.chance(0.2) { b") {\n" } else { b");\n" },
                    )
                }
                2 => {
                    // Log line.
                    ts += rng.below(3);
                    let mut ok = push_num(&mut out, cap, ts) && push(&mut out, cap, b" ");
                    ok = ok && push(&mut out, cap, rng.pick(LOG_LEVELS).as_bytes());
                    ok = ok && push(&mut out, cap, b" [") && ident(rng, &mut out, cap);
                    ok = ok
                        && push(&mut out, cap, b"] ")
                        && push(&mut out, cap, rng.pick(WORDS).as_bytes());
                    ok = ok
                        && push(&mut out, cap, b" id=")
                        && push_num(&mut out, cap, rng.next_u64() >> 20);
                    ok && push(&mut out, cap, b" ms=")
                        && push_num(&mut out, cap, rng.below(2000))
                        && push(&mut out, cap, b"\n")
                }
                _ => {
                    // CSV row.
                    let mut ok = push_num(&mut out, cap, rng.below(1_000_000));
                    for _ in 0..rng.range(3, 8) {
                        ok = ok && push(&mut out, cap, b",");
                        ok = ok
                            && if rng.chance(0.5) {
                                push(&mut out, cap, rng.pick(WORDS).as_bytes())
                            } else {
                                push_num(&mut out, cap, rng.below(100_000))
                            };
                    }
                    ok && push(&mut out, cap, b"\n")
                }
            };
            if !ok {
                break 'outer;
            }
        }
        if !push(&mut out, cap, b"\n") {
            break;
        }
    }
    buf.copy_from_slice(&out);
}

/// Fill `buf` with 64-byte records (magic, sequence number, timestamp, small
/// enums, ids from a small set, a name, a random hash), with an occasional
/// zeroed 4 KiB page, like a database or a proprietary binary format.
pub fn fill_binary(rng: &mut Rng, buf: &mut [u8]) {
    let mut seq = rng.below(1 << 32);
    let mut ts = 1_700_000_000_000u64 + rng.below(1 << 30);
    let users: Vec<u32> = (0..64).map(|_| rng.next_u64() as u32).collect();
    for page in buf.chunks_mut(4096) {
        if rng.chance(0.08) {
            page.fill(0);
            continue;
        }
        for rec in page.chunks_mut(64) {
            let mut r = [0u8; 64];
            r[..4].copy_from_slice(b"ARC\x01");
            r[4..12].copy_from_slice(&seq.to_le_bytes());
            r[12..20].copy_from_slice(&ts.to_le_bytes());
            r[20] = rng.below(8) as u8;
            r[21] = rng.below(4) as u8;
            r[24..28].copy_from_slice(&users[rng.below(64) as usize].to_le_bytes());
            let v = rng.below(100_000) as f64 / 100.0;
            r[28..36].copy_from_slice(&v.to_le_bytes());
            let name = rng.pick(WORDS).as_bytes();
            let n = name.len().min(16);
            r[36..36 + n].copy_from_slice(&name[..n]);
            r[52..60].copy_from_slice(&rng.next_u64().to_le_bytes());
            let n = rec.len();
            rec.copy_from_slice(&r[..n]);
            seq += 1;
            ts += rng.below(1000);
        }
    }
}

/// A buffer of `len` bytes of mixed content in 4 MiB regions (35% text,
/// 35% binary, 30% incompressible), as used by `arca-limits`.
pub fn mixed_buffer(seed: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    let mut rng = Rng::new(seed);
    for (i, region) in buf.chunks_mut(4 << 20).enumerate() {
        let kind = pick_content(&mut rng, [35, 35, 30]);
        kind.fill(&mut Rng::derive(seed, i as u64), region);
    }
    buf
}

/// Pick a content kind with weights (text, binary, random).
pub fn pick_content(rng: &mut Rng, w: [u64; 3]) -> Content {
    let x = rng.below(w[0] + w[1] + w[2]);
    if x < w[0] {
        Content::Text
    } else if x < w[0] + w[1] {
        Content::Binary
    } else {
        Content::Random
    }
}

/// A value from /proc/self/status in bytes (e.g. "VmHWM", "VmRSS").
pub fn proc_status_bytes(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
}

/// Total size of the regular files under `dir`.
pub fn dir_size(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        if ft.is_dir() {
            total += dir_size(&entry.path())?;
        } else if ft.is_file() {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// Bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / MIB as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic() {
        let a = mixed_buffer(7, 9 << 20);
        let b = mixed_buffer(7, 9 << 20);
        assert_eq!(a, b);
        assert_ne!(a, mixed_buffer(8, 9 << 20));
    }

    #[test]
    fn text_fills_exactly() {
        for len in [0usize, 1, 7, 100, 65_537] {
            let mut buf = vec![0xAAu8; len];
            fill_text(&mut Rng::new(len as u64), &mut buf);
            assert!(buf.iter().all(|&b| b != 0xAA));
        }
    }

    #[test]
    fn compressibility_is_plausible() -> Result<(), Box<dyn std::error::Error>> {
        let mut rng = Rng::new(1);
        for (kind, lo, hi) in [
            (Content::Text, 2.5, 8.0),
            (Content::Binary, 1.5, 5.0),
            (Content::Random, 0.9, 1.01),
        ] {
            let mut buf = vec![0u8; 1 << 20];
            kind.fill(&mut rng, &mut buf);
            let z = zstd::bulk::compress(&buf, 3)?;
            let ratio = buf.len() as f64 / z.len() as f64;
            assert!(ratio > lo && ratio < hi, "{kind:?}: ratio {ratio}");
        }
        Ok(())
    }

    #[test]
    fn below_is_in_range() {
        let mut r = Rng::new(3);
        for n in 1..1000 {
            assert!(r.below(n) < n);
        }
    }
}

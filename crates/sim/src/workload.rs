//! Workload payloads: a seeded byte generator whose output does not depend
//! on how it is chunked (so 10 MB bodies are generated on the fly and never
//! stored whole), and incremental SHA-256 digests for end-to-end checks.

use crate::engine::rng::Rng;
use sha2::{Digest, Sha256};

/// A deterministic stream of pseudo-random bytes.
#[derive(Clone, Debug)]
pub struct PayloadGen {
    rng: Rng,
    spare: [u8; 8],
    spare_len: usize,
}

impl PayloadGen {
    pub fn new(seed: u64) -> PayloadGen {
        PayloadGen {
            rng: Rng::stream(seed, 0x5041_594C_4F41_4400),
            spare: [0; 8],
            spare_len: 0,
        }
    }

    /// Fills `buf` with the next bytes of the stream.
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut i = 0;
        while i < buf.len() && self.spare_len > 0 {
            buf[i] = self.spare[8 - self.spare_len];
            self.spare_len -= 1;
            i += 1;
        }
        let rest = &mut buf[i..];
        let whole = rest.len() / 8 * 8;
        self.rng.fill(&mut rest[..whole]);
        let tail = &mut rest[whole..];
        if !tail.is_empty() {
            self.spare = self.rng.next_u64().to_le_bytes();
            tail.copy_from_slice(&self.spare[..tail.len()]);
            self.spare_len = 8 - tail.len();
        }
    }
}

/// Incremental SHA-256, or a disabled digest (bulk studies that move
/// gigabytes and do not check bytes) whose result is all zeros.
#[derive(Clone)]
pub struct Hasher(Option<Sha256>);

impl Default for Hasher {
    fn default() -> Self {
        Hasher(Some(Sha256::default()))
    }
}

impl Hasher {
    /// A digest that hashes when `on`, and otherwise ignores its input.
    pub fn new(on: bool) -> Hasher {
        Hasher(on.then(Sha256::default))
    }

    pub fn update(&mut self, data: &[u8]) {
        if let Some(h) = &mut self.0 {
            h.update(data);
        }
    }

    pub fn finish(self) -> [u8; 32] {
        self.0.map_or([0; 32], |h| h.finalize().into())
    }
}

/// Lower-case hex of a digest.
pub fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_independent_of_chunking() {
        let mut whole = vec![0u8; 1000];
        PayloadGen::new(4).fill(&mut whole);
        let mut g = PayloadGen::new(4);
        let mut parts = Vec::new();
        for n in [1usize, 7, 8, 3, 13, 500, 468] {
            let mut b = vec![0u8; n];
            g.fill(&mut b);
            parts.extend_from_slice(&b);
        }
        assert_eq!(parts, whole);
        let mut other = vec![0u8; 1000];
        PayloadGen::new(5).fill(&mut other);
        assert_ne!(other, whole);
    }

    #[test]
    fn sha256_of_abc() {
        let mut h = Hasher::default();
        h.update(b"ab");
        h.update(b"c");
        assert_eq!(
            hex(&h.finish()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut off = Hasher::new(false);
        off.update(b"abc");
        assert_eq!(off.finish(), [0; 32]);
    }
}

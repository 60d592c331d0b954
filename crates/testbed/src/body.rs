//! Deterministic request/response bodies: connection `conn` of a run with
//! `seed` carries the byte stream `stream(seed, conn)`, 8 bytes per
//! SplitMix64 step, so a 10 MB body is generated (and its SHA-256 known)
//! without storing it.

use sha2::{Digest, Sha256};

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Generates a body in chunks.
#[derive(Clone, Debug)]
pub struct Body {
    key: u64,
    pos: u64,
    len: u64,
}

impl Body {
    pub fn new(seed: u64, conn: u64, len: u64) -> Body {
        Body {
            key: splitmix(seed ^ splitmix(conn.wrapping_add(1))),
            pos: 0,
            len,
        }
    }

    pub fn remaining(&self) -> u64 {
        self.len - self.pos
    }

    /// Fills `buf` with the next bytes; returns how many (0 at the end).
    pub fn fill(&mut self, buf: &mut [u8]) -> usize {
        let n = (buf.len() as u64).min(self.remaining()) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            let p = self.pos + i as u64;
            *b = (splitmix(self.key ^ (p / 8)) >> ((p % 8) * 8)) as u8;
        }
        self.pos += n as u64;
        n
    }

    /// The whole body (tests, small files).
    pub fn to_vec(mut self) -> Vec<u8> {
        let mut v = vec![0; self.remaining() as usize];
        self.fill(&mut v);
        v
    }
}

/// SHA-256 of `Body::new(seed, conn, len)`.
pub fn digest(seed: u64, conn: u64, len: u64) -> [u8; 32] {
    let mut b = Body::new(seed, conn, len);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = b.fill(&mut buf);
        if n == 0 {
            return h.finalize().into();
        }
        h.update(&buf[..n]);
    }
}

/// SHA-256 of a file's contents (`None` if it cannot be read).
pub fn file_digest(path: &std::path::Path) -> Option<[u8; 32]> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            return Some(h.finalize().into());
        }
        h.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking_does_not_change_the_stream() {
        let whole = Body::new(7, 3, 1000).to_vec();
        let mut b = Body::new(7, 3, 1000);
        let mut parts = Vec::new();
        let mut buf = [0u8; 13];
        loop {
            let n = b.fill(&mut buf);
            if n == 0 {
                break;
            }
            parts.extend_from_slice(&buf[..n]);
        }
        assert_eq!(whole, parts);
        assert_eq!(whole.len(), 1000);
    }

    #[test]
    fn streams_differ_by_seed_and_connection_and_digest_matches() {
        let a = Body::new(1, 0, 64).to_vec();
        assert_ne!(a, Body::new(2, 0, 64).to_vec());
        assert_ne!(a, Body::new(1, 1, 64).to_vec());
        let want: [u8; 32] = Sha256::digest(Body::new(5, 9, 200_001).to_vec()).into();
        assert_eq!(digest(5, 9, 200_001), want);
        let path = std::env::temp_dir().join(ftsplice_linux::unique_name("bodytest"));
        std::fs::write(&path, Body::new(5, 9, 200_001).to_vec()).unwrap();
        assert_eq!(file_digest(&path), Some(want));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(file_digest(&path), None);
    }
}

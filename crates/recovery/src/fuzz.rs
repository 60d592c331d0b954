//! Fuzz entry points, shared by the cargo-fuzz targets in `/fuzz` and by
//! the property tests. Each panics only when an invariant is broken.

use std::sync::Arc;

use crate::http::Transactionalizer;
use crate::log::Direction;
use crate::tags::TagTable;

/// Feeds `stream` to `t` in chunks whose sizes follow a generator seeded by `seed`.
fn feed_chunked(t: &mut Transactionalizer, dir: Direction, stream: &[u8], seed: u32) {
    let mut x = seed | 1;
    let mut rest = stream;
    while !rest.is_empty() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let n = (x as usize % 23 + 1).min(rest.len());
        t.feed(dir, &rest[..n]);
        rest = &rest[n..];
    }
}

fn run(req: &[u8], resp: &[u8], seed: Option<u32>) -> Transactionalizer {
    let mut t = Transactionalizer::new(Arc::new(TagTable::conservative()));
    for (dir, s) in [
        (Direction::ClientToServer, req),
        (Direction::ServerToClient, resp),
    ] {
        match seed {
            Some(seed) => feed_chunked(&mut t, dir, s, seed),
            None => t.feed(dir, s),
        }
    }
    t.on_fin(Direction::ServerToClient);
    t.on_fin(Direction::ClientToServer);
    t
}

/// Splits `data` into a request stream and a response stream (the first two
/// bytes choose where), transactionalizes them fed whole and fed in
/// pseudo-random chunks, and checks: no panic; both give the same
/// transactions and the same error; every transaction's ranges are ordered,
/// contiguous with its neighbours' and within the fed bytes.
pub fn fuzz_transactionalize(data: &[u8]) {
    let [a, b, rest @ ..] = data else { return };
    let split = usize::from(u16::from_le_bytes([*a, *b])) % (rest.len() + 1);
    let (req, resp) = rest.split_at(split);
    let whole = run(req, resp, None);
    let chunked = run(req, resp, Some(u32::from(*a) << 8 | u32::from(*b)));
    assert_eq!(whole.error(), chunked.error());
    let txs: Vec<_> = whole.transactions().cloned().collect();
    let txs2: Vec<_> = chunked.transactions().cloned().collect();
    assert_eq!(txs, txs2);
    let mut req_end = 0;
    let mut resp_end = 0;
    for t in &txs {
        assert!(req_end <= t.req.start);
        assert!(t.req.start < t.req_head_end && t.req_head_end <= t.req.end);
        assert!(t.req.end <= req.len() as u64);
        req_end = t.req.end;
        if let Some(r) = &t.resp {
            assert_eq!(r.start, resp_end, "responses are back to back");
            assert!(r.start <= r.end && r.end <= resp.len() as u64);
            if let Some(h) = t.resp_head_end {
                assert!(r.start < h && h <= r.end);
            }
            resp_end = r.end;
        }
        assert!(!t.resp_done || t.resp.is_some());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_entry_accepts_valid_and_garbage_input() {
        let req = b"GET / HTTP/1.1\r\n\r\nPOST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 204 x\r\n\r\n";
        let mut data = (req.len() as u16).to_le_bytes().to_vec();
        data.extend_from_slice(req);
        data.extend_from_slice(resp);
        fuzz_transactionalize(&data);
        fuzz_transactionalize(b"");
        fuzz_transactionalize(b"\x05\x00GET /\r\n\r\n\x00\xff");
    }
}

//! Throughput of the logger's per-packet path: logging, transactionalizing
//! and trimming a keep-alive HTTP/1.1 connection carried in 1448-byte
//! segments, and the transactionalizer alone.
//!
//! `cargo bench -p ftsplice-recovery --bench logger`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ftsplice_proto::Instant;
use ftsplice_recovery::http::Transactionalizer;
use ftsplice_recovery::log::Direction;
use ftsplice_recovery::logger::{Logger, LoggerConfig};
use ftsplice_recovery::tags::TagTable;

const MSS: usize = 1448;

/// 200 exchanges: a GET and a 4 KiB response, half of them chunked.
fn streams() -> (Vec<u8>, Vec<u8>, Vec<(usize, usize)>) {
    let (mut req, mut resp, mut ends) = (Vec::new(), Vec::new(), Vec::new());
    let body = vec![b'x'; 4096];
    for i in 0..200 {
        req.extend(
            format!("GET /static/{i}.js HTTP/1.1\r\nHost: mail.example\r\nAccept: */*\r\n\r\n")
                .bytes(),
        );
        if i % 2 == 0 {
            resp.extend(
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).bytes(),
            );
            resp.extend(&body);
        } else {
            resp.extend(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n");
            resp.extend(&body);
            resp.extend(b"\r\n0\r\n\r\n");
        }
        ends.push((req.len(), resp.len()));
    }
    (req, resp, ends)
}

fn segments(stream: &[u8], from: usize, to: usize, mut f: impl FnMut(u64, &[u8])) {
    let mut at = from;
    while at < to {
        let n = (to - at).min(MSS);
        f(at as u64, &stream[at..at + n]);
        at += n;
    }
}

fn bench(c: &mut Criterion) {
    let (req, resp, ends) = streams();
    let mut g = c.benchmark_group("recovery");
    g.throughput(Throughput::Bytes((req.len() + resp.len()) as u64));
    g.bench_function("logger_keepalive_200x4KiB", |b| {
        b.iter(|| {
            let now = Instant::from_millis(1);
            let mut l = Logger::new(
                now,
                LoggerConfig::default(),
                Arc::new(TagTable::conservative()),
            );
            l.open(1);
            let (mut rq, mut rs) = (0, 0);
            for (i, &(rq_end, rs_end)) in ends.iter().enumerate() {
                segments(&req, rq, rq_end, |o, s| {
                    black_box(l.on_segment(now, 1, Direction::ClientToServer, o, s));
                });
                l.on_ack(1, Direction::ClientToServer, rq_end as u64);
                segments(&resp, rs, rs_end, |o, s| {
                    black_box(l.on_segment(now, 1, Direction::ServerToClient, o, s));
                });
                l.on_ack(1, Direction::ServerToClient, rs_end as u64);
                l.on_state_applied(now, 1, i as u64 + 1);
                (rq, rs) = (rq_end, rs_end);
            }
            while l.poll_event().is_some() {}
            assert_eq!(l.held(), 0);
        })
    });
    g.bench_function("transactionalizer_200x4KiB", |b| {
        b.iter(|| {
            let mut t = Transactionalizer::new(Arc::new(TagTable::conservative()));
            segments(&req, 0, req.len(), |_, s| {
                t.feed(Direction::ClientToServer, s)
            });
            segments(&resp, 0, resp.len(), |_, s| {
                t.feed(Direction::ServerToClient, s)
            });
            assert_eq!(t.last_complete(), 200);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

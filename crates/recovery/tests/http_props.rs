//! Property tests of the transactionalizer: generated valid HTTP/1.1
//! exchanges are cut at exactly the generated offsets however the bytes are
//! split, and arbitrary bytes never panic it.

use std::ops::Range;
use std::sync::Arc;

use ftsplice_recovery::fuzz::fuzz_transactionalize;
use ftsplice_recovery::http::Transactionalizer;
use ftsplice_recovery::log::Direction;
use ftsplice_recovery::tags::TagTable;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum BodySpec {
    Length(usize),
    Chunked(Vec<usize>, bool),
}

#[derive(Clone, Debug)]
struct TxSpec {
    method: &'static str,
    req_body: Option<BodySpec>,
    interim: bool,
    status: u16,
    resp_body: BodySpec,
}

fn body_spec() -> impl Strategy<Value = BodySpec> {
    prop_oneof![
        (0usize..300).prop_map(BodySpec::Length),
        (proptest::collection::vec(1usize..200, 0..4), any::<bool>())
            .prop_map(|(c, t)| BodySpec::Chunked(c, t)),
    ]
}

fn tx_spec() -> impl Strategy<Value = TxSpec> {
    (
        prop_oneof![Just("GET"), Just("HEAD"), Just("POST"), Just("PUT")],
        proptest::option::of(body_spec()),
        any::<bool>(),
        prop_oneof![Just(200u16), Just(204), Just(304), Just(404), Just(500)],
        body_spec(),
    )
        .prop_map(|(method, req_body, interim, status, resp_body)| TxSpec {
            method,
            req_body,
            interim,
            status,
            resp_body,
        })
}

fn framing(b: &BodySpec) -> String {
    match b {
        BodySpec::Length(n) => format!("Content-Length: {n}\r\n"),
        BodySpec::Chunked(..) => "Transfer-Encoding: chunked\r\n".into(),
    }
}

fn body(b: &BodySpec) -> Vec<u8> {
    match b {
        BodySpec::Length(n) => vec![b'b'; *n],
        BodySpec::Chunked(chunks, trailer) => {
            let mut out = Vec::new();
            for n in chunks {
                out.extend(format!("{n:x};ext=1\r\n").bytes());
                out.extend(vec![b'c'; *n]);
                out.extend(b"\r\n");
            }
            out.extend(b"0\r\n");
            if *trailer {
                out.extend(b"Trailer-Field: v\r\n");
            }
            out.extend(b"\r\n");
            out
        }
    }
}

type Expected = Vec<(Range<u64>, Range<u64>)>;

fn build(specs: &[TxSpec]) -> (Vec<u8>, Vec<u8>, Expected) {
    let (mut req, mut resp, mut want) = (Vec::new(), Vec::new(), Vec::new());
    for (i, s) in specs.iter().enumerate() {
        let r0 = req.len() as u64;
        req.extend(format!("{} /p{i} HTTP/1.1\r\nHost: h\r\n", s.method).bytes());
        if let Some(b) = &s.req_body {
            req.extend(framing(b).bytes());
        }
        req.extend(b"\r\n");
        if let Some(b) = &s.req_body {
            req.extend(body(b));
        }
        let s0 = resp.len() as u64;
        if s.interim {
            resp.extend(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        resp.extend(format!("HTTP/1.1 {} X\r\n", s.status).bytes());
        let no_body = s.method == "HEAD" || s.status == 204 || s.status == 304;
        if !(no_body && s.status != 200) || s.method == "HEAD" {
            resp.extend(framing(&s.resp_body).bytes());
        }
        resp.extend(b"\r\n");
        if !no_body {
            resp.extend(body(&s.resp_body));
        }
        want.push((r0..req.len() as u64, s0..resp.len() as u64));
    }
    (req, resp, want)
}

fn feed_split(t: &mut Transactionalizer, dir: Direction, data: &[u8], cuts: &[usize]) {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    cuts.sort_unstable();
    let mut at = 0;
    for c in cuts.into_iter().chain([data.len()]) {
        t.feed(dir, &data[at..c]);
        at = c;
    }
}

proptest! {
    #[test]
    fn any_split_gives_the_generated_transactions(
        specs in proptest::collection::vec(tx_spec(), 1..6),
        req_cuts in proptest::collection::vec(any::<usize>(), 0..20),
        resp_cuts in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let (req, resp, want) = build(&specs);
        let mut t = Transactionalizer::new(Arc::new(TagTable::conservative()));
        feed_split(&mut t, Direction::ClientToServer, &req, &req_cuts);
        feed_split(&mut t, Direction::ServerToClient, &resp, &resp_cuts);
        prop_assert_eq!(t.error(), None);
        let got: Expected = t
            .transactions()
            .map(|x| (x.req.clone(), x.resp.clone().unwrap_or(0..0)))
            .collect();
        prop_assert_eq!(got, want);
        prop_assert!(t.transactions().all(|x| x.req_done && x.resp_done));
        prop_assert_eq!(t.last_complete(), specs.len() as u64);
    }

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        fuzz_transactionalize(&data);
    }

    #[test]
    fn mutated_valid_streams_never_panic(
        specs in proptest::collection::vec(tx_spec(), 1..4),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let (req, resp, _) = build(&specs);
        let mut data = (req.len() as u16).to_le_bytes().to_vec();
        data.extend(req);
        data.extend(resp);
        for (at, byte) in flips {
            let i = 2 + at % (data.len() - 2);
            data[i] = byte;
        }
        fuzz_transactionalize(&data);
    }
}

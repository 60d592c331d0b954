//! Fixture tests of the transactionalizer.

use super::*;
use crate::tags::TagRuleSpec;
use Direction::{ClientToServer as C2S, ServerToClient as S2C};

fn tz() -> Transactionalizer {
    Transactionalizer::new(Arc::new(TagTable::conservative()))
}

fn run(req: &[u8], resp: &[u8]) -> Transactionalizer {
    let mut t = tz();
    t.feed(C2S, req);
    t.feed(S2C, resp);
    t
}

fn all(t: &Transactionalizer) -> Vec<Transaction> {
    t.transactions().cloned().collect()
}

#[test]
fn keep_alive_get_with_content_length() {
    let req = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    let t = run(req, resp);
    assert_eq!(t.error(), None);
    let tx = &all(&t)[0];
    assert_eq!(
        (tx.num, tx.method.as_str(), tx.target.as_str()),
        (1, "GET", "/a")
    );
    assert_eq!(
        (tx.req.clone(), tx.req_head_end, tx.req_done),
        (0..28, 28, true)
    );
    assert_eq!(tx.resp, Some(0..43));
    assert_eq!(
        (tx.resp_head_end, tx.resp_done, tx.status),
        (Some(38), true, Some(200))
    );
    assert!(!tx.close);
    assert_eq!(t.last_complete(), 1);
}

#[test]
fn pipelined_head_chunked_and_no_content() {
    let req = b"HEAD /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nDELETE /3 HTTP/1.1\r\n\r\n";
    let r1 = &b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"[..];
    let r2 =
        &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n0\r\nT: 1\r\n\r\n"[..];
    let r3 = &b"HTTP/1.1 204 No Content\r\n\r\n"[..];
    let t = run(req, &[r1, r2, r3].concat());
    assert_eq!(t.error(), None);
    let txs = all(&t);
    assert_eq!(txs.len(), 3);
    assert_eq!(txs[0].req, 0..20);
    assert_eq!(txs[1].req, 20..39);
    assert_eq!(txs[2].req, 39..61);
    let (a, b) = (r1.len() as u64, (r1.len() + r2.len()) as u64);
    assert_eq!(txs[0].resp, Some(0..a));
    assert_eq!(txs[1].resp, Some(a..b));
    assert_eq!(txs[2].resp, Some(b..b + r3.len() as u64));
    assert!(txs.iter().all(|t| t.resp_done && t.req_done));
}

#[test]
fn post_with_expect_continue_keeps_interim_in_the_response() {
    let head = b"POST /send HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n";
    let mut t = tz();
    t.feed(C2S, head);
    assert!(!all(&t)[0].req_done);
    t.feed(S2C, b"HTTP/1.1 100 Continue\r\n\r\n");
    let tx = &all(&t)[0];
    assert_eq!(
        (tx.resp.clone(), tx.status, tx.resp_done),
        (Some(0..25), None, false)
    );
    t.feed(C2S, b"body");
    t.feed(S2C, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    let tx = &all(&t)[0];
    assert_eq!(tx.req, 0..head.len() as u64 + 4);
    assert_eq!(
        (tx.status, tx.resp_done, tx.resp_head_end),
        (Some(201), true, Some(68))
    );
    assert_eq!(tx.resp, Some(0..68));
}

#[test]
fn chunked_request_body() {
    let req = b"POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    let t = run(req, b"");
    let txs = all(&t);
    assert_eq!(txs.len(), 2);
    assert!(txs[0].req_done);
    assert_eq!(txs[0].req.end, txs[1].req.start);
    assert_eq!(txs[1].req.end, req.len() as u64);
}

#[test]
fn leading_empty_lines_are_skipped() {
    let t = run(b"\r\nGET / HTTP/1.1\r\n\r\n", b"");
    assert_eq!(all(&t)[0].req, 2..20);
}

#[test]
fn connection_close_ends_the_stream() {
    let t = run(
        b"GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        b"",
    );
    let e = t.error().unwrap();
    assert_eq!(
        (e.dir, e.offset, e.kind),
        (C2S, 37, ErrorKind::DataAfterClose)
    );
    // HTTP/1.0 closes by default, unless keep-alive.
    let t = run(
        b"GET / HTTP/1.0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\nX",
    );
    assert!(all(&t)[0].close);
    assert_eq!(t.error().unwrap().kind, ErrorKind::DataAfterClose);
    let t = run(
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        b"",
    );
    assert_eq!((t.error(), t.last_request()), (None, 2));
}

#[test]
fn body_delimited_by_close() {
    let mut t = run(
        b"GET / HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\nstreaming...",
    );
    assert!(!all(&t)[0].resp_done);
    assert_eq!(all(&t)[0].resp, Some(0..31));
    t.on_fin(S2C);
    let tx = &all(&t)[0];
    assert!(tx.resp_done && tx.close);
    assert_eq!(t.error(), None);
}

#[test]
fn fin_inside_a_message_is_truncation() {
    let mut t = run(
        b"GET / HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc",
    );
    t.on_fin(S2C);
    assert_eq!(t.error().unwrap().kind, ErrorKind::Truncated);
}

#[test]
fn response_without_request_and_upgrade_are_errors() {
    let t = run(b"", b"HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(t.error().unwrap().kind, ErrorKind::ResponseWithoutRequest);
    let t = run(b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 101 Switching\r\n\r\n");
    assert_eq!(t.error().unwrap().kind, ErrorKind::Upgraded);
    let t = run(b"CONNECT a:1 HTTP/1.1\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(t.error().unwrap().kind, ErrorKind::Upgraded);
    // After an error nothing more is parsed.
    let mut t = run(b"BAD\r\n\r\n", b"");
    let e = t.error();
    t.feed(C2S, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(t.error(), e);
    assert_eq!(t.transactions().count(), 0);
}

#[test]
fn oversized_head_is_an_error() {
    let mut t = tz();
    t.feed(C2S, b"GET / HTTP/1.1\r\n");
    t.feed(C2S, &vec![b'a'; MAX_HEAD]);
    assert_eq!(t.error().unwrap().kind, ErrorKind::HeadTooLarge);
}

#[test]
fn events_and_forgetting() {
    let mut t = run(
        b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 204 x\r\n\r\n",
    );
    let ev: Vec<_> = std::iter::from_fn(|| t.poll_event()).collect();
    assert_eq!(
        ev,
        [
            TxEvent::RequestComplete(1),
            TxEvent::RequestComplete(2),
            TxEvent::ResponseStarted(1),
            TxEvent::ResponseComplete(1)
        ]
    );
    t.forget_through(2);
    assert_eq!(t.transactions().map(|x| x.num).collect::<Vec<_>>(), [2]);
    assert!(t.get(1).is_none());
    assert_eq!(t.get(2).unwrap().num, 2);
}

#[test]
fn requests_are_tagged_from_the_table() {
    let table = TagTable::new(
        &[TagRuleSpec {
            method: "GET".into(),
            path: "/static/*".into(),
            deterministic: true,
            read_only: true,
            idempotent: true,
        }],
        Tags::CONSERVATIVE,
    )
    .unwrap();
    let mut t = Transactionalizer::new(Arc::new(table));
    t.feed(
        C2S,
        b"GET /static/a.css HTTP/1.1\r\n\r\nPOST /x HTTP/1.1\r\n\r\n",
    );
    let txs = all(&t);
    assert_eq!((txs[0].kind, txs[0].tags.read_only), (Kind::Rule(0), true));
    assert_eq!(
        (txs[1].kind, txs[1].tags),
        (Kind::Default, Tags::CONSERVATIVE)
    );
}

//! Test fixtures: a webmail-like keep-alive connection (the paper's
//! Action 2 in miniature) and its state frozen at any crash point.

use std::ops::Range;
use std::sync::Arc;

use crate::http::Transactionalizer;
use crate::log::{Budget, ConnLog, Direction, LogLimits, LogSnapshot};
use crate::plan::TxView;
use crate::tags::{TagRuleSpec, TagTable, Tags};

pub(crate) struct Exchange {
    pub req: &'static [u8],
    pub resp: &'static [u8],
}

/// 1 GET login page (read-only), 2 POST login (update), 3 GET inbox
/// (read-only, chunked), 4 POST send (update), 5 GET time (non-deterministic).
pub(crate) const WEBMAIL: [Exchange; 5] = [
    Exchange {
        req: b"GET /index.php HTTP/1.1\r\nHost: mail\r\n\r\n",
        resp: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n<form/>...",
    },
    Exchange {
        req: b"POST /login.php HTTP/1.1\r\nHost: mail\r\nContent-Length: 11\r\n\r\nuser=a&pw=b",
        resp: b"HTTP/1.1 302 Found\r\nLocation: /inbox\r\nContent-Length: 0\r\n\r\n",
    },
    Exchange {
        req: b"GET /inbox.php HTTP/1.1\r\nHost: mail\r\n\r\n",
        resp: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nmessage1\r\n8\r\nmessage2\r\n0\r\n\r\n",
    },
    Exchange {
        req: b"POST /send.php HTTP/1.1\r\nHost: mail\r\nContent-Length: 7\r\n\r\nto=b&m=",
        resp: b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nsent",
    },
    Exchange {
        req: b"GET /time HTTP/1.1\r\nHost: mail\r\n\r\n",
        resp: b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n12:00:00",
    },
];

pub(crate) fn table() -> Arc<TagTable> {
    let rule = |method: &str, path: &str, det, ro| TagRuleSpec {
        method: method.into(),
        path: path.into(),
        deterministic: det,
        read_only: ro,
        idempotent: ro,
    };
    Arc::new(
        TagTable::new(
            &[
                rule("GET", "/time", false, true),
                rule("GET", "/*.php", true, true),
                rule("POST", "/*.php", true, false),
            ],
            Tags::CONSERVATIVE,
        )
        .expect("valid fixture table"),
    )
}

pub(crate) fn streams() -> (Vec<u8>, Vec<u8>) {
    (
        WEBMAIL.iter().flat_map(|e| e.req.iter().copied()).collect(),
        WEBMAIL
            .iter()
            .flat_map(|e| e.resp.iter().copied())
            .collect(),
    )
}

/// Offsets of exchange `i` (0-based) in the (request, response) streams.
pub(crate) fn ranges(i: usize) -> (Range<u64>, Range<u64>) {
    let sum =
        |f: fn(&Exchange) -> usize, n: usize| WEBMAIL[..n].iter().map(f).sum::<usize>() as u64;
    let (rq, rs) = (sum(|e| e.req.len(), i), sum(|e| e.resp.len(), i));
    (
        rq..rq + WEBMAIL[i].req.len() as u64,
        rs..rs + WEBMAIL[i].resp.len() as u64,
    )
}

/// The log and transactions of a connection whose backend crashed after
/// `c2s` request bytes and `s2c` response bytes were logged.
pub(crate) fn crash_at(c2s: u64, s2c: u64) -> (LogSnapshot, TxView) {
    let (req, resp) = streams();
    let mut budget = Budget::new(1 << 20);
    let mut log = ConnLog::new(LogLimits::default());
    let mut t = Transactionalizer::new(table());
    let (req, resp) = (&req[..c2s as usize], &resp[..s2c as usize]);
    log.accept(&mut budget, Direction::ClientToServer, 0, req);
    log.accept(&mut budget, Direction::ServerToClient, 0, resp);
    t.feed(Direction::ClientToServer, req);
    t.feed(Direction::ServerToClient, resp);
    (log.snapshot(), TxView::of(&t))
}

//! The [`Transactionalizer`]: two incremental message readers, one per
//! direction, pairing request *i* with response *i* into [`Transaction`]s
//! numbered from 1 in connection order (0 means "no transaction", as T_S or
//! T_L of the paper before the first one).

use std::collections::VecDeque;
use std::mem;
use std::ops::Range;
use std::sync::Arc;

use super::body::{Body, Framing};
use super::head::{self, Fields, Te};
use super::{ErrorKind, HttpError, MAX_HEAD};
use crate::log::Direction;
use crate::tags::{Kind, TagTable, Tags};

/// Ordinal of a transaction on its connection, from 1.
pub type TxNum = u64;

/// Most requests waiting for their responses (pipelining depth).
const MAX_OUTSTANDING: usize = 1024;

/// One request and its response, mapped to stream offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    pub num: TxNum,
    pub method: String,
    pub target: String,
    /// The tag rule that matched (the detector's request kind).
    pub kind: Kind,
    pub tags: Tags,
    /// Client-to-server offsets of the request so far (head and body).
    pub req: Range<u64>,
    /// End of the request head (start of its body).
    pub req_head_end: u64,
    pub req_done: bool,
    /// Server-to-client offsets of the response so far (interim 1xx
    /// responses included); `None` until its first byte.
    pub resp: Option<Range<u64>>,
    /// End of the final response head.
    pub resp_head_end: Option<u64>,
    pub resp_done: bool,
    /// Final status code.
    pub status: Option<u16>,
    /// The request or the response closes the connection after this.
    pub close: bool,
}

/// Progress the logger acts on (detector timing, state-apply signals).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxEvent {
    RequestComplete(TxNum),
    ResponseStarted(TxNum),
    ResponseComplete(TxNum),
}

#[derive(Debug, Default)]
enum Phase {
    #[default]
    Idle,
    Head {
        start: u64,
        buf: Vec<u8>,
    },
    Body(Body),
    /// No more messages in this direction.
    Closed,
}

/// Cuts a connection's two byte streams into transactions. Feed each
/// direction's bytes in order, as they become contiguously logged.
#[derive(Debug)]
pub struct Transactionalizer {
    table: Arc<TagTable>,
    txs: VecDeque<Transaction>,
    /// Number of `txs[0]` (or of the next transaction when empty).
    first: TxNum,
    /// (request end, response end) of transaction `first - 1`.
    forgotten_ends: (u64, u64),
    next: TxNum,
    /// The transaction whose response comes next.
    resp_num: TxNum,
    req_off: u64,
    resp_off: u64,
    req_phase: Phase,
    resp_phase: Phase,
    error: Option<HttpError>,
    events: VecDeque<TxEvent>,
}

type Step = Result<(), (u64, ErrorKind)>;

/// Moves bytes from `data` into a head buffer until CRLF CRLF (or LF LF,
/// which the head parser then rejects); returns (consumed, complete).
fn take_head(buf: &mut Vec<u8>, data: &[u8]) -> (usize, bool) {
    for (i, &b) in data.iter().enumerate() {
        buf.push(b);
        if b == b'\n' && (buf.ends_with(b"\r\n\r\n") || buf.ends_with(b"\n\n")) {
            return (i + 1, true);
        }
        if buf.len() > MAX_HEAD {
            return (i + 1, false);
        }
    }
    (data.len(), false)
}

fn closes(http10: bool, f: &Fields) -> bool {
    f.close || (http10 && !f.keep_alive)
}

impl Transactionalizer {
    pub fn new(table: Arc<TagTable>) -> Self {
        Transactionalizer {
            table,
            txs: VecDeque::new(),
            first: 1,
            forgotten_ends: (0, 0),
            next: 1,
            resp_num: 1,
            req_off: 0,
            resp_off: 0,
            req_phase: Phase::Idle,
            resp_phase: Phase::Idle,
            error: None,
            events: VecDeque::new(),
        }
    }

    /// The terminal error, if the streams stopped being parseable.
    pub fn error(&self) -> Option<HttpError> {
        self.error
    }

    /// Offset up to which `dir` has been consumed.
    pub fn offset(&self, dir: Direction) -> u64 {
        match dir {
            Direction::ClientToServer => self.req_off,
            Direction::ServerToClient => self.resp_off,
        }
    }

    /// Transactions still held, oldest first.
    pub fn transactions(&self) -> impl Iterator<Item = &Transaction> {
        self.txs.iter()
    }

    pub fn get(&self, num: TxNum) -> Option<&Transaction> {
        let i = num.checked_sub(self.first)?;
        self.txs.get(usize::try_from(i).ok()?)
    }

    fn get_mut(&mut self, num: TxNum) -> Option<&mut Transaction> {
        let i = num.checked_sub(self.first)?;
        self.txs.get_mut(usize::try_from(i).ok()?)
    }

    /// T_L: the last transaction whose response is complete (0 if none).
    pub fn last_complete(&self) -> TxNum {
        self.resp_num - 1
    }

    /// (request end, response end) offsets of transaction `num` once its
    /// response is complete, also for the last forgotten one; (0, 0) for 0.
    pub fn ends_of(&self, num: TxNum) -> Option<(u64, u64)> {
        if num == 0 {
            return Some((0, 0));
        }
        if num + 1 == self.first {
            return Some(self.forgotten_ends);
        }
        let t = self.get(num).filter(|t| t.resp_done)?;
        Some((t.req.end, t.resp.as_ref().map_or(0, |r| r.end)))
    }

    /// Requests seen so far (the number of the newest transaction).
    pub fn last_request(&self) -> TxNum {
        self.next - 1
    }

    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    /// Drops complete transactions up to `num` (they are no longer needed).
    pub fn forget_through(&mut self, num: TxNum) {
        while let Some(t) = self.txs.front() {
            if t.num > num || !t.req_done || !t.resp_done {
                break;
            }
            self.forgotten_ends = (t.req.end, t.resp.as_ref().map_or(0, |r| r.end));
            self.txs.pop_front();
            self.first += 1;
        }
    }

    /// Feeds the next contiguous bytes of `dir`.
    pub fn feed(&mut self, dir: Direction, data: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let r = match dir {
            Direction::ClientToServer => self.feed_requests(data),
            Direction::ServerToClient => self.feed_responses(data),
        };
        if let Err((offset, kind)) = r {
            self.error = Some(HttpError { dir, offset, kind });
        }
    }

    /// `dir` ended (FIN at the current offset).
    pub fn on_fin(&mut self, dir: Direction) {
        if self.error.is_some() {
            return;
        }
        let r = match dir {
            Direction::ClientToServer => match mem::replace(&mut self.req_phase, Phase::Closed) {
                Phase::Idle | Phase::Closed => Ok(()),
                _ => Err((self.req_off, ErrorKind::Truncated)),
            },
            Direction::ServerToClient => match mem::replace(&mut self.resp_phase, Phase::Closed) {
                Phase::Idle | Phase::Closed => Ok(()),
                Phase::Body(mut b) => match b.close() {
                    Ok(()) => {
                        self.complete_response(true);
                        Ok(())
                    }
                    Err(k) => Err((self.resp_off, k)),
                },
                Phase::Head { .. } => Err((self.resp_off, ErrorKind::Truncated)),
            },
        };
        if let Err((offset, kind)) = r {
            self.error = Some(HttpError { dir, offset, kind });
        }
    }

    fn feed_requests(&mut self, mut data: &[u8]) -> Step {
        while !data.is_empty() {
            let n = match mem::take(&mut self.req_phase) {
                Phase::Closed => return Err((self.req_off, ErrorKind::DataAfterClose)),
                Phase::Idle if data[0] == b'\r' || data[0] == b'\n' => 1,
                Phase::Idle => {
                    if self.next - self.resp_num >= MAX_OUTSTANDING as u64 {
                        return Err((self.req_off, ErrorKind::TooManyOutstanding));
                    }
                    self.req_phase = Phase::Head {
                        start: self.req_off,
                        buf: Vec::new(),
                    };
                    0
                }
                Phase::Head { start, mut buf } => {
                    let (n, complete) = take_head(&mut buf, data);
                    if complete {
                        self.req_off += n as u64;
                        self.start_request(start, &buf)?;
                        data = &data[n..];
                        continue;
                    }
                    if buf.len() > MAX_HEAD {
                        return Err((start, ErrorKind::HeadTooLarge));
                    }
                    self.req_phase = Phase::Head { start, buf };
                    n
                }
                Phase::Body(mut body) => {
                    let n = match body.advance(data) {
                        Ok(n) => n,
                        Err((at, k)) => {
                            // Record the bytes before the bad one, as a
                            // byte-by-byte feed would have.
                            self.req_off += at as u64;
                            let (num, off) = (self.next - 1, self.req_off);
                            if let Some(t) = self.get_mut(num) {
                                t.req.end = off;
                            }
                            return Err((off, k));
                        }
                    };
                    self.req_off += n as u64;
                    data = &data[n..];
                    self.request_progress(body);
                    continue;
                }
            };
            self.req_off += n as u64;
            data = &data[n..];
        }
        Ok(())
    }

    fn start_request(&mut self, start: u64, buf: &[u8]) -> Step {
        let h = head::request(buf).map_err(|k| (start, k))?;
        let framing = match (h.fields.te, h.fields.content_length) {
            (Some(_), _) => Framing::Chunked,
            (None, Some(n)) => Framing::Length(n),
            (None, None) => Framing::None,
        };
        let (kind, tags) = self.table.lookup(&h.method, &h.target);
        let close = closes(h.http10, &h.fields);
        self.txs.push_back(Transaction {
            num: self.next,
            method: h.method,
            target: h.target,
            kind,
            tags,
            req: start..self.req_off,
            req_head_end: self.req_off,
            req_done: false,
            resp: None,
            resp_head_end: None,
            resp_done: false,
            status: None,
            close,
        });
        self.next += 1;
        self.request_progress(Body::new(framing));
        Ok(())
    }

    /// Records request bytes consumed; completes the request at its end.
    fn request_progress(&mut self, body: Body) {
        let (num, off) = (self.next - 1, self.req_off);
        let done = body.is_done();
        let Some(t) = self.get_mut(num) else { return };
        t.req.end = off;
        t.req_done = done;
        let close = t.close;
        self.req_phase = match (done, close) {
            (false, _) => Phase::Body(body),
            (true, false) => Phase::Idle,
            (true, true) => Phase::Closed,
        };
        if done {
            self.events.push_back(TxEvent::RequestComplete(num));
        }
    }

    fn feed_responses(&mut self, mut data: &[u8]) -> Step {
        while !data.is_empty() {
            match mem::take(&mut self.resp_phase) {
                Phase::Closed => return Err((self.resp_off, ErrorKind::DataAfterClose)),
                Phase::Idle => {
                    let (num, off) = (self.resp_num, self.resp_off);
                    let Some(t) = self.get_mut(num) else {
                        return Err((off, ErrorKind::ResponseWithoutRequest));
                    };
                    if t.resp.is_none() {
                        t.resp = Some(off..off);
                        self.events.push_back(TxEvent::ResponseStarted(num));
                    }
                    self.resp_phase = Phase::Head {
                        start: off,
                        buf: Vec::new(),
                    };
                }
                Phase::Head { start, mut buf } => {
                    let (n, complete) = take_head(&mut buf, data);
                    self.resp_off += n as u64;
                    data = &data[n..];
                    self.set_resp_end();
                    if complete {
                        self.response_head(start, &buf)?;
                    } else if buf.len() > MAX_HEAD {
                        return Err((start, ErrorKind::HeadTooLarge));
                    } else {
                        self.resp_phase = Phase::Head { start, buf };
                    }
                }
                Phase::Body(mut body) => {
                    let n = match body.advance(data) {
                        Ok(n) => n,
                        Err((at, k)) => {
                            self.resp_off += at as u64;
                            self.set_resp_end();
                            return Err((self.resp_off, k));
                        }
                    };
                    self.resp_off += n as u64;
                    data = &data[n..];
                    self.set_resp_end();
                    if body.is_done() {
                        self.complete_response(false);
                    } else {
                        self.resp_phase = Phase::Body(body);
                    }
                }
            }
        }
        Ok(())
    }

    fn set_resp_end(&mut self) {
        let (num, off) = (self.resp_num, self.resp_off);
        if let Some(r) = self.get_mut(num).and_then(|t| t.resp.as_mut()) {
            r.end = off;
        }
    }

    fn response_head(&mut self, start: u64, buf: &[u8]) -> Step {
        let h = head::response(buf).map_err(|k| (start, k))?;
        let (num, off) = (self.resp_num, self.resp_off);
        let Some(t) = self.get_mut(num) else {
            return Err((start, ErrorKind::ResponseWithoutRequest));
        };
        let connect_ok = t.method == "CONNECT" && (200..300).contains(&h.status);
        if h.status == 101 || connect_ok {
            return Err((start, ErrorKind::Upgraded));
        }
        if h.status < 200 {
            // Interim response: the final one follows.
            return Ok(());
        }
        let framing = if t.method == "HEAD" || h.status == 204 || h.status == 304 {
            Framing::None
        } else {
            match (h.fields.te, h.fields.content_length) {
                (Some(Te::Chunked), _) => Framing::Chunked,
                (Some(Te::Other), _) | (None, None) => Framing::UntilClose,
                (None, Some(n)) => Framing::Length(n),
            }
        };
        t.status = Some(h.status);
        t.resp_head_end = Some(off);
        t.close |= closes(h.http10, &h.fields) || framing == Framing::UntilClose;
        let body = Body::new(framing);
        if body.is_done() {
            self.complete_response(false);
        } else {
            self.resp_phase = Phase::Body(body);
        }
        Ok(())
    }

    fn complete_response(&mut self, at_fin: bool) {
        let num = self.resp_num;
        let close = self.get_mut(num).is_some_and(|t| {
            t.resp_done = true;
            t.close
        });
        self.events.push_back(TxEvent::ResponseComplete(num));
        self.resp_num += 1;
        self.resp_phase = if close || at_fin {
            Phase::Closed
        } else {
            Phase::Idle
        };
    }
}

#[cfg(test)]
mod tests;

//! The client load: many concurrent HTTP/1.1 PUTs or GETs from client
//! namespaces, one thread and one TCP connection each, with deterministic
//! bodies ([`crate::body`]) hashed on the fly. Every transfer records when
//! its payload moved (each completed write or read), which is what the
//! fault analysis ([`crate::timeline`]) measures stalls from. Senders use a
//! small send buffer so a completed write means the peer acknowledged
//! recent data, not that the kernel buffered megabytes.

use crate::body::Body;
use ftsplice_linux::NetNs;
use sha2::{Digest, Sha256};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Bytes per write/read.
const CHUNK: usize = 16 * 1024;
/// Send buffer of uploading sockets (the kernel doubles it).
const SNDBUF: usize = 64 * 1024;

/// Payload bytes moved so far, in total and per connection, and how many
/// transfers ended.
#[derive(Debug, Default)]
pub struct Progress {
    bytes: AtomicU64,
    per_conn: Vec<AtomicU64>,
    ended: Vec<AtomicBool>,
    done: AtomicU64,
}

impl Progress {
    /// For a load of `conns` connections.
    pub fn new(conns: u64) -> Progress {
        Progress {
            bytes: AtomicU64::new(0),
            per_conn: (0..conns).map(|_| AtomicU64::new(0)).collect(),
            ended: (0..conns).map(|_| AtomicBool::new(false)).collect(),
            done: AtomicU64::new(0),
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Bytes moved by the still running connection that moved the fewest
    /// (`u64::MAX` once none runs).
    pub fn min_conn(&self) -> u64 {
        self.per_conn
            .iter()
            .zip(&self.ended)
            .filter(|(_, e)| !e.load(Ordering::Relaxed))
            .map(|(b, _)| b.load(Ordering::Relaxed))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Transfers that ended (completed or not).
    pub fn ended(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Whether every transfer ended (completed or not).
    pub fn finished(&self) -> bool {
        self.done.load(Ordering::Relaxed) >= self.per_conn.len() as u64
    }

    fn moved(&self, conn: u64, n: usize) {
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(c) = self.per_conn.get(conn as usize) {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// One transfer's result and timeline (milliseconds since the run start).
#[derive(Clone, Debug)]
pub struct Transfer {
    pub conn: u64,
    /// The client's port (0 until connected), to find the connection in
    /// the daemons' logs.
    pub local_port: u16,
    /// HTTP status, or why the transfer broke.
    pub status: Result<u16, String>,
    pub start_ms: f64,
    pub end_ms: f64,
    /// Payload bytes moved.
    pub bytes: u64,
    /// SHA-256 of the payload sent (PUT) or received (GET).
    pub digest: [u8; 32],
    /// When payload moved.
    pub moves: Vec<f64>,
}

/// What each connection does.
#[derive(Clone, Debug)]
pub enum Request {
    /// `PUT /up/<conn>.bin` with `size` bytes of `Body(seed, conn)`.
    Put { size: u64, seed: u64 },
    /// `GET /files/<conn % files>.bin`.
    Get { files: u64 },
}

/// A load: `conns` connections to `target`, spread over the clients.
#[derive(Clone, Debug)]
pub struct Load {
    pub target: SocketAddrV4,
    pub conns: u64,
    pub request: Request,
    /// Per-connection I/O timeout (a transfer stuck this long is broken).
    pub timeout: Duration,
}

fn ms_since(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64() * 1e3
}

/// Starts every connection (round robin over `clients`); join the handles
/// for the results.
pub fn start(
    clients: &[&NetNs],
    load: &Load,
    progress: &Arc<Progress>,
    t0: Instant,
) -> Vec<JoinHandle<ftsplice_linux::Result<Transfer>>> {
    (0..load.conns)
        .map(|conn| {
            let ns = clients[conn as usize % clients.len()];
            let load = load.clone();
            let progress = progress.clone();
            ns.spawn(move || one(conn, &load, &progress, t0))
        })
        .collect()
}

/// Joins [`start`]'s handles.
pub fn join(handles: Vec<JoinHandle<ftsplice_linux::Result<Transfer>>>) -> Vec<Transfer> {
    handles
        .into_iter()
        .enumerate()
        .map(|(i, h)| match h.join() {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => failed(i as u64, format!("namespace: {e}")),
            Err(_) => failed(i as u64, "client thread panicked".into()),
        })
        .collect()
}

fn failed(conn: u64, why: String) -> Transfer {
    Transfer {
        conn,
        local_port: 0,
        status: Err(why),
        start_ms: 0.0,
        end_ms: 0.0,
        bytes: 0,
        digest: [0; 32],
        moves: Vec::new(),
    }
}

fn connect(target: SocketAddrV4, timeout: Duration, sndbuf: bool) -> std::io::Result<TcpStream> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    if sndbuf {
        s.set_send_buffer_size(SNDBUF)?;
    }
    s.connect_timeout(&target.into(), timeout.min(Duration::from_secs(10)))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    Ok(s.into())
}

fn one(conn: u64, load: &Load, progress: &Progress, t0: Instant) -> Transfer {
    let start_ms = ms_since(t0);
    let mut t = Transfer {
        conn,
        local_port: 0,
        status: Err(String::new()),
        start_ms,
        end_ms: start_ms,
        bytes: 0,
        digest: [0; 32],
        moves: Vec::new(),
    };
    let r = match &load.request {
        Request::Put { size, seed } => put(conn, load, *size, *seed, progress, t0, &mut t),
        Request::Get { files } => get(conn, conn % files, load, progress, t0, &mut t),
    };
    if let Some(e) = progress.ended.get(conn as usize) {
        e.store(true, Ordering::Relaxed);
    }
    progress.done.fetch_add(1, Ordering::Relaxed);
    t.status = r;
    t.end_ms = ms_since(t0);
    t
}

fn put(
    conn: u64,
    load: &Load,
    size: u64,
    seed: u64,
    progress: &Progress,
    t0: Instant,
    t: &mut Transfer,
) -> Result<u16, String> {
    let mut s = connect(load.target, load.timeout, true).map_err(|e| format!("connect: {e}"))?;
    t.local_port = s.local_addr().map_or(0, |a| a.port());
    let head = format!(
        "PUT /up/{conn}.bin HTTP/1.1\r\nHost: {}\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n",
        load.target
    );
    s.write_all(head.as_bytes())
        .map_err(|e| format!("request head: {e}"))?;
    let mut body = Body::new(seed, conn, size);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = body.fill(&mut buf);
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        s.write_all(&buf[..n])
            .map_err(|e| format!("body after {} bytes: {e}", t.bytes))?;
        t.bytes += n as u64;
        t.moves.push(ms_since(t0));
        progress.moved(conn, n);
    }
    t.digest = h.finalize().into();
    let mut resp = Vec::new();
    s.take(64 * 1024)
        .read_to_end(&mut resp)
        .map_err(|e| format!("response: {e}"))?;
    t.moves.push(ms_since(t0));
    status_of(&resp)
}

fn get(
    conn: u64,
    file: u64,
    load: &Load,
    progress: &Progress,
    t0: Instant,
    t: &mut Transfer,
) -> Result<u16, String> {
    let mut s = connect(load.target, load.timeout, false).map_err(|e| format!("connect: {e}"))?;
    t.local_port = s.local_addr().map_or(0, |a| a.port());
    let head = format!(
        "GET /files/{file}.bin HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        load.target
    );
    s.write_all(head.as_bytes())
        .map_err(|e| format!("request head: {e}"))?;
    let mut buf = vec![0u8; CHUNK * 4];
    let mut head = Vec::new();
    let mut h = Sha256::new();
    let mut in_body = false;
    let mut want: Option<u64> = None;
    loop {
        let n = s
            .read(&mut buf)
            .map_err(|e| format!("response after {} body bytes: {e}", t.bytes))?;
        if n == 0 {
            break;
        }
        t.moves.push(ms_since(t0));
        let mut data = &buf[..n];
        if !in_body {
            head.extend_from_slice(data);
            let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                if head.len() > 64 * 1024 {
                    return Err("response head over 64 kB".into());
                }
                continue;
            };
            in_body = true;
            want = content_length(&head[..end]);
            let rest = head.split_off(end + 4);
            h.update(&rest);
            t.bytes += rest.len() as u64;
            progress.moved(conn, rest.len());
            data = &[];
        }
        h.update(data);
        t.bytes += data.len() as u64;
        progress.moved(conn, data.len());
    }
    t.digest = h.finalize().into();
    let status = status_of(&head)?;
    match want {
        Some(w) if w != t.bytes => Err(format!(
            "status {status}, got {} of {w} body bytes",
            t.bytes
        )),
        _ => Ok(status),
    }
}

/// The status code of an HTTP/1.x response head.
pub fn status_of(resp: &[u8]) -> Result<u16, String> {
    let line = resp.split(|&b| b == b'\r').next().unwrap_or_default();
    let text = String::from_utf8_lossy(line);
    let mut parts = text.split_whitespace();
    match (parts.next(), parts.next().and_then(|c| c.parse().ok())) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => Ok(code),
        _ if resp.is_empty() => Err("no response".into()),
        _ => Err(format!("bad response line {text:?}")),
    }
}

fn content_length(head: &[u8]) -> Option<u64> {
    String::from_utf8_lossy(head).lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        assert_eq!(status_of(b"HTTP/1.1 201 Created\r\nX: y\r\n\r\n"), Ok(201));
        assert_eq!(status_of(b"HTTP/1.0 204 No Content\r\n"), Ok(204));
        assert!(status_of(b"").unwrap_err().contains("no response"));
        assert!(status_of(b"SSH-2.0\r\n").is_err());
        assert!(status_of(b"HTTP/1.1 abc\r\n").is_err());
    }

    #[test]
    fn finds_content_length() {
        assert_eq!(
            content_length(b"HTTP/1.1 200 OK\r\ncontent-LENGTH:  42\r\nA: b"),
            Some(42)
        );
        assert_eq!(content_length(b"HTTP/1.1 200 OK\r\nA: b"), None);
    }
}

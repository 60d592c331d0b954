//! One accepted client connection, from the request head to a splice
//! (paper §6, Figure 6, with kernel sockets):
//!
//! 1. read the request head, bounded in bytes and time (`parse_head`;
//!    400/431 for bad or oversized heads, 408 when too slow);
//! 2. route it (503 when no pool serves it or no SSA port is free);
//! 3. connect to the backend from the SSA with a port of this proxy's
//!    partition and the MSS clamp (502 when that fails);
//! 4. a client still sending (bytes queued after the head) is left, with
//!    no hold and unread, to run into its closed receive window; then the
//!    connection goes on hold, the client is frozen and its queued bytes
//!    are copied unread to the backend (`freeze_at_closed_window`), so the
//!    client had nothing in flight for the hold to drop. Otherwise:
//!    put both 4-tuples on hold in the data plane (data, SYN and FIN
//!    segments are dropped from now on and retransmitted later through the
//!    splice; pure ACKs still reach our sockets), forward everything read
//!    from the client, and relay until the two byte streams line up: no
//!    byte received and not relayed, none sent and not acknowledged, none
//!    held out of order, on either socket (`frozen::splice_from_frozen`'s
//!    conditions). A socket holding data beyond a hole (SACKed to its peer,
//!    unreadable) lifts the hold until the peer's retransmission fills the
//!    hole, since the hold would drop that retransmission
//!    (`OUT_OF_ORDER_LIFTS` times at most, then the connection is relayed);
//! 5. freeze both sockets with TCP_REPAIR, build the splice (the peers'
//!    latest TSvals come from the data plane's `ts_seen`), install it,
//!    replicate it and wait (bounded) for a peer's ack;
//! 6. let the backend socket send one window probe, whose answer reaches
//!    the client through the splice (a client stopped by its closed window
//!    sends on at once), and close both sockets silently. The SSA port
//!    stays taken until the splice is deleted (teardown).
//!
//! Connections accepted on an L4 route's listener skip step 1: the route
//! picks the pool, and step 4 relays whatever either side sent first (the
//! client's first bytes, or a server's greeting) before the freeze.
//!
//! If a step after the connect fails (no data plane, streams that do not
//! settle, a refused install), the connection is not lost: the hold is
//! lifted and the proxy relays it in user space, logged and counted.

use super::ports::PortAllocator;
use super::routing::{error_response, head_limits, status_for, NoRoute, Routing};
use crate::config::ProxyConfig;
use crate::control::{lock, Command, CreateOutcome, SharedSink};
use crate::frozen::{
    splice_from_frozen, splice_from_frozen_relayed, window_closed, FrozenError, PeerTsvals,
};
use crate::metrics::Registry;
use ftsplice_linux::{repair, FrozenSocket};
use ftsplice_proto::orphan_records::{PreKey, PreRecord};
use ftsplice_proto::route::head::{parse_head, HeadLimits, Parsed, RequestHead};
use ftsplice_proto::splice::{Splice, SpliceId, WindowScales};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// How long the two streams may take to line up before the connection is
/// relayed in user space instead.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);
/// Poll period while waiting for the streams to line up.
const SETTLE_POLL: Duration = Duration::from_micros(500);
/// Freeze attempts (a packet can slip in between the last check and the
/// freeze; the sockets are thawed and the streams settled again).
const FREEZE_ATTEMPTS: u32 = 20;
/// Longest wait for a sending client to run into its closed receive window
/// before the connection is settled under the hold (reading the client).
const DRAIN_LIMIT: Duration = Duration::from_millis(500);
/// A client whose queued bytes did not grow for this long, with its window
/// still open, has stopped sending by itself: settle under the hold.
const CLIENT_IDLE: Duration = Duration::from_millis(20);
/// Times the hold may be lifted so that a peer can fill a hole in front of
/// data our socket queued out of order; more, and the connection is relayed.
const OUT_OF_ORDER_LIFTS: u32 = 4;
/// Bound of the backend connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a connection was not spliced (metric label and log reason).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unspliced {
    #[error("client closed before a complete head")]
    ClientClosed,
    #[error("request head refused ({status}): {detail}")]
    BadHead { status: u16, detail: String },
    #[error("no complete request head within {0:?}")]
    HeadTimeout(Duration),
    #[error("no route: {0}")]
    NoRoute(String),
    #[error("no free SSA port in this proxy's partition")]
    NoPort,
    #[error("backend {backend} unreachable: {error}")]
    Backend {
        backend: SocketAddrV4,
        error: String,
    },
    #[error("client socket error: {0}")]
    Client(String),
}

impl Unspliced {
    fn label(&self) -> &'static str {
        match self {
            Unspliced::ClientClosed => "client_closed",
            Unspliced::BadHead { status: 431, .. } => "head_too_large",
            Unspliced::BadHead { .. } => "bad_head",
            Unspliced::HeadTimeout(_) => "head_timeout",
            Unspliced::NoRoute(_) => "no_route",
            Unspliced::NoPort => "no_port",
            Unspliced::Backend { .. } => "backend_unreachable",
            Unspliced::Client(_) => "client_error",
        }
    }

    /// The answer the client gets, if any.
    fn response(&self) -> Option<Vec<u8>> {
        let (status, detail) = match self {
            Unspliced::ClientClosed | Unspliced::Client(_) => return None,
            Unspliced::BadHead { status, detail } => (*status, detail.clone()),
            Unspliced::HeadTimeout(_) => (408, "request head too slow".into()),
            Unspliced::NoRoute(d) => (503, d.clone()),
            Unspliced::NoPort => (503, "no free splice port".into()),
            Unspliced::Backend { .. } => (502, "backend unreachable".into()),
        };
        Some(error_response(status, &detail))
    }
}

/// Which listener accepted a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// The HTTP service address (`vip`): the request head picks the pool.
    Http,
    /// An `[[l4_route]]`'s listen address: its pool, nothing is read from
    /// the client before the splice (the client may wait for the server
    /// to speak first).
    L4(SocketAddrV4),
}

/// What the accept loop shares with every connection.
pub struct Pipeline {
    cfg: Arc<ProxyConfig>,
    limits: HeadLimits,
    routing: Mutex<Routing>,
    ports: Arc<Mutex<PortAllocator>>,
    sink: SharedSink,
    ctl: mpsc::Sender<Command>,
    next_id: AtomicU64,
    metrics: Registry,
    /// Whether any proxy peer is configured (then a creation waits for an
    /// ack).
    replicated: bool,
}

/// A connection whose backend side is open.
struct Pair {
    client: TcpStream,
    backend: TcpStream,
    client_addr: SocketAddrV4,
    vip: SocketAddrV4,
    ssa: SocketAddrV4,
    backend_addr: SocketAddrV4,
    /// Bytes read from the client and not yet written to the backend (the
    /// request head first), and the other way round; a relay in user space
    /// writes them first.
    to_backend: Vec<u8>,
    to_client: Vec<u8>,
    /// Bytes at the front of the client socket's receive queue that were
    /// already copied to the backend without being read (a relay at a
    /// closed window): reading the client discards them first.
    client_skip: usize,
}

fn v4(a: SocketAddr) -> Option<SocketAddrV4> {
    match a {
        SocketAddr::V4(a) => Some(a),
        SocketAddr::V6(_) => None,
    }
}

/// The counter part of the first splice id of this incarnation: seconds
/// since the epoch in the upper bits, so a restarted proxy never reuses an
/// id of its previous life (unless it created 65,536 splices per second).
fn first_counter() -> u64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (secs & 0xffff_ffff) << 16
}

impl Pipeline {
    pub fn new(
        cfg: Arc<ProxyConfig>,
        ports: Arc<Mutex<PortAllocator>>,
        sink: SharedSink,
        ctl: mpsc::Sender<Command>,
        metrics: Registry,
    ) -> Pipeline {
        Pipeline {
            limits: head_limits(&cfg),
            routing: Mutex::new(Routing::new(&cfg)),
            replicated: cfg
                .replication
                .as_ref()
                .is_some_and(|r| r.peers.iter().any(|p| !p.agent)),
            cfg,
            ports,
            sink,
            ctl,
            next_id: AtomicU64::new(first_counter()),
            metrics,
        }
    }

    fn count(&self, result: &str) {
        self.metrics
            .counter(
                "ftsplice_proxy_connections_total",
                "Accepted client connections, by outcome",
                &[("result", result)],
            )
            .inc();
    }

    /// Handles one accepted connection to its end (spliced, answered with
    /// an error, or relayed). Connections of an L4 listener get no HTTP
    /// error answer: they are closed.
    pub async fn handle(
        self: Arc<Self>,
        client: tokio::net::TcpStream,
        peer: SocketAddr,
        listener: Listener,
    ) {
        let started = std::time::Instant::now();
        let record = self.announce(&client, listener).await;
        let mut client = Some(client);
        let pair = match self.open(&mut client, listener).await {
            Ok(x) => x,
            Err(e) => {
                self.withdraw(record).await;
                self.count(e.label());
                match &e {
                    Unspliced::ClientClosed => tracing::debug!(%peer, "{e}"),
                    _ => tracing::warn!(%peer, reason = e.label(), "not spliced: {e}"),
                }
                let resp = match listener {
                    Listener::Http => e.response(),
                    Listener::L4(_) => None,
                };
                if let Some(c) = client.as_mut() {
                    let _ = tokio::time::timeout(Duration::from_secs(1), async {
                        if let Some(resp) = resp {
                            let _ = c.write_all(&resp).await;
                        }
                        let _ = c.shutdown().await;
                    })
                    .await;
                }
                return;
            }
        };
        let port = pair.ssa.port();
        match self.splice(pair).await {
            Ok(s) => {
                self.count("spliced");
                tracing::info!(
                    splice = s.id.0,
                    l4 = matches!(listener, Listener::L4(_)),
                    client = %s.client,
                    backend = %s.backend,
                    ssa = %s.ssa,
                    micros = started.elapsed().as_micros() as u64,
                    "spliced"
                );
            }
            Err((why, Some(pair))) => {
                self.withdraw(record).await;
                self.count("relayed");
                tracing::warn!(%peer, reason = %why, "splice failed: relaying in user space");
                relay(pair).await;
                self.release(port);
            }
            Err((why, None)) => {
                self.withdraw(record).await;
                self.count("lost");
                tracing::error!(%peer, reason = %why, "splice failed and a socket is gone: connection lost");
                self.release(port);
            }
        }
    }

    /// Announces an accepted HTTP connection's pre-splice record
    /// (`proto::orphan_records`) to the peers through the control loop, so
    /// that if this proxy dies before the splice exists, the peer owning
    /// the client's slot resets the client even if it sends nothing more.
    /// `ISS + 1` is the socket's next sequence number: nothing but the
    /// SYN-ACK has been sent. L4 connections get no record (the server may
    /// speak first, which moves the client's RCV.NXT).
    async fn announce(&self, client: &tokio::net::TcpStream, listener: Listener) -> Option<PreKey> {
        if listener != Listener::Http || !self.replicated {
            return None;
        }
        let client_addr = client.peer_addr().ok().and_then(v4)?;
        let vip = client.local_addr().ok().and_then(v4)?;
        let rst_seq = match repair::send_seq_quietly(client.as_raw_fd()) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%client_addr, error = %e, "no pre-splice record: ISS unreadable");
                return None;
            }
        };
        let rec = PreRecord {
            client: client_addr,
            vip,
            rst_seq,
        };
        self.ctl.send(Command::Accepted(rec)).await.ok()?;
        Some(rec.key())
    }

    /// Withdraws an announced record (the connection was not spliced).
    async fn withdraw(&self, key: Option<PreKey>) {
        if let Some(k) = key {
            let _ = self.ctl.send(Command::Ended(k)).await;
        }
    }

    fn release(&self, port: u16) {
        self.ports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .release(port);
    }

    /// Steps 1-3: head, route, backend connection; the bytes read from the
    /// client so far come with the pair (`to_backend`). An L4 listener reads
    /// nothing: its route alone picks the pool.
    async fn open(
        &self,
        slot: &mut Option<tokio::net::TcpStream>,
        listener: Listener,
    ) -> Result<Pair, Unspliced> {
        let client = slot
            .as_mut()
            .ok_or_else(|| Unspliced::Client("no socket".into()))?;
        let client_addr = client
            .peer_addr()
            .ok()
            .and_then(v4)
            .ok_or_else(|| Unspliced::Client("not an IPv4 peer".into()))?;
        let vip = client
            .local_addr()
            .ok()
            .and_then(v4)
            .ok_or_else(|| Unspliced::Client("not an IPv4 socket".into()))?;
        let (picked, buf) = match listener {
            Listener::Http => {
                let (head, buf) = self.read_head(client).await?;
                let picked = self
                    .routing
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .pick(&head, *client_addr.ip())
                    .map_err(|e| match e {
                        NoRoute::NoRule => format!(
                            "no rule matches {} {} (host {:?}) and no default pool",
                            head.method, head.path, head.host
                        ),
                        NoRoute::PoolEmpty(p) => format!("pool '{p}' has no usable backend"),
                    });
                (picked, buf)
            }
            Listener::L4(listen) => {
                let picked = self
                    .routing
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .pick_l4(listen, *client_addr.ip())
                    .map_err(|e| match e {
                        NoRoute::NoRule => format!("no [[l4_route]] listens on {listen}"),
                        NoRoute::PoolEmpty(p) => format!("pool '{p}' has no usable backend"),
                    });
                (picked, Vec::new())
            }
        };
        let backend = picked.map_err(Unspliced::NoRoute)?;
        let port = self
            .ports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .allocate()
            .ok_or(Unspliced::NoPort)?;
        let ssa = SocketAddrV4::new(self.cfg.ssa, port);
        let (bind, mss) = (self.cfg.ssa_bind, self.cfg.mss_clamp);
        let connected = tokio::task::spawn_blocking(move || {
            super::connect::connect_from_ssa(ssa, bind, mss, backend, CONNECT_TIMEOUT)
        })
        .await
        .map_err(|e| io::Error::other(e.to_string()))
        .and_then(|r| r);
        let backend_stream = match connected {
            Ok(s) => s,
            Err(e) => {
                self.release(port);
                return Err(Unspliced::Backend {
                    backend,
                    error: e.to_string(),
                });
            }
        };
        let client_std = match slot.take().map(tokio::net::TcpStream::into_std) {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                self.release(port);
                return Err(Unspliced::Client(e.to_string()));
            }
            None => {
                self.release(port);
                return Err(Unspliced::Client("no socket".into()));
            }
        };
        Ok(Pair {
            client: client_std,
            backend: backend_stream,
            client_addr,
            vip,
            ssa,
            backend_addr: backend,
            to_backend: buf,
            to_client: Vec::new(),
            client_skip: 0,
        })
    }

    async fn read_head(
        &self,
        client: &mut tokio::net::TcpStream,
    ) -> Result<(RequestHead, Vec<u8>), Unspliced> {
        let timeout = self.cfg.head.timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut buf = Vec::with_capacity(2048);
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            match parse_head(&buf, &self.limits) {
                Ok(Parsed::Complete(h)) => return Ok((h, buf)),
                Ok(Parsed::NeedMore) => {}
                Err(e) => {
                    return Err(Unspliced::BadHead {
                        status: status_for(&e),
                        detail: e.to_string(),
                    })
                }
            }
            match tokio::time::timeout_at(deadline, client.read(&mut chunk)).await {
                Err(_) => return Err(Unspliced::HeadTimeout(timeout)),
                Ok(Ok(0)) => return Err(Unspliced::ClientClosed),
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => return Err(Unspliced::Client(e.to_string())),
            }
        }
    }

    /// Steps 4-6. On failure the pair comes back (thawed, hold lifted) for
    /// relaying.
    async fn splice(&self, pair: Pair) -> Result<Splice, (String, Option<Pair>)> {
        let id = SpliceId::compose(
            ftsplice_proto::ProxyId(self.cfg.id),
            self.next_id.fetch_add(1, Ordering::Relaxed),
        );
        let provisional = Splice {
            id,
            version: 1,
            client: pair.client_addr,
            vip: pair.vip,
            ssa: pair.ssa,
            backend: pair.backend_addr,
            seq_delta: 0,
            ack_delta: 0,
            ts: None,
            wscale: WindowScales::default(),
            sack_ok: false,
        };
        match self.settle_and_freeze(pair, &provisional).await {
            Ok((splice, fa, fb, relayed)) => match self.install(splice.clone()).await {
                Ok(()) => {
                    {
                        let mut sink = lock(&self.sink);
                        sink.forget_ts(splice.client, splice.vip);
                        sink.forget_ts(splice.backend, splice.ssa);
                    }
                    // The backend's answer goes through the splice: a
                    // client stopped by a closed window learns the
                    // backend's window now, not at its next zero-window
                    // probe (backed off like a retransmission).
                    if let Err(e) = fb.probe_peer() {
                        tracing::warn!(splice = id.0, "probing the backend: {e}");
                    }
                    for closed in [fa.close_silently(), fb.close_silently()] {
                        if let Err(e) = closed {
                            tracing::warn!(splice = id.0, "closing a frozen socket: {e}");
                        }
                    }
                    Ok(splice)
                }
                Err(why) => {
                    let _ = lock(&self.sink).remove(id);
                    match thaw_pair(fa, fb, &splice, relayed) {
                        Ok(pair) => Err((why, Some(pair))),
                        Err(e) => Err((format!("{why}; thawing failed: {e}"), None)),
                    }
                }
            },
            Err((why, pair)) => {
                let _ = lock(&self.sink).remove(id);
                Err((why, pair))
            }
        }
    }

    async fn install(&self, splice: Splice) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        let id = splice.id;
        self.ctl
            .send(Command::Create { splice, reply: tx })
            .await
            .map_err(|_| "control loop gone".to_string())?;
        let wait = self
            .cfg
            .replication
            .as_ref()
            .map_or(Duration::from_secs(1), |r| r.ack_timeout);
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(CreateOutcome::Replicated { acked_by })) => {
                if acked_by.is_none() && self.replicated {
                    tracing::warn!(splice = id.0, "no proxy peer is up: splice not replicated");
                }
                Ok(())
            }
            Ok(Ok(CreateOutcome::Failed(e))) => Err(e),
            Ok(Err(_)) => Err("control loop dropped the creation".into()),
            Err(_) => {
                // Installed locally; replication goes on in the background.
                self.metrics
                    .counter(
                        "ftsplice_replication_ack_timeouts_total",
                        "Splices whose sockets were dropped before any peer acked",
                        &[],
                    )
                    .inc();
                tracing::warn!(
                    splice = id.0,
                    wait_ms = wait.as_millis() as u64,
                    "no peer acked the splice in time; dropping the sockets anyway"
                );
                Ok(())
            }
        }
    }

    /// Relays until the streams line up, then freezes both sockets and
    /// builds the splice (and the number of unread client bytes that were
    /// relayed, see [`Self::freeze_at_closed_window`]).
    ///
    /// A client that is sending (bytes queued after the head) is first
    /// left to run into its receive window, without the hold and without
    /// reading it: reading would reopen the window and the client would
    /// send into the hold, which drops data; the client would then only
    /// resend at its retransmission timeout, backed off while the hold
    /// lasts. Once the window is closed the splice is made with the queued
    /// bytes unread. A client that queued nothing, stopped with its window
    /// open, or did not close it within `DRAIN_LIMIT`, takes the general
    /// path: `held` (the provisional splice) is put on hold and both sockets
    /// are read until the streams line up; the hold is lifted while a
    /// socket holds out-of-order data and put back once the hole is filled.
    async fn settle_and_freeze(
        &self,
        mut pair: Pair,
        held: &Splice,
    ) -> Result<(Splice, FrozenSocket, FrozenSocket, usize), (String, Option<Pair>)> {
        let id = held.id;
        let started = std::time::Instant::now();
        let deadline = started + SETTLE_TIMEOUT;
        let mut attempts = 0;
        let mut on_hold = false;
        let mut lifts = 0;
        let client_fd = pair.client.as_raw_fd();
        // Waiting for a sending client to close its window (no hold yet);
        // the last count of queued client bytes and when it changed.
        let mut draining = repair::inq(client_fd).unwrap_or(0) > 0;
        let mut queued = (u32::MAX, started);
        if !draining {
            if let Err(e) = lock(&self.sink).hold(held) {
                return Err((
                    format!("cannot put the connection on hold: {e}"),
                    Some(pair),
                ));
            }
            on_hold = true;
        }
        loop {
            if draining {
                if let Err(e) = pump_without_client(&mut pair) {
                    return Err((format!("relaying before the freeze: {e}"), Some(pair)));
                }
                if let Some(why) = not_established(&pair) {
                    return Err((why, Some(pair)));
                }
                let now = std::time::Instant::now();
                let inq = match repair::inq(client_fd) {
                    Ok(n) => n,
                    Err(e) => return Err((format!("reading the client queue: {e}"), Some(pair))),
                };
                if inq != queued.0 {
                    queued = (inq, now);
                }
                let lined_up = pair.to_backend.is_empty()
                    && pair.to_client.is_empty()
                    && queues(&pair.backend) == (0, 0)
                    && repair::outq(client_fd).ok() == Some(0)
                    && repair::holds_out_of_order(pair.backend.as_raw_fd()).ok() == Some(false);
                if lined_up && inq == 0 {
                    draining = false;
                } else if lined_up {
                    let never_ooo = repair::rcv_ooopack(client_fd).ok() == Some(Some(0));
                    let mss = repair::tcp_info(client_fd).map_or(0, |i| i.rcv_mss);
                    match repair::live_receive_window_left(client_fd) {
                        Ok(left) if window_closed(left, mss, never_ooo) => {
                            match self
                                .freeze_at_closed_window(pair, held, deadline, never_ooo)
                                .await
                            {
                                Ok(done) => return Ok(done),
                                Err(Attempt::Settle(p)) => {
                                    // On hold now: the general path.
                                    pair = p;
                                    on_hold = true;
                                    draining = false;
                                    attempts += 1;
                                    continue;
                                }
                                Err(Attempt::Failed(why, p)) => return Err((why, p)),
                            }
                        }
                        Ok(_) if now.duration_since(queued.1) >= CLIENT_IDLE => draining = false,
                        Ok(_) => {}
                        Err(e) => {
                            return Err((format!("reading the client's window: {e}"), Some(pair)))
                        }
                    }
                }
                if draining && now.duration_since(started) < DRAIN_LIMIT {
                    tokio::time::sleep(SETTLE_POLL).await;
                    continue;
                }
                draining = false;
                tracing::debug!(splice = id.0, "settling under the hold");
                if let Err(e) = lock(&self.sink).hold(held) {
                    return Err((
                        format!("cannot put the connection on hold: {e}"),
                        Some(pair),
                    ));
                }
                on_hold = true;
            }
            if let Err(e) = pump(&mut pair) {
                return Err((format!("relaying before the freeze: {e}"), Some(pair)));
            }
            // A FIN (it can arrive while the hold is lifted) or RST: a socket
            // that is not ESTABLISHED does not freeze; relay it at once.
            if let Some(why) = not_established(&pair) {
                return Err((why, Some(pair)));
            }
            let hole = match out_of_order(&pair) {
                Ok(h) => h,
                Err(e) => return Err((format!("reading receive memory: {e}"), Some(pair))),
            };
            match (hole, on_hold) {
                (Some(side), true) => {
                    // The hold would drop the retransmission that fills the
                    // hole: let data through until it came.
                    lifts += 1;
                    self.metrics
                        .counter(
                            "ftsplice_hold_lifts_total",
                            "Holds lifted so that a peer could fill a hole in front of \
                             data a proxy socket queued out of order, by side",
                            &[("reason", FrozenError::OutOfOrder(side).label())],
                        )
                        .inc();
                    if lifts > OUT_OF_ORDER_LIFTS {
                        return Err((
                            format!(
                                "the {side} socket still holds out-of-order data after \
                                 {OUT_OF_ORDER_LIFTS} lifts of the hold"
                            ),
                            Some(pair),
                        ));
                    }
                    if let Err(e) = lock(&self.sink).remove(id) {
                        return Err((format!("lifting the hold: {e}"), Some(pair)));
                    }
                    on_hold = false;
                    tracing::debug!(splice = id.0, side, "out-of-order data: hold lifted");
                }
                (None, false) => {
                    if let Err(e) = lock(&self.sink).hold(held) {
                        return Err((format!("putting the hold back: {e}"), Some(pair)));
                    }
                    on_hold = true;
                    // Relay what arrived before the hold, then check again.
                    continue;
                }
                _ => {}
            }
            let settled = on_hold
                && hole.is_none()
                && pair.client_skip == 0
                && pair.to_backend.is_empty()
                && pair.to_client.is_empty()
                && queues_empty(&pair);
            if !settled {
                if std::time::Instant::now() > deadline {
                    return Err((
                        format!(
                            "streams did not line up within {SETTLE_TIMEOUT:?} ({})",
                            queue_report(&pair)
                        ),
                        Some(pair),
                    ));
                }
                tokio::time::sleep(SETTLE_POLL).await;
                continue;
            }
            attempts += 1;
            let Pair {
                client,
                backend,
                client_addr,
                vip,
                ssa,
                backend_addr,
                ..
            } = pair;
            // A socket that fails to freeze comes back out of repair mode
            // (the other one is thawed), and the connection is relayed.
            // Only a socket that cannot leave repair mode is lost.
            let back = |client, backend| Pair {
                client,
                backend,
                client_addr,
                vip,
                ssa,
                backend_addr,
                to_backend: Vec::new(),
                to_client: Vec::new(),
                client_skip: 0,
            };
            let fa = match FrozenSocket::freeze(client) {
                Ok(f) => f,
                Err(e) => {
                    let why = format!("freezing the client socket: {e}");
                    return Err(match e.stream {
                        Some(client) => (why, Some(back(client, backend))),
                        None => (why, None),
                    });
                }
            };
            let fb = match FrozenSocket::freeze(backend) {
                Ok(f) => f,
                Err(e) => {
                    let why = format!("freezing the backend socket: {e}");
                    return Err(match (fa.thaw(), e.stream) {
                        (Ok(client), Some(backend)) => (why, Some(back(client, backend))),
                        (Err(te), _) => (format!("{why}; thawing the client failed: {te}"), None),
                        (Ok(_), None) => (why, None),
                    });
                }
            };
            let ts = {
                let sink = lock(&self.sink);
                PeerTsvals {
                    client: sink.ts_seen(client_addr, vip),
                    backend: sink.ts_seen(backend_addr, ssa),
                }
            };
            match splice_from_frozen(id, fa.state(), fb.state(), ts) {
                Ok(s) => return Ok((s, fa, fb, 0)),
                Err(e) => {
                    self.metrics
                        .counter(
                            "ftsplice_freeze_retries_total",
                            "Freezes that found the streams not lined up, by reason",
                            &[("reason", e.label())],
                        )
                        .inc();
                    let s = Splice {
                        client: client_addr,
                        vip,
                        ssa,
                        backend: backend_addr,
                        ..placeholder(id)
                    };
                    pair = match thaw_pair(fa, fb, &s, 0) {
                        Ok(p) => p,
                        Err(te) => return Err((format!("{e}; thaw failed: {te}"), None)),
                    };
                    let retry = e.is_transient()
                        && !matches!(e, FrozenError::TsvalUnknown(_))
                        && attempts < FREEZE_ATTEMPTS;
                    if !retry {
                        return Err((format!("cannot splice exactly: {e}"), Some(pair)));
                    }
                }
            }
        }
    }
}

/// A freeze at a closed window that did not make the splice.
enum Attempt {
    /// The connection is on hold, thawed: settle it the general way.
    Settle(Pair),
    /// Give up splicing (relay the pair if there is one).
    Failed(String, Option<Pair>),
}

impl Pipeline {
    /// The client is stopped by its closed receive window with bytes
    /// queued; everything else is lined up. Puts the connection on hold,
    /// freezes the client, writes its queued bytes (read without consuming,
    /// so the window stays closed) to the backend, waits for the backend's
    /// ack, freezes the backend and builds the splice. Returns the splice,
    /// both frozen sockets and the number of unread relayed client bytes.
    async fn freeze_at_closed_window(
        &self,
        pair: Pair,
        held: &Splice,
        deadline: std::time::Instant,
        never_ooo: bool,
    ) -> Result<(Splice, FrozenSocket, FrozenSocket, usize), Attempt> {
        let id = held.id;
        if let Err(e) = lock(&self.sink).hold(held) {
            return Err(Attempt::Failed(
                format!("cannot put the connection on hold: {e}"),
                Some(pair),
            ));
        }
        let Pair {
            client,
            mut backend,
            client_addr,
            vip,
            ssa,
            backend_addr,
            ..
        } = pair;
        let rebuild = |fa: FrozenSocket, backend: TcpStream, client_skip: usize| {
            fa.thaw().map(|client| Pair {
                client,
                backend,
                client_addr,
                vip,
                ssa,
                backend_addr,
                to_backend: Vec::new(),
                to_client: Vec::new(),
                client_skip,
            })
        };
        let settle = |r: ftsplice_linux::Result<Pair>| match r {
            Ok(p) => Attempt::Settle(p),
            Err(e) => Attempt::Failed(format!("thawing the client socket: {e}"), None),
        };
        // Anything arriving from now on is dropped by the hold: read
        // again whether the client socket ever queued out of order.
        let never_ooo = never_ooo && repair::rcv_ooopack(client.as_raw_fd()).ok() == Some(Some(0));
        let fa = match FrozenSocket::freeze(client) {
            Ok(f) => f,
            Err(e) => {
                // Back out of repair mode (or never in it): relay it.
                let why = format!("freezing the client socket: {e}");
                return Err(Attempt::Failed(
                    why,
                    e.stream.map(|client| Pair {
                        client,
                        backend,
                        client_addr,
                        vip,
                        ssa,
                        backend_addr,
                        to_backend: Vec::new(),
                        to_client: Vec::new(),
                        client_skip: 0,
                    }),
                ));
            }
        };
        let (left, mss) = (fa.state().receive_window_left(), fa.state().info.rcv_mss);
        if !window_closed(left, mss, never_ooo) {
            // Opened meanwhile (nothing here reads the client): settle.
            return Err(settle(rebuild(fa, backend, 0)));
        }
        let queued = fa.state().recv_queue.len();
        // Relay the queued bytes and wait for the backend to ack them. The
        // hold drops what the backend sends from now on; bytes it sent
        // before must reach the client, which is frozen: settle then.
        let mut written = 0;
        loop {
            let rest = &fa.state().recv_queue[written..];
            if !rest.is_empty() {
                match backend.write(rest) {
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let why = format!("relaying at the closed window: {e}");
                        return Err(match rebuild(fa, backend, written) {
                            Ok(p) => Attempt::Failed(why, Some(p)),
                            Err(te) => Attempt::Failed(format!("{why}; thaw failed: {te}"), None),
                        });
                    }
                }
            }
            let (inq, outq) = queues(&backend);
            if inq != 0 || std::time::Instant::now() > deadline {
                return Err(settle(rebuild(fa, backend, written)));
            }
            if written == queued && outq == 0 {
                break;
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
        let fb = match FrozenSocket::freeze(backend) {
            Ok(f) => f,
            Err(e) => {
                let why = format!("freezing the backend socket: {e}");
                return Err(match e.stream {
                    Some(backend) => match rebuild(fa, backend, queued) {
                        Ok(p) => Attempt::Failed(why, Some(p)),
                        Err(te) => {
                            Attempt::Failed(format!("{why}; thawing the client failed: {te}"), None)
                        }
                    },
                    None => Attempt::Failed(why, None),
                });
            }
        };
        let ts = {
            let sink = lock(&self.sink);
            PeerTsvals {
                client: sink.ts_seen(client_addr, vip),
                backend: sink.ts_seen(backend_addr, ssa),
            }
        };
        match splice_from_frozen_relayed(id, fa.state(), fb.state(), ts, queued, never_ooo) {
            Ok(s) => Ok((s, fa, fb, queued)),
            Err(e) => {
                self.metrics
                    .counter(
                        "ftsplice_freeze_retries_total",
                        "Freezes that found the streams not lined up, by reason",
                        &[("reason", e.label())],
                    )
                    .inc();
                let s = Splice {
                    client: client_addr,
                    vip,
                    ssa,
                    backend: backend_addr,
                    ..placeholder(id)
                };
                match thaw_pair(fa, fb, &s, queued) {
                    Ok(p) if e.is_transient() => Err(Attempt::Settle(p)),
                    Ok(p) => Err(Attempt::Failed(
                        format!("cannot splice exactly: {e}"),
                        Some(p),
                    )),
                    Err(te) => Err(Attempt::Failed(format!("{e}; thaw failed: {te}"), None)),
                }
            }
        }
    }
}

fn placeholder(id: SpliceId) -> Splice {
    let any = SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0);
    Splice {
        id,
        version: 1,
        client: any,
        vip: any,
        ssa: any,
        backend: any,
        seq_delta: 0,
        ack_delta: 0,
        ts: None,
        wscale: WindowScales::default(),
        sack_ok: false,
    }
}

/// Thaws both sockets; `client_skip` bytes at the front of the client's
/// receive queue were already relayed.
fn thaw_pair(
    fa: FrozenSocket,
    fb: FrozenSocket,
    s: &Splice,
    client_skip: usize,
) -> ftsplice_linux::Result<Pair> {
    let client = fa.thaw()?;
    let backend = fb.thaw()?;
    Ok(Pair {
        client,
        backend,
        client_addr: s.client,
        vip: s.vip,
        ssa: s.ssa,
        backend_addr: s.backend,
        to_backend: Vec::new(),
        to_client: Vec::new(),
        client_skip,
    })
}

/// Moves what can move without blocking: bytes queued on the client side
/// to the backend (`to_backend` first) and backend bytes to the client.
fn pump(pair: &mut Pair) -> io::Result<()> {
    pair.client.set_nonblocking(true)?;
    pair.backend.set_nonblocking(true)?;
    let mut chunk = [0u8; 16 * 1024];
    discard(&mut pair.client, &mut pair.client_skip, &mut chunk)?;
    if pair.client_skip == 0 {
        read_all(&mut pair.client, &mut pair.to_backend, &mut chunk)?;
    }
    pump_towards_backend(pair, &mut chunk)
}

/// [`pump`] without reading the client: what was read goes to the
/// backend, the backend's bytes to the client. The client's unread bytes
/// stay queued, so its receive window closes instead of reopening.
fn pump_without_client(pair: &mut Pair) -> io::Result<()> {
    pair.client.set_nonblocking(true)?;
    pair.backend.set_nonblocking(true)?;
    let mut chunk = [0u8; 16 * 1024];
    pump_towards_backend(pair, &mut chunk)
}

fn pump_towards_backend(pair: &mut Pair, chunk: &mut [u8]) -> io::Result<()> {
    write_some(&mut pair.backend, &mut pair.to_backend)?;
    read_all(&mut pair.backend, &mut pair.to_client, chunk)?;
    write_some(&mut pair.client, &mut pair.to_client)?;
    Ok(())
}

/// Reads and drops up to `*n` bytes that are already queued (relayed
/// before), counting `*n` down.
fn discard(s: &mut TcpStream, n: &mut usize, chunk: &mut [u8]) -> io::Result<()> {
    while *n > 0 {
        let want = (*n).min(chunk.len());
        match s.read(&mut chunk[..want]) {
            Ok(0) => return Ok(()),
            Ok(k) => *n -= k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Why the pair cannot be frozen, if a socket is no longer ESTABLISHED
/// (its peer sent a FIN or RST).
fn not_established(p: &Pair) -> Option<String> {
    for (side, s) in [("client", &p.client), ("backend", &p.backend)] {
        match repair::tcp_info(s.as_raw_fd()) {
            Ok(i) if i.state == repair::TCP_ESTABLISHED => {}
            Ok(i) => {
                return Some(format!(
                    "the {side} connection left ESTABLISHED (TCP state {}) before the freeze",
                    i.state
                ))
            }
            Err(e) => return Some(format!("reading the {side} socket's state: {e}")),
        }
    }
    None
}

fn read_all(s: &mut TcpStream, into: &mut Vec<u8>, chunk: &mut [u8]) -> io::Result<()> {
    loop {
        match s.read(chunk) {
            Ok(0) => return Ok(()), // EOF: the freeze will refuse the state
            Ok(n) => into.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn write_some(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    while !buf.is_empty() {
        match s.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn queues(s: &TcpStream) -> (u32, u32) {
    let fd = s.as_raw_fd();
    (
        repair::inq(fd).unwrap_or(u32::MAX),
        repair::outq(fd).unwrap_or(u32::MAX),
    )
}

fn queues_empty(p: &Pair) -> bool {
    queues(&p.client) == (0, 0) && queues(&p.backend) == (0, 0)
}

/// Which socket (`client` first) queues received data beyond a hole while
/// nothing in order is left to read: bytes its kernel SACKed to the peer,
/// which no interface reads and a freeze would drop.
fn out_of_order(p: &Pair) -> ftsplice_linux::Result<Option<&'static str>> {
    for (side, s) in [("client", &p.client), ("backend", &p.backend)] {
        if repair::holds_out_of_order(s.as_raw_fd())? {
            return Ok(Some(side));
        }
    }
    Ok(None)
}

fn queue_report(p: &Pair) -> String {
    let (ci, co) = queues(&p.client);
    let (bi, bo) = queues(&p.backend);
    let rmem = |s: &TcpStream| repair::rmem_alloc(s.as_raw_fd()).unwrap_or(u32::MAX);
    format!(
        "client in {ci} out {co} rmem {}, backend in {bi} out {bo} rmem {}",
        rmem(&p.client),
        rmem(&p.backend)
    )
}

/// Relays a connection that could not be spliced until either side ends.
async fn relay(pair: Pair) {
    let conv = |s: TcpStream| -> io::Result<tokio::net::TcpStream> {
        s.set_nonblocking(true)?;
        tokio::net::TcpStream::from_std(s)
    };
    let (Ok(mut a), Ok(mut b)) = (conv(pair.client), conv(pair.backend)) else {
        return;
    };
    // Client bytes the backend already has.
    let mut skip = pair.client_skip;
    let mut chunk = vec![0u8; 16 * 1024];
    while skip > 0 {
        match a.read(&mut chunk[..skip.min(16 * 1024)]).await {
            Ok(0) => return,
            Ok(k) => skip -= k,
            Err(e) => {
                tracing::debug!(client = %pair.client_addr, error = %e, "relay ended");
                return;
            }
        }
    }
    // What was read before the splice failed and not yet written.
    let (to_b, to_a) = tokio::join!(b.write_all(&pair.to_backend), a.write_all(&pair.to_client));
    if let Err(e) = to_b.and(to_a) {
        tracing::debug!(client = %pair.client_addr, error = %e, "relay ended");
        return;
    }
    if let Err(e) = tokio::io::copy_bidirectional(&mut a, &mut b).await {
        tracing::debug!(client = %pair.client_addr, error = %e, "relay ended");
    }
}

//! Heartbeat drivers over UDP, each on a dedicated OS thread with raised
//! scheduling priority (`linux::sched`), never behind a busy event loop:
//!
//! - [`spawn_sender`]: the proxy's beats to the lb and its backups, from
//!   `proto::heartbeat::HeartbeatSender`; [`spawn_sender_with`] takes the
//!   workload field from a shared cell at every beat (the lb pair's beats,
//!   whose active bit the lb's loop changes);
//! - [`spawn_receiver`]: the lb side. It time-stamps every datagram when it
//!   arrives and, each time it finds the socket empty, reports a watermark
//!   ([`Received::Listened`]): every datagram that arrived before it has
//!   been handed over. The consumer feeds both to the detector
//!   (`handle_heartbeat(at, ..)` / `handle_listened`), which then blames a
//!   proxy only for silence the receiver listened through: a consumer (or
//!   receiver) that was descheduled under load cannot turn its own delay
//!   into a proxy's death.
//! - [`run_receiver`]: a [`FailureDetector`] driven by [`spawn_receiver`],
//!   forwarding its up/down/weight events (the lb daemon does the same with
//!   `proto::lb_control`).
//!
//! Bad datagrams are counted by reason and dropped. The threads stop when
//! their [`BeatThread`] handle is dropped.

use crate::clock;
use crate::metrics::Registry;
use ftsplice_linux::sched::{self, Priority};
use ftsplice_proto::detector::{DetectorEvent, FailureDetector};
use ftsplice_proto::heartbeat::{HeartbeatError, HeartbeatSender};
use ftsplice_proto::Instant;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::mpsc;

/// Longest sleep of a beat thread before it looks at its stop flag.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// A running heartbeat thread; dropping it stops and joins the thread.
#[derive(Debug)]
pub struct BeatThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl BeatThread {
    fn spawn(name: &str, body: impl FnOnce(Arc<AtomicBool>) + Send + 'static) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(st))?;
        Ok(BeatThread {
            stop,
            handle: Some(handle),
        })
    }

    /// Whether the thread ended by itself (its consumer went away).
    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }
}

impl Drop for BeatThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn raise_priority(what: &str) -> Priority {
    let p = sched::raise_current_thread();
    match p {
        Priority::Unchanged => {
            tracing::warn!(
                thread = what,
                "heartbeat thread runs at normal priority (SCHED_FIFO and negative nice refused)"
            )
        }
        _ => tracing::debug!(thread = what, priority = %p, "heartbeat thread priority raised"),
    }
    p
}

/// Sends `sender`'s heartbeats to every target from a dedicated thread
/// until the handle is dropped. `sock` is used blocking.
pub fn spawn_sender(
    sock: UdpSocket,
    targets: Vec<SocketAddr>,
    sender: HeartbeatSender,
    metrics: Registry,
) -> io::Result<BeatThread> {
    start_sender(sock, targets, sender, None, metrics)
}

/// [`spawn_sender`], each beat carrying the workload `workload` holds
/// when it is sent.
pub fn spawn_sender_with(
    sock: UdpSocket,
    targets: Vec<SocketAddr>,
    sender: HeartbeatSender,
    workload: Arc<AtomicU32>,
    metrics: Registry,
) -> io::Result<BeatThread> {
    start_sender(sock, targets, sender, Some(workload), metrics)
}

fn start_sender(
    sock: UdpSocket,
    targets: Vec<SocketAddr>,
    mut sender: HeartbeatSender,
    workload: Option<Arc<AtomicU32>>,
    metrics: Registry,
) -> io::Result<BeatThread> {
    sock.set_nonblocking(false)?;
    let sent = metrics.counter(
        "ftsplice_heartbeats_sent_total",
        "Heartbeat datagrams sent",
        &[],
    );
    let failed = metrics.counter(
        "ftsplice_heartbeat_send_errors_total",
        "Heartbeat datagrams the kernel refused",
        &[],
    );
    BeatThread::spawn("hb-send", move |stop| {
        raise_priority("hb-send");
        while !stop.load(Ordering::Relaxed) {
            let wait = clock::until(sender.poll_timeout());
            if !wait.is_zero() {
                std::thread::sleep(wait.min(STOP_CHECK));
                continue;
            }
            if let Some(w) = &workload {
                sender.set_workload(w.load(Ordering::Acquire));
            }
            sender.handle_timeout(clock::now());
            while let Some(hb) = sender.poll_transmit() {
                let bytes = hb.encode();
                for t in &targets {
                    match sock.send_to(&bytes, t) {
                        Ok(_) => sent.inc(),
                        Err(e) => {
                            failed.inc();
                            tracing::warn!(target_addr = %t, error = %e, "heartbeat not sent");
                        }
                    }
                }
            }
        }
    })
}

/// What the receiver thread hands to its consumer, in arrival order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// A datagram and when it was read off the socket.
    Datagram {
        at: Instant,
        from: SocketAddr,
        data: Vec<u8>,
    },
    /// Every datagram that arrived before this instant was handed over.
    Listened(Instant),
}

/// Largest datagram the heartbeat receiver reads (heartbeats are 28 bytes).
const MAX_DATAGRAM: usize = 512;

/// Reads `sock` on a dedicated thread: each datagram as it arrives, then a
/// watermark whenever the socket is found empty (at least every `tick`).
/// Ends when the handle is dropped or `out` is closed. `sock` is put in
/// blocking mode (with a read timeout); clones of it may send meanwhile
/// (the drain reads with `MSG_DONTWAIT`, never switching the mode).
pub fn spawn_receiver(
    sock: UdpSocket,
    tick: Duration,
    out: mpsc::UnboundedSender<Received>,
) -> io::Result<BeatThread> {
    spawn_receiver_sized(sock, tick, MAX_DATAGRAM, "hb-recv", out)
}

/// [`spawn_receiver`] for datagrams of up to `max` bytes, on a thread
/// named `name` (the replication socket, whose datagrams carry peer
/// heartbeats and replication messages alike).
pub fn spawn_receiver_sized(
    sock: UdpSocket,
    tick: Duration,
    max: usize,
    name: &'static str,
    out: mpsc::UnboundedSender<Received>,
) -> io::Result<BeatThread> {
    let tick = tick.clamp(Duration::from_millis(1), STOP_CHECK);
    sock.set_nonblocking(false)?;
    sock.set_read_timeout(Some(tick))?;
    BeatThread::spawn(name, move |stop| {
        raise_priority(name);
        let mut buf = vec![0u8; max.max(1)];
        let send = |m: Received| out.send(m).is_ok();
        // Stamp a datagram the moment it is read and hand it over; false
        // once the consumer is gone.
        let deliver = |data: &[u8], from| {
            let at = clock::now();
            send(Received::Datagram {
                at,
                from,
                data: data.to_vec(),
            })
        };
        while !stop.load(Ordering::Relaxed) {
            // Wait (up to a tick) for the next datagram.
            match sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    if !deliver(&buf[..n], from) {
                        return;
                    }
                }
                Err(e) if is_timeout(&e) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "heartbeat socket error");
                    std::thread::sleep(tick);
                }
            }
            // Drain what queued meanwhile; the instant taken right before
            // the read that finds the socket empty is the watermark.
            let mark = loop {
                let before = clock::now();
                match ftsplice_linux::udp::recv_from_nowait(&sock, &mut buf) {
                    Ok((n, from)) => {
                        if !deliver(&buf[..n], from) {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Some(before),
                    Err(e) => {
                        tracing::warn!(error = %e, "heartbeat socket error");
                        break None;
                    }
                }
            };
            if let Some(m) = mark {
                if !send(Received::Listened(m)) {
                    return;
                }
            }
        }
    })
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn reason(e: &HeartbeatError) -> &'static str {
    match e {
        HeartbeatError::Truncated(_) => "truncated",
        HeartbeatError::BadMagic => "bad_magic",
        HeartbeatError::UnsupportedVersion(_) => "version",
        HeartbeatError::LengthMismatch { .. } => "length",
        HeartbeatError::ReservedBits => "reserved_bits",
    }
}

/// Receives heartbeats on `sock` (through [`spawn_receiver`]), runs the
/// detector in watermark mode, and forwards its events to `events` until
/// the task is dropped or the receiver closes.
pub async fn run_receiver(
    sock: UdpSocket,
    mut detector: FailureDetector,
    events: mpsc::Sender<DetectorEvent>,
    metrics: Registry,
) -> io::Result<()> {
    let received = metrics.counter(
        "ftsplice_heartbeats_received_total",
        "Valid heartbeat datagrams received",
        &[],
    );
    let live = metrics.gauge("ftsplice_live_proxies", "Proxies the lb considers up", &[]);
    let tick = detector.config().interval / 2;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _thread = spawn_receiver(sock, tick, tx)?;
    while let Some(msg) = rx.recv().await {
        match msg {
            Received::Datagram { at, from, data } => match detector.handle_datagram(at, &data) {
                Ok(()) => received.inc(),
                Err(e) => {
                    metrics
                        .counter(
                            "ftsplice_heartbeats_dropped_total",
                            "Heartbeat datagrams dropped, by reason",
                            &[("reason", reason(&e))],
                        )
                        .inc();
                    tracing::debug!(%from, error = %e, "heartbeat dropped");
                }
            },
            Received::Listened(at) => detector.handle_listened(at),
        }
        while let Some(ev) = detector.poll_event() {
            match ev {
                DetectorEvent::ProxyUp { id, weight } => {
                    tracing::info!(proxy = id.0, weight, "proxy up");
                    live.add(1);
                }
                DetectorEvent::ProxyDown { id } => {
                    tracing::warn!(proxy = id.0, "proxy down: heartbeats missed");
                    live.add(-1);
                }
                DetectorEvent::WeightChanged { id, weight } => {
                    tracing::debug!(proxy = id.0, weight, "proxy weight changed");
                }
            }
            if events.send(ev).await.is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftsplice_proto::ProxyId;

    /// Loopback only (no namespace needed): the sender thread beats, the
    /// receiver thread stamps each beat and reports watermarks in order.
    #[test]
    fn threads_beat_stamp_and_report_watermarks_in_order() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let lb = rx.local_addr().unwrap();
        let (tx_ch, mut ch) = mpsc::unbounded_channel();
        let recv = spawn_receiver(rx, Duration::from_millis(5), tx_ch).unwrap();
        let hb = HeartbeatSender::new(clock::now(), ProxyId(3), 1, Duration::from_millis(10), 9);
        let metrics = Registry::new();
        let send = spawn_sender(
            UdpSocket::bind("127.0.0.1:0").unwrap(),
            vec![lb],
            hb,
            metrics.clone(),
        )
        .unwrap();
        let mut beats = 0;
        let mut last_mark = Instant::ZERO;
        let mut last_at = Instant::ZERO;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while beats < 5 && std::time::Instant::now() < deadline {
            match ch.try_recv() {
                Ok(Received::Datagram { at, data, .. }) => {
                    let h = ftsplice_proto::heartbeat::Heartbeat::decode(&data).unwrap();
                    assert_eq!((h.id, h.workload), (ProxyId(3), 9));
                    assert!(at >= last_mark, "a datagram stamped before the watermark");
                    last_at = at;
                    beats += 1;
                }
                Ok(Received::Listened(m)) => {
                    assert!(m >= last_mark);
                    assert!(m >= last_at, "watermark behind a datagram it covers");
                    last_mark = m;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        assert_eq!(beats, 5);
        drop(send);
        assert!(metrics.render().contains("ftsplice_heartbeats_sent_total"));
        // Closing the channel ends the receiver thread.
        drop(ch);
        let t0 = std::time::Instant::now();
        while !recv.is_finished() && t0.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(recv.is_finished());
    }
}

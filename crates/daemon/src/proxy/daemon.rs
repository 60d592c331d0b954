//! `ftsplice proxy`: wires the accept [`Pipeline`] (on the HTTP service
//! address and on every L4 route's listen address), the [`Control`] loop
//! (replication, teardown, data plane), heartbeats to the lb(s) (on their
//! own thread, see [`crate::heartbeat`]), the
//! metrics endpoint and the data plane's counters together. Everything runs
//! on the caller's tokio runtime and in the calling thread's network
//! namespace; it runs until the future is dropped (or a socket fails to
//! bind, which is returned as an error naming the address).

use super::pipeline::{Listener, Pipeline};
use super::ports::PortAllocator;
use crate::config::ProxyConfig;
use crate::control::{self, Control, ControlConfig, Peer, SharedSink};
use crate::metrics::Registry;
use crate::sink::SpliceSink;
use anyhow::{Context, Result};
use ftsplice_proto::heartbeat::HeartbeatSender;
use ftsplice_proto::teardown::TeardownConfig;
use ftsplice_proto::ProxyId;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// How often `splice_seen` is read for teardown and data-plane counters
/// are copied to the metrics.
const SEEN_POLL: Duration = Duration::from_millis(100);

/// Heartbeat period between proxy peers (down after 3 missed).
pub const PEER_HEARTBEAT: Duration = Duration::from_millis(50);

/// An incarnation number for heartbeats: differs between restarts.
pub fn epoch() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| (d.as_millis() & 0xffff_ffff) as u32)
}

/// The control-loop settings of a proxy config.
pub fn control_config(cfg: &ProxyConfig) -> ControlConfig {
    ControlConfig {
        me: ProxyId(cfg.id),
        peers: cfg
            .replication
            .as_ref()
            .map(|r| {
                r.peers
                    .iter()
                    .map(|p| Peer {
                        id: ProxyId(p.id),
                        addr: SocketAddr::V4(p.addr),
                        agent: p.agent,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        psk: cfg.replication.as_ref().map(|r| r.psk),
        teardown: TeardownConfig {
            linger: cfg.teardown.linger,
            idle: cfg.teardown.idle,
            tick: cfg.teardown.tick,
            ..TeardownConfig::default()
        },
        seen_poll: SEEN_POLL.min(cfg.teardown.tick),
        peer_heartbeat: PEER_HEARTBEAT,
        epoch: epoch(),
        agent_backend: None,
        ssa: Some(cfg.ssa),
        // Behind an lb (it beats to one), the proxies keep the lb's slot
        // table for client-side pre-splice redirects; without one, every
        // connection is the proxy's that receives it.
        clients: cfg.heartbeat.as_ref().map(|h| control::ClientRouting {
            vip: *cfg.vip.ip(),
            workload: h.workload,
        }),
    }
}

fn listener(addr: SocketAddrV4) -> Result<TcpListener> {
    let s = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.set_cloexec(true)?;
    s.bind(&addr.into()).with_context(|| {
        format!("binding the listen address {addr} (is the VIP assigned to a local interface, e.g. `ip addr add VIP/32 dev lo`?)")
    })?;
    s.listen(4096)?;
    Ok(TcpListener::from_std(s.into())?)
}

/// Copies the data plane's counters into gauges every 2 × [`SEEN_POLL`].
pub async fn export_dataplane_counters(sink: SharedSink, metrics: Registry) {
    loop {
        let counters = control::lock(&sink).counters();
        for (name, v) in counters {
            metrics
                .gauge(
                    "ftsplice_dataplane_packets",
                    "Packets the data plane handled, by what it did (from its per-CPU counters)",
                    &[("reason", name)],
                )
                .set(i64::try_from(v).unwrap_or(i64::MAX));
        }
        tokio::time::sleep(SEEN_POLL * 2).await;
    }
}

/// Serves metrics on `addr` (if configured).
pub async fn start_metrics(addr: Option<SocketAddrV4>, metrics: &Registry) -> Result<()> {
    if let Some(a) = addr {
        let l = TcpListener::bind(a)
            .await
            .with_context(|| format!("binding the metrics address {a}"))?;
        tokio::spawn(crate::metrics::serve(l, metrics.clone()));
        tracing::info!(addr = %a, "metrics at GET /metrics");
    }
    Ok(())
}

/// Warns when IPv4 forwarding is off: the data plane's FIB lookups then
/// fail and translated packets die in the stack.
pub fn check_forwarding() {
    match std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward") {
        Ok(v) if v.trim() == "1" => {}
        Ok(_) => tracing::error!(
            "net.ipv4.ip_forward is 0 in this namespace: spliced packets cannot be \
             forwarded (set it to 1, see docs/daemons.md)"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot read net.ipv4.ip_forward"),
    }
}

/// Runs the proxy with `sink` as its data plane.
pub async fn run(cfg: ProxyConfig, sink: Box<dyn SpliceSink>, metrics: Registry) -> Result<()> {
    check_forwarding();
    let cfg = Arc::new(cfg);
    let mut sink = sink;
    let owners: Vec<_> = cfg
        .replication
        .iter()
        .flat_map(|r| &r.peers)
        .filter(|p| !p.agent)
        .filter_map(|p| p.ssa_ports.clone().map(|r| (r, *p.addr.ip())))
        .collect();
    sink.route_ssa(cfg.ssa, &owners)
        .map_err(|e| anyhow::anyhow!("configuring pre-splice forwarding: {e}"))?;
    let sink: SharedSink = Arc::new(Mutex::new(sink));
    let ports = Arc::new(Mutex::new(PortAllocator::new(cfg.ssa_ports.clone())));
    start_metrics(cfg.metrics, &metrics).await?;
    let accept = listener(cfg.vip)?;
    let l4 = cfg
        .l4_routes
        .iter()
        .map(|r| listener(r.listen))
        .collect::<Result<Vec<_>>>()?;
    let repl_sock = match &cfg.replication {
        Some(r) => Some(
            std::net::UdpSocket::bind(r.listen)
                .with_context(|| format!("binding replication.listen {}", r.listen))?,
        ),
        None => None,
    };
    let mut ctl = Control::new(
        crate::clock::now(),
        control_config(&cfg),
        sink.clone(),
        Some(ports.clone()),
        &metrics,
    );
    let (tx, rx) = tokio::sync::mpsc::channel(cfg.max_pending.max(1));
    // Replication datagrams and peer beats: read and sent on threads of
    // their own (control module docs).
    let repl = repl_sock
        .map(|s| control::ReplicationIo::start(s, &mut ctl))
        .transpose()
        .context("starting the replication threads")?;
    tokio::spawn(control::run(ctl, repl, rx));
    // Beats to the lb(s) come from their own thread (raised priority), so
    // a busy runtime cannot delay them; the thread stops with this future.
    let _beats = match &cfg.heartbeat {
        Some(hb) => {
            let sock =
                std::net::UdpSocket::bind("0.0.0.0:0").context("binding the heartbeat socket")?;
            let sender = HeartbeatSender::new(
                crate::clock::now(),
                ProxyId(cfg.id),
                epoch(),
                hb.interval,
                hb.workload,
            );
            let targets = hb.lb.iter().map(|a| SocketAddr::V4(*a)).collect();
            Some(
                crate::heartbeat::spawn_sender(sock, targets, sender, metrics.clone())
                    .context("starting the heartbeat thread")?,
            )
        }
        None => None,
    };
    tokio::spawn(export_dataplane_counters(sink.clone(), metrics.clone()));
    let pipeline = Arc::new(Pipeline::new(
        cfg.clone(),
        ports,
        sink.clone(),
        tx,
        metrics.clone(),
    ));
    let permits = Arc::new(tokio::sync::Semaphore::new(cfg.max_pending));
    tracing::info!(
        id = cfg.id,
        vip = %cfg.vip,
        ssa = %cfg.ssa,
        l4 = ?cfg.l4_routes.iter().map(|r| r.listen.to_string()).collect::<Vec<_>>(),
        data_plane = control::lock(&sink).kind(),
        interfaces = ?cfg.interfaces,
        "proxy running"
    );
    for (l, route) in l4.into_iter().zip(&cfg.l4_routes) {
        tokio::spawn(accept_loop(
            l,
            Listener::L4(route.listen),
            pipeline.clone(),
            permits.clone(),
            metrics.clone(),
        ));
    }
    accept_loop(accept, Listener::Http, pipeline, permits, metrics).await;
    Ok(())
}

/// Accepts on one listener forever, each connection in its own task
/// (at most `permits` in flight; beyond that HTTP clients get a 503 and
/// L4 clients are closed).
async fn accept_loop(
    accept: TcpListener,
    kind: Listener,
    pipeline: Arc<Pipeline>,
    permits: Arc<tokio::sync::Semaphore>,
    metrics: Registry,
) {
    loop {
        let (sock, peer) = match accept.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics
                .counter(
                    "ftsplice_proxy_connections_total",
                    "Accepted client connections, by outcome",
                    &[("result", "overloaded")],
                )
                .inc();
            tracing::warn!(%peer, "too many splices in flight: refused");
            tokio::spawn(async move {
                let mut sock = sock;
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    use tokio::io::AsyncWriteExt;
                    if kind == Listener::Http {
                        let resp = super::routing::error_response(
                            503,
                            "too many connections being spliced",
                        );
                        let _ = sock.write_all(&resp).await;
                    }
                    let _ = sock.shutdown().await;
                })
                .await;
            });
            continue;
        };
        let p = pipeline.clone();
        tokio::spawn(async move {
            p.handle(sock, peer, kind).await;
            drop(permit);
        });
    }
}

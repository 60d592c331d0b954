//! `ftsplice lb`: the driver of the stateless XDP load balancer (also the
//! SSA gateway: the same daemon with `vip` = the shared splice address on
//! the backend-side interface).
//!
//! It loads and attaches `crates/bpf`'s lb program on `interface`, resolves
//! the proxies' MACs ([`resolver`]), feeds the proxies' heartbeats to
//! `proto::lb_control::LbControl` (membership, with reasons) and, with a
//! `[peer]`, the other lb's heartbeats to `proto::lb_pair::LbPair` (who owns
//! the address). Whenever the table members change it rebuilds the slot
//! table from `proto::lb::SlotTable` (weights `W_i / ΣW`) and writes the
//! changed slots. Heartbeats are read and time-stamped on their own
//! thread ([`crate::heartbeat::spawn_receiver`]), whose watermarks keep a
//! busy loop from blaming its own delay on a proxy or on the peer lb; the
//! beats to the peer lb are sent from their own thread too
//! ([`crate::heartbeat::spawn_sender_with`], the active bit read from
//! [`Lb::pair_workload`]), so a busy loop cannot look dead to the peer.
//! While active it answers ARP for the service address
//! ([`arp`]; the address is never put on the interface, so a killed lb
//! leaves nothing behind that could answer or reset), and it sends the
//! gratuitous ARPs `proto::lb_pair` schedules (after a takeover or a
//! reannounce, never while standby). All decisions are in `proto`; this
//! module only moves bytes, reads the clock and logs.
//!
//! On shutdown (the caller's future, SIGTERM/SIGINT in the binary) it stops
//! answering for the address and detaches the program.

mod arp;

use crate::clock;
use crate::config::{LbConfig, LbMode, PeerRole, XdpMode};
use crate::heartbeat::{self, BeatThread, Received};
use crate::metrics::{self, Counter, Gauge, Registry};
use anyhow::{bail, Context, Result};
use ftsplice_bpf::bpf_abi::{
    LbCfg, LbSlot, LB_MODE_FLOW, LB_MODE_PORT, LB_MODE_RANDOM, LB_MODE_SPRAY, LB_PORTS,
};
use ftsplice_bpf::{Counter as BpfCounter, LbPlane};
use ftsplice_linux::arp::{iface_info, ArpPacket, ArpSocket, IfaceInfo, BROADCAST};
use ftsplice_proto::detector::DetectorConfig;
use ftsplice_proto::heartbeat::HeartbeatSender;
use ftsplice_proto::lb::SlotTable;
use ftsplice_proto::lb_control::{DownReason, LbControl, LbControlEvent};
use ftsplice_proto::lb_pair::{Announcer, LbPair, PairEvent, PairRole, LB_PAIR_ID};
use ftsplice_proto::{Instant, ProxyId};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the BPF counters are copied into the metrics.
const COUNTER_POLL: Duration = Duration::from_millis(500);
/// Workload factors may change with every beat: a change of weights only
/// is written at most this often (membership changes at once).
const WEIGHT_HOLD: Duration = Duration::from_millis(100);

fn data_plane_mode(cfg: &LbConfig) -> Result<u32> {
    Ok(match cfg.mode {
        LbMode::FlowHash => LB_MODE_FLOW,
        LbMode::Weighted => LB_MODE_RANDOM,
        LbMode::Burst => LB_MODE_SPRAY,
        LbMode::PortOwner => LB_MODE_PORT,
        LbMode::Flowlet => bail!(
            "key 'mode': 'flowlet' needs per-flow state the XDP lb does not keep; \
             use 'flow-hash', 'weighted' or 'burst'"
        ),
    })
}

/// A per-process incarnation number for the lb pair's heartbeats.
fn fresh_epoch() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let x = ftsplice_proto::hash::mix64(t ^ (u64::from(std::process::id()) << 32));
    (x >> 32) as u32 | 1
}

struct Metrics {
    live: Gauge,
    table: Gauge,
    active: Gauge,
    received: Counter,
    detections: Counter,
    restarts: Counter,
    takeovers: Counter,
    table_updates: Counter,
    silence_ms: Gauge,
    held: Counter,
    packets: Vec<(BpfCounter, Counter, u64)>,
    reg: Registry,
}

impl Metrics {
    fn new(reg: Registry) -> Metrics {
        let packets = [
            BpfCounter::LbSent,
            BpfCounter::LbNoProxy,
            BpfCounter::LbNotVip,
            BpfCounter::NotIpv4,
        ]
        .into_iter()
        .map(|c| {
            (
                c,
                reg.counter(
                    "ftsplice_lb_packets_total",
                    "Packets seen by the XDP lb, by verdict",
                    &[("reason", c.name())],
                ),
                0,
            )
        })
        .collect();
        Metrics {
            live: reg.gauge("ftsplice_live_proxies", "Proxies the lb considers up", &[]),
            table: reg.gauge(
                "ftsplice_lb_table_proxies",
                "Proxies in the data-plane table (up and MAC resolved)",
                &[],
            ),
            active: reg.gauge(
                "ftsplice_lb_active",
                "1 while this lb owns the service address",
                &[],
            ),
            received: reg.counter(
                "ftsplice_heartbeats_received_total",
                "Valid heartbeat datagrams received",
                &[],
            ),
            detections: reg.counter(
                "ftsplice_lb_detections_total",
                "Proxies declared down because their heartbeats stopped",
                &[],
            ),
            restarts: reg.counter(
                "ftsplice_lb_proxy_restarts_total",
                "Proxies seen restarting (new heartbeat epoch)",
                &[],
            ),
            takeovers: reg.counter(
                "ftsplice_lb_takeovers_total",
                "Times this lb took the service address",
                &[],
            ),
            table_updates: reg.counter(
                "ftsplice_lb_table_updates_total",
                "Slot-table rebuilds written to the data plane",
                &[],
            ),
            silence_ms: reg.gauge(
                "ftsplice_lb_last_detection_silence_ms",
                "Heartbeat silence when the last proxy was declared down",
                &[],
            ),
            held: reg.counter(
                "ftsplice_lb_held_total",
                "Suspects whose verdict was held because every proxy was silent together",
                &[],
            ),
            packets,
            reg,
        }
    }

    fn dropped(&self, reason: &str) {
        self.reg
            .counter(
                "ftsplice_heartbeats_dropped_total",
                "Heartbeat datagrams dropped, by reason",
                &[("reason", reason)],
            )
            .inc();
    }

    fn proxy(&self, id: ProxyId, up: Option<bool>, weight: Option<u32>) {
        let label = id.0.to_string();
        let labels = [("proxy", label.as_str())];
        if let Some(up) = up {
            self.reg
                .gauge("ftsplice_lb_proxy_up", "1 while the proxy is up", &labels)
                .set(i64::from(up));
        }
        if let Some(w) = weight {
            self.reg
                .gauge(
                    "ftsplice_lb_proxy_weight",
                    "Workload factor W_i the proxy announces",
                    &labels,
                )
                .set(i64::from(w));
        }
    }

    fn poll_counters(&mut self, plane: &LbPlane) {
        let Ok(now) = plane.counters() else {
            return;
        };
        for (c, m, last) in &mut self.packets {
            let v = now.get(*c);
            m.add(v.saturating_sub(*last));
            *last = v;
        }
    }
}

/// The running lb.
struct Lb {
    cfg: LbConfig,
    iface: String,
    info: IfaceInfo,
    plane: LbPlane,
    data_mode: u32,
    /// `LbCfg::peer_dev`: the interface when `lb_tc` may hand packets to
    /// its veth peer directly, else 0.
    peer_dev: u32,
    control: LbControl,
    pair: Option<LbPair>,
    active: bool,
    macs: BTreeMap<ProxyId, [u8; 6]>,
    by_addr: BTreeMap<Ipv4Addr, ProxyId>,
    arp: Arc<ArpSocket>,
    /// Shared with the ARP thread: answer ARP for the address.
    answering: Arc<AtomicBool>,
    /// The `workload` of this lb's beats to its peer (role and active
    /// bits), read by the sender thread at every beat.
    pair_workload: Arc<AtomicU32>,
    m: Metrics,
    table_stale: bool,
    /// Active flag and member ids of the last table written, and when.
    pushed: (bool, Vec<ProxyId>),
    pushed_at: Instant,
    /// Gratuitous ARPs of an lb without a peer (a pair schedules its own).
    announcer: Announcer,
    /// Arrival of the last datagram from the peer lb (for logs).
    peer_heard: Option<Instant>,
}

/// Runs the lb until `shutdown` completes.
pub async fn run(
    cfg: LbConfig,
    registry: Registry,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let iface = cfg
        .interface
        .clone()
        .context("key 'interface' is required to run the lb (the data-plane interface)")?;
    let data_mode = data_plane_mode(&cfg)?;
    let info = iface_info(&iface).with_context(|| format!("interface {iface}"))?;
    let mut plane = LbPlane::load().context("loading the XDP lb")?;
    let native = match cfg.xdp_mode {
        // On a veth, TC: native XDP_TX only reaches a peer that runs NAPI
        // (an XDP program or GRO on the other end), and generic XDP copies
        // every GSO packet into one linear buffer first.
        XdpMode::Auto if is_veth(&iface) => None,
        XdpMode::Tc => None,
        XdpMode::Auto => Some(None),
        XdpMode::Native => Some(Some(true)),
        XdpMode::Generic => Some(Some(false)),
    };
    let mut peer_dev = 0;
    match native {
        Some(native) => plane
            .attach_mode(&iface, native)
            .with_context(|| format!("attaching the XDP lb to {iface}"))?,
        None => {
            plane
                .attach_tc(&iface)
                .with_context(|| format!("attaching the lb to TC ingress of {iface}"))?;
            // A one-armed lb on a veth whose peer (the switch port) is in
            // another namespace sends to the peer's ingress directly.
            match ftsplice_linux::link::veth_peer_elsewhere(&iface) {
                Ok(Some(i)) if i == info.ifindex => {
                    tracing::info!(interface = %iface, "veth: redirecting to its peer directly");
                    peer_dev = i;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(interface = %iface, error = %e, "device kind unknown: plain redirect")
                }
            }
        }
    }
    let hb_listen = std::net::UdpSocket::bind(cfg.heartbeat_listen)
        .with_context(|| format!("key 'heartbeat.listen': binding {}", cfg.heartbeat_listen))?;
    let hb = std::net::UdpSocket::bind(std::net::SocketAddrV4::new(*cfg.heartbeat_listen.ip(), 0))
        .with_context(|| {
            format!(
                "binding the peer heartbeat socket on {}",
                cfg.heartbeat_listen.ip()
            )
        })?;
    if let Some(addr) = cfg.metrics {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("key 'metrics': binding {addr}"))?;
        tokio::spawn(metrics::serve(l, registry.clone()));
    }
    let arp = Arc::new(ArpSocket::open(info.ifindex).context("opening the ARP socket")?);
    let det = DetectorConfig {
        interval: cfg.heartbeat_interval,
        missed: cfg.misses,
        hold: cfg.hold,
    };
    let control = LbControl::new(det, cfg.proxies.iter().map(|p| (ProxyId(p.id), p.addr)));
    let pair = cfg.peer.as_ref().map(|p| {
        let role = match p.role {
            PeerRole::Primary => PairRole::Primary,
            PeerRole::Backup => PairRole::Backup,
        };
        LbPair::new(clock::now(), role, det, fresh_epoch())
    });
    let pair_workload = Arc::new(AtomicU32::new(pair.as_ref().map_or(0, |p| p.workload())));
    // The peer knows us by address, not port: the listening socket belongs
    // to the receiver thread, beats leave from `hb`.
    let _pair_beats = match (&pair, &cfg.peer) {
        (Some(_), Some(peer)) => Some(
            heartbeat::spawn_sender_with(
                hb,
                vec![SocketAddr::V4(peer.addr)],
                HeartbeatSender::new(
                    clock::now(),
                    LB_PAIR_ID,
                    fresh_epoch(),
                    cfg.heartbeat_interval,
                    0,
                ),
                pair_workload.clone(),
                registry.clone(),
            )
            .context("starting the peer heartbeat thread")?,
        ),
        _ => None,
    };
    let by_addr = cfg
        .proxies
        .iter()
        .map(|p| (p.addr, ProxyId(p.id)))
        .collect();
    let mut lb = Lb {
        iface,
        info,
        plane,
        data_mode,
        peer_dev,
        control,
        active: false,
        pair,
        macs: BTreeMap::new(),
        by_addr,
        arp,
        answering: Arc::new(AtomicBool::new(false)),
        pair_workload,
        m: Metrics::new(registry),
        table_stale: true,
        pushed: (false, Vec::new()),
        pushed_at: Instant::ZERO,
        announcer: Announcer::default(),
        peer_heard: None,
        cfg,
    };
    if std::net::UdpSocket::bind((lb.cfg.vip, 0)).is_ok() {
        tracing::warn!(
            vip = %lb.cfg.vip,
            "the service address is configured on this host: if this lb dies, its kernel \
             answers for it and resets connections; remove it (the lb answers ARP itself)"
        );
    }
    tracing::info!(
        vip = %lb.cfg.vip,
        interface = %lb.iface,
        ifindex = lb.info.ifindex,
        proxies = lb.cfg.proxies.len(),
        peer = ?lb.cfg.peer,
        "lb started, XDP program attached"
    );
    if lb.pair.is_none() {
        lb.activate("no peer configured")?;
    }
    lb.push_table()?;

    let stop = Arc::new(AtomicBool::new(false));
    let (learned_tx, mut learned) = tokio::sync::mpsc::unbounded_channel();
    let resolver = {
        let task = arp::ArpTask {
            sock: lb.arp.clone(),
            me: (lb.info.mac, lb.info.ipv4.unwrap_or(Ipv4Addr::UNSPECIFIED)),
            vip: lb.cfg.vip,
            answer: lb.answering.clone(),
            proxies: lb.cfg.proxies.iter().map(|p| p.addr).collect(),
            interval: lb.cfg.resolve_interval,
            learned: learned_tx,
            stop: stop.clone(),
        };
        std::thread::Builder::new()
            .name("lb-arp".into())
            .spawn(move || arp::run(task))
            .context("starting the ARP thread")?
    };

    let (beats_tx, mut beats) = tokio::sync::mpsc::unbounded_channel();
    let receiver = heartbeat::spawn_receiver(hb_listen, lb.cfg.heartbeat_interval / 2, beats_tx)
        .context("starting the heartbeat receiver thread")?;
    let result = lb
        .event_loop(&mut learned, &mut beats, &receiver, shutdown)
        .await;
    drop(receiver);
    stop.store(true, Ordering::Relaxed);
    drop(learned);
    let _ = resolver.join();
    tracing::info!("lb stopped, XDP program detached");
    result
}

/// Blocking entry point of `ftsplice lb`: logging, a tokio runtime, and
/// [`run`] until SIGTERM or SIGINT.
pub fn main(cfg: LbConfig) -> Result<()> {
    crate::logging::init(&cfg.log);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
        let stop = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = int.recv() => tracing::info!("SIGINT: shutting down"),
            }
        };
        run(cfg, Registry::new(), stop).await
    })
}

impl Lb {
    async fn event_loop(
        &mut self,
        learned: &mut tokio::sync::mpsc::UnboundedReceiver<(Ipv4Addr, [u8; 6])>,
        beats: &mut tokio::sync::mpsc::UnboundedReceiver<Received>,
        receiver: &BeatThread,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        tokio::pin!(shutdown);
        let mut next_poll = clock::now() + COUNTER_POLL;
        loop {
            let wake = [
                self.control.poll_timeout(),
                self.pair.as_ref().map(|p| p.poll_timeout()),
                self.announcer.poll_timeout(),
                self.table_stale.then_some(self.pushed_at + WEIGHT_HOLD),
                Some(next_poll),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(next_poll);
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                m = beats.recv() => match m {
                    Some(m) => self.on_received(m),
                    None => bail!("the heartbeat receiver thread stopped"),
                },
                Some((ip, mac)) = learned.recv() => self.on_learned(ip, mac),
                _ = tokio::time::sleep(clock::until(wake)) => {}
            }
            // Everything the receiver thread handed over is applied before
            // anyone is timed out; proxies are judged up to its watermark
            // (the silence must be the proxy's, not ours).
            while let Ok(m) = beats.try_recv() {
                self.on_received(m);
            }
            if receiver.is_finished() {
                bail!("the heartbeat receiver thread stopped");
            }
            let now = clock::now();
            self.control.handle_timeout(now);
            if let Some(p) = self.pair.as_mut() {
                if p.poll_timeout() <= now {
                    p.handle_timeout(now);
                }
                // Beats leave from the sender thread, with this workload.
                while p.poll_transmit().is_some() {}
            }
            self.announcer.handle_timeout(now);
            self.drain_events()?;
            self.announce();
            if self.table_stale
                && (self.membership_changed() || now >= self.pushed_at + WEIGHT_HOLD)
            {
                self.push_table()?;
            }
            if now >= next_poll {
                self.m.poll_counters(&self.plane);
                next_poll = now + COUNTER_POLL;
            }
        }
    }

    fn on_received(&mut self, m: Received) {
        match m {
            Received::Datagram { at, from, data } => self.on_datagram(at, from, &data),
            Received::Listened(at) => {
                self.control.handle_listened(at);
                if let Some(p) = self.pair.as_mut() {
                    p.handle_listened(at);
                }
            }
        }
        self.sync_pair_workload();
    }

    /// Publishes the pair's role and active bits to the beat thread.
    fn sync_pair_workload(&self) {
        if let Some(p) = &self.pair {
            self.pair_workload.store(p.workload(), Ordering::Release);
        }
    }

    /// A datagram that arrived at `now` (the receiver thread's stamp).
    fn on_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let from_peer = self
            .cfg
            .peer
            .as_ref()
            .is_some_and(|p| SocketAddr::V4(p.addr).ip() == from.ip());
        if from_peer {
            self.peer_heard = Some(now);
            // The peer lb's beats share this socket and path: they tell
            // a proxy's own silence from one common to everything we hear.
            self.control.handle_heard(now);
            if let Some(p) = self.pair.as_mut() {
                if let Err(e) = p.handle_datagram(now, data) {
                    self.m.dropped("peer");
                    tracing::debug!(%from, error = %e, "peer heartbeat dropped");
                }
            }
            return;
        }
        match self.control.handle_datagram(now, data) {
            Ok(_) => self.m.received.inc(),
            Err(e) => {
                self.m.dropped(e.label());
                tracing::debug!(%from, error = %e, "heartbeat dropped");
            }
        }
    }

    fn on_learned(&mut self, ip: Ipv4Addr, mac: [u8; 6]) {
        let Some(&id) = self.by_addr.get(&ip) else {
            return;
        };
        let old = self.macs.insert(id, mac);
        match old {
            None => {
                tracing::info!(proxy = id.0, addr = %ip, mac = %fmt_mac(mac), "proxy MAC resolved")
            }
            Some(o) => tracing::warn!(
                proxy = id.0, addr = %ip, old = %fmt_mac(o), new = %fmt_mac(mac),
                "proxy MAC changed"
            ),
        }
        self.table_stale = true;
        self.control.set_reachable(id, true);
    }

    fn drain_events(&mut self) -> Result<()> {
        while let Some(ev) = self.control.poll_event() {
            match ev {
                LbControlEvent::ProxyUp { id, weight, epoch } => {
                    tracing::info!(proxy = id.0, weight, epoch, "proxy up: heartbeat received");
                    self.m.proxy(id, Some(true), Some(weight));
                }
                LbControlEvent::ProxyDown { id, reason } => match reason {
                    DownReason::HeartbeatsMissed {
                        missed,
                        silence,
                        others,
                    } => {
                        // Other proxies' and the peer lb's silence at the
                        // same moment: all quiet together points at this
                        // lb or the path, not at the proxy.
                        let ms = |d: Duration| d.as_secs_f64() * 1e3;
                        let peer_lb = self
                            .peer_heard
                            .map(|t| ms(clock::now().saturating_since(t)));
                        tracing::warn!(
                            proxy = id.0,
                            missed,
                            silence_ms = ms(silence),
                            others_silence_ms = others.map(ms),
                            peer_lb_silence_ms = peer_lb,
                            "proxy down: heartbeats missed"
                        );
                        self.m.detections.inc();
                        self.m.silence_ms.set(silence.as_millis() as i64);
                        self.m.proxy(id, Some(false), None);
                    }
                    DownReason::Restarted {
                        old_epoch,
                        new_epoch,
                    } => {
                        tracing::warn!(proxy = id.0, old_epoch, new_epoch, "proxy restarted");
                        self.m.restarts.inc();
                    }
                },
                LbControlEvent::WeightChanged { id, from, to } => {
                    tracing::debug!(proxy = id.0, from, to, "proxy workload factor changed");
                    self.m.proxy(id, None, Some(to));
                }
                LbControlEvent::Reachable { id, reachable } => {
                    tracing::debug!(proxy = id.0, reachable, "proxy reachability changed");
                }
                LbControlEvent::TableChanged => self.table_stale = true,
                LbControlEvent::Held { id, silence } => {
                    tracing::info!(
                        proxy = id.0,
                        silence_ms = silence.as_secs_f64() * 1e3,
                        "proxy verdict held: every proxy silent together"
                    );
                    self.m.held.inc();
                }
            }
        }
        self.m.live.set(self.control.live().count() as i64);
        let pair_events: Vec<PairEvent> = match self.pair.as_mut() {
            Some(p) => std::iter::from_fn(|| p.poll_event()).collect(),
            None => Vec::new(),
        };
        for ev in pair_events {
            match ev {
                PairEvent::Activate(why) => self.activate(&format!("{why:?}"))?,
                PairEvent::Deactivate(why) => self.deactivate(&format!("{why:?}")),
                PairEvent::Reannounce => {
                    tracing::warn!(
                        "both lbs were active or the peer yielded; announcing the address again"
                    );
                }
            }
        }
        self.sync_pair_workload();
        Ok(())
    }

    fn activate(&mut self, why: &str) -> Result<()> {
        tracing::warn!(vip = %self.cfg.vip, reason = why, "taking over the service address");
        self.active = true;
        self.m.active.set(1);
        self.m.takeovers.inc();
        self.table_stale = true;
        self.push_table()?;
        if self.cfg.announce_vip {
            self.answering.store(true, Ordering::Relaxed);
        }
        if self.pair.is_none() {
            self.announcer.start(clock::now());
            self.announcer.handle_timeout(clock::now());
        }
        self.announce();
        Ok(())
    }

    fn deactivate(&mut self, why: &str) {
        tracing::warn!(vip = %self.cfg.vip, reason = why, "giving up the service address");
        self.active = false;
        self.m.active.set(0);
        self.table_stale = true;
        self.answering.store(false, Ordering::Relaxed);
        self.announcer.stop();
    }

    /// Sends the gratuitous ARPs that are due (`announce_vip`).
    fn announce(&mut self) {
        let mut due = 0;
        while self.announcer.poll_transmit() {
            due += 1;
        }
        if let Some(p) = self.pair.as_mut() {
            while p.poll_announce() {
                due += 1;
            }
        }
        if !self.cfg.announce_vip || !self.active {
            return;
        }
        let g = ArpPacket::gratuitous(self.info.mac, self.cfg.vip);
        for _ in 0..due.min(1) {
            if let Err(e) = self.arp.send(&g, BROADCAST) {
                tracing::warn!(error = %e, "gratuitous ARP not sent");
            }
        }
    }

    /// `LB_MODE_PORT`: the slot of each port's owner while it is in the
    /// table (and this lb active), else zero (flow hash decides).
    fn port_owners(&self) -> Vec<LbSlot> {
        let mut owners = vec![LbSlot::default(); LB_PORTS];
        if !self.active {
            return owners;
        }
        for p in &self.cfg.proxies {
            let id = ProxyId(p.id);
            let (Some(range), Some(&dmac)) = (&p.ssa_ports, self.macs.get(&id)) else {
                continue;
            };
            if !self.control.table_members().contains(id) {
                continue;
            }
            for port in range.clone() {
                owners[usize::from(port)] = LbSlot {
                    dmac,
                    smac: self.info.mac,
                    ifindex: self.info.ifindex,
                };
            }
        }
        owners
    }

    fn member_ids(&self) -> Vec<ProxyId> {
        self.control.table_members().ids().collect()
    }

    /// Whether the table to write differs from the last one in more than
    /// weights (which are rate limited).
    fn membership_changed(&self) -> bool {
        self.pushed.0 != self.active || self.pushed.1 != self.member_ids()
    }

    /// Writes the current table (empty while standby) to the data plane.
    fn push_table(&mut self) -> Result<()> {
        let changed = self.membership_changed();
        self.pushed = (self.active, self.member_ids());
        self.pushed_at = clock::now();
        self.table_stale = false;
        let cfg = LbCfg {
            vip: self.cfg.vip.octets(),
            nslots: 0,
            mode: self.data_mode,
            burst: self.cfg.burst,
            peer_dev: self.peer_dev,
        };
        let slots = if self.active {
            let table = SlotTable::build(self.control.table_members());
            let macs = &self.macs;
            ftsplice_bpf::lb::slot_table(
                &table,
                |id| macs.get(&id).copied(),
                self.info.mac,
                self.info.ifindex,
            )
            .map_err(|id| anyhow::anyhow!("proxy {id} is in the table without a MAC"))?
        } else {
            Vec::new()
        };
        if self.data_mode == LB_MODE_PORT {
            // Owners first: a port whose owner left falls back to the table.
            let owners = self.port_owners();
            self.plane
                .set_port_owners(&owners)
                .context("writing the port owners")?;
        }
        self.plane
            .configure(cfg, &slots)
            .context("writing the lb table")?;
        self.m.table_updates.inc();
        let members: Vec<String> = self
            .control
            .table_members()
            .iter()
            .map(|(id, w)| format!("{}:{w}", id.0))
            .collect();
        self.m
            .table
            .set(if self.active { members.len() as i64 } else { 0 });
        if changed {
            tracing::info!(active = self.active, members = %members.join(","), "lb table updated");
        } else {
            tracing::debug!(active = self.active, members = %members.join(","), "lb table weights updated");
        }
        Ok(())
    }
}

/// Whether `iface` is a veth (from `ethtool -i`; false if unknown).
fn is_veth(iface: &str) -> bool {
    ftsplice_linux::run_cmd("ethtool", &["-i", iface])
        .is_ok_and(|o| o.lines().any(|l| l.trim() == "driver: veth"))
}

fn fmt_mac(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_map_to_the_data_plane_and_flowlet_is_refused() {
        let src = crate::config::Source::new(
            "lb.toml",
            "vip = \"198.18.0.10\"\ninterface = \"e0\"\nmode = \"flowlet\"\n[heartbeat]\nlisten = \"198.18.1.1:7000\"\n",
        );
        let mut cfg = LbConfig::from_source(&src).unwrap();
        let e = data_plane_mode(&cfg).unwrap_err().to_string();
        assert!(e.contains("'mode'"), "{e}");
        cfg.mode = LbMode::Burst;
        assert_eq!(data_plane_mode(&cfg).unwrap(), LB_MODE_SPRAY);
        cfg.mode = LbMode::Weighted;
        assert_eq!(data_plane_mode(&cfg).unwrap(), LB_MODE_RANDOM);
        assert_eq!(fmt_mac([2, 0, 0xab, 0, 0, 1]), "02:00:ab:00:00:01");
        assert_ne!(fresh_epoch(), 0);
    }
}

//! `ftsplice lb` as a child process on a switched LAN of namespaces (a
//! bridge in its own namespace; client, lb(s) and two proxies each on one
//! port): the proxies hold the service address on `lo` (arp_ignore), run a
//! tiny TCP server and beat to the lb(s) every 10 ms.
//!
//! - connections spread over both proxies; when proxy 1's heartbeats stop,
//!   the lb declares it down (the measured detection time is printed and
//!   must be within 50 ms of the last sent beat's 3-beat bound) and new
//!   connections all go to proxy 2;
//! - with a primary and a backup lb, killing the primary (SIGKILL) moves
//!   the address to the backup (gratuitous ARP) and a client's persistent
//!   connection continues; the client-visible stall is printed.
//!
//! Root only (namespaces); skipped otherwise. Addresses in 198.18.0.0/15.

// A real-time test: it reads the clock and sleeps.
#![allow(clippy::disallowed_methods)]

use ftsplice_daemon::heartbeat::{spawn_sender, BeatThread};
use ftsplice_daemon::metrics::Registry;
use ftsplice_linux::{skip_unless_root, NetNs};
use ftsplice_proto::heartbeat::HeartbeatSender;
use ftsplice_proto::ProxyId;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
const PORT: u16 = 8080;
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const LB1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const LB2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);
const HB_PORT: u16 = 7000;
const BEAT: Duration = Duration::from_millis(10);
/// The daemon's default, which picks generic XDP on veth devices.
const XDP: &str = "auto";

fn proxy_addr(id: u16) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, 10 + id as u8)
}

/// A bridge in its own namespace; every node hangs off one port.
struct Lan {
    sw: NetNs,
    ports: u32,
}

impl Lan {
    fn new() -> Lan {
        let sw = NetNs::new("sw").unwrap();
        sw.ip(&["link", "add", "br0", "type", "bridge"]).unwrap();
        sw.ip(&["link", "set", "br0", "up"]).unwrap();
        Lan { sw, ports: 0 }
    }

    /// A new namespace with `eth0` (address `addr/24`) on the bridge.
    fn node(&mut self, tag: &str, addr: Ipv4Addr) -> NetNs {
        let ns = NetNs::new(tag).unwrap();
        let port = format!("v{}", self.ports);
        self.ports += 1;
        self.sw
            .ip(&[
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                ns.name(),
            ])
            .unwrap();
        self.sw
            .ip(&["link", "set", &port, "master", "br0"])
            .unwrap();
        for (n, dev) in [(&self.sw, port.as_str()), (&ns, "eth0")] {
            n.exec(
                "ethtool",
                &[
                    "-K", dev, "tx", "off", "rx", "off", "tso", "off", "gso", "off",
                ],
            )
            .unwrap();
            n.ip(&["link", "set", dev, "up"]).unwrap();
        }
        ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", "eth0"])
            .unwrap();
        ns
    }
}

/// A proxy stand-in: the service address on `lo` (ARP left to the lb), a
/// TCP server answering every line with its name, heartbeats to the lbs.
struct Proxy {
    _ns: NetNs,
    stop: Arc<AtomicBool>,
    server: Option<JoinHandle<()>>,
    beats: Option<BeatThread>,
}

impl Proxy {
    fn new(lan: &mut Lan, id: u16, lbs: &[Ipv4Addr]) -> Proxy {
        let ns = lan.node(&format!("p{id}"), proxy_addr(id));
        ns.sysctl("net.ipv4.conf.all.arp_ignore", "1").unwrap();
        ns.sysctl("net.ipv4.conf.all.arp_announce", "2").unwrap();
        ns.ip(&["addr", "add", &format!("{VIP}/32"), "dev", "lo"])
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let listener = ns
            .run(|| TcpListener::bind(SocketAddrV4::new(VIP, PORT)).unwrap())
            .unwrap();
        listener.set_nonblocking(true).unwrap();
        let st = stop.clone();
        let server = std::thread::spawn(move || serve(listener, id, st));
        let targets: Vec<SocketAddr> = lbs
            .iter()
            .map(|&a| SocketAddr::V4(SocketAddrV4::new(a, HB_PORT)))
            .collect();
        let beats = ns
            .run(move || {
                let sock = std::net::UdpSocket::bind(SocketAddrV4::new(proxy_addr(id), 0)).unwrap();
                let hb =
                    HeartbeatSender::new(ftsplice_daemon::clock::now(), ProxyId(id), 7, BEAT, 100);
                spawn_sender(sock, targets, hb, Registry::new()).unwrap()
            })
            .unwrap();
        Proxy {
            _ns: ns,
            stop,
            server: Some(server),
            beats: Some(beats),
        }
    }

    /// Stops the heartbeats; returns when the sender stopped.
    fn stop_beats(&mut self) -> Instant {
        drop(self.beats.take());
        Instant::now()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        drop(self.beats.take());
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.server.take() {
            let _ = h.join();
        }
    }
}

fn serve(listener: TcpListener, id: u16, stop: Arc<AtomicBool>) {
    let mut conns = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((s, _)) => {
                let st = stop.clone();
                conns.push(std::thread::spawn(move || answer(s, id, st)));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    for c in conns {
        let _ = c.join();
    }
}

fn answer(s: TcpStream, id: u16, stop: Arc<AtomicBool>) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    while !stop.load(Ordering::Relaxed) {
        match r.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) if line.ends_with('\n') => {
                if w.write_all(format!("p{id}\n").as_bytes()).is_err() {
                    return;
                }
                line.clear();
            }
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
    }
}

/// One `ftsplice lb` child process in a namespace; its JSON log lines are
/// collected with their arrival time.
struct LbProc {
    child: Child,
    config: PathBuf,
    lines: Arc<Mutex<Vec<(Instant, serde_json::Value)>>>,
    reader: Option<JoinHandle<()>>,
}

fn lb_config(addr: Ipv4Addr, peer: Option<(Ipv4Addr, &str)>) -> String {
    let mut c = format!(
        "vip = \"{VIP}\"\ninterface = \"eth0\"\nxdp_mode = \"{XDP}\"\nmetrics = \"{addr}:9100\"\nresolve_ms = 200\n\n\
         [heartbeat]\nlisten = \"{addr}:{HB_PORT}\"\ninterval_ms = 10\nmisses = 3\n\n\
         [log]\nformat = \"json\"\n\n\
         [[proxy]]\nid = 1\naddr = \"{}\"\n\n[[proxy]]\nid = 2\naddr = \"{}\"\n",
        proxy_addr(1),
        proxy_addr(2)
    );
    if let Some((p, role)) = peer {
        c += &format!("\n[peer]\naddr = \"{p}:{HB_PORT}\"\nrole = \"{role}\"\n");
    }
    c
}

impl LbProc {
    fn spawn(ns: &NetNs, config: &str) -> LbProc {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "ftsplice-lbtest-{}-{}.toml",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .arg(env!("CARGO_BIN_EXE_ftsplice"))
            .arg("lb")
            .arg("--config")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let name = ns.name().to_string();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let t = Instant::now();
                eprintln!("[{name}] {line}");
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    sink.lock().unwrap().push((t, v));
                }
            }
        });
        LbProc {
            child,
            config: path,
            lines,
            reader: Some(reader),
        }
    }

    /// The first log line whose message is `msg` and that satisfies `pred`,
    /// waiting up to `timeout`.
    fn wait_for(
        &self,
        msg: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
        timeout: Duration,
    ) -> Option<(Instant, serde_json::Value)> {
        self.wait_after(None, msg, pred, timeout)
    }

    /// Like `wait_for`, but only lines read after `since` count: an earlier
    /// line with the same message (a start-up flap under load) is not the
    /// event being waited for.
    fn wait_after(
        &self,
        since: Option<Instant>,
        msg: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
        timeout: Duration,
    ) -> Option<(Instant, serde_json::Value)> {
        let end = Instant::now() + timeout;
        loop {
            {
                let lines = self.lines.lock().unwrap();
                if let Some(hit) = lines
                    .iter()
                    .find(|(t, v)| since.is_none_or(|s| *t >= s) && v["message"] == msg && pred(v))
                {
                    return Some(hit.clone());
                }
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits until the lb balances over both proxies (`active`) or holds
    /// them in its standby table.
    fn wait_table(&self, active: bool) {
        self.wait_for(
            "lb table updated",
            |v| v["active"] == active && v["members"] == "1:100,2:100",
            Duration::from_secs(10),
        )
        .unwrap_or_else(|| panic!("lb never had both proxies in its table (active={active})"));
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LbProc {
    fn drop(&mut self) {
        self.kill();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let _ = std::fs::remove_file(&self.config);
    }
}

/// Which proxy answers a fresh connection from the client.
fn ask(client: &NetNs) -> Option<String> {
    client
        .run(|| {
            let vip = SocketAddr::V4(SocketAddrV4::new(VIP, PORT));
            let mut s = TcpStream::connect_timeout(&vip, Duration::from_secs(3)).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
            s.write_all(b"who\n").ok()?;
            let mut r = BufReader::new(s);
            let mut line = String::new();
            r.read_line(&mut line).ok()?;
            Some(line.trim().to_string())
        })
        .unwrap()
}

fn spread(client: &NetNs, n: usize) -> [usize; 3] {
    let mut c = [0usize; 3];
    for _ in 0..n {
        match ask(client).as_deref() {
            Some("p1") => c[1] += 1,
            Some("p2") => c[2] += 1,
            _ => c[0] += 1,
        }
    }
    c
}

/// The value of an unlabelled counter in a scraped exposition.
fn counter(exposition: &str, name: &str) -> u64 {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing in\n{exposition}"))
}

fn metrics(client: &NetNs, lb: Ipv4Addr) -> String {
    client
        .run(|| {
            let mut s = TcpStream::connect(SocketAddrV4::new(lb, 9100)).unwrap();
            s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        })
        .unwrap()
}

#[test]
fn lb_spreads_connections_and_drops_a_silent_proxy() {
    if skip_unless_root("lb_spreads_connections_and_drops_a_silent_proxy") {
        return;
    }
    let mut lan = Lan::new();
    let client = lan.node("c", CLIENT);
    let lb_ns = lan.node("lb", LB1);
    let mut p1 = Proxy::new(&mut lan, 1, &[LB1]);
    let _p2 = Proxy::new(&mut lan, 2, &[LB1]);
    let lb = LbProc::spawn(&lb_ns, &lb_config(LB1, None));
    lb.wait_table(true);

    let before = spread(&client, 40);
    assert_eq!(before[0], 0, "failed connections: {before:?}");
    assert!(before[1] > 0 && before[2] > 0, "not spread: {before:?}");

    // A loaded machine can delay a start-up beat past the detector's bound
    // (a real, logged flap); only the detection after the stop is asserted.
    let detections = counter(&metrics(&client, LB1), "ftsplice_lb_detections_total");
    let stopped = p1.stop_beats();
    let (at, ev) = lb
        .wait_after(
            Some(stopped),
            "proxy down: heartbeats missed",
            |v| v["proxy"] == 1,
            Duration::from_secs(5),
        )
        .expect("proxy 1 never declared down");
    let detected = at.saturating_duration_since(stopped);
    let silence = ev["silence_ms"].as_f64().unwrap();
    println!(
        "lb detection: proxy 1 declared down {:.1} ms after its heartbeats stopped \
         (lb measured {silence:.1} ms since the last beat; bound 3 x 10 ms)",
        detected.as_secs_f64() * 1e3
    );
    // 3 missed 10 ms beats: 20..30 ms after the failure, plus timer slack,
    // as the lb measures it. The test's own clock adds the log pipe and
    // this thread's scheduling, which a loaded CI machine stretches.
    assert!(silence <= 50.0, "lb detected after {silence} ms of silence");
    assert!(detected <= Duration::from_millis(250), "{detected:?}");
    lb.wait_after(
        Some(stopped),
        "lb table updated",
        |v| v["members"] == "2:100",
        Duration::from_secs(1),
    )
    .expect("table without proxy 1");

    let after = spread(&client, 30);
    assert_eq!(after, [0, 0, 30], "new connections must all go to proxy 2");
    let m = metrics(&client, LB1);
    assert_eq!(
        counter(&m, "ftsplice_lb_detections_total"),
        detections + 1,
        "one detection after the stop:\n{m}"
    );
    for want in [
        "ftsplice_live_proxies 1",
        "ftsplice_lb_active 1",
        "ftsplice_lb_proxy_up{proxy=\"1\"} 0",
    ] {
        assert!(m.contains(want), "{want} missing in\n{m}");
    }
}

#[test]
fn backup_lb_takes_over_when_the_primary_is_killed() {
    if skip_unless_root("backup_lb_takes_over_when_the_primary_is_killed") {
        return;
    }
    let mut lan = Lan::new();
    let client = lan.node("c", CLIENT);
    let lb1_ns = lan.node("lba", LB1);
    let lb2_ns = lan.node("lbb", LB2);
    let _p1 = Proxy::new(&mut lan, 1, &[LB1, LB2]);
    let _p2 = Proxy::new(&mut lan, 2, &[LB1, LB2]);
    // The primary first (a backup that starts alone takes over after its
    // start-up wait, which `proto::lb_pair` tests).
    let mut lb1 = LbProc::spawn(&lb1_ns, &lb_config(LB1, Some((LB2, "primary"))));
    lb1.wait_table(true);
    let lb2 = LbProc::spawn(&lb2_ns, &lb_config(LB2, Some((LB1, "backup"))));
    lb2.wait_table(false);
    assert!(
        lb2.wait_for("taking over the service address", |_| true, Duration::ZERO)
            .is_none(),
        "backup took over while the primary lives"
    );

    // A persistent connection pinging every 2 ms; the longest gap between
    // answers is the client-visible stall.
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let pinger = client.spawn(move || {
        let vip = SocketAddr::V4(SocketAddrV4::new(VIP, PORT));
        let s = TcpStream::connect_timeout(&vip, Duration::from_secs(3)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut answers = Vec::new();
        let mut line = String::new();
        while !st.load(Ordering::Relaxed) {
            w.write_all(b"ping\n").unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
            assert!(line.starts_with('p'), "bad answer {line:?}");
            answers.push(Instant::now());
            std::thread::sleep(Duration::from_millis(2));
        }
        answers
    });
    std::thread::sleep(Duration::from_millis(300));
    let killed = Instant::now();
    lb1.kill();
    let (took, ev) = lb2
        .wait_for(
            "taking over the service address",
            |_| true,
            Duration::from_secs(5),
        )
        .expect("backup never took over");
    println!(
        "lb takeover: backup active {:.1} ms after the primary was killed ({})",
        took.saturating_duration_since(killed).as_secs_f64() * 1e3,
        ev["reason"]
    );
    lb2.wait_table(true);
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let answers = pinger.join().unwrap().unwrap();
    let stall = answers
        .windows(2)
        .filter(|w| w[1] > killed)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap();
    let resumed = answers.iter().filter(|&&t| t > killed + stall).count();
    println!(
        "lb takeover: client-visible stall {:.1} ms on a persistent connection \
         ({} answers, {resumed} after the stall)",
        stall.as_secs_f64() * 1e3,
        answers.len()
    );
    assert!(resumed > 10, "the connection did not continue");
    // TCP's retransmission timer (200 ms minimum, doubling) dominates.
    assert!(stall < Duration::from_millis(1500), "{stall:?}");
    // New connections work through the backup and still spread.
    let after = spread(&client, 30);
    assert_eq!(after[0], 0, "failed connections: {after:?}");
    assert!(after[1] > 0 && after[2] > 0, "not spread: {after:?}");
}

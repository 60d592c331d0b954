//! Test support for live daemons in namespaces: an in-process proxy (its
//! own tokio runtime on a thread inside the proxy's namespace, stopped like
//! a crash: the runtime and the data plane are dropped), a small HTTP
//! backend (PUT answers the body's SHA-256, GET /blob/N sends N generated
//! bytes), client helpers, the shared address plan, topology and
//! `proxy.toml` template ([`line`]), and nftables drops and counters
//! ([`nft`]).
#![allow(dead_code)]
#![allow(clippy::disallowed_methods)] // real sockets: waits on the wall clock

mod line;
pub mod nft;
pub use line::*;

use ftsplice_daemon::bpf_sink::{BpfSink, Role};
use ftsplice_daemon::config::{AgentConfig, ProxyConfig, Source};
use ftsplice_daemon::metrics::Registry;
use ftsplice_linux::NetNs;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const PSK: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// The byte at offset `i` of a generated body.
pub fn body_byte(i: u64) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

pub fn body(n: usize) -> Vec<u8> {
    (0..n as u64).map(body_byte).collect()
}

pub fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha(d: &[u8]) -> String {
    hex(&Sha256::digest(d))
}

/// A proxy daemon running in a namespace thread; dropping it kills it.
pub struct ProxyGuard {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<ftsplice_linux::Result<anyhow::Result<()>>>>,
    pub metrics: Registry,
}

/// Which daemon a guard runs.
enum Daemon {
    Proxy(Box<ProxyConfig>),
    Agent(AgentConfig),
}

impl ProxyGuard {
    pub fn start(ns: &NetNs, toml: &str) -> ProxyGuard {
        let cfg = ProxyConfig::from_source(&Source::new("test-proxy.toml", toml)).unwrap();
        Self::run(ns, Daemon::Proxy(Box::new(cfg)))
    }

    /// A split-splice agent instead of a proxy.
    pub fn start_agent(ns: &NetNs, toml: &str) -> ProxyGuard {
        let cfg = AgentConfig::from_source(&Source::new("test-agent.toml", toml)).unwrap();
        Self::run(ns, Daemon::Agent(cfg))
    }

    fn run(ns: &NetNs, daemon: Daemon) -> ProxyGuard {
        // Logs go to the test's stderr (shown for failing tests).
        ftsplice_daemon::logging::init(&Default::default());
        let metrics = Registry::new();
        let m = metrics.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = ns.spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (role, ifs) = match &daemon {
                    Daemon::Proxy(c) => (Role::Proxy, c.interfaces.clone()),
                    Daemon::Agent(c) => (Role::Agent, c.interfaces.clone()),
                };
                let sink = match BpfSink::attach(role, &ifs) {
                    Ok(s) => Box::new(s),
                    Err(e) => {
                        let _ = ready_tx.send(());
                        return Err(anyhow::anyhow!("{e}"));
                    }
                };
                let _ = ready_tx.send(());
                let run = async move {
                    match daemon {
                        Daemon::Proxy(c) => ftsplice_daemon::proxy::daemon::run(*c, sink, m).await,
                        Daemon::Agent(c) => ftsplice_daemon::agent::run(c, sink, m).await,
                    }
                };
                tokio::select! {
                    r = run => r,
                    _ = rx => Ok(()),
                }
            })
        });
        ready_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        // Let the listener bind.
        std::thread::sleep(Duration::from_millis(100));
        ProxyGuard {
            stop: Some(tx),
            thread: Some(thread),
            metrics,
        }
    }

    /// Kills the daemon (no goodbye: like a crash, minus the machine).
    pub fn kill(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            match t.join() {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => panic!("proxy daemon failed: {e:#}"),
                Ok(Err(e)) => panic!("proxy thread: {e}"),
                Err(_) => panic!("proxy thread panicked"),
            }
        }
    }

    /// A metric's value from the text exposition (0 if absent). Every
    /// read also checks the whole exposition with the strict reader.
    pub fn metric(&self, series: &str) -> i64 {
        let text = self.metrics.render();
        if let Err(e) = ftsplice_daemon::exposition::parse(&text) {
            panic!("invalid exposition: {e}\n{text}");
        }
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn wait_metric(&self, series: &str, at_least: i64, within: Duration) {
        let deadline = Instant::now() + within;
        while self.metric(series) < at_least {
            assert!(
                Instant::now() < deadline,
                "{series} stayed below {at_least}:\n{}",
                self.metrics.render()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl ProxyGuard {
    pub fn wait_metric_at_most(&self, series: &str, at_most: i64, within: Duration) {
        let deadline = Instant::now() + within;
        while self.metric(series) > at_most {
            assert!(
                Instant::now() < deadline,
                "{series} stayed above {at_most}:\n{}",
                self.metrics.render()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for ProxyGuard {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The test backend: one thread per connection, one request each.
pub struct Backend {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<ftsplice_linux::Result<()>>>,
    pub addr: SocketAddrV4,
}

fn serve(mut s: TcpStream) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        if h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("");
    if method == "PUT" {
        let mut h = Sha256::new();
        let mut left = len;
        let mut buf = vec![0u8; 64 * 1024];
        while left > 0 {
            let n = r.read(&mut buf[..left.min(64 * 1024)])?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            h.update(&buf[..n]);
            left -= n;
        }
        let d = hex(&h.finalize());
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{d}",
            d.len()
        )?;
    } else if let Some(n) = path.strip_prefix("/blob/") {
        let n: usize = n.parse().unwrap_or(0);
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n"
        )?;
        let b = body(n);
        s.write_all(&b)?;
    } else {
        write!(
            s,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?;
    }
    s.flush()?;
    // Close after the response: FINs both ways end the splice.
    s.shutdown(std::net::Shutdown::Write)?;
    let mut rest = [0u8; 1024];
    while r.read(&mut rest).unwrap_or(0) > 0 {}
    Ok(())
}

impl Backend {
    pub fn start(ns: &NetNs, addr: SocketAddrV4) -> Backend {
        let l = ns.run(move || TcpListener::bind(addr).unwrap()).unwrap();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = ns.spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        std::thread::spawn(move || {
                            let _ = serve(s);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Backend {
            stop,
            thread: Some(thread),
            addr,
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A client connection from `ns` to the service address (port 80), reads
/// timing out after `read_timeout`.
pub fn connect_vip(ns: &NetNs, read_timeout: Duration) -> TcpStream {
    let s = ns.run(|| TcpStream::connect((VIP, 80)).unwrap()).unwrap();
    s.set_read_timeout(Some(read_timeout)).unwrap();
    s
}

/// GETs `/blob/{size}` from `ns` through the service address and checks
/// the answer: a 200 with the generated body.
pub fn get_blob(ns: &NetNs, size: usize) {
    let mut get = connect_vip(ns, Duration::from_secs(30));
    write!(get, "GET /blob/{size} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let (head, got) = read_response(&mut get);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(sha(&got), sha(&body(size)), "GET body");
}

/// Reads a whole `Connection: close` response: status line, head, body.
pub fn read_response(s: &mut TcpStream) -> (String, Vec<u8>) {
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(&all)))
        + 4;
    let head = String::from_utf8_lossy(&all[..end]).to_string();
    (head, all[end..].to_vec())
}

/// `ss -tan` in `ns`, lines that mention `needle`.
pub fn ss_lines(ns: &NetNs, needle: &str) -> Vec<String> {
    ns.exec("ss", &["-tanH"])
        .unwrap()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

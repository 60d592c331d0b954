//! Prometheus metrics: a small registry of counters and gauges (atomics
//! shared with the drivers), the text exposition format (version 0.0.4),
//! and a minimal HTTP listener serving `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A monotonically increasing count.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Clone, Debug, Default)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn add(&self, v: i64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
enum Value {
    Counter(Counter),
    Gauge(Gauge),
}

#[derive(Debug)]
struct Family {
    help: String,
    kind: &'static str,
    /// Rendered label set (`{a="b"}` or empty) to value.
    series: BTreeMap<String, Value>,
}

/// All metrics of one daemon. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    families: Arc<Mutex<BTreeMap<String, Family>>>,
}

fn render_labels(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let mut s = String::from("{");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '"' => s.push_str("\\\""),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    s.push('}');
    s
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    fn get_or_add(
        &self,
        name: &str,
        help: &str,
        kind: &'static str,
        labels: &[(&str, &str)],
        make: impl FnOnce() -> Value,
    ) -> Option<Value> {
        let mut fams = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let fam = fams.entry(name.to_string()).or_insert_with(|| Family {
            help: help.to_string(),
            kind,
            series: BTreeMap::new(),
        });
        let v = fam.series.entry(render_labels(labels)).or_insert_with(make);
        Some(match v {
            Value::Counter(c) => Value::Counter(c.clone()),
            Value::Gauge(g) => Value::Gauge(g.clone()),
        })
    }

    /// The counter `name{labels}`, registered on first use. Asking for a
    /// name registered as a gauge gives a detached counter (a programming
    /// error caught by the tests, never a panic).
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Counter {
        match self.get_or_add(name, help, "counter", labels, || {
            Value::Counter(Counter::default())
        }) {
            Some(Value::Counter(c)) => c,
            _ => Counter::default(),
        }
    }

    /// The gauge `name{labels}`, registered on first use.
    pub fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Gauge {
        match self.get_or_add(name, help, "gauge", labels, || {
            Value::Gauge(Gauge::default())
        }) {
            Some(Value::Gauge(g)) => g,
            _ => Gauge::default(),
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let fams = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for (name, fam) in fams.iter() {
            // HELP escapes: `\\` and `\n` (a bare backslash is refused by
            // Prometheus' parser).
            let help = fam.help.replace('\\', "\\\\").replace('\n', "\\n");
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {}", fam.kind);
            for (labels, v) in &fam.series {
                let _ = match v {
                    Value::Counter(c) => writeln!(out, "{name}{labels} {}", c.get()),
                    Value::Gauge(g) => writeln!(out, "{name}{labels} {}", g.get()),
                };
            }
        }
        out
    }
}

/// Largest request head the metrics listener reads.
const MAX_REQUEST: usize = 4096;

/// Serves `GET /metrics` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, registry: Registry) {
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of fds and the like: do not spin.
                tracing::warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let reg = registry.clone();
        tokio::spawn(async move {
            if !serve_conn(sock, &reg).await {
                tracing::debug!(%peer, "metrics request incomplete or timed out");
            }
        });
    }
}

/// Answers one request on `sock`; false if it never completed.
pub async fn serve_conn<S>(mut sock: S, reg: &Registry) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        true
    })
    .await;
    if !matches!(read, Ok(true)) {
        return false;
    }
    let line = buf.split(|&b| b == b'\r').next().unwrap_or_default();
    let (status, body) = if line.starts_with(b"GET /metrics ") {
        ("200 OK", reg.render())
    } else {
        ("404 Not Found", "try GET /metrics\n".to_string())
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(resp.as_bytes()).await;
    let _ = sock.shutdown().await;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_exposition_format() {
        let r = Registry::new();
        let a = r.counter(
            "ftsplice_splices_total",
            "Splices created",
            &[("result", "ok")],
        );
        let b = r.counter(
            "ftsplice_splices_total",
            "Splices created",
            &[("result", "fail\"x")],
        );
        let g = r.gauge("ftsplice_live_proxies", "Live proxies", &[]);
        a.add(3);
        b.inc();
        g.set(-2);
        // The same series is shared.
        r.counter(
            "ftsplice_splices_total",
            "Splices created",
            &[("result", "ok")],
        )
        .inc();
        assert_eq!(
            r.render(),
            "# HELP ftsplice_live_proxies Live proxies\n\
             # TYPE ftsplice_live_proxies gauge\n\
             ftsplice_live_proxies -2\n\
             # HELP ftsplice_splices_total Splices created\n\
             # TYPE ftsplice_splices_total counter\n\
             ftsplice_splices_total{result=\"fail\\\"x\"} 1\n\
             ftsplice_splices_total{result=\"ok\"} 4\n"
        );
    }

    #[test]
    fn kind_mismatch_is_detached_not_a_panic() {
        let r = Registry::new();
        r.gauge("x", "h", &[]).set(5);
        let c = r.counter("x", "h", &[]);
        c.inc();
        assert!(r.render().contains("x 5\n"));
    }

    async fn ask(reg: &Registry, req: &[u8]) -> String {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        client.write_all(req).await.unwrap();
        assert!(serve_conn(server, reg).await);
        let mut resp = String::new();
        client.read_to_string(&mut resp).await.unwrap();
        resp
    }

    #[tokio::test]
    async fn answers_metrics_requests() {
        let r = Registry::new();
        r.counter("ftsplice_test_total", "t", &[]).add(7);
        let resp = ask(&r, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        assert!(resp.ends_with("ftsplice_test_total 7\n"), "{resp}");
        let resp = ask(&r, b"GET / HTTP/1.1\r\n\r\n").await;
        assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
    }

    #[tokio::test]
    async fn incomplete_request_is_not_answered() {
        let r = Registry::new();
        let (mut client, server) = tokio::io::duplex(1024);
        client.write_all(b"GET /metr").await.unwrap();
        drop(client);
        assert!(!serve_conn(server, &r).await);
    }
}

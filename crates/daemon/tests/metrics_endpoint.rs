//! The Prometheus endpoint of a live proxy daemon, scraped over HTTP from
//! the client's namespace like a Prometheus server would: the answer is a
//! complete HTTP response whose body parses as the text exposition format
//! (`ftsplice_daemon::exposition`, strict), and its counters move when a
//! connection is spliced, carried by the data plane and torn down.

#![allow(clippy::disallowed_methods)] // real sockets: waits on the wall clock

mod common;

use common::*;
use ftsplice_daemon::exposition::{parse, Exposition};
use ftsplice_linux::skip_unless_root;
use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

const METRICS: u16 = 9100;
const SIZE: usize = 2 << 20;

/// Sends `request` in `parts` writes to the proxy's metrics address from
/// the client's namespace; the status line, the head and the body.
fn ask(line: &Line, request: &str, parts: usize) -> (String, String, String) {
    let mut s = line
        .client()
        .run(|| TcpStream::connect((P_IN, METRICS)).unwrap())
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let bytes = request.as_bytes();
    let step = bytes.len().div_ceil(parts);
    for chunk in bytes.chunks(step) {
        s.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    let (head, body) = all.split_once("\r\n\r\n").expect("no end of head");
    let status = head.lines().next().unwrap_or_default().to_string();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("no Content-Length")
        .parse()
        .unwrap();
    assert_eq!(len, body.len(), "Content-Length against the body");
    (status, head.to_string(), body.to_string())
}

fn scrape(line: &Line) -> Exposition {
    let (status, head, body) = ask(line, "GET /metrics HTTP/1.1\r\nHost: p\r\n\r\n", 1);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let e = parse(&body).unwrap_or_else(|err| panic!("{err}\n{body}"));
    // Every family is typed and documented; counters are named *_total
    // and hold whole non-negative counts.
    for s in &e.samples {
        let kind = e
            .types
            .get(&s.name)
            .unwrap_or_else(|| panic!("{} untyped", s.name));
        assert!(e.help.contains_key(&s.name), "{} has no HELP", s.name);
        if kind == "counter" {
            assert!(s.name.ends_with("_total"), "counter {}", s.name);
            assert!(s.value >= 0.0 && s.value.fract() == 0.0, "{s:?}");
        }
    }
    e
}

fn spliced(e: &Exposition) -> f64 {
    e.get("ftsplice_proxy_connections_total", &[("result", "spliced")])
        .unwrap_or(0.0)
}

/// Scrapes until `ok` holds (or panics after `within`).
fn scrape_until(line: &Line, within: Duration, ok: impl Fn(&Exposition) -> bool) -> Exposition {
    let deadline = Instant::now() + within;
    loop {
        let e = scrape(line);
        if ok(&e) {
            return e;
        }
        assert!(Instant::now() < deadline, "never held: {e:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn scraped_metrics_parse_and_count_splices() {
    if skip_unless_root("scraped_metrics_parse_and_count_splices") {
        return;
    }
    let line = Line::new("m", LineOptions::default());
    let _backend = Backend::start(line.backend(), SocketAddrV4::new(BACKEND, 8080));
    let toml = ProxyToml {
        top: format!("mss_clamp = 1400\ndefault_pool = \"web\"\nmetrics = \"{P_IN}:{METRICS}\"\n"),
        ..ProxyToml::default()
    };
    let _proxy = ProxyGuard::start(line.proxy(), &toml.render());

    // Before any connection: valid, and nothing spliced or translated.
    let before = scrape(&line);
    assert_eq!(spliced(&before), 0.0);
    assert_eq!(before.get("ftsplice_splices_active", &[]), Some(0.0));

    get_blob(line.client(), SIZE);

    // The splice is counted, the data plane's packets show up, and the
    // teardown's deletion too.
    let min = (SIZE / 1400) as f64;
    let after = scrape_until(&line, Duration::from_secs(5), |e| {
        spliced(e) == 1.0
            && e.get("ftsplice_dataplane_packets", &[("reason", "translated")])
                .is_some_and(|v| v >= min)
            && e.get("ftsplice_splices_deleted_total", &[("reason", "closed")]) == Some(1.0)
    });
    assert_eq!(after.get("ftsplice_splices_active", &[]), Some(0.0));
    assert_eq!(after.get("ftsplice_ssa_ports_in_use", &[]), Some(0.0));

    // A request arriving in pieces is answered; other paths get 404.
    let (status, _, body) = ask(&line, "GET /metrics HTTP/1.1\r\nHost: p\r\n\r\n", 3);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(parse(&body).is_ok());
    let (status, _, _) = ask(&line, "GET /other HTTP/1.1\r\n\r\n", 1);
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");
}

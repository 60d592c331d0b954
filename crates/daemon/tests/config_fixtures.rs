//! Every config fixture in tests/fixtures/config either loads (`*-ok.toml`)
//! or fails with exactly the error its `# expect:` line states, which names
//! the file, the line and the key.

use ftsplice_daemon::config::{AgentConfig, ConfigError, LbConfig, ProxyConfig, Source};
use std::path::Path;

fn load(src: &Source) -> Result<(), ConfigError> {
    let name = src.file.as_str();
    if name.starts_with("proxy-") {
        ProxyConfig::from_source(src).map(drop)
    } else if name.starts_with("lb-") {
        LbConfig::from_source(src).map(drop)
    } else if name.starts_with("agent-") {
        AgentConfig::from_source(src).map(drop)
    } else {
        panic!("fixture {name} must start with proxy-, lb- or agent-")
    }
}

#[test]
fn fixtures_give_their_expected_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    let (mut ok, mut bad) = (0, 0);
    let mut failures = Vec::new();
    for path in entries {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let src = Source::new(name.clone(), text.clone());
        let expect = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect: "))
            .map(str::to_string);
        match (load(&src), expect) {
            (Ok(()), None) => ok += 1,
            (Err(e), Some(want)) => {
                if e.to_string() != format!("{name}: {want}") {
                    failures.push(format!("{name}:\n   got {e}\n  want {name}: {want}"));
                }
                if e.key.is_none() {
                    failures.push(format!("{name}: error names no key: {e}"));
                }
                bad += 1;
            }
            (Ok(()), Some(want)) => failures.push(format!("{name}: loaded, expected {want}")),
            (Err(e), None) => failures.push(format!("{name}: unexpected error {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ok >= 3 && bad >= 15, "ok {ok} bad {bad}");
}

#[test]
fn full_proxy_config_is_typed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config");
    let c = ProxyConfig::load(&dir.join("proxy-ok.toml")).unwrap();
    assert_eq!(c.id, 1);
    assert_eq!(c.vip.to_string(), "198.18.0.10:80");
    assert_eq!(c.ssa_ports, 40000..=44999);
    assert_eq!(c.mss_clamp, Some(1400));
    // A single `interface` string (old configs) is a one-element list.
    assert_eq!(c.interfaces, ["e0"]);
    assert_eq!(c.teardown.linger.as_secs(), 60);
    assert_eq!(c.head.max_bytes, 4096);
    assert_eq!(c.head.timeout.as_millis(), 2000);
    let hb = c.heartbeat.unwrap();
    assert_eq!(hb.lb.len(), 2);
    assert_eq!(hb.interval.as_millis(), 10);
    let r = c.replication.unwrap();
    assert_eq!(r.psk[0], 0x01);
    assert_eq!(r.peers[0].id, 2);
    assert_eq!(c.pools.len(), 2);
    assert_eq!(c.routes[0].host.as_deref(), Some("*.example.com"));
    assert_eq!(c.default_pool.as_deref(), Some("web"));
    assert_eq!(c.log.format, ftsplice_daemon::config::LogFormat::Json);
    assert!(c.l4_routes.is_empty());
    let l4 = ProxyConfig::load(&dir.join("proxy-l4-ok.toml")).unwrap();
    assert_eq!(l4.l4_routes.len(), 2);
    assert_eq!(l4.l4_routes[0].listen.to_string(), "198.18.0.10:5201");
    assert_eq!(l4.l4_routes[1].pool, "iperf");
    assert_eq!(l4.default_pool, None);
    let lb = LbConfig::load(&dir.join("lb-ok.toml")).unwrap();
    assert_eq!(lb.proxies.len(), 2);
    assert_eq!(lb.misses, 3);
    let a = AgentConfig::load(&dir.join("agent-ok.toml")).unwrap();
    assert_eq!(a.backend.port(), 80);
    assert_eq!(a.interfaces, ["e0"]);
}

#[test]
fn unreadable_file_names_it() {
    let e = ProxyConfig::load(Path::new("/nonexistent/ftsplice/proxy.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/ftsplice/proxy.toml: cannot read"),
        "{e}"
    );
}

//! L4 routes with a live proxy daemon: connections to an `[[l4_route]]`
//! listener are spliced without reading a request head, so byte streams
//! that are not HTTP cross the splice byte-exact in both directions, both
//! when the server speaks first (a greeting before it reads anything) and
//! when the client does (it sends its data right after connecting, like
//! iperf3's cookie). The proxy holds no socket of either connection once
//! they are spliced, and tears both splices down after the FINs.

#![allow(clippy::disallowed_methods)] // real sockets: waits on the wall clock

mod common;

use common::*;
use ftsplice_linux::{skip_unless_root, NetNs};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// Backend port whose server speaks first.
const GREET: u16 = 9000;
/// Backend port whose server reads first.
const LISTEN: u16 = 9001;
/// The server's greeting.
const HELLO: usize = 1 << 20;
/// What the client sends.
const UP: usize = 4 << 20;
/// What the server sends after the client's bytes.
const DOWN: usize = 4 << 20;

fn proxy_toml() -> String {
    let mut t = ProxyToml::default();
    t.tables.push_str(&format!(
        "[[pool]]\nname = \"greet\"\nbackends = [\"{BACKEND}:{GREET}\"]\n\
         [[pool]]\nname = \"listen\"\nbackends = [\"{BACKEND}:{LISTEN}\"]\n\
         [[l4_route]]\nlisten = \"{VIP}:{GREET}\"\npool = \"greet\"\n\
         [[l4_route]]\nlisten = \"{VIP}:{LISTEN}\"\npool = \"listen\"\n"
    ));
    t.render()
}

/// Bytes `n` of the stream seeded `seed`.
fn stream(seed: u64, n: usize) -> Vec<u8> {
    (0..n as u64).map(|i| body_byte(i ^ seed)).collect()
}

/// One connection of the non-HTTP server: the greeting (if it speaks
/// first), then `UP` bytes read, their SHA-256 (32 raw bytes) and `DOWN`
/// bytes sent, then FIN.
fn serve(mut s: TcpStream, greet: bool) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    if greet {
        s.write_all(&stream(1, HELLO))?;
    }
    let mut got = vec![0u8; UP];
    s.read_exact(&mut got)?;
    s.write_all(&Sha256::digest(&got))?;
    s.write_all(&stream(2, DOWN))?;
    s.shutdown(std::net::Shutdown::Write)?;
    let mut rest = [0u8; 64];
    while s.read(&mut rest).unwrap_or(0) > 0 {}
    Ok(())
}

/// Serves one connection on each port in `ns`, each in its own thread.
fn start_servers(ns: &NetNs) -> Vec<std::thread::JoinHandle<ftsplice_linux::Result<()>>> {
    [(GREET, true), (LISTEN, false)]
        .into_iter()
        .map(|(port, greet)| {
            let l = ns
                .run(move || TcpListener::bind((BACKEND, port)).unwrap())
                .unwrap();
            ns.spawn(move || {
                if let Ok((s, _)) = l.accept() {
                    if let Err(e) = serve(s, greet) {
                        eprintln!("server {port}: {e}");
                    }
                }
            })
        })
        .collect()
}

fn connect(line: &Line, port: u16) -> TcpStream {
    let s = line
        .client()
        .run(move || TcpStream::connect((VIP, port)).unwrap())
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// The proxy holds no socket of the connection from `local`, nor one to
/// the backend's `port`.
fn assert_no_socket(line: &Line, local: &str, port: u16) {
    let held = ss_lines(line.proxy(), local);
    assert!(held.is_empty(), "proxy holds the client socket: {held:?}");
    let held = ss_lines(line.proxy(), &format!("{BACKEND}:{port}"));
    assert!(held.is_empty(), "proxy holds the backend socket: {held:?}");
}

/// Sends `UP` bytes, checks the server's digest of them and its `DOWN`
/// bytes up to its FIN.
fn exchange(s: &mut TcpStream) {
    let up = stream(3, UP);
    s.write_all(&up).unwrap();
    let mut digest = [0u8; 32];
    s.read_exact(&mut digest).unwrap();
    assert_eq!(hex(&digest), sha(&up), "the server's digest of the upload");
    let mut down = Vec::new();
    s.read_to_end(&mut down).unwrap();
    assert_eq!(down.len(), DOWN);
    assert!(down == stream(2, DOWN), "download corrupted");
}

#[test]
fn non_http_streams_are_spliced_both_ways() {
    if skip_unless_root("non_http_streams_are_spliced_both_ways") {
        return;
    }
    let line = Line::new("4", LineOptions::default());
    let servers = start_servers(line.backend());
    let proxy = ProxyGuard::start(line.proxy(), &proxy_toml());
    let spliced = "ftsplice_proxy_connections_total{result=\"spliced\"}";

    // The server speaks first: its greeting arrives though the client has
    // sent nothing; the splice is made meanwhile.
    let mut greet = connect(&line, GREET);
    let local = greet.local_addr().unwrap().to_string();
    let mut hello = vec![0u8; HELLO];
    greet.read_exact(&mut hello).unwrap();
    assert!(hello == stream(1, HELLO), "greeting corrupted");
    proxy.wait_metric(spliced, 1, Duration::from_secs(10));
    assert_no_socket(&line, &local, GREET);
    exchange(&mut greet);
    drop(greet);

    // The client speaks first: its upload starts right after the connect,
    // while the proxy connects to the backend and splices.
    let mut eager = connect(&line, LISTEN);
    let local = eager.local_addr().unwrap().to_string();
    exchange(&mut eager);
    proxy.wait_metric(spliced, 2, Duration::from_secs(1));
    assert_no_socket(&line, &local, LISTEN);
    drop(eager);

    for s in servers {
        s.join().unwrap().unwrap();
    }
    let m = |r: &str| {
        proxy.metric(&format!(
            "ftsplice_proxy_connections_total{{result=\"{r}\"}}"
        ))
    };
    assert_eq!((m("relayed"), m("bad_head"), m("head_timeout")), (0, 0, 0));
    // Most of the bytes crossed the data plane, not the proxy's sockets.
    let min = ((UP + DOWN) / 1400) as i64;
    proxy.wait_metric(
        "ftsplice_dataplane_packets{reason=\"translated\"}",
        min,
        Duration::from_secs(3),
    );
    proxy.wait_metric(
        "ftsplice_splices_deleted_total{reason=\"closed\"}",
        2,
        Duration::from_secs(5),
    );
    assert_eq!(proxy.metric("ftsplice_ssa_ports_in_use"), 0);
}

//! `splice_from_frozen` against real kernel connections: client -> proxy
//! (accepted) and proxy -> backend (opened from the SSA, assigned on the proxy's loopback, with
//! a partition port and an MSS clamp) in three namespaces. Freezing the two
//! peers as well shows the splice's deltas map each peer's sequence space
//! exactly onto the other's.

#![allow(clippy::disallowed_methods)] // real sockets: waits on the wall clock

use ftsplice_daemon::config::SsaBind;
use ftsplice_daemon::frozen::{splice_from_frozen, splice_id, FrozenError, PeerTsvals};
use ftsplice_daemon::proxy::connect::connect_from_ssa;
use ftsplice_linux::{repair, skip_unless_root, FrozenSocket, Topology};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 50, 1);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 50, 2);
const PROXY_IN: Ipv4Addr = Ipv4Addr::new(198, 18, 51, 1);
const BACKEND: Ipv4Addr = Ipv4Addr::new(198, 18, 51, 2);
const SSA: Ipv4Addr = Ipv4Addr::new(198, 18, 52, 1);

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn outq(s: &TcpStream) -> u32 {
    repair::outq(s.as_raw_fd()).unwrap()
}

#[test]
fn splice_from_real_frozen_sockets_maps_peer_sequence_spaces() {
    if skip_unless_root("splice_from_real_frozen_sockets_maps_peer_sequence_spaces") {
        return;
    }
    let mut t = Topology::new();
    let (c, p, b) = (
        t.add_node("fc").unwrap(),
        t.add_node("fp").unwrap(),
        t.add_node("fb").unwrap(),
    );
    t.link(c, CLIENT, p, VIP, 24).unwrap();
    t.link(p, PROXY_IN, b, BACKEND, 24).unwrap();
    // The backend reaches the SSA through the proxy.
    t.route(b, Ipv4Addr::new(198, 18, 52, 0), 24, PROXY_IN)
        .unwrap();
    t.node(p)
        .ip(&["addr", "add", &format!("{SSA}/32"), "dev", "lo"])
        .unwrap();

    let backend_l = t
        .node(b)
        .run(|| TcpListener::bind((BACKEND, 0)).unwrap())
        .unwrap();
    let backend_addr = SocketAddrV4::new(BACKEND, backend_l.local_addr().unwrap().port());
    let vip_l = t
        .node(p)
        .run(|| TcpListener::bind((VIP, 0)).unwrap())
        .unwrap();
    let vip_port = vip_l.local_addr().unwrap().port();
    let mut client = t
        .node(c)
        .run(move || TcpStream::connect((VIP, vip_port)).unwrap())
        .unwrap();
    let (mut a, _) = vip_l.accept().unwrap();
    for s in [&client, &a] {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }

    // The client's request arrives at the proxy.
    let mut request = b"PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n".to_vec();
    request.extend((0..240u32).map(|i| (i * 7) as u8));
    client.write_all(&request).unwrap();
    let mut got = vec![0u8; request.len()];
    a.read_exact(&mut got).unwrap();
    assert_eq!(got, request);

    // The proxy opens the backend connection from SSA:40123, MSS 1200.
    let ssa = SocketAddrV4::new(SSA, 40123);
    let mut bconn = t
        .node(p)
        .run(move || {
            connect_from_ssa(
                ssa,
                SsaBind::Local,
                Some(1200),
                backend_addr,
                Duration::from_secs(5),
            )
        })
        .unwrap()
        .unwrap();
    let (mut server, peer) = backend_l.accept().unwrap();
    assert_eq!(peer, std::net::SocketAddr::V4(ssa), "backend sees the SSA");
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    bconn.write_all(&request).unwrap();
    let mut got = vec![0u8; request.len()];
    server.read_exact(&mut got).unwrap();
    wait_until("backend ack", || outq(&bconn) == 0);
    wait_until("client ack", || outq(&client) == 0);

    // More client bytes arrive before the freeze: the splice is refused
    // (they were acked to the client but never relayed).
    client.write_all(&[9u8; 10]).unwrap();
    wait_until("10 more bytes at the proxy", || {
        repair::inq(a.as_raw_fd()).unwrap() == 10
    });
    let fa = FrozenSocket::freeze(a).unwrap();
    let fb = FrozenSocket::freeze(bconn).unwrap();
    let id = splice_id(7, 1);
    let ts = PeerTsvals {
        client: Some(1),
        backend: Some(1),
    };
    assert_eq!(
        splice_from_frozen(id, fa.state(), fb.state(), ts),
        Err(FrozenError::ClientBytesUnrelayed(10))
    );
    // Relay them and freeze again.
    let mut a = fa.thaw().unwrap();
    let mut bconn = fb.thaw().unwrap();
    let mut more = [0u8; 10];
    a.read_exact(&mut more).unwrap();
    bconn.write_all(&more).unwrap();
    let mut got = [0u8; 10];
    server.read_exact(&mut got).unwrap();
    assert_eq!(got, [9u8; 10]);
    wait_until("backend ack of relayed bytes", || outq(&bconn) == 0);
    wait_until("client ack", || outq(&client) == 0);

    // Freeze the peers too (only to read their true sequence state).
    let fc = FrozenSocket::freeze(client).unwrap();
    let fs = FrozenSocket::freeze(server).unwrap();
    let fa = FrozenSocket::freeze(a).unwrap();
    let fb = FrozenSocket::freeze(bconn).unwrap();
    let (cs, ss, as_, bs) = (fc.state(), fs.state(), fa.state(), fb.state());
    // Each peer's clock now is at or after the last TSval it sent.
    let ts = PeerTsvals {
        client: Some(cs.timestamp),
        backend: Some(ss.timestamp),
    };
    let s = splice_from_frozen(id, as_, bs, ts).unwrap();

    assert_eq!(s.client, cs.local);
    assert_eq!(s.vip, cs.remote);
    assert_eq!(s.ssa, ssa);
    assert_eq!(s.ssa, ss.remote);
    assert_eq!(s.backend, ss.local);
    // The client's next byte is the byte the backend expects next, and the
    // backend's next byte the one the client expects.
    assert_eq!(cs.snd_nxt.wrapping_add(s.seq_delta), ss.rcv_nxt);
    assert_eq!(ss.snd_nxt.wrapping_sub(s.ack_delta), cs.rcv_nxt);
    // Translated TSvals start at the receiving connection's clock.
    let d = s.ts.expect("Linux negotiates timestamps");
    assert_eq!(cs.timestamp.wrapping_add(d.c2s), bs.timestamp);
    assert_eq!(ss.timestamp.wrapping_add(d.s2c), as_.timestamp);
    // Window shifts are those each endpoint announced.
    assert_eq!(s.wscale.client, cs.info.rcv_wscale);
    assert_eq!(s.wscale.vip, cs.info.snd_wscale);
    assert_eq!(s.wscale.backend, ss.info.rcv_wscale);
    assert_eq!(s.wscale.ssa, ss.info.snd_wscale);
    assert!(s.sack_ok);
    // The MSS clamp holds on the backend connection.
    assert!(bs.mss <= 1200, "backend-side mss {}", bs.mss);
    assert!(ss.mss <= 1200, "the backend learned the clamp: {}", ss.mss);

    // Closing the proxy's sockets silently leaves both peers established.
    fa.close_silently().unwrap();
    fb.close_silently().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    for f in [fc, fs] {
        let s = f.thaw().unwrap();
        let info = repair::tcp_info(s.as_raw_fd()).unwrap();
        assert_eq!(info.state, repair::TCP_ESTABLISHED);
    }
}

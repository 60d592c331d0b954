//! TCP_REPAIR on real kernel connections between two namespaces: frozen
//! sequence numbers agree with the bytes exchanged, a frozen socket closes
//! without FIN/RST, and a snapshot restores into a working connection.

use ftsplice_linux::repair::{self, TCP_ESTABLISHED};
use ftsplice_linux::{skip_unless_root, FrozenSocket, Topology};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 40, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 40, 2);

/// Two namespaces joined by veth (the client's and the server's node), and
/// a connected (client, server) pair.
fn connected_pair() -> (Topology, [usize; 2], TcpStream, TcpStream) {
    let mut t = Topology::new();
    let c = t.add_node("rc").unwrap();
    let s = t.add_node("rs").unwrap();
    t.link(c, CLIENT, s, SERVER, 24).unwrap();
    let listener = t
        .node(s)
        .run(|| TcpListener::bind((SERVER, 0)).unwrap())
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = t
        .node(c)
        .run(move || TcpStream::connect((SERVER, port)).unwrap())
        .unwrap();
    let (server, _) = listener.accept().unwrap();
    for s in [&client, &server] {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    (t, [c, s], client, server)
}

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ salt)
        .collect()
}

/// Waits until everything `s` sent is acknowledged.
fn wait_acked(s: &TcpStream) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while repair::outq(s.as_raw_fd()).unwrap() != 0 {
        assert!(Instant::now() < deadline, "data never acknowledged");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn frozen_seqs_match_bytes_exchanged_and_close_is_silent() {
    if skip_unless_root("frozen_seqs_match_bytes_exchanged_and_close_is_silent") {
        return;
    }
    let (_t, _, mut client, mut server) = connected_pair();

    // Round 1: freeze both ends right after the handshake.
    let c0 = FrozenSocket::freeze(client).unwrap();
    let s0 = FrozenSocket::freeze(server).unwrap();
    assert_eq!(c0.state().snd_nxt, s0.state().rcv_nxt);
    assert_eq!(s0.state().snd_nxt, c0.state().rcv_nxt);
    assert_eq!(c0.state().local, s0.state().remote);
    let (c_seq0, s_seq0) = (c0.state().snd_nxt, s0.state().snd_nxt);
    client = c0.thaw().unwrap();
    server = s0.thaw().unwrap();

    // Exchange 3000 bytes up and 1200 down; leave 200 unread at the server.
    let up = pattern(3000, 7);
    let down = pattern(1200, 9);
    client.write_all(&up).unwrap();
    let mut got = vec![0u8; 2800];
    server.read_exact(&mut got).unwrap();
    assert_eq!(got, up[..2800]);
    server.write_all(&down).unwrap();
    let mut got = vec![0u8; 1200];
    client.read_exact(&mut got).unwrap();
    assert_eq!(got, down);
    wait_acked(&client);
    wait_acked(&server);
    let deadline = Instant::now() + Duration::from_secs(5);
    while repair::inq(server.as_raw_fd()).unwrap() != 200 {
        assert!(Instant::now() < deadline, "last bytes never arrived");
        std::thread::sleep(Duration::from_millis(2));
    }

    let c1 = FrozenSocket::freeze(client).unwrap();
    let s1 = FrozenSocket::freeze(server).unwrap();
    let (cs, ss) = (c1.state().clone(), s1.state().clone());
    assert_eq!(cs.snd_nxt.wrapping_sub(c_seq0), 3000);
    assert_eq!(ss.snd_nxt.wrapping_sub(s_seq0), 1200);
    assert_eq!(cs.snd_una, cs.snd_nxt, "all acknowledged");
    assert_eq!(cs.snd_nxt, ss.rcv_nxt);
    assert_eq!(ss.snd_nxt, cs.rcv_nxt);
    assert_eq!(ss.recv_queue, up[2800..], "unread bytes are the last 200");
    assert!(cs.send_queue.is_empty());
    // Both ends negotiated the Linux defaults, consistently.
    for st in [&cs, &ss] {
        assert_eq!(st.info.state, TCP_ESTABLISHED);
        assert!(st.info.timestamps && st.info.sack && st.info.wscale_ok);
        assert!(st.mss > 500 && st.mss <= 1460, "mss {}", st.mss);
    }
    assert_eq!(cs.info.snd_wscale, ss.info.rcv_wscale);
    assert_eq!(cs.info.rcv_wscale, ss.info.snd_wscale);
    // The client's window as the server sees it, and vice versa.
    assert!(cs.window.snd_wnd > 0 && ss.window.snd_wnd > 0);

    // Close the client silently; the server must see neither FIN nor RST.
    c1.close_silently().unwrap();
    let mut server = s1.thaw().unwrap();
    let mut rest = [0u8; 200];
    server.read_exact(&mut rest).unwrap();
    server.set_nonblocking(true).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let mut b = [0u8; 1];
    match server.read(&mut b) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Ok(0) => panic!("server saw a FIN"),
        other => panic!("server saw {other:?}"),
    }
    let info = repair::tcp_info(server.as_raw_fd()).unwrap();
    assert_eq!(info.state, TCP_ESTABLISHED, "server still established");
}

#[test]
fn restored_socket_continues_the_connection() {
    if skip_unless_root("restored_socket_continues_the_connection") {
        return;
    }
    let (t, [c, _], mut client, mut server) = connected_pair();
    client.write_all(b"hello").unwrap();
    let mut b = [0u8; 5];
    server.read_exact(&mut b).unwrap();
    // Leave 4 bytes unread in the client's receive queue.
    server.write_all(b"ping").unwrap();
    wait_acked(&server);
    wait_acked(&client);

    let frozen = FrozenSocket::freeze(client).unwrap();
    let state = frozen.state().clone();
    assert_eq!(state.recv_queue, b"ping");
    frozen.close_silently().unwrap();

    let mut restored = t
        .node(c)
        .run(move || FrozenSocket::restore(&state))
        .unwrap()
        .unwrap();
    restored
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut b = [0u8; 4];
    restored.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"ping");
    let big = pattern(100_000, 3);
    restored.write_all(&big).unwrap();
    let mut got = vec![0u8; big.len()];
    server.read_exact(&mut got).unwrap();
    assert!(got == big, "bytes after restore differ");
    server.write_all(b"pong").unwrap();
    restored.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"pong");
}

/// The socket a restore replaces may still be referenced after
/// `close_silently` drops our descriptor: a process another thread is
/// spawning holds a copy of every descriptor between its clone and its exec
/// (`O_CLOEXEC` only closes them at the exec), and a duplicated descriptor
/// does the same. The closed socket then stayed in the kernel's table of
/// established connections, and the restore's repair-mode `connect` of the
/// same 4-tuple failed with `EADDRNOTAVAIL` (the flaky
/// `restored_socket_continues_the_connection`). A second descriptor held
/// across the close reproduces that every time.
#[test]
fn restore_works_while_another_descriptor_holds_the_closed_socket() {
    if skip_unless_root("restore_works_while_another_descriptor_holds_the_closed_socket") {
        return;
    }
    let (t, [c, _], client, mut server) = connected_pair();
    let other_reference = client.try_clone().unwrap();
    let frozen = FrozenSocket::freeze(client).unwrap();
    let state = frozen.state().clone();
    frozen.close_silently().unwrap();

    let mut restored = t
        .node(c)
        .run(move || FrozenSocket::restore(&state))
        .unwrap()
        .expect("restore while the closed socket's file is still open");
    restored
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    restored.write_all(b"after").unwrap();
    let mut b = [0u8; 5];
    server.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"after");
    // The old descriptor is dead and sends nothing when it finally closes.
    drop(other_reference);
    server.write_all(b"still").unwrap();
    restored.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"still");
}

/// Drops arriving segments that start at one sequence number (an nftables
/// table in the receiver's namespace, deleted when dropped): the receiver
/// gets the segments after it out of order. (A drop in the sender's output
/// hook would not do: TCP sees the error and sends the bytes again with
/// the next ones, in one segment.)
struct DropSeq<'a> {
    ns: &'a ftsplice_linux::NetNs,
    table: String,
}

impl<'a> DropSeq<'a> {
    fn new(ns: &'a ftsplice_linux::NetNs, seq: u32) -> DropSeq<'a> {
        let table = "ftsplice_repair_dropseq".to_string();
        let chain = "{ type filter hook input priority 0; policy accept; }";
        let seq = seq.to_string();
        ns.exec("nft", &["add", "table", "ip", &table]).unwrap();
        ns.exec("nft", &["add", "chain", "ip", &table, "inp", chain])
            .unwrap();
        ns.exec(
            "nft",
            &[
                "add", "rule", "ip", &table, "inp", "tcp", "sequence", &seq, "drop",
            ],
        )
        .unwrap();
        DropSeq { ns, table }
    }
}

impl Drop for DropSeq<'_> {
    fn drop(&mut self) {
        let _ = self.ns.exec("nft", &["delete", "table", "ip", &self.table]);
    }
}

/// Data beyond a hole sits in the kernel's out-of-order queue, which no
/// interface reads (not even TCP_REPAIR's queues), yet the kernel has
/// SACKed it: `holds_out_of_order` sees it, on a live and on a frozen
/// socket, and stops seeing it once the hole is filled and all was read.
#[test]
fn out_of_order_data_is_detected() {
    if skip_unless_root("out_of_order_data_is_detected") {
        return;
    }
    let (t, [_, s], client, mut server) = connected_pair();
    client.set_nodelay(true).unwrap();
    let sfd = server.as_raw_fd();
    assert_eq!(repair::rmem_alloc(sfd).unwrap(), 0, "idle socket");
    assert!(!repair::holds_out_of_order(sfd).unwrap());
    assert_eq!(repair::rcv_ooopack(sfd).unwrap(), Some(0));

    let frozen = FrozenSocket::freeze(client).unwrap();
    let hole = frozen.state().snd_nxt;
    let mut client = frozen.thaw().unwrap();
    let x = pattern(300, 1);
    let y = pattern(500, 2);
    {
        let _drop = DropSeq::new(t.node(s), hole);
        client.write_all(&x).unwrap();
        client.write_all(&y).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while repair::rmem_alloc(sfd).unwrap() == 0 {
            assert!(Instant::now() < deadline, "Y never arrived");
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(repair::inq(sfd).unwrap(), 0, "nothing in order");
        assert!(repair::holds_out_of_order(sfd).unwrap());
        assert_eq!(repair::rcv_ooopack(sfd).unwrap(), Some(1), "Y out of order");
        let f = FrozenSocket::freeze(server).unwrap();
        assert!(f.state().recv_queue.is_empty());
        assert_eq!(f.state().rcv_nxt, hole, "rcv_nxt stops at the hole");
        assert!(f.state().holds_out_of_order());
        server = f.thaw().unwrap();
    }
    // The drop rule is gone: the client's retransmission fills the hole.
    let mut got = vec![0u8; 800];
    server.read_exact(&mut got).unwrap();
    assert_eq!(got[..300], x[..]);
    assert_eq!(got[300..], y[..]);
    assert_eq!(repair::rmem_alloc(sfd).unwrap(), 0, "everything read");
    assert!(!repair::holds_out_of_order(sfd).unwrap());
    let f = FrozenSocket::freeze(server).unwrap();
    assert!(!f.state().holds_out_of_order());
}

/// The `struct tcp_info` fields read past libc's copy are where the
/// kernel puts them: `tcpi_snd_wnd` equals TCP_REPAIR_WINDOW's `snd_wnd`.
#[test]
fn tcp_info_offsets_match_the_kernel() {
    if skip_unless_root("tcp_info_offsets_match_the_kernel") {
        return;
    }
    let (_t, _, client, _server) = connected_pair();
    let fd = client.as_raw_fd();
    let f = FrozenSocket::freeze(client).unwrap();
    assert_eq!(
        repair::info_snd_wnd(fd).unwrap(),
        Some(f.state().window.snd_wnd)
    );
    assert_ne!(f.state().window.snd_wnd, 0);
    assert_eq!(repair::rcv_ooopack(fd).unwrap(), Some(0));
}

/// A freeze that fails (here: the peer's FIN moved the socket to
/// CLOSE_WAIT, which a snapshot refuses) gives the socket back out of
/// repair mode: it still sends (the peer reads the bytes) and still
/// closes normally (the peer sees our FIN), so the caller can relay the
/// connection instead of losing it.
#[test]
fn failed_freeze_returns_a_working_socket() {
    if skip_unless_root("failed_freeze_returns_a_working_socket") {
        return;
    }
    let (_t, _, client, mut server) = connected_pair();
    server.shutdown(std::net::Shutdown::Write).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while repair::tcp_info(client.as_raw_fd()).unwrap().state == TCP_ESTABLISHED {
        assert!(Instant::now() < deadline, "the FIN never arrived");
        std::thread::sleep(Duration::from_millis(2));
    }
    let failed = FrozenSocket::freeze(client).unwrap_err();
    assert!(
        failed.error.to_string().contains("not ESTABLISHED"),
        "{}",
        failed.error
    );
    assert!(failed.thaw_error.is_none());
    let mut client = failed.stream.expect("the socket comes back");
    client.write_all(b"late").unwrap();
    let mut b = [0u8; 4];
    server.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"late");
    drop(client);
    let mut rest = Vec::new();
    server.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "a FIN after the data");
}

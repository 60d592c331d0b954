//! TCP_REPAIR glue: freezing a kernel TCP socket to read everything a splice
//! or a migration needs (sequence numbers, queues, windows, negotiated
//! options, timestamp clock), closing it without a FIN or RST, and restoring
//! a socket from such a snapshot.
//!
//! Kernel semantics (net/ipv4/tcp.c): with `TCP_REPAIR` on, `TCP_QUEUE_SEQ`
//! reads `write_seq` for the send queue and `rcv_nxt` for the receive queue;
//! `recv(MSG_PEEK)` reads the selected queue's bytes; `close()` disconnects
//! without sending anything; `connect()` establishes without a handshake.

#![allow(unsafe_code)] // FFI: every block below has a `// SAFETY:` line.

use crate::{Error, Result};
use std::mem::{size_of, MaybeUninit};
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

// Kernel UAPI values (include/uapi/linux/tcp.h, asm-generic/ioctls.h).
const TCP_REPAIR_ON: i32 = 1;
const TCP_REPAIR_OFF: i32 = 0;
/// Leave repair mode without sending a window probe.
const TCP_REPAIR_OFF_NO_WP: i32 = -1;
const TCPOPT_MSS: u32 = 2;
const TCPOPT_WINDOW: u32 = 3;
const TCPOPT_SACK_PERM: u32 = 4;
const TCPOPT_TIMESTAMP: u32 = 8;
const TCPI_OPT_TIMESTAMPS: u8 = 1;
const TCPI_OPT_SACK: u8 = 2;
const TCPI_OPT_WSCALE: u8 = 4;
const SIOCINQ: libc::c_ulong = 0x541B;
const SIOCOUTQ: libc::c_ulong = 0x5411;
/// `SO_MEMINFO` (asm-generic/socket.h): the socket's `sk_meminfo` array.
const SO_MEMINFO: i32 = 55;
/// Entries of the `sk_meminfo` array (`SK_MEMINFO_VARS`).
const SK_MEMINFO_VARS: usize = 9;
/// `tcpi_state` of an established connection.
pub const TCP_ESTABLISHED: u8 = 1;

/// Which queue `TCP_REPAIR_QUEUE` selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Queue {
    None = 0,
    Recv = 1,
    Send = 2,
}

/// `struct tcp_repair_window`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RepairWindow {
    pub snd_wl1: u32,
    /// The peer's last advertised window, already scaled.
    pub snd_wnd: u32,
    pub max_window: u32,
    /// Our last advertised window, scaled.
    pub rcv_wnd: u32,
    pub rcv_wup: u32,
}

#[repr(C)]
struct RepairOpt {
    code: u32,
    val: u32,
}

/// The parts of `struct tcp_info` ftsplice uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpInfoLite {
    /// `TCP_ESTABLISHED` etc.
    pub state: u8,
    pub timestamps: bool,
    pub sack: bool,
    pub wscale_ok: bool,
    /// The peer's window scale shift (we apply it to windows it sends).
    pub snd_wscale: u8,
    /// Our window scale shift (the peer applies it to windows we send).
    pub rcv_wscale: u8,
    pub snd_mss: u32,
    pub rcv_mss: u32,
    pub advmss: u32,
    /// Packets sent but not yet acknowledged.
    pub unacked: u32,
}

/// Everything read from a frozen socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketState {
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    /// Sequence number of the first unacknowledged byte.
    pub snd_una: u32,
    /// Sequence number after the last byte queued for sending (`write_seq`).
    pub snd_nxt: u32,
    /// Sequence number after the last byte received (`rcv_nxt`).
    pub rcv_nxt: u32,
    /// Bytes sent or queued but not acknowledged, starting at `snd_una`.
    pub send_queue: Vec<u8>,
    /// Bytes received but not read by the application, ending at `rcv_nxt`.
    pub recv_queue: Vec<u8>,
    pub window: RepairWindow,
    pub info: TcpInfoLite,
    /// `TCP_MAXSEG`: the MSS this socket sends with.
    pub mss: u32,
    /// The socket's timestamp clock now (`TCP_TIMESTAMP`): its next TSval.
    pub timestamp: u32,
    /// Buffer memory charged to the receive side ([`rmem_alloc`]): the
    /// receive queue's and the out-of-order queue's segments.
    pub rmem_alloc: u32,
}

impl SocketState {
    /// Whether the kernel holds received data beyond `rcv_nxt` (its
    /// out-of-order queue, which it has SACKed to the peer): nothing is
    /// left in the receive queue, yet receive memory is still charged.
    /// Neither TCP_REPAIR nor any other interface reads those bytes, so a
    /// socket in this state cannot be handed over without losing them.
    pub fn holds_out_of_order(&self) -> bool {
        self.recv_queue.is_empty() && self.rmem_alloc != 0
    }

    /// Bytes the peer may still send beyond `rcv_nxt`: the right edge of
    /// the window this socket last advertised (`rcv_wup + rcv_wnd`) minus
    /// `rcv_nxt`. Zero means the peer is stopped by flow control, and then
    /// nothing can be queued out of order either (the kernel only queues
    /// segments inside the window it advertised, and never moves its right
    /// edge back).
    pub fn receive_window_left(&self) -> u32 {
        window_left(&self.window, self.rcv_nxt)
    }
}

fn window_left(w: &RepairWindow, rcv_nxt: u32) -> u32 {
    let left = w.rcv_wup.wrapping_add(w.rcv_wnd).wrapping_sub(rcv_nxt) as i32;
    left.max(0) as u32
}

fn setsockopt<T>(fd: RawFd, level: i32, opt: i32, val: &T, op: &'static str) -> Result<()> {
    // SAFETY: `val` points to a live, initialised `T` of the given size for
    // the duration of the call; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(Error::last_os(op));
    }
    Ok(())
}

fn setsockopt_slice<T>(fd: RawFd, level: i32, opt: i32, val: &[T], op: &'static str) -> Result<()> {
    // SAFETY: the slice is live and initialised for its whole byte length;
    // the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            val.as_ptr().cast(),
            std::mem::size_of_val(val) as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(Error::last_os(op));
    }
    Ok(())
}

/// Reads a plain-old-data socket option; `T` must be valid for any bytes
/// (only used with integers and `#[repr(C)]` structs of integers).
fn getsockopt<T: Copy>(fd: RawFd, level: i32, opt: i32, op: &'static str) -> Result<T> {
    let mut val = MaybeUninit::<T>::zeroed();
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `val` has room for `len` bytes; the kernel writes at most that.
    let rc = unsafe { libc::getsockopt(fd, level, opt, val.as_mut_ptr().cast(), &mut len) };
    if rc != 0 {
        return Err(Error::last_os(op));
    }
    // SAFETY: zero-initialised and possibly overwritten by the kernel; every
    // `T` used here is integers only, valid for any bit pattern.
    Ok(unsafe { val.assume_init() })
}

fn ioctl_int(fd: RawFd, req: libc::c_ulong, op: &'static str) -> Result<u32> {
    let mut v: libc::c_int = 0;
    // SAFETY: SIOCINQ/SIOCOUTQ write one int to the pointer we pass.
    let rc = unsafe { libc::ioctl(fd, req as _, &mut v) };
    if rc != 0 {
        return Err(Error::last_os(op));
    }
    Ok(v as u32)
}

fn tcp_set(fd: RawFd, opt: i32, v: i32, op: &'static str) -> Result<()> {
    setsockopt(fd, libc::IPPROTO_TCP, opt, &v, op)
}

/// Turns repair mode on or off (needs CAP_NET_ADMIN). Turning it off sends
/// a window probe to the peer (as after a restore).
pub fn set_repair(fd: RawFd, on: bool) -> Result<()> {
    let v = if on { TCP_REPAIR_ON } else { TCP_REPAIR_OFF };
    tcp_set(fd, libc::TCP_REPAIR, v, "setsockopt(TCP_REPAIR)")
}

/// Leaves repair mode without sending anything.
pub fn leave_repair_quietly(fd: RawFd) -> Result<()> {
    tcp_set(
        fd,
        libc::TCP_REPAIR,
        TCP_REPAIR_OFF_NO_WP,
        "setsockopt(TCP_REPAIR)",
    )
}

/// [`SocketState::receive_window_left`] of a live socket: enters repair
/// mode for the three reads and leaves it quietly (nothing is sent; the
/// receive path works as usual meanwhile).
pub fn live_receive_window_left(fd: RawFd) -> Result<u32> {
    set_repair(fd, true)?;
    let read = queue_seq(fd, Queue::Recv).and_then(|rcv_nxt| {
        set_repair_queue(fd, Queue::None)?;
        Ok(window_left(&repair_window(fd)?, rcv_nxt))
    });
    let left = leave_repair_quietly(fd);
    let n = read?;
    left?;
    Ok(n)
}

pub fn set_repair_queue(fd: RawFd, q: Queue) -> Result<()> {
    tcp_set(
        fd,
        libc::TCP_REPAIR_QUEUE,
        q as i32,
        "setsockopt(TCP_REPAIR_QUEUE)",
    )
}

/// `TCP_QUEUE_SEQ` of `q`: `write_seq` (send) or `rcv_nxt` (receive).
pub fn queue_seq(fd: RawFd, q: Queue) -> Result<u32> {
    set_repair_queue(fd, q)?;
    getsockopt::<u32>(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_QUEUE_SEQ,
        "getsockopt(TCP_QUEUE_SEQ)",
    )
}

/// The sequence number of the next byte the socket will send
/// (`write_seq`: ISS + 1 on a connection that has sent nothing but its
/// SYN-ACK), read through a brief repair-mode round trip that sends
/// nothing. The socket leaves repair mode even when the read fails.
pub fn send_seq_quietly(fd: RawFd) -> Result<u32> {
    set_repair(fd, true)?;
    let seq = queue_seq(fd, Queue::Send);
    let none = set_repair_queue(fd, Queue::None);
    let off = leave_repair_quietly(fd);
    let seq = seq?;
    none?;
    off?;
    Ok(seq)
}

/// Sets the first sequence number of queue `q` (before `connect`).
pub fn set_queue_seq(fd: RawFd, q: Queue, seq: u32) -> Result<()> {
    set_repair_queue(fd, q)?;
    setsockopt(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_QUEUE_SEQ,
        &seq,
        "setsockopt(TCP_QUEUE_SEQ)",
    )
}

pub fn repair_window(fd: RawFd) -> Result<RepairWindow> {
    getsockopt(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_REPAIR_WINDOW,
        "getsockopt(TCP_REPAIR_WINDOW)",
    )
}

pub fn set_repair_window(fd: RawFd, w: &RepairWindow) -> Result<()> {
    setsockopt(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_REPAIR_WINDOW,
        w,
        "setsockopt(TCP_REPAIR_WINDOW)",
    )
}

/// Sets the negotiated options of a repaired, connected socket
/// (`TCP_REPAIR_OPTIONS`) from a snapshot's [`TcpInfoLite`] and MSS.
pub fn set_repair_options(fd: RawFd, info: &TcpInfoLite, mss: u32) -> Result<()> {
    let mut opts = vec![RepairOpt {
        code: TCPOPT_MSS,
        val: mss,
    }];
    if info.wscale_ok {
        opts.push(RepairOpt {
            code: TCPOPT_WINDOW,
            val: u32::from(info.snd_wscale) | (u32::from(info.rcv_wscale) << 16),
        });
    }
    if info.sack {
        opts.push(RepairOpt {
            code: TCPOPT_SACK_PERM,
            val: 0,
        });
    }
    if info.timestamps {
        opts.push(RepairOpt {
            code: TCPOPT_TIMESTAMP,
            val: 0,
        });
    }
    setsockopt_slice(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_REPAIR_OPTIONS,
        &opts,
        "setsockopt(TCP_REPAIR_OPTIONS)",
    )
}

/// The socket's timestamp clock (its next TSval).
pub fn timestamp(fd: RawFd) -> Result<u32> {
    getsockopt(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_TIMESTAMP,
        "getsockopt(TCP_TIMESTAMP)",
    )
}

/// Offsets the socket's timestamp clock so that it reads `ts` now (repair mode only).
pub fn set_timestamp(fd: RawFd, ts: u32) -> Result<()> {
    setsockopt(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_TIMESTAMP,
        &ts,
        "setsockopt(TCP_TIMESTAMP)",
    )
}

/// `TCP_INFO`, reduced to what ftsplice uses.
pub fn tcp_info(fd: RawFd) -> Result<TcpInfoLite> {
    let i: libc::tcp_info = getsockopt(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_INFO,
        "getsockopt(TCP_INFO)",
    )?;
    Ok(TcpInfoLite {
        state: i.tcpi_state,
        timestamps: i.tcpi_options & TCPI_OPT_TIMESTAMPS != 0,
        sack: i.tcpi_options & TCPI_OPT_SACK != 0,
        wscale_ok: i.tcpi_options & TCPI_OPT_WSCALE != 0,
        // Bitfields `snd_wscale:4, rcv_wscale:4`, low nibble first.
        snd_wscale: i.tcpi_snd_rcv_wscale & 0x0f,
        rcv_wscale: i.tcpi_snd_rcv_wscale >> 4,
        snd_mss: i.tcpi_snd_mss,
        rcv_mss: i.tcpi_rcv_mss,
        advmss: i.tcpi_advmss,
        unacked: i.tcpi_unacked,
    })
}

/// Offset of `tcpi_rcv_ooopack` in the kernel's `struct tcp_info`
/// (uapi `linux/tcp.h`, since Linux 5.4; past the end of libc's copy).
const TCPI_RCV_OOOPACK_OFFSET: usize = 224;
/// Offset of `tcpi_snd_wnd` (right after `tcpi_rcv_ooopack`).
const TCPI_SND_WND_OFFSET: usize = 228;

/// The kernel's `struct tcp_info` as bytes (as much as it returns).
fn tcp_info_bytes(fd: RawFd) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `buf` is valid for `len` bytes; the kernel writes at most
    // `len` bytes and stores the length it wrote in `len`.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(Error::last_os("getsockopt(TCP_INFO)"));
    }
    buf.truncate(len as usize);
    Ok(buf)
}

fn info_u32(b: &[u8], offset: usize) -> Option<u32> {
    let w = b.get(offset..offset + 4)?;
    Some(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]))
}

/// `tcpi_rcv_ooopack`: segments this socket ever received out of order
/// (`None` on kernels before 5.4). Zero means nothing was ever queued
/// beyond a hole.
pub fn rcv_ooopack(fd: RawFd) -> Result<Option<u32>> {
    Ok(info_u32(&tcp_info_bytes(fd)?, TCPI_RCV_OOOPACK_OFFSET))
}

/// `tcpi_snd_wnd`: the peer's last advertised window, scaled (`None`
/// before Linux 5.4). Checks the offsets above against TCP_REPAIR_WINDOW.
pub fn info_snd_wnd(fd: RawFd) -> Result<Option<u32>> {
    Ok(info_u32(&tcp_info_bytes(fd)?, TCPI_SND_WND_OFFSET))
}

/// Buffer memory (`truesize`) of the segments charged to the socket's
/// receive side (`SO_MEMINFO`, `SK_MEMINFO_RMEM_ALLOC`): the receive queue
/// and the out-of-order queue. A segment is uncharged when it is read (or
/// pruned), so with an empty receive queue ([`inq`] 0) a non-zero value
/// means data beyond `rcv_nxt` is queued.
pub fn rmem_alloc(fd: RawFd) -> Result<u32> {
    let m: [u32; SK_MEMINFO_VARS] =
        getsockopt(fd, libc::SOL_SOCKET, SO_MEMINFO, "getsockopt(SO_MEMINFO)")?;
    Ok(m[libc::SK_MEMINFO_RMEM_ALLOC as usize])
}

/// Whether the kernel queues received data beyond `rcv_nxt` on `fd` (out
/// of order, SACKed to the peer) while nothing in order is left unread: see
/// [`SocketState::holds_out_of_order`]. With unread in-order bytes the
/// answer is `false` (they must be read first).
pub fn holds_out_of_order(fd: RawFd) -> Result<bool> {
    let rmem = rmem_alloc(fd)?;
    Ok(rmem != 0 && inq(fd)? == 0)
}

/// Bytes in the receive queue not yet read (`SIOCINQ`).
pub fn inq(fd: RawFd) -> Result<u32> {
    ioctl_int(fd, SIOCINQ, "ioctl(SIOCINQ)")
}

/// Bytes in the send queue not yet acknowledged (`SIOCOUTQ`).
pub fn outq(fd: RawFd) -> Result<u32> {
    ioctl_int(fd, SIOCOUTQ, "ioctl(SIOCOUTQ)")
}

/// Copies the `len` bytes of queue `q` without consuming them (repair
/// mode). One `MSG_PEEK` returns the whole queue; a short read is an error.
pub fn peek_queue(fd: RawFd, q: Queue, len: usize) -> Result<Vec<u8>> {
    set_repair_queue(fd, q)?;
    let mut buf = vec![0u8; len];
    if len == 0 {
        return Ok(buf);
    }
    // SAFETY: `buf` is writable for `len` bytes.
    let n = unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr().cast(),
            len,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(Error::last_os("recv(MSG_PEEK) of a repair queue"));
    }
    if n as usize != len {
        return Err(Error::State(format!(
            "short peek of the {q:?} queue: {n} of {len} bytes"
        )));
    }
    Ok(buf)
}

/// Writes `data` into queue `q` of a socket in repair mode.
fn fill_queue(fd: RawFd, q: Queue, data: &[u8]) -> Result<()> {
    set_repair_queue(fd, q)?;
    let mut off = 0;
    while off < data.len() {
        // SAFETY: `data[off..]` is readable for its length.
        let n = unsafe { libc::send(fd, data[off..].as_ptr().cast(), data.len() - off, 0) };
        if n <= 0 {
            return Err(Error::last_os("send into a repair queue"));
        }
        off += n as usize;
    }
    Ok(())
}

fn v4(addr: SocketAddr) -> Result<SocketAddrV4> {
    match addr {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(a) => Err(Error::State(format!("IPv6 socket {a} not supported"))),
    }
}

/// Reads the complete [`SocketState`] of a socket already in repair mode.
pub fn read_state(stream: &TcpStream) -> Result<SocketState> {
    let fd = stream.as_raw_fd();
    let local = v4(stream.local_addr().map_err(|source| Error::Sys {
        op: "getsockname",
        source,
    })?)?;
    let remote = v4(stream.peer_addr().map_err(|source| Error::Sys {
        op: "getpeername",
        source,
    })?)?;
    let info = tcp_info(fd)?;
    if info.state != TCP_ESTABLISHED {
        return Err(Error::State(format!(
            "tcpi_state {} is not ESTABLISHED",
            info.state
        )));
    }
    let snd_nxt = queue_seq(fd, Queue::Send)?;
    let rcv_nxt = queue_seq(fd, Queue::Recv)?;
    let out = outq(fd)?;
    let inn = inq(fd)?;
    let send_queue = peek_queue(fd, Queue::Send, out as usize)?;
    let recv_queue = peek_queue(fd, Queue::Recv, inn as usize)?;
    set_repair_queue(fd, Queue::None)?;
    Ok(SocketState {
        local,
        remote,
        snd_una: snd_nxt.wrapping_sub(out),
        snd_nxt,
        rcv_nxt,
        send_queue,
        recv_queue,
        window: repair_window(fd)?,
        info,
        mss: getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_MAXSEG,
            "getsockopt(TCP_MAXSEG)",
        )?,
        timestamp: timestamp(fd)?,
        rmem_alloc: rmem_alloc(fd)?,
    })
}

/// A socket held in repair mode: it sends nothing on its own any more.
#[derive(Debug)]
pub struct FrozenSocket {
    stream: TcpStream,
    state: SocketState,
}

/// A freeze that failed: the error, and the socket back out of repair mode
/// (still connected, so the caller can keep using it, e.g. relay it in user
/// space), or `None` if it could not leave repair mode (it was then closed
/// silently: the peer is not told).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct FreezeFailed {
    #[source]
    pub error: Error,
    pub stream: Option<TcpStream>,
    /// Why leaving repair mode failed, when `stream` is `None`.
    pub thaw_error: Option<Error>,
}

impl FrozenSocket {
    /// Puts an established socket into repair mode and snapshots it. On
    /// error the socket leaves repair mode quietly (sending nothing) and
    /// comes back in the error, unless it was never put in repair mode
    /// (then it comes back untouched) or cannot leave it.
    pub fn freeze(stream: TcpStream) -> std::result::Result<FrozenSocket, FreezeFailed> {
        if let Err(error) = set_repair(stream.as_raw_fd(), true) {
            return Err(FreezeFailed {
                error,
                stream: Some(stream),
                thaw_error: None,
            });
        }
        match read_state(&stream) {
            Ok(state) => Ok(FrozenSocket { stream, state }),
            Err(error) => match leave_repair_quietly(stream.as_raw_fd()) {
                Ok(()) => Err(FreezeFailed {
                    error,
                    stream: Some(stream),
                    thaw_error: None,
                }),
                Err(t) => Err(FreezeFailed {
                    error,
                    stream: None,
                    thaw_error: Some(t),
                }),
            },
        }
    }

    pub fn state(&self) -> &SocketState {
        &self.state
    }

    /// Re-reads the state (e.g. after packets arrived while frozen).
    pub fn refresh(&mut self) -> Result<&SocketState> {
        self.state = read_state(&self.stream)?;
        Ok(&self.state)
    }

    /// Closes the socket without sending FIN or RST: the peer keeps its side
    /// of the connection (which a splice or a restored socket takes over).
    ///
    /// The connection is disconnected first (`connect(AF_UNSPEC)`, which in
    /// repair mode sends nothing), so it leaves the kernel's table of
    /// established 4-tuples now even if the descriptor is not the last
    /// reference to the socket: a process being spawned by another thread
    /// holds a copy of every descriptor until its exec, and a `restore` of
    /// the same 4-tuple meanwhile failed with `EADDRNOTAVAIL`. The socket is
    /// closed even when the disconnect fails; the error says the 4-tuple may
    /// stay taken until every reference is gone.
    pub fn close_silently(self) -> Result<()> {
        let res = disconnect(self.stream.as_raw_fd());
        drop(self.stream);
        res
    }

    /// Makes the peer acknowledge at once: leaves repair mode with a window
    /// probe (a bare ACK one below `snd_una`, which the peer answers with
    /// an ACK of its `rcv_nxt` and its current window) and enters repair
    /// mode again. After a splice is installed the answer goes through the
    /// splice, so the other endpoint learns the peer's window now instead
    /// of at its next zero-window probe.
    pub fn probe_peer(&self) -> Result<()> {
        let fd = self.stream.as_raw_fd();
        set_repair(fd, false)?;
        set_repair(fd, true)
    }

    /// Leaves repair mode (sending nothing) and gives the socket back.
    pub fn thaw(self) -> Result<TcpStream> {
        leave_repair_quietly(self.stream.as_raw_fd())?;
        Ok(self.stream)
    }

    /// Recreates a connected socket from a snapshot, in the calling thread's
    /// namespace: same 4-tuple, sequence numbers, queues, options, windows
    /// and timestamp clock. The peer sees no handshake.
    pub fn restore(state: &SocketState) -> Result<TcpStream> {
        // SAFETY: plain socket creation; the fd is owned right below.
        let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(Error::last_os("socket"));
        }
        // SAFETY: `raw` is a fresh fd we exclusively own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let fdr = fd.as_raw_fd();
        set_repair(fdr, true)?;
        setsockopt(
            fdr,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            &1i32,
            "setsockopt(SO_REUSEADDR)",
        )?;
        set_queue_seq(fdr, Queue::Send, state.snd_una)?;
        let rcv_start = state.rcv_nxt.wrapping_sub(state.recv_queue.len() as u32);
        set_queue_seq(fdr, Queue::Recv, rcv_start)?;
        sock_call(fdr, state.local, libc::bind, "bind")?;
        sock_call(fdr, state.remote, libc::connect, "connect (repair)")?;
        set_repair_options(fdr, &state.info, state.mss)?;
        if state.info.timestamps {
            set_timestamp(fdr, state.timestamp)?;
        }
        fill_queue(fdr, Queue::Send, &state.send_queue)?;
        fill_queue(fdr, Queue::Recv, &state.recv_queue)?;
        set_repair_queue(fdr, Queue::None)?;
        set_repair_window(fdr, &state.window)?;
        set_repair(fdr, false)?;
        // SAFETY: ownership of the fd moves into the TcpStream.
        Ok(unsafe { TcpStream::from_raw_fd(fd.into_raw_fd()) })
    }
}

/// `connect(AF_UNSPEC)`: `tcp_disconnect`, which for a socket in repair mode
/// sends no RST, moves it to CLOSE and unhashes it.
fn disconnect(fd: RawFd) -> Result<()> {
    let sa = libc::sockaddr {
        sa_family: libc::AF_UNSPEC as libc::sa_family_t,
        sa_data: [0; 14],
    };
    // SAFETY: `sa` is a valid sockaddr for the duration of the call and the
    // length matches it.
    let rc = unsafe { libc::connect(fd, &sa, size_of::<libc::sockaddr>() as libc::socklen_t) };
    if rc != 0 {
        return Err(Error::last_os("connect(AF_UNSPEC) of a frozen socket"));
    }
    Ok(())
}

type AddrCall =
    unsafe extern "C" fn(libc::c_int, *const libc::sockaddr, libc::socklen_t) -> libc::c_int;

fn sock_call(fd: RawFd, addr: SocketAddrV4, call: AddrCall, op: &'static str) -> Result<()> {
    let sin = sockaddr_in(addr);
    // SAFETY: `sin` is a valid sockaddr_in for the duration of the call and
    // the length matches it.
    let rc = unsafe {
        call(
            fd,
            (&sin as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(Error::last_os(op));
    }
    Ok(())
}

fn sockaddr_in(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn sockaddr_is_network_order() {
        let s = sockaddr_in(SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 0x1234));
        assert_eq!(s.sin_port.to_ne_bytes(), [0x12, 0x34]);
        assert_eq!(s.sin_addr.s_addr.to_ne_bytes(), [198, 18, 0, 1]);
    }

    #[test]
    fn repair_window_matches_kernel_layout() {
        assert_eq!(size_of::<RepairWindow>(), 20);
        assert_eq!(size_of::<RepairOpt>(), 8);
    }

    #[test]
    fn window_left_is_the_right_edge_minus_rcv_nxt() {
        let w = |rcv_wup: u32, rcv_wnd: u32| RepairWindow {
            rcv_wup,
            rcv_wnd,
            ..RepairWindow::default()
        };
        assert_eq!(window_left(&w(1000, 500), 1200), 300);
        assert_eq!(window_left(&w(1000, 500), 1500), 0);
        assert_eq!(window_left(&w(u32::MAX - 9, 20), 5), 5, "wraps");
        // A peer that sent beyond the edge (the kernel dropped it) or a
        // stale read: never negative.
        assert_eq!(window_left(&w(1000, 0), 1400), 0);
    }

    #[test]
    fn repair_needs_a_socket() {
        assert!(set_repair(-1, true).is_err());
    }
}

//! Opening the backend connection of a splice: a socket bound to the shared
//! splice address and a port of this proxy's partition (`IP_FREEBIND`,
//! `IP_TRANSPARENT` or a local address), with the MSS clamped
//! (`TCP_MAXSEG` before connect) so segments of the spliced client fit the
//! backend path.

use crate::config::SsaBind;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{SocketAddrV4, TcpStream};
use std::time::Duration;

/// A socket ready to connect from `ssa` (address and port).
pub fn ssa_socket(ssa: SocketAddrV4, bind: SsaBind, mss: Option<u16>) -> io::Result<Socket> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    s.set_cloexec(true)?;
    s.set_reuse_address(true)?;
    match bind {
        SsaBind::Freebind => s.set_freebind_v4(true)?,
        SsaBind::Transparent => s.set_ip_transparent_v4(true)?,
        SsaBind::Local => {}
    }
    if let Some(m) = mss {
        s.set_tcp_mss(u32::from(m))?;
    }
    s.bind(&SockAddr::from(ssa))?;
    Ok(s)
}

/// Connects to `backend` from `ssa` (blocking, bounded by `timeout`).
pub fn connect_from_ssa(
    ssa: SocketAddrV4,
    bind: SsaBind,
    mss: Option<u16>,
    backend: SocketAddrV4,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let s = ssa_socket(ssa, bind, mss)?;
    s.connect_timeout(&SockAddr::from(backend), timeout)?;
    s.set_tcp_nodelay(true)?;
    Ok(s.into())
}

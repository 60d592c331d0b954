//! UDP calls that never block, whatever the socket's mode (`MSG_DONTWAIT`).
//!
//! `O_NONBLOCK` belongs to the open file, so every clone of a socket
//! (`try_clone` is `dup`) shares it: a thread that switched it to drain a
//! socket would switch it under the other threads too. A socket shared by
//! a reader thread (blocking reads with a timeout) and senders stays in
//! blocking mode, and the calls here ask for non-blocking behaviour per
//! call instead.

#![allow(unsafe_code)] // FFI: every block below has a `// SAFETY:` line.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;

/// Reads one datagram if one is queued; `WouldBlock` otherwise.
pub fn recv_from_nowait(sock: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    // SAFETY: sockaddr_storage is plain data; all zeroes is a valid value.
    let mut from: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes, `from` for
    // `len` bytes; both outlive the call.
    let n = unsafe {
        libc::recvfrom(
            sock.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
            (&mut from as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((n as usize, to_socket_addr(&from)?))
}

/// Sends one datagram, failing with `WouldBlock` rather than waiting for
/// room in the socket's send buffer.
pub fn send_to_nowait(sock: &UdpSocket, data: &[u8], to: SocketAddr) -> io::Result<usize> {
    // SAFETY: sockaddr_storage is plain data; all zeroes is a valid value.
    let mut sa: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match to {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for
            // sockaddr_in.
            unsafe { std::ptr::write((&mut sa as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for
            // sockaddr_in6.
            unsafe { std::ptr::write((&mut sa as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    // SAFETY: `data` is valid for reads of its length, `sa` holds a
    // sockaddr of `len` bytes; both outlive the call.
    let n = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_DONTWAIT,
            (&sa as *const libc::sockaddr_storage).cast(),
            len as libc::socklen_t,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

fn to_socket_addr(sa: &libc::sockaddr_storage) -> io::Result<SocketAddr> {
    match i32::from(sa.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the kernel wrote a sockaddr_in, which
            // sockaddr_storage is large enough and aligned for.
            let sin: libc::sockaddr_in =
                unsafe { std::ptr::read((sa as *const libc::sockaddr_storage).cast()) };
            Ok(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6: libc::sockaddr_in6 =
                unsafe { std::ptr::read((sa as *const libc::sockaddr_storage).cast()) };
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        f => Err(io::Error::other(format!(
            "datagram from address family {f}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loopback only: a blocking socket is drained without blocking and
    /// stays blocking.
    #[test]
    fn nowait_calls_leave_a_blocking_socket_blocking() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut buf = [0u8; 64];
        let e = recv_from_nowait(&a, &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        let to = a.local_addr().unwrap();
        assert_eq!(send_to_nowait(&b, b"hello", to).unwrap(), 5);
        let (n, from) = recv_from_nowait(&a, &mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"hello"[..], b.local_addr().unwrap()));
        // Still blocking: a read waits for its timeout.
        a.set_read_timeout(Some(std::time::Duration::from_millis(20)))
            .unwrap();
        let t0 = std::time::Instant::now();
        let e = a.recv_from(&mut buf).unwrap_err();
        assert!(t0.elapsed() >= std::time::Duration::from_millis(15));
        assert!(matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ));
    }
}

//! The splice record: everything a proxy (or a split-splice agent) needs to
//! relay packets of one client connection to its backend connection and
//! back, without any socket. This is what is replicated to every proxy.
//!
//! Two TCP connections are joined:
//! - A: `client` <-> `vip` (accepted by a proxy on the service address),
//! - B: `ssa` <-> `backend` (opened by a proxy from the shared splice address).
//!
//! Packets from the client (direction [`Direction::ClientToServer`]) are
//! rewritten to look like B's packets from `ssa` to `backend`; packets from the
//! backend ([`Direction::ServerToClient`]) to look like A's from `vip` to
//! `client`.
//!
//! Sequence spaces: let `c` be the client's sequence space on A, `v` the
//! proxy's (VIP side) on A, `s` the proxy's (SSA side) on B and `b` the
//! backend's on B. At splice time the bytes the client has sent end exactly
//! where the bytes the proxy has sent to the backend end, and the bytes the
//! proxy sent to the client end where the backend's end, so:
//! - `seq_delta = s_next - c_next`: client seq and backend's ack of it;
//! - `ack_delta = b_next - v_next`: client's ack/SACK and backend's seq.

use core::net::SocketAddrV4;

pub mod fixtures;
pub mod fuzz;
pub mod table;
pub mod test_support;
mod translate;

pub use translate::{rescale_window, translate, untranslate, TranslateError, Translated};

/// Which way a packet travels through the splice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client toward the backend.
    ClientToServer,
    /// From the backend toward the client.
    ServerToClient,
}

impl Direction {
    pub fn reverse(self) -> Direction {
        match self {
            Direction::ClientToServer => Direction::ServerToClient,
            Direction::ServerToClient => Direction::ClientToServer,
        }
    }
}

/// Identifier of a splice, unique across the proxy tier: the creating proxy's
/// id in the top 16 bits and a per-proxy counter below.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpliceId(pub u64);

/// Timestamp option offsets (RFC 7323), present when both connections
/// negotiated timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TsDeltas {
    /// Added to the client's TSval going to the backend (and subtracted from
    /// the backend's TSecr going to the client): `s_tsval - client_tsval`.
    pub c2s: u32,
    /// Added to the backend's TSval going to the client (and subtracted from
    /// the client's TSecr going to the backend): `v_tsval - backend_tsval`.
    pub s2c: u32,
}

/// Window scale shift counts (RFC 7323) each endpoint announced in its SYN;
/// 0 where scaling was not negotiated on that connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct WindowScales {
    /// The client's shift (applies to windows the client advertises).
    pub client: u8,
    /// The proxy's shift on A (the client applies it to windows "vip" sends).
    pub vip: u8,
    /// The proxy's shift on B (the backend applies it to windows "ssa" sends).
    pub ssa: u8,
    /// The backend's shift (applies to windows the backend advertises).
    pub backend: u8,
}

/// One spliced connection pair.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Splice {
    pub id: SpliceId,
    /// Bumped on every replicated change; replicas apply only newer versions.
    pub version: u32,
    /// Client address and port (source of A's client packets).
    pub client: SocketAddrV4,
    /// Service address and port the client connected to.
    pub vip: SocketAddrV4,
    /// Shared splice address and the port the proxy connected from.
    pub ssa: SocketAddrV4,
    /// Backend address and port.
    pub backend: SocketAddrV4,
    /// `s_next - c_next` (wrapping), see the module docs.
    pub seq_delta: u32,
    /// `b_next - v_next` (wrapping), see the module docs.
    pub ack_delta: u32,
    /// Timestamp offsets, `None` if either connection lacks timestamps
    /// (then timestamp options are overwritten with NOPs in both directions).
    pub ts: Option<TsDeltas>,
    pub wscale: WindowScales,
    /// SACK was permitted on both connections (else SACK blocks are NOPed).
    pub sack_ok: bool,
}

impl Splice {
    /// Where packets of `dir` come from and go to before translation, as
    /// (source, destination).
    pub fn incoming_tuple(&self, dir: Direction) -> (SocketAddrV4, SocketAddrV4) {
        match dir {
            Direction::ClientToServer => (self.client, self.vip),
            Direction::ServerToClient => (self.backend, self.ssa),
        }
    }

    /// The (source, destination) after translation.
    pub fn outgoing_tuple(&self, dir: Direction) -> (SocketAddrV4, SocketAddrV4) {
        let (src, dst) = self.incoming_tuple(dir.reverse());
        (dst, src)
    }
}

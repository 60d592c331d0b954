//! What Linux's TCP_REPAIR would report for a socket: the numbers a proxy
//! needs to build a splice (`proto::splice::Splice`) from a frozen
//! connection.

use core::net::SocketAddrV4;

use crate::event::State;
use crate::seq::SeqNum;

/// Timestamp state (RFC 7323) of a connection that negotiated timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RepairTimestamps {
    /// Added to `now` in ms to form TSval (Linux `tsoffset`).
    pub offset: u32,
    /// The last TSval this endpoint sent.
    pub last_tsval_sent: u32,
    /// TS.Recent: the peer's TSval this endpoint echoes.
    pub ts_recent: u32,
}

/// A snapshot like `TCP_REPAIR` + `TCP_REPAIR_WINDOW` + `TCP_REPAIR_OPTIONS`
/// give on Linux.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RepairState {
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    pub state: State,
    /// Own initial sequence number.
    pub iss: SeqNum,
    /// Peer's initial sequence number.
    pub irs: SeqNum,
    pub snd_una: SeqNum,
    /// Next new sequence number (SND.NXT = highest sent).
    pub snd_nxt: SeqNum,
    pub rcv_nxt: SeqNum,
    /// Peer's window in bytes (already scaled).
    pub snd_wnd: u32,
    /// Largest window the peer ever offered, in bytes.
    pub max_window: u32,
    /// Window this endpoint last advertised, in bytes (right edge − RCV.NXT).
    pub rcv_wnd: u32,
    /// Shift the peer announced (applies to windows it sends), 0 if unscaled.
    pub snd_wscale: u8,
    /// Shift this endpoint announced (applies to windows it sends).
    pub rcv_wscale: u8,
    /// MSS the peer announced (536 if it sent none).
    pub peer_mss: u16,
    /// Payload bytes per full-sized segment this endpoint sends.
    pub send_mss: u16,
    pub sack_ok: bool,
    pub timestamps: Option<RepairTimestamps>,
    /// Bytes queued but not yet sent.
    pub unsent_bytes: u32,
    /// Bytes sent but not acknowledged (SND.NXT − SND.UNA, incl. FIN).
    pub unacked_bytes: u32,
    /// In-order bytes received but not read.
    pub unread_bytes: u32,
    /// Out-of-order bytes or a FIN are held beyond RCV.NXT.
    pub has_out_of_order: bool,
    /// Nothing queued or in flight (Linux: empty write queue).
    pub send_queue_empty: bool,
    /// Nothing to read and nothing out of order (Linux: empty receive and
    /// out-of-order queues).
    pub recv_queue_empty: bool,
}

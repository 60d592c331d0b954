//! The segment type exchanged with the caller: a parsed TCP header (ports,
//! sequence numbers, flags, raw window, options) and its payload, generic over
//! the payload storage so input can borrow from a packet buffer.

use core::fmt;

use crate::options::TcpOptions;
use crate::seq::SeqNum;

/// TCP header flags this endpoint uses.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    pub const FIN: Flags = Flags(0x01);
    pub const SYN: Flags = Flags(0x02);
    pub const RST: Flags = Flags(0x04);
    pub const PSH: Flags = Flags(0x08);
    pub const ACK: Flags = Flags(0x10);

    pub const fn empty() -> Flags {
        Flags(0)
    }

    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    pub fn fin(self) -> bool {
        self.contains(Flags::FIN)
    }
    pub fn syn(self) -> bool {
        self.contains(Flags::SYN)
    }
    pub fn rst(self) -> bool {
        self.contains(Flags::RST)
    }
    pub fn psh(self) -> bool {
        self.contains(Flags::PSH)
    }
    pub fn ack(self) -> bool {
        self.contains(Flags::ACK)
    }
}

impl core::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        self.union(rhs)
    }
}

impl core::ops::BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        *self = self.union(rhs);
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Flags::SYN, "S"),
            (Flags::FIN, "F"),
            (Flags::RST, "R"),
            (Flags::PSH, "P"),
            (Flags::ACK, "."),
        ];
        for (flag, n) in names {
            if self.contains(flag) {
                f.write_str(n)?;
            }
        }
        Ok(())
    }
}

/// One TCP segment. `P` is the payload storage: `Vec<u8>` for segments this
/// crate produces, `&[u8]` (or anything `AsRef<[u8]>`) for input.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Segment<P = Vec<u8>> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: SeqNum,
    /// Meaningful only with [`Flags::ACK`].
    pub ack: SeqNum,
    pub flags: Flags,
    /// The raw 16-bit window field (unscaled).
    pub window: u16,
    pub options: TcpOptions,
    pub payload: P,
}

impl<P> Segment<P> {
    /// The same header with `payload`.
    pub fn with_payload<Q>(self, payload: Q) -> Segment<Q> {
        self.header_with(payload)
    }

    /// A copy of the header (every field but the payload) with `payload`.
    fn header_with<Q>(&self, payload: Q) -> Segment<Q> {
        Segment {
            src_port: self.src_port,
            dst_port: self.dst_port,
            seq: self.seq,
            ack: self.ack,
            flags: self.flags,
            window: self.window,
            options: self.options,
            payload,
        }
    }
}

impl<P: AsRef<[u8]>> Segment<P> {
    /// Sequence space the segment occupies (payload + SYN + FIN).
    pub fn seq_len(&self) -> usize {
        self.payload.as_ref().len() + usize::from(self.flags.syn()) + usize::from(self.flags.fin())
    }

    /// A copy with an owned payload.
    pub fn to_owned_segment(&self) -> Segment<Vec<u8>> {
        self.header_with(self.payload.as_ref().to_vec())
    }

    /// The same segment borrowing its payload.
    pub fn as_borrowed(&self) -> Segment<&[u8]> {
        self.header_with(self.payload.as_ref())
    }
}

impl<P: AsRef<[u8]>> fmt::Debug for Segment<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}>{} [{:?}] seq={} ack={} win={} len={}",
            self.src_port,
            self.dst_port,
            self.flags,
            self.seq,
            self.ack,
            self.window,
            self.payload.as_ref().len()
        )?;
        if !self.options.sack.is_empty() {
            write!(f, " sack={:?}", self.options.sack.as_slice())?;
        }
        Ok(())
    }
}

/// The reset RFC 9293 §3.10.7.1 prescribes in reply to `seg` arriving where
/// no connection exists (`None` if `seg` is itself a reset).
pub fn reset_for<P: AsRef<[u8]>>(seg: &Segment<P>) -> Option<Segment> {
    if seg.flags.rst() {
        return None;
    }
    let (seq, ack, flags) = if seg.flags.ack() {
        (seg.ack, SeqNum(0), Flags::RST)
    } else {
        (SeqNum(0), seg.seq + seg.seq_len(), Flags::RST | Flags::ACK)
    };
    Some(Segment {
        src_port: seg.dst_port,
        dst_port: seg.src_port,
        seq,
        ack,
        flags,
        window: 0,
        options: TcpOptions::default(),
        payload: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_len_counts_syn_and_fin() {
        let s = Segment {
            flags: Flags::SYN | Flags::FIN,
            payload: &b"abc"[..],
            ..Default::default()
        };
        assert_eq!(s.seq_len(), 5);
        assert_eq!(format!("{:?}", s.flags), "SF");
        let owned = s.to_owned_segment();
        assert_eq!(owned.as_borrowed(), s);
    }

    #[test]
    fn reset_replies_follow_rfc9293() {
        let with_ack = Segment {
            src_port: 1,
            dst_port: 2,
            seq: SeqNum(100),
            ack: SeqNum(777),
            flags: Flags::ACK,
            payload: vec![0; 10],
            ..Default::default()
        };
        let r = reset_for(&with_ack).expect("reset");
        assert_eq!((r.src_port, r.dst_port), (2, 1));
        assert_eq!(r.seq, SeqNum(777));
        assert_eq!(r.flags, Flags::RST);

        let syn = Segment::<Vec<u8>> {
            seq: SeqNum(100),
            flags: Flags::SYN,
            ..Default::default()
        };
        let r = reset_for(&syn).expect("reset");
        assert_eq!(r.seq, SeqNum(0));
        assert_eq!(r.ack, SeqNum(101));
        assert_eq!(r.flags, Flags::RST | Flags::ACK);

        let rst = Segment::<Vec<u8>> {
            flags: Flags::RST,
            ..Default::default()
        };
        assert!(reset_for(&rst).is_none());
    }

    #[test]
    fn payload_conversions_keep_every_header_field() {
        let options = TcpOptions {
            mss: Some(1460),
            ..Default::default()
        };
        let seg = Segment {
            src_port: 1,
            dst_port: 2,
            seq: SeqNum(3),
            ack: SeqNum(4),
            flags: Flags::ACK | Flags::PSH,
            window: 5,
            options,
            payload: &b"xyz"[..],
        };
        let owned = seg.to_owned_segment();
        assert_eq!(owned.as_borrowed(), seg);
        assert_eq!(owned.clone().with_payload(&b"xyz"[..]), seg);
        let other = seg.clone().with_payload(vec![9u8]);
        assert_eq!(other.payload, vec![9u8]);
        assert_eq!(other.with_payload(&b"xyz"[..]), seg);
    }
}

//! Binary encoding of replication [`Message`]s, versioned and optionally
//! authenticated.
//!
//! ```text
//! header (16 bytes, big-endian):
//!  0      4    5      6      7     8        10    12         16
//!  | "FTSR" | ver | type | flags | rsv | sender | rsv | body_len |
//! body (body_len bytes), then a 32-byte HMAC-SHA256 tag over header and
//! body when flags bit 0 is set.
//! ```
//!
//! A splice is 57 bytes: id u64, version u32, client, vip, ssa, backend
//! (IPv4 + port, 6 bytes each), seq_delta u32, ack_delta u32, flags u8
//! (bit 0 timestamps, bit 1 SACK), ts c2s u32, ts s2c u32 (zero without
//! timestamps), window scales client, vip, ssa, backend (≤ 14 each).
//!
//! Bodies: Create/Update = splice; Delete/Ack = id u64 + version u32;
//! SnapshotRequest = id u64; Snapshot = last u8 (0/1) + count u16 + splices;
//! Fin = id u64 + direction u8 (0 client→server, 1 server→client);
//! Activity = count u16 + ids; PreSplice = add count u16, remove count u16,
//! then the records (client, vip: IPv4 + port each; rst_seq u32: 16 bytes
//! each), then the removed flows (client, vip: 12 bytes each).
//!
//! Decoding never panics; every violation (unknown version or type, length
//! mismatch, non-zero reserved bits, non-canonical fields, missing or wrong
//! tag) is a [`DecodeError`], counted by [`Codec`]. The encoding is
//! canonical: whatever decodes re-encodes to the same bytes.
//!
//! With a pre-shared key, every message must carry a valid tag, and a tagged
//! message is refused by a codec without a key. The tag authenticates the
//! sender and contents; it does not stop replays, which are harmless for
//! versioned state (an old version never wins) but can resurrect teardown
//! notices.

use core::net::{Ipv4Addr, SocketAddrV4};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::message::{Envelope, Message};
use crate::orphan_records::{PreKey, PreRecord};
use crate::splice::{Direction, Splice, SpliceId, TsDeltas, WindowScales};
use crate::ProxyId;

pub const MAGIC: [u8; 4] = *b"FTSR";
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 16;
pub const TAG_LEN: usize = 32;
pub const SPLICE_LEN: usize = 57;
/// Largest body accepted or produced (fits a UDP datagram with header and tag).
pub const MAX_BODY: usize = 65_000;
/// Largest snapshot chunk / activity list that fits [`MAX_BODY`].
pub const MAX_SPLICES_PER_CHUNK: usize = (MAX_BODY - 3) / SPLICE_LEN;
pub const MAX_IDS_PER_ACTIVITY: usize = (MAX_BODY - 2) / 8;
pub const PRE_RECORD_LEN: usize = 16;
pub const PRE_KEY_LEN: usize = 12;
/// Largest pre-splice record list (added plus removed) in one message.
pub const MAX_PRE_RECORDS: usize = (MAX_BODY - 4) / PRE_RECORD_LEN;

const FLAG_TAG: u8 = 1;
const SPLICE_TS: u8 = 1;
const SPLICE_SACK: u8 = 2;
const MAX_WSCALE: u8 = 14;

/// A 32-byte pre-shared key for message authentication.
pub type Key = [u8; 32];

/// Why bytes are not a valid replication message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("bad magic")]
    BadMagic,
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    #[error("unknown message type {0}")]
    UnknownType(u8),
    #[error("reserved bits set")]
    ReservedBits,
    #[error("body length {0} exceeds the limit")]
    TooLarge(usize),
    #[error("datagram length {actual} does not match header ({expected})")]
    LengthMismatch { expected: usize, actual: usize },
    #[error("invalid body: {0}")]
    BadBody(&'static str),
    #[error("authentication tag missing")]
    MissingTag,
    #[error("authentication tag present but no key configured")]
    UnexpectedTag,
    #[error("authentication tag does not verify")]
    BadTag,
}

/// Why a message cannot be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("message body of {0} bytes exceeds the limit")]
    TooLarge(usize),
}

fn mac(key: &Key) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail for 32 bytes.
    match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

/// Encodes `msg` from `sender`, tagged when `key` is given.
pub fn encode(sender: ProxyId, msg: &Message, key: Option<&Key>) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(HEADER_LEN + SPLICE_LEN + TAG_LEN);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(msg.kind());
    out.push(if key.is_some() { FLAG_TAG } else { 0 });
    out.push(0);
    out.extend_from_slice(&sender.0.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    match msg {
        Message::Create(s) | Message::Update(s) => put_splice(&mut out, s),
        Message::Delete { id, version } | Message::Ack { id, version } => {
            out.extend_from_slice(&id.0.to_be_bytes());
            out.extend_from_slice(&version.to_be_bytes());
        }
        Message::SnapshotRequest { from } => out.extend_from_slice(&from.0.to_be_bytes()),
        Message::Snapshot { splices, last } => {
            if splices.len() > MAX_SPLICES_PER_CHUNK {
                return Err(EncodeError::TooLarge(3 + splices.len() * SPLICE_LEN));
            }
            out.push(u8::from(*last));
            out.extend_from_slice(&(splices.len() as u16).to_be_bytes());
            for s in splices {
                put_splice(&mut out, s);
            }
        }
        Message::Fin { id, dir } => {
            out.extend_from_slice(&id.0.to_be_bytes());
            out.push(match dir {
                Direction::ClientToServer => 0,
                Direction::ServerToClient => 1,
            });
        }
        Message::Activity { ids } => {
            if ids.len() > MAX_IDS_PER_ACTIVITY {
                return Err(EncodeError::TooLarge(2 + ids.len() * 8));
            }
            out.extend_from_slice(&(ids.len() as u16).to_be_bytes());
            for id in ids {
                out.extend_from_slice(&id.0.to_be_bytes());
            }
        }
        Message::PreSplice { add, remove } => {
            if add.len() + remove.len() > MAX_PRE_RECORDS {
                return Err(EncodeError::TooLarge(
                    4 + add.len() * PRE_RECORD_LEN + remove.len() * PRE_KEY_LEN,
                ));
            }
            out.extend_from_slice(&(add.len() as u16).to_be_bytes());
            out.extend_from_slice(&(remove.len() as u16).to_be_bytes());
            for r in add {
                put_addr(&mut out, &r.client);
                put_addr(&mut out, &r.vip);
                out.extend_from_slice(&r.rst_seq.to_be_bytes());
            }
            for k in remove {
                put_addr(&mut out, &k.client);
                put_addr(&mut out, &k.vip);
            }
        }
    }
    let body_len = out.len() - HEADER_LEN;
    out[12..16].copy_from_slice(&(body_len as u32).to_be_bytes());
    if let Some(k) = key {
        let mut m = mac(k);
        m.update(&out);
        let tag = m.finalize().into_bytes();
        out.extend_from_slice(&tag);
    }
    Ok(out)
}

fn put_addr(out: &mut Vec<u8>, a: &SocketAddrV4) {
    out.extend_from_slice(&a.ip().octets());
    out.extend_from_slice(&a.port().to_be_bytes());
}

fn put_splice(out: &mut Vec<u8>, s: &Splice) {
    out.extend_from_slice(&s.id.0.to_be_bytes());
    out.extend_from_slice(&s.version.to_be_bytes());
    for a in [&s.client, &s.vip, &s.ssa, &s.backend] {
        put_addr(out, a);
    }
    out.extend_from_slice(&s.seq_delta.to_be_bytes());
    out.extend_from_slice(&s.ack_delta.to_be_bytes());
    let flags =
        if s.ts.is_some() { SPLICE_TS } else { 0 } | if s.sack_ok { SPLICE_SACK } else { 0 };
    out.push(flags);
    let ts = s.ts.unwrap_or(TsDeltas { c2s: 0, s2c: 0 });
    out.extend_from_slice(&ts.c2s.to_be_bytes());
    out.extend_from_slice(&ts.s2c.to_be_bytes());
    let w = s.wscale;
    out.extend_from_slice(&[w.client, w.vip, w.ssa, w.backend]);
}

/// A cursor over untrusted bytes that never reads past the end.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.b.len() < n {
            return Err(DecodeError::BadBody("body shorter than its contents"));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok((u64::from(self.u32()?) << 32) | u64::from(self.u32()?))
    }

    fn addr(&mut self) -> Result<SocketAddrV4, DecodeError> {
        let ip = Ipv4Addr::from_bits(self.u32()?);
        Ok(SocketAddrV4::new(ip, self.u16()?))
    }

    fn splice(&mut self) -> Result<Splice, DecodeError> {
        let id = SpliceId(self.u64()?);
        let version = self.u32()?;
        let (client, vip, ssa, backend) = (self.addr()?, self.addr()?, self.addr()?, self.addr()?);
        let seq_delta = self.u32()?;
        let ack_delta = self.u32()?;
        let flags = self.u8()?;
        if flags & !(SPLICE_TS | SPLICE_SACK) != 0 {
            return Err(DecodeError::BadBody("unknown splice flags"));
        }
        let ts = TsDeltas {
            c2s: self.u32()?,
            s2c: self.u32()?,
        };
        let ts = if flags & SPLICE_TS != 0 {
            Some(ts)
        } else if ts.c2s != 0 || ts.s2c != 0 {
            return Err(DecodeError::BadBody(
                "timestamp deltas without timestamp flag",
            ));
        } else {
            None
        };
        let w = self.take(4)?;
        if w.iter().any(|&s| s > MAX_WSCALE) {
            return Err(DecodeError::BadBody("window scale above 14"));
        }
        Ok(Splice {
            id,
            version,
            client,
            vip,
            ssa,
            backend,
            seq_delta,
            ack_delta,
            ts,
            wscale: WindowScales {
                client: w[0],
                vip: w[1],
                ssa: w[2],
                backend: w[3],
            },
            sack_ok: flags & SPLICE_SACK != 0,
        })
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::BadBody("trailing bytes in body"))
        }
    }
}

/// Decodes untrusted bytes. With `key`, the tag must be present and valid.
pub fn decode(data: &[u8], key: Option<&Key>) -> Result<Envelope, DecodeError> {
    if data.len() < HEADER_LEN {
        return Err(DecodeError::Truncated {
            need: HEADER_LEN,
            have: data.len(),
        });
    }
    if data[0..4] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if data[4] != VERSION {
        return Err(DecodeError::UnsupportedVersion(data[4]));
    }
    let kind = data[5];
    if !(1..=9).contains(&kind) {
        return Err(DecodeError::UnknownType(kind));
    }
    let flags = data[6];
    if flags & !FLAG_TAG != 0 || data[7] != 0 || data[10] != 0 || data[11] != 0 {
        return Err(DecodeError::ReservedBits);
    }
    let body_len = u32::from_be_bytes([data[12], data[13], data[14], data[15]]) as usize;
    if body_len > MAX_BODY {
        return Err(DecodeError::TooLarge(body_len));
    }
    let tagged = flags & FLAG_TAG != 0;
    let expected = HEADER_LEN + body_len + if tagged { TAG_LEN } else { 0 };
    if data.len() < expected {
        return Err(DecodeError::Truncated {
            need: expected,
            have: data.len(),
        });
    }
    if data.len() != expected {
        return Err(DecodeError::LengthMismatch {
            expected,
            actual: data.len(),
        });
    }
    match (key, tagged) {
        (Some(_), false) => return Err(DecodeError::MissingTag),
        (None, true) => return Err(DecodeError::UnexpectedTag),
        (Some(k), true) => {
            let mut m = mac(k);
            m.update(&data[..HEADER_LEN + body_len]);
            if m.verify_slice(&data[HEADER_LEN + body_len..]).is_err() {
                return Err(DecodeError::BadTag);
            }
        }
        (None, false) => {}
    }
    let sender = ProxyId(u16::from_be_bytes([data[8], data[9]]));
    let mut r = Reader {
        b: &data[HEADER_LEN..HEADER_LEN + body_len],
    };
    let msg = match kind {
        1 => Message::Create(r.splice()?),
        2 => Message::Update(r.splice()?),
        3 => Message::Delete {
            id: SpliceId(r.u64()?),
            version: r.u32()?,
        },
        4 => Message::SnapshotRequest {
            from: SpliceId(r.u64()?),
        },
        5 => {
            let last = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(DecodeError::BadBody("snapshot last flag not 0/1")),
            };
            let n = usize::from(r.u16()?);
            if r.b.len() != n * SPLICE_LEN {
                return Err(DecodeError::BadBody("snapshot count does not match body"));
            }
            let splices = (0..n).map(|_| r.splice()).collect::<Result<Vec<_>, _>>()?;
            Message::Snapshot { splices, last }
        }
        6 => Message::Ack {
            id: SpliceId(r.u64()?),
            version: r.u32()?,
        },
        7 => {
            let id = SpliceId(r.u64()?);
            let dir = match r.u8()? {
                0 => Direction::ClientToServer,
                1 => Direction::ServerToClient,
                _ => return Err(DecodeError::BadBody("unknown direction")),
            };
            Message::Fin { id, dir }
        }
        9 => {
            let n_add = usize::from(r.u16()?);
            let n_rem = usize::from(r.u16()?);
            if n_add + n_rem > MAX_PRE_RECORDS
                || r.b.len() != n_add * PRE_RECORD_LEN + n_rem * PRE_KEY_LEN
            {
                return Err(DecodeError::BadBody("pre-splice counts do not match body"));
            }
            let add = (0..n_add)
                .map(|_| {
                    Ok(PreRecord {
                        client: r.addr()?,
                        vip: r.addr()?,
                        rst_seq: r.u32()?,
                    })
                })
                .collect::<Result<Vec<_>, DecodeError>>()?;
            let remove = (0..n_rem)
                .map(|_| {
                    Ok(PreKey {
                        client: r.addr()?,
                        vip: r.addr()?,
                    })
                })
                .collect::<Result<Vec<_>, DecodeError>>()?;
            Message::PreSplice { add, remove }
        }
        _ => {
            let n = usize::from(r.u16()?);
            if r.b.len() != n * 8 {
                return Err(DecodeError::BadBody("activity count does not match body"));
            }
            let ids = (0..n)
                .map(|_| r.u64().map(SpliceId))
                .collect::<Result<Vec<_>, _>>()?;
            Message::Activity { ids }
        }
    };
    r.finish()?;
    Ok(Envelope { sender, msg })
}

/// Counters of a [`Codec`], one per failure kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CodecStats {
    pub decoded: u64,
    pub truncated: u64,
    pub bad_magic: u64,
    pub bad_version: u64,
    pub unknown_type: u64,
    pub malformed: u64,
    pub auth_failed: u64,
}

/// A codec with an optional pre-shared key and error counters.
#[derive(Clone, Debug, Default)]
pub struct Codec {
    key: Option<Key>,
    stats: CodecStats,
}

impl Codec {
    pub fn new(key: Option<Key>) -> Self {
        Codec {
            key,
            stats: CodecStats::default(),
        }
    }

    pub fn stats(&self) -> CodecStats {
        self.stats
    }

    pub fn encode(&self, sender: ProxyId, msg: &Message) -> Result<Vec<u8>, EncodeError> {
        encode(sender, msg, self.key.as_ref())
    }

    /// Decodes, counting the outcome.
    pub fn decode(&mut self, data: &[u8]) -> Result<Envelope, DecodeError> {
        let r = decode(data, self.key.as_ref());
        let s = &mut self.stats;
        match r {
            Ok(_) => s.decoded += 1,
            Err(DecodeError::Truncated { .. }) => s.truncated += 1,
            Err(DecodeError::BadMagic) => s.bad_magic += 1,
            Err(DecodeError::UnsupportedVersion(_)) => s.bad_version += 1,
            Err(DecodeError::UnknownType(_)) => s.unknown_type += 1,
            Err(DecodeError::MissingTag | DecodeError::UnexpectedTag | DecodeError::BadTag) => {
                s.auth_failed += 1
            }
            Err(_) => s.malformed += 1,
        }
        r
    }
}

/// Fuzz entry point: decoding arbitrary bytes, with and without a key, never
/// panics, and what decodes re-encodes to the same bytes.
pub fn fuzz_decode(data: &[u8]) {
    const FUZZ_KEY: Key = [7; 32];
    for key in [None, Some(&FUZZ_KEY)] {
        if let Ok(env) = decode(data, key) {
            let again = encode(env.sender, &env.msg, key);
            assert_eq!(again.as_deref(), Ok(data), "non-canonical decode");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splice::table::tests::splice;
    use proptest::prelude::*;

    const KEY: Key = [42; 32];

    fn all_kinds() -> Vec<Message> {
        let mut s = splice(7, 3, 5000, 20000);
        s.ts = Some(TsDeltas {
            c2s: 1,
            s2c: 0xffff_ffff,
        });
        s.wscale = WindowScales {
            client: 7,
            vip: 14,
            ssa: 0,
            backend: 2,
        };
        vec![
            Message::Create(s.clone()),
            Message::Update(splice(8, 9, 1, 2)),
            Message::Delete {
                id: SpliceId(7),
                version: 4,
            },
            Message::SnapshotRequest {
                from: SpliceId(100),
            },
            Message::Snapshot {
                splices: vec![s, splice(9, 1, 3, 4)],
                last: true,
            },
            Message::Snapshot {
                splices: vec![],
                last: false,
            },
            Message::Ack {
                id: SpliceId(u64::MAX),
                version: 0,
            },
            Message::Fin {
                id: SpliceId(1),
                dir: Direction::ServerToClient,
            },
            Message::Activity {
                ids: vec![SpliceId(1), SpliceId(2)],
            },
            Message::PreSplice {
                add: vec![PreRecord {
                    client: SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 7), 40_000),
                    vip: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 100), 80),
                    rst_seq: 0xdead_beef,
                }],
                remove: vec![PreKey {
                    client: SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 8), 1),
                    vip: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 100), 80),
                }],
            },
            Message::PreSplice {
                add: vec![],
                remove: vec![],
            },
        ]
    }

    #[test]
    fn every_kind_roundtrips_with_and_without_key() {
        for m in all_kinds() {
            for key in [None, Some(&KEY)] {
                let b = encode(ProxyId(5), &m, key).unwrap();
                let env = decode(&b, key).unwrap();
                assert_eq!(
                    env,
                    Envelope {
                        sender: ProxyId(5),
                        msg: m.clone()
                    }
                );
                fuzz_decode(&b);
            }
        }
        let b = encode(ProxyId(1), &Message::Create(splice(1, 1, 1, 1)), None).unwrap();
        assert_eq!(b.len(), HEADER_LEN + SPLICE_LEN);
    }

    #[test]
    fn header_errors_have_reasons() {
        let good = encode(
            ProxyId(1),
            &Message::Ack {
                id: SpliceId(1),
                version: 1,
            },
            None,
        )
        .unwrap();
        assert_eq!(
            decode(&good[..3], None),
            Err(DecodeError::Truncated { need: 16, have: 3 })
        );
        let mut b = good.clone();
        b[0] = 0;
        assert_eq!(decode(&b, None), Err(DecodeError::BadMagic));
        let mut b = good.clone();
        b[4] = 2;
        assert_eq!(decode(&b, None), Err(DecodeError::UnsupportedVersion(2)));
        let mut b = good.clone();
        b[5] = 10;
        assert_eq!(decode(&b, None), Err(DecodeError::UnknownType(10)));
        let mut b = good.clone();
        b[6] = 4;
        assert_eq!(decode(&b, None), Err(DecodeError::ReservedBits));
        assert_eq!(
            decode(&good[..good.len() - 1], None),
            Err(DecodeError::Truncated { need: 28, have: 27 })
        );
        let mut long = good.clone();
        long.push(0);
        assert_eq!(
            decode(&long, None),
            Err(DecodeError::LengthMismatch {
                expected: 28,
                actual: 29
            })
        );
        let mut b = good.clone();
        b[12..16].copy_from_slice(&100_000u32.to_be_bytes());
        assert_eq!(decode(&b, None), Err(DecodeError::TooLarge(100_000)));
        // Body shorter than its type needs.
        let mut b = good[..HEADER_LEN + 4].to_vec();
        b[12..16].copy_from_slice(&4u32.to_be_bytes());
        assert!(matches!(decode(&b, None), Err(DecodeError::BadBody(_))));
    }

    #[test]
    fn body_errors_have_reasons() {
        let base = encode(ProxyId(1), &Message::Create(splice(1, 1, 1, 1)), None).unwrap();
        let flags_at = HEADER_LEN + 8 + 4 + 24 + 8;
        let mut b = base.clone();
        b[flags_at] |= 0x80;
        assert_eq!(
            decode(&b, None),
            Err(DecodeError::BadBody("unknown splice flags"))
        );
        let mut b = base.clone();
        b[flags_at + 1] = 1; // ts bytes without the flag
        assert!(matches!(decode(&b, None), Err(DecodeError::BadBody(_))));
        let mut b = base.clone();
        b[HEADER_LEN + SPLICE_LEN - 1] = 15;
        assert_eq!(
            decode(&b, None),
            Err(DecodeError::BadBody("window scale above 14"))
        );
        let fin = encode(
            ProxyId(1),
            &Message::Fin {
                id: SpliceId(1),
                dir: Direction::ClientToServer,
            },
            None,
        )
        .unwrap();
        let mut b = fin.clone();
        *b.last_mut().unwrap() = 2;
        assert_eq!(
            decode(&b, None),
            Err(DecodeError::BadBody("unknown direction"))
        );
        let snap = encode(
            ProxyId(1),
            &Message::Snapshot {
                splices: vec![splice(1, 1, 1, 1)],
                last: false,
            },
            None,
        )
        .unwrap();
        let mut b = snap.clone();
        b[HEADER_LEN + 2] = 2; // count 2, one splice present
        assert!(matches!(decode(&b, None), Err(DecodeError::BadBody(_))));
        let mut b = snap;
        b[HEADER_LEN] = 3;
        assert!(matches!(decode(&b, None), Err(DecodeError::BadBody(_))));
    }

    #[test]
    fn authentication_is_enforced() {
        let m = Message::Delete {
            id: SpliceId(3),
            version: 2,
        };
        let tagged = encode(ProxyId(1), &m, Some(&KEY)).unwrap();
        let plain = encode(ProxyId(1), &m, None).unwrap();
        assert_eq!(decode(&plain, Some(&KEY)), Err(DecodeError::MissingTag));
        assert_eq!(decode(&tagged, None), Err(DecodeError::UnexpectedTag));
        assert_eq!(decode(&tagged, Some(&[1; 32])), Err(DecodeError::BadTag));
        for i in 0..tagged.len() {
            if (6..8).contains(&i) || (12..16).contains(&i) || i < 6 || (10..12).contains(&i) {
                continue; // header fields rejected before the tag check
            }
            let mut b = tagged.clone();
            b[i] ^= 1;
            assert_eq!(decode(&b, Some(&KEY)), Err(DecodeError::BadTag), "byte {i}");
        }
        let mut c = Codec::new(Some(KEY));
        assert!(c.decode(&plain).is_err());
        assert!(c.decode(b"x").is_err());
        assert!(c.decode(&tagged).is_ok());
        assert_eq!(
            c.stats(),
            CodecStats {
                decoded: 1,
                truncated: 1,
                auth_failed: 1,
                ..Default::default()
            }
        );
    }

    #[test]
    fn pre_splice_counts_must_match_the_body() {
        let m = Message::PreSplice {
            add: vec![PreRecord {
                client: SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 7), 4),
                vip: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 80),
                rst_seq: 9,
            }],
            remove: vec![],
        };
        let b = encode(ProxyId(1), &m, None).unwrap();
        assert_eq!(b.len(), HEADER_LEN + 4 + PRE_RECORD_LEN);
        let mut x = b.clone();
        x[HEADER_LEN + 3] = 1; // one removal claimed, none present
        assert_eq!(
            decode(&x, None),
            Err(DecodeError::BadBody("pre-splice counts do not match body"))
        );
        let too_many = Message::PreSplice {
            add: vec![],
            remove: vec![
                PreKey {
                    client: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
                    vip: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
                };
                MAX_PRE_RECORDS + 1
            ],
        };
        assert!(encode(ProxyId(1), &too_many, None).is_err());
    }

    #[test]
    fn oversize_lists_are_refused_at_encode() {
        let ids = vec![SpliceId(0); MAX_IDS_PER_ACTIVITY + 1];
        assert!(encode(ProxyId(1), &Message::Activity { ids }, None).is_err());
        let ids = vec![SpliceId(0); MAX_IDS_PER_ACTIVITY];
        let b = encode(ProxyId(1), &Message::Activity { ids }, Some(&KEY)).unwrap();
        assert!(decode(&b, Some(&KEY)).is_ok());
    }

    fn arb_addr() -> impl Strategy<Value = SocketAddrV4> {
        (any::<u32>(), any::<u16>())
            .prop_map(|(ip, p)| SocketAddrV4::new(Ipv4Addr::from_bits(ip), p))
    }

    fn arb_splice() -> impl Strategy<Value = Splice> {
        (
            (
                any::<u64>(),
                any::<u32>(),
                arb_addr(),
                arb_addr(),
                arb_addr(),
                arb_addr(),
            ),
            (
                any::<u32>(),
                any::<u32>(),
                proptest::option::of((any::<u32>(), any::<u32>())),
            ),
            ([0u8..=14, 0u8..=14, 0u8..=14, 0u8..=14], any::<bool>()),
        )
            .prop_map(
                |((id, version, client, vip, ssa, backend), (sd, ad, ts), (w, sack_ok))| Splice {
                    id: SpliceId(id),
                    version,
                    client,
                    vip,
                    ssa,
                    backend,
                    seq_delta: sd,
                    ack_delta: ad,
                    ts: ts.map(|(c2s, s2c)| TsDeltas { c2s, s2c }),
                    wscale: WindowScales {
                        client: w[0],
                        vip: w[1],
                        ssa: w[2],
                        backend: w[3],
                    },
                    sack_ok,
                },
            )
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        let id = any::<u64>().prop_map(SpliceId);
        prop_oneof![
            arb_splice().prop_map(Message::Create),
            arb_splice().prop_map(Message::Update),
            (id.clone(), any::<u32>()).prop_map(|(id, version)| Message::Delete { id, version }),
            id.clone()
                .prop_map(|from| Message::SnapshotRequest { from }),
            (proptest::collection::vec(arb_splice(), 0..5), any::<bool>())
                .prop_map(|(splices, last)| Message::Snapshot { splices, last }),
            (id.clone(), any::<u32>()).prop_map(|(id, version)| Message::Ack { id, version }),
            (id.clone(), any::<bool>()).prop_map(|(id, d)| Message::Fin {
                id,
                dir: if d {
                    Direction::ServerToClient
                } else {
                    Direction::ClientToServer
                }
            }),
            proptest::collection::vec(id, 0..20).prop_map(|ids| Message::Activity { ids }),
            (
                proptest::collection::vec((arb_addr(), arb_addr(), any::<u32>()), 0..6),
                proptest::collection::vec((arb_addr(), arb_addr()), 0..6),
            )
                .prop_map(|(a, r)| Message::PreSplice {
                    add: a
                        .into_iter()
                        .map(|(client, vip, rst_seq)| PreRecord {
                            client,
                            vip,
                            rst_seq
                        })
                        .collect(),
                    remove: r
                        .into_iter()
                        .map(|(client, vip)| PreKey { client, vip })
                        .collect(),
                }),
        ]
    }

    proptest! {
        #[test]
        fn roundtrip(m in arb_message(), sender: u16, keyed: bool) {
            let key = keyed.then_some(&KEY);
            let b = encode(ProxyId(sender), &m, key).unwrap();
            prop_assert_eq!(decode(&b, key), Ok(Envelope { sender: ProxyId(sender), msg: m }));
        }

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            fuzz_decode(&data);
        }

        #[test]
        fn mutated_messages_never_panic(m in arb_message(), pos: usize, val: u8, cut: usize) {
            let mut b = encode(ProxyId(1), &m, None).unwrap();
            let i = pos % b.len();
            b[i] = val;
            fuzz_decode(&b);
            fuzz_decode(&b[..cut % (b.len() + 1)]);
        }
    }
}

//! The control messages of the `backend-crash` scenarios, carried in UDP
//! datagrams to port [`PORT`]: the backend's session-state pushes to its
//! alternate (paper §4.1 step 3), the logger's "response logged" signals
//! (step 5) and recovery requests (§4.3: T_L, T_S/T_A report, apply
//! through T_R - 1), and liveness probes (the logger's idle heartbeat, the
//! baseline client's heartbeat). `conn` is the logged connection's key.

/// UDP port of every control endpoint.
pub const PORT: u16 = 7_000;
/// UDP port of the aux (mail store) server.
pub const AUX_PORT: u16 = 1_143;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ctl {
    /// Backend -> alternate: the state record after transaction `tx`.
    Push {
        conn: u64,
        tx: u64,
        record: Vec<u8>,
    },
    /// Logger -> alternate: `tx`'s response is completely logged.
    Logged {
        conn: u64,
        tx: u64,
    },
    /// Alternate -> logger: state applied through `t_s`.
    Applied {
        conn: u64,
        t_s: u64,
    },
    /// Logger -> alternate: the backend failed; T_L of `conn`. The
    /// recovery connection will come from the client's address and `port`.
    Takeover {
        conn: u64,
        t_l: u64,
        client: u32,
        port: u16,
    },
    /// Alternate -> logger: (T_S, T_A) of `conn`.
    Report {
        conn: u64,
        t_s: u64,
        t_a: u64,
    },
    /// Logger -> alternate: apply the stored state through `through`.
    ApplyThrough {
        conn: u64,
        through: u64,
    },
    Probe {
        id: u64,
    },
    ProbeReply {
        id: u64,
    },
    /// Logger -> alternate: the original transaction numbers of the
    /// requests on the recovery connection: `replayed`, then `t_sp`,
    /// `t_sp + 1`, ... (for the transaction ids in aux requests).
    Numbering {
        conn: u64,
        t_sp: u64,
        replayed: Vec<u64>,
    },
    /// Backend -> aux server: a request of transaction `tx` (a
    /// `recovery::aux::TxId`).
    AuxRequest {
        tx: u64,
        body: Vec<u8>,
    },
    /// Aux server (or the aux logger) -> backend.
    AuxResponse {
        tx: u64,
        body: Vec<u8>,
    },
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

impl Ctl {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut put = |tag: u8, words: &[u64]| {
            out.push(tag);
            for w in words {
                out.extend_from_slice(&w.to_be_bytes());
            }
        };
        match self {
            Ctl::Push { conn, tx, record } => {
                put(1, &[*conn, *tx]);
                out.extend_from_slice(record);
            }
            Ctl::Logged { conn, tx } => put(2, &[*conn, *tx]),
            Ctl::Applied { conn, t_s } => put(3, &[*conn, *t_s]),
            Ctl::Takeover {
                conn,
                t_l,
                client,
                port,
            } => put(
                4,
                &[*conn, *t_l, u64::from(*client) << 16 | u64::from(*port)],
            ),
            Ctl::Report { conn, t_s, t_a } => put(5, &[*conn, *t_s, *t_a]),
            Ctl::ApplyThrough { conn, through } => put(6, &[*conn, *through]),
            Ctl::Probe { id } => put(7, &[*id]),
            Ctl::ProbeReply { id } => put(8, &[*id]),
            Ctl::Numbering {
                conn,
                t_sp,
                replayed,
            } => {
                let mut w = vec![*conn, *t_sp];
                w.extend_from_slice(replayed);
                put(9, &w);
            }
            Ctl::AuxRequest { tx, body } => {
                put(10, &[*tx]);
                out.extend_from_slice(body);
            }
            Ctl::AuxResponse { tx, body } => {
                put(11, &[*tx]);
                out.extend_from_slice(body);
            }
        }
        out
    }

    /// Decodes a datagram payload; `None` for anything malformed.
    pub fn decode(b: &[u8]) -> Option<Ctl> {
        let w = |i: usize| u64_at(b, 1 + 8 * i);
        let exact = |n: usize| (b.len() == 1 + 8 * n).then_some(());
        Some(match *b.first()? {
            1 => Ctl::Push {
                conn: w(0)?,
                tx: w(1)?,
                record: b.get(17..)?.to_vec(),
            },
            2 => {
                exact(2)?;
                Ctl::Logged {
                    conn: w(0)?,
                    tx: w(1)?,
                }
            }
            3 => {
                exact(2)?;
                Ctl::Applied {
                    conn: w(0)?,
                    t_s: w(1)?,
                }
            }
            4 => {
                exact(3)?;
                let cp = w(2)?;
                Ctl::Takeover {
                    conn: w(0)?,
                    t_l: w(1)?,
                    client: u32::try_from(cp >> 16).ok()?,
                    port: cp as u16,
                }
            }
            5 => {
                exact(3)?;
                Ctl::Report {
                    conn: w(0)?,
                    t_s: w(1)?,
                    t_a: w(2)?,
                }
            }
            6 => {
                exact(2)?;
                Ctl::ApplyThrough {
                    conn: w(0)?,
                    through: w(1)?,
                }
            }
            7 => {
                exact(1)?;
                Ctl::Probe { id: w(0)? }
            }
            8 => {
                exact(1)?;
                Ctl::ProbeReply { id: w(0)? }
            }
            9 => {
                let rest = b.get(17..)?;
                if rest.len() % 8 != 0 {
                    return None;
                }
                Ctl::Numbering {
                    conn: w(0)?,
                    t_sp: w(1)?,
                    replayed: (0..rest.len() / 8)
                        .map(|i| w(2 + i))
                        .collect::<Option<_>>()?,
                }
            }
            10 => Ctl::AuxRequest {
                tx: w(0)?,
                body: b.get(9..)?.to_vec(),
            },
            11 => Ctl::AuxResponse {
                tx: w(0)?,
                body: b.get(9..)?.to_vec(),
            },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_message_round_trips() {
        let all = [
            Ctl::Push {
                conn: 1,
                tx: 2,
                record: b"alice\n1".to_vec(),
            },
            Ctl::Logged { conn: 3, tx: 4 },
            Ctl::Applied { conn: 5, t_s: 6 },
            Ctl::Takeover {
                conn: 7,
                t_l: 8,
                client: 0x0a00_0001,
                port: 10_000,
            },
            Ctl::Report {
                conn: 9,
                t_s: 10,
                t_a: 11,
            },
            Ctl::ApplyThrough {
                conn: 12,
                through: 13,
            },
            Ctl::Probe { id: 14 },
            Ctl::ProbeReply { id: 15 },
            Ctl::Numbering {
                conn: 16,
                t_sp: 17,
                replayed: vec![3, 5],
            },
            Ctl::Numbering {
                conn: 16,
                t_sp: 17,
                replayed: vec![],
            },
            Ctl::AuxRequest {
                tx: 18,
                body: b"APPEND Sent".to_vec(),
            },
            Ctl::AuxResponse {
                tx: 19,
                body: b"OK 2".to_vec(),
            },
        ];
        for m in all {
            assert_eq!(Ctl::decode(&m.encode()), Some(m));
        }
    }

    #[test]
    fn truncated_or_padded_messages_are_rejected() {
        let b = Ctl::Report {
            conn: 1,
            t_s: 2,
            t_a: 3,
        }
        .encode();
        assert_eq!(Ctl::decode(&b[..b.len() - 1]), None);
        assert_eq!(Ctl::decode(&[b.as_slice(), &[0]].concat()), None);
        assert_eq!(Ctl::decode(&[]), None);
        assert_eq!(Ctl::decode(&[99]), None);
    }

    proptest! {
        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Some(m) = Ctl::decode(&b) {
                prop_assert_eq!(Ctl::decode(&m.encode()), Some(m));
            }
        }
    }
}

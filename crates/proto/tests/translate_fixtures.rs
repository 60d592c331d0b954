//! Generates `fixtures/translate.txt` (the table every translator, Rust and
//! BPF, must pass) from an independent reference translator that rewrites
//! fields from the `Splice` docs and recomputes both checksums in full, and
//! checks that the committed file is exactly what the generator produces.
//! Regenerate with `FTSPLICE_BLESS=1 cargo test -p ftsplice-proto --test
//! translate_fixtures`.

use core::net::{Ipv4Addr, SocketAddrV4};

use ftsplice_proto::splice::fixtures::{self, Expected, Fixture};
use ftsplice_proto::splice::{translate, Direction, Splice, SpliceId, TsDeltas, WindowScales};
use ftsplice_proto::splice::{TranslateError, TranslateError as E};
use ftsplice_wire::{checksum, checksums_valid};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/translate.txt");

const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;

fn sa(a: [u8; 4], port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::from(a), port)
}

fn base() -> Splice {
    Splice {
        id: SpliceId(0),
        version: 0,
        client: sa([198, 18, 0, 10], 40000),
        vip: sa([198, 18, 1, 1], 80),
        ssa: sa([198, 18, 2, 1], 51000),
        backend: sa([198, 19, 0, 5], 8080),
        seq_delta: 0x1234_5678,
        ack_delta: 0xfedc_ba98,
        ts: Some(TsDeltas {
            c2s: 0x1000_0001,
            s2c: 0xf000_0002,
        }),
        wscale: WindowScales {
            client: 7,
            vip: 7,
            ssa: 7,
            backend: 7,
        },
        sack_ok: true,
    }
}

fn splices() -> Vec<(&'static str, Splice)> {
    let ws = |client, vip, ssa, backend| WindowScales {
        client,
        vip,
        ssa,
        backend,
    };
    vec![
        ("base", base()),
        (
            "scaled",
            Splice {
                wscale: ws(7, 5, 9, 2),
                ..base()
            },
        ),
        (
            "grow",
            Splice {
                wscale: ws(10, 0, 2, 14),
                ..base()
            },
        ),
        (
            "plain",
            Splice {
                ts: None,
                sack_ok: false,
                wscale: ws(0, 0, 0, 0),
                ..base()
            },
        ),
        (
            "wrap",
            Splice {
                seq_delta: 0x20,
                ack_delta: 0xffff_fff0,
                ts: Some(TsDeltas {
                    c2s: 0xffff_ff00,
                    s2c: 0x100,
                }),
                wscale: ws(0, 0, 0, 0),
                ..base()
            },
        ),
    ]
}

/// A raw packet description; `bytes` lays it out with valid checksums.
#[derive(Clone)]
struct Pkt {
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    flags: u8,
    win: u16,
    /// Raw option bytes, padded with EOL to a multiple of 4.
    opts: Vec<u8>,
    payload: Vec<u8>,
    ip_opts: Vec<u8>,
    /// Bytes after the IPv4 total length (link-layer padding).
    trailer: Vec<u8>,
}

impl Pkt {
    fn new(s: &Splice, dir: Direction) -> Pkt {
        let (src, dst) = s.incoming_tuple(dir);
        Pkt {
            src,
            dst,
            seq: 1000,
            ack: 2000,
            flags: ACK,
            win: 512,
            opts: Vec::new(),
            payload: Vec::new(),
            ip_opts: Vec::new(),
            trailer: Vec::new(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut opts = self.opts.clone();
        while opts.len() % 4 != 0 {
            opts.push(0);
        }
        let ihl = 20 + self.ip_opts.len();
        let thl = 20 + opts.len();
        let total = ihl + thl + self.payload.len();
        let mut p = vec![0u8; total];
        p[0] = 0x40 | (ihl / 4) as u8;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[4..6].copy_from_slice(&0x4242u16.to_be_bytes());
        p[6] = 0x40; // DF
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&self.src.ip().octets());
        p[16..20].copy_from_slice(&self.dst.ip().octets());
        p[20..ihl].copy_from_slice(&self.ip_opts);
        let t = ihl;
        p[t..t + 2].copy_from_slice(&self.src.port().to_be_bytes());
        p[t + 2..t + 4].copy_from_slice(&self.dst.port().to_be_bytes());
        p[t + 4..t + 8].copy_from_slice(&self.seq.to_be_bytes());
        p[t + 8..t + 12].copy_from_slice(&self.ack.to_be_bytes());
        p[t + 12] = ((thl / 4) as u8) << 4;
        p[t + 13] = self.flags;
        p[t + 14..t + 16].copy_from_slice(&self.win.to_be_bytes());
        p[t + 20..t + thl].copy_from_slice(&opts);
        p[t + thl..].copy_from_slice(&self.payload);
        fill_checksums(&mut p);
        p.extend_from_slice(&self.trailer);
        p
    }
}

/// Full RFC 1071 recomputation of both checksums.
fn fill_checksums(p: &mut [u8]) {
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    p[10..12].fill(0);
    let c = checksum::ipv4_header(&p[..ihl]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    p[ihl + 16..ihl + 18].fill(0);
    let c = checksum::tcp(src, dst, &p[ihl..total]);
    p[ihl + 16..ihl + 18].copy_from_slice(&c.to_be_bytes());
}

fn ts(tsval: u32, tsecr: u32) -> Vec<u8> {
    let mut v = vec![1, 1, 8, 10];
    v.extend_from_slice(&tsval.to_be_bytes());
    v.extend_from_slice(&tsecr.to_be_bytes());
    v
}

fn sack(blocks: &[(u32, u32)]) -> Vec<u8> {
    let mut v = vec![1, 1, 5, (2 + 8 * blocks.len()) as u8];
    for (l, r) in blocks {
        v.extend_from_slice(&l.to_be_bytes());
        v.extend_from_slice(&r.to_be_bytes());
    }
    v
}

fn be32(p: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]])
}

fn put32(p: &mut [u8], at: usize, v: u32) {
    p[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// The reference translator: each field rewritten as the `Splice` docs
/// define it, then both checksums recomputed from scratch. Only for inputs
/// that translate successfully.
fn reference(s: &Splice, dir: Direction, input: &[u8]) -> Vec<u8> {
    let c2s = dir == Direction::ClientToServer;
    let mut p = input.to_vec();
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let (src, dst) = if c2s {
        (s.ssa, s.backend)
    } else {
        (s.vip, s.client)
    };
    p[12..16].copy_from_slice(&src.ip().octets());
    p[16..20].copy_from_slice(&dst.ip().octets());
    let t = ihl;
    p[t..t + 2].copy_from_slice(&src.port().to_be_bytes());
    p[t + 2..t + 4].copy_from_slice(&dst.port().to_be_bytes());
    let (seq_add, ack_add) = if c2s {
        (s.seq_delta, s.ack_delta)
    } else {
        (
            0u32.wrapping_sub(s.ack_delta),
            0u32.wrapping_sub(s.seq_delta),
        )
    };
    let seq = be32(&p, t + 4).wrapping_add(seq_add);
    let ack = be32(&p, t + 8).wrapping_add(ack_add);
    put32(&mut p, t + 4, seq);
    put32(&mut p, t + 8, ack);
    let win = u64::from(u16::from_be_bytes([p[t + 14], p[t + 15]]));
    let (shl, shr) = if c2s {
        (s.wscale.client, s.wscale.ssa)
    } else {
        (s.wscale.backend, s.wscale.vip)
    };
    let win = ((win << shl) >> shr).min(65535) as u16;
    p[t + 14..t + 16].copy_from_slice(&win.to_be_bytes());
    let thl = usize::from(p[t + 12] >> 4) * 4;
    let mut i = t + 20;
    while i < t + thl {
        match p[i] {
            0 => break,
            1 => i += 1,
            kind => {
                let len = usize::from(p[i + 1]);
                if kind == 8 {
                    match s.ts {
                        Some(d) => {
                            let (val_add, ecr_sub) =
                                if c2s { (d.c2s, d.s2c) } else { (d.s2c, d.c2s) };
                            let v = be32(&p, i + 2).wrapping_add(val_add);
                            let e = be32(&p, i + 6).wrapping_sub(ecr_sub);
                            put32(&mut p, i + 2, v);
                            put32(&mut p, i + 6, e);
                        }
                        None => p[i..i + len].fill(1),
                    }
                } else if kind == 5 {
                    if s.sack_ok {
                        for at in (i + 2..i + len).step_by(4) {
                            let v = be32(&p, at).wrapping_add(ack_add);
                            put32(&mut p, at, v);
                        }
                    } else {
                        p[i..i + len].fill(1);
                    }
                }
                i += len;
            }
        }
    }
    fill_checksums(&mut p);
    p
}

enum Want {
    Ok,
    Err(TranslateError),
}

fn cases() -> Vec<(&'static str, &'static str, Direction, Vec<u8>, Want)> {
    use Direction::{ClientToServer as C2S, ServerToClient as S2C};
    let sp: std::collections::HashMap<_, _> = splices().into_iter().collect();
    let pk = |name: &str, dir| Pkt::new(&sp[name], dir);
    let ok = Want::Ok;
    let err = Want::Err;
    let mut v = Vec::new();
    let mut add = |name, splice, dir, p: Vec<u8>, want| v.push((name, splice, dir, p, want));

    let mut p = pk("base", C2S);
    p.flags = ACK | PSH;
    p.opts = ts(100, 200);
    p.payload = b"GET / HTTP/1.1\r\n".to_vec();
    add("c2s-data-ts", "base", C2S, p.bytes(), ok);
    let mut p = pk("base", S2C);
    p.flags = ACK | PSH;
    p.opts = ts(300, 400);
    p.payload = b"HTTP/1.1 200 OK\r\n".to_vec();
    add("s2c-data-ts", "base", S2C, p.bytes(), Want::Ok);
    add(
        "c2s-pure-ack",
        "base",
        C2S,
        pk("base", C2S).bytes(),
        Want::Ok,
    );
    let mut p = pk("base", S2C);
    p.opts = ts(5, 6);
    add("s2c-pure-ack-ts", "base", S2C, p.bytes(), Want::Ok);
    let mut p = pk("base", C2S);
    p.opts = [ts(7, 8), sack(&[(3000, 4000)])].concat();
    add("c2s-sack-1", "base", C2S, p.bytes(), Want::Ok);
    let mut p = pk("base", S2C);
    p.opts = [ts(7, 8), sack(&[(3000, 4000), (5000, 6000)])].concat();
    add("s2c-sack-2", "base", S2C, p.bytes(), Want::Ok);
    let mut p = pk("base", C2S);
    p.opts = [ts(7, 8), sack(&[(10, 20), (30, 40), (50, 60)])].concat();
    add("c2s-sack-3", "base", C2S, p.bytes(), Want::Ok);
    let mut p = pk("base", S2C);
    p.opts = sack(&[(10, 20), (30, 40), (50, 60), (70, 80)]);
    add("s2c-sack-4", "base", S2C, p.bytes(), Want::Ok);
    let mut p = pk("base", C2S);
    p.opts = [
        &[1u8, 8, 10][..],
        &0x0102_0304u32.to_be_bytes(),
        &5u32.to_be_bytes(),
        &[1],
    ]
    .concat();
    add("c2s-ts-odd-offset", "base", C2S, p.bytes(), Want::Ok);
    let mut p = pk("plain", C2S);
    p.opts = ts(100, 200);
    p.payload = b"data".to_vec();
    add("c2s-ts-stripped", "plain", C2S, p.bytes(), Want::Ok);
    let mut p = pk("plain", S2C);
    p.opts = ts(100, 200);
    add("s2c-ts-stripped", "plain", S2C, p.bytes(), Want::Ok);
    let mut p = pk("plain", C2S);
    p.opts = [ts(1, 2), sack(&[(10, 20), (30, 40)])].concat();
    add(
        "c2s-sack-and-ts-stripped",
        "plain",
        C2S,
        p.bytes(),
        Want::Ok,
    );
    let mut p = pk("scaled", C2S);
    p.win = 1000;
    add("c2s-wscale-down", "scaled", C2S, p.bytes(), Want::Ok);
    let mut p = pk("scaled", S2C);
    p.win = 1000;
    add("s2c-wscale-down", "scaled", S2C, p.bytes(), Want::Ok);
    let mut p = pk("grow", C2S);
    p.win = 200;
    add("c2s-wscale-up", "grow", C2S, p.bytes(), Want::Ok);
    let mut p = pk("grow", C2S);
    p.win = 1000;
    add("c2s-wscale-saturate", "grow", C2S, p.bytes(), Want::Ok);
    let mut p = pk("grow", S2C);
    p.win = 5;
    add("s2c-wscale-saturate", "grow", S2C, p.bytes(), Want::Ok);
    let mut p = pk("wrap", C2S);
    p.seq = 0xffff_fff0;
    p.ack = 0x10;
    p.payload = vec![0xab; 32];
    add("c2s-seq-wrap", "wrap", C2S, p.bytes(), Want::Ok);
    let mut p = pk("wrap", S2C);
    p.seq = 5;
    p.ack = 0x10;
    add("s2c-seq-ack-wrap", "wrap", S2C, p.bytes(), Want::Ok);
    let mut p = pk("wrap", C2S);
    p.opts = [ts(0x200, 0xffff_ffff), sack(&[(0xffff_fff8, 8)])].concat();
    add("c2s-sack-ts-wrap", "wrap", C2S, p.bytes(), Want::Ok);
    let mut p = pk("wrap", S2C);
    p.opts = [ts(0xffff_ff80, 0x10), sack(&[(0x10, 0x30)])].concat();
    add("s2c-sack-ts-wrap", "wrap", S2C, p.bytes(), Want::Ok);
    // Timestamps alone (NOP, NOP, TS: the BPF fast path) wrapping.
    let mut p = pk("wrap", C2S);
    p.opts = ts(0x200, 0xffff_ffff);
    add("c2s-ts-only-wrap", "wrap", C2S, p.bytes(), Want::Ok);
    let mut p = pk("wrap", S2C);
    p.opts = ts(0xffff_ff80, 0x10);
    p.payload = b"z".to_vec();
    add("s2c-ts-only-wrap", "wrap", S2C, p.bytes(), Want::Ok);
    let mut p = pk("base", C2S);
    p.flags = FIN | ACK;
    p.payload = b"bye".to_vec();
    add("c2s-fin", "base", C2S, p.bytes(), Want::Ok);
    let mut p = pk("base", S2C);
    p.flags = RST | ACK;
    add("s2c-rst", "base", S2C, p.bytes(), Want::Ok);
    let mut p = pk("base", C2S);
    p.flags = RST;
    p.ack = 0;
    add("c2s-rst-no-ack", "base", C2S, p.bytes(), Want::Ok);
    let mut p = pk("base", C2S);
    p.ip_opts = vec![1, 1, 1, 0];
    p.opts = ts(1, 2);
    add("c2s-ip-options", "base", C2S, p.bytes(), Want::Ok);
    let mut p = pk("base", S2C);
    p.opts = ts(1, 2);
    p.trailer = vec![0; 6];
    add("s2c-link-padding", "base", S2C, p.bytes(), Want::Ok);
    let mut p = pk("base", C2S);
    p.opts = [&[2u8, 4, 5, 180, 30, 4, 0xaa, 0xbb][..], &ts(9, 10)].concat();
    add(
        "c2s-mss-and-unknown-option",
        "base",
        C2S,
        p.bytes(),
        Want::Ok,
    );

    let mut p = pk("base", C2S);
    p.flags = SYN;
    add("c2s-syn", "base", C2S, p.bytes(), err(E::Syn));
    let mut p = pk("base", S2C);
    p.flags = SYN | ACK;
    add("s2c-syn-ack", "base", S2C, p.bytes(), err(E::Syn));
    let mut p = pk("base", C2S);
    p.opts = vec![1, 1, 8, 10, 0, 0, 0, 1];
    add(
        "c2s-ts-truncated",
        "base",
        C2S,
        p.bytes(),
        err(E::BadOption),
    );
    let mut p = pk("base", C2S);
    p.opts = vec![2, 3, 5, 1];
    add(
        "c2s-mss-bad-length",
        "base",
        C2S,
        p.bytes(),
        err(E::BadOption),
    );
    let mut p = pk("base", C2S);
    p.opts = vec![30, 0, 0, 0];
    add(
        "c2s-option-length-zero",
        "base",
        C2S,
        p.bytes(),
        err(E::BadOption),
    );
    let mut p = pk("base", S2C);
    p.opts = vec![1, 1, 5, 12, 0, 0, 0, 1, 0, 0, 0, 2];
    add(
        "s2c-sack-bad-length",
        "base",
        S2C,
        p.bytes(),
        err(E::BadOption),
    );
    let mut p = pk("base", C2S);
    p.opts = [ts(1, 2), ts(3, 4)].concat();
    add("c2s-ts-twice", "base", C2S, p.bytes(), err(E::BadOption));
    let mut b = pk("base", C2S).bytes();
    b[9] = 17;
    fill_ip_checksum(&mut b);
    add("c2s-not-tcp", "base", C2S, b, err(E::NotTcp));
    let mut b = pk("base", C2S).bytes();
    b[6] |= 0x20;
    fill_ip_checksum(&mut b);
    add("c2s-fragment", "base", C2S, b, err(E::Fragment));
    add(
        "c2s-wrong-tuple",
        "base",
        C2S,
        pk("base", S2C).bytes(),
        err(E::TupleMismatch),
    );
    let mut p = pk("base", S2C);
    p.src = sa([198, 19, 0, 5], 8081);
    add(
        "s2c-wrong-port",
        "base",
        S2C,
        p.bytes(),
        err(E::TupleMismatch),
    );
    let b = pk("base", C2S).bytes();
    add(
        "c2s-truncated-ip",
        "base",
        C2S,
        b[..16].to_vec(),
        err(E::Truncated),
    );
    let mut b = pk("base", C2S).bytes();
    b[2..4].copy_from_slice(&41u16.to_be_bytes());
    add(
        "c2s-total-length-past-buffer",
        "base",
        C2S,
        b,
        err(E::BadIpHeader),
    );
    let mut b = pk("base", C2S).bytes();
    b[0] = 0x60 | (b[0] & 0x0f);
    add("c2s-not-ipv4", "base", C2S, b, err(E::NotIpv4));
    let mut b = pk("base", C2S).bytes();
    b[32] = 0xf0;
    add(
        "c2s-data-offset-past-segment",
        "base",
        C2S,
        b,
        err(E::BadTcpHeader),
    );
    let mut b = pk("base", C2S).bytes();
    b.truncate(32);
    b[2..4].copy_from_slice(&32u16.to_be_bytes());
    fill_ip_checksum(&mut b);
    add("c2s-truncated-tcp", "base", C2S, b, err(E::Truncated));
    v
}

fn fill_ip_checksum(p: &mut [u8]) {
    p[10..12].fill(0);
    let c = checksum::ipv4_header(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
}

fn generate() -> String {
    let sp: std::collections::HashMap<_, _> = splices().into_iter().collect();
    let mut out = String::from(
        "# ftsplice translate fixtures (generated by crates/proto/tests/translate_fixtures.rs;\n\
         # do not edit: change the generator and run it with FTSPLICE_BLESS=1).\n\
         # Format and verdict order: see crates/proto/src/splice/fixtures.rs and translate.rs.\n\
         # Expected outputs come from a reference translator with full checksum recomputation.\n",
    );
    for (name, s) in splices() {
        out.push_str(&fixtures::splice_line(name, &s));
        out.push('\n');
    }
    for (name, splice, dir, input, want) in cases() {
        let s = &sp[splice];
        let expected = match want {
            Want::Ok => Expected::Packet(reference(s, dir, &input)),
            Want::Err(e) => Expected::Error(e),
        };
        let f = Fixture {
            name: name.into(),
            splice_name: splice.into(),
            splice: s.clone(),
            dir,
            input,
            expected,
        };
        out.push_str(&f.line());
        out.push('\n');
    }
    out
}

#[test]
fn table_file_matches_generator() {
    let want = generate();
    let have = std::fs::read_to_string(FILE).unwrap_or_default();
    if have != want && std::env::var_os("FTSPLICE_BLESS").is_some() {
        std::fs::write(FILE, &want).unwrap();
        return;
    }
    assert!(have == want, "{FILE} is stale: rerun with FTSPLICE_BLESS=1");
    assert!(
        fixtures::TABLE == want,
        "embedded table differs from the file"
    );
}

#[test]
fn inputs_are_well_formed_where_expected() {
    for (name, _, _, input, want) in cases() {
        if let Want::Ok = want {
            assert!(checksums_valid(&input), "{name}: input checksums");
            let (_, tcp) = ftsplice_wire::parse_ipv4_tcp(&input).unwrap();
            assert!(!tcp.flags.contains(ftsplice_wire::TcpFlags::SYN), "{name}");
        }
    }
}

#[test]
fn every_fixture_passes_translate() {
    let table = fixtures::table().unwrap();
    assert!(table.len() >= 30);
    for f in table {
        let mut p = f.input.clone();
        let got = translate(&f.splice, f.dir, &mut p);
        match &f.expected {
            Expected::Packet(out) => {
                assert!(got.is_ok(), "{}: {got:?}", f.name);
                assert_eq!(&p, out, "{}", f.name);
                assert!(checksums_valid(out), "{}: expected checksums", f.name);
            }
            Expected::Error(e) => {
                assert_eq!(got, Err(*e), "{}", f.name);
                assert_eq!(p, f.input, "{}: changed on error", f.name);
            }
        }
    }
}

fn expected(name: &str) -> Vec<u8> {
    let t = fixtures::table().unwrap();
    let f = t.iter().find(|f| f.name == name).unwrap();
    match &f.expected {
        Expected::Packet(p) => p.clone(),
        Expected::Error(e) => panic!("{name} expects {e:?}"),
    }
}

/// A few fields checked against numbers worked out by hand.
#[test]
fn hand_checked_fields() {
    // seq 1000 + 0x12345678 = 0x12345a60; ack 2000 + 0xfedcba98 = 0xfedcc268;
    // TSval 100 + 0x10000001 = 0x10000065; TSecr 200 - 0xf0000002 =
    // 200 + 0x0ffffffe = 0x100000c6.
    let p = expected("c2s-data-ts");
    assert_eq!(&p[12..20], &[198, 18, 2, 1, 198, 19, 0, 5]);
    assert_eq!(&p[20..24], &[0xc7, 0x38, 0x1f, 0x90]); // 51000 -> 8080
    assert_eq!(
        &p[24..32],
        &[0x12, 0x34, 0x5a, 0x60, 0xfe, 0xdc, 0xc2, 0x68]
    );
    assert_eq!(&p[44..52], &[0x10, 0, 0, 0x65, 0x10, 0, 0, 0xc6]);
    // s2c: seq 1000 - 0xfedcba98 = 0x01234950; ack 2000 - 0x12345678 = 0xedcbb158.
    let p = expected("s2c-data-ts");
    assert_eq!(&p[12..20], &[198, 18, 1, 1, 198, 18, 0, 10]);
    assert_eq!(
        &p[24..32],
        &[0x01, 0x23, 0x49, 0x50, 0xed, 0xcb, 0xb1, 0x58]
    );
    // Wraparound: 0xfffffff0 + 0x20 = 0x10, 0x10 + 0xfffffff0 = 0.
    let p = expected("c2s-seq-wrap");
    assert_eq!(&p[24..32], &[0, 0, 0, 0x10, 0, 0, 0, 0]);
    // SACK edges 0xfffffff8 and 8 plus 0xfffffff0: 0xffffffe8 and 0xfffffff8.
    let p = expected("c2s-sack-ts-wrap");
    assert_eq!(
        &p[56..64],
        &[0xff, 0xff, 0xff, 0xe8, 0xff, 0xff, 0xff, 0xf8]
    );
    // Windows: 1000 << 7 >> 9 = 250; 1000 << 10 >> 2 saturates; 200 << 8 = 51200.
    assert_eq!(&expected("c2s-wscale-down")[34..36], &250u16.to_be_bytes());
    assert_eq!(&expected("c2s-wscale-saturate")[34..36], &[0xff, 0xff]);
    assert_eq!(&expected("c2s-wscale-up")[34..36], &51200u16.to_be_bytes());
    // Timestamps stripped to NOPs, length unchanged.
    let p = expected("c2s-ts-stripped");
    assert_eq!(&p[40..52], &[1; 12]);
    assert_eq!(&p[52..], b"data");
    // Link padding after the datagram is left alone.
    assert_eq!(&expected("s2c-link-padding")[52..], &[0; 6]);
}

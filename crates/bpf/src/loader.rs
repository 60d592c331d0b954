//! Loading the embedded objects with aya, attaching them, writing their maps
//! and reading their counters, and running them through BPF_PROG_TEST_RUN.
//!
//! Attaching uses the calling thread's network namespace (run it inside
//! `NetNs::run` for test namespaces). Programs stay attached while the plane
//! lives (TCX links are released on drop).

use crate::bpf_abi::{
    Counter, LbCfg, LbSlot, ProxyCfg, SpliceKey, SpliceSeen, SpliceVal, TsSeenVal, LB_PORTS,
    LB_SLOTS, PEER_DEVS,
};
use crate::objects::{AGENT_OBJ, LB_OBJ, PROXY_OBJ};
use crate::splice_map;
use crate::{Error, Result};
use aya::maps::{Array, HashMap, MapData, PerCpuArray};
use aya::programs::{SchedClassifier, TcAttachType, Xdp, XdpMode};
use aya::{Ebpf, TestRunOptions};
use core::net::{Ipv4Addr, SocketAddrV4};
use core::ops::RangeInclusive;
use ftsplice_proto::splice::{Splice, SpliceId};

/// Deleting a missing key is fine.
fn removed(r: Result<(), aya::maps::MapError>, name: &'static str) -> Result<()> {
    match r {
        Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
        Err(aya::maps::MapError::SyscallError(e))
            if e.io_error.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok(())
        }
        Err(source) => Err(Error::Map { name, source }),
    }
}

/// A missing key reads as `None`.
fn found<T>(r: Result<T, aya::maps::MapError>, name: &'static str) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(aya::maps::MapError::KeyNotFound) => Ok(None),
        Err(aya::maps::MapError::SyscallError(e))
            if e.io_error.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok(None)
        }
        Err(source) => Err(Error::Map { name, source }),
    }
}

/// `struct __sk_buff` (linux/bpf.h): its size and the offsets of the two
/// GSO fields BPF_PROG_TEST_RUN accepts in a context.
const SK_BUFF_LEN: usize = 192;
const SK_BUFF_GSO_SEGS: usize = 164;
/// `__sk_buff.mark` (after `len` and `pkt_type`).
const SK_BUFF_MARK: usize = 8;
const SK_BUFF_GSO_SIZE: usize = 176;

/// Which splice program an object carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpliceRole {
    /// TC ingress on a proxy (`proxy_ingress`, plus the `splice_test` entry).
    Proxy,
    /// TC egress on a backend (`agent_egress`).
    Agent,
}

impl SpliceRole {
    fn programs(self) -> &'static [&'static str] {
        match self {
            SpliceRole::Proxy => &["proxy_ingress", "splice_test"],
            SpliceRole::Agent => &["agent_egress"],
        }
    }
}

/// Per-reason packet counts, summed over CPUs, indexed by [`Counter`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters(pub Vec<u64>);

impl Counters {
    pub fn get(&self, c: Counter) -> u64 {
        self.0.get(c as usize).copied().unwrap_or(0)
    }

    /// `self - earlier`, per counter.
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters(
            self.0
                .iter()
                .enumerate()
                .map(|(i, n)| n - earlier.0.get(i).copied().unwrap_or(0))
                .collect(),
        )
    }
}

/// Result of one BPF_PROG_TEST_RUN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestRun {
    pub retval: u32,
    pub packet: Vec<u8>,
}

fn read_counters(ebpf: &Ebpf) -> Result<Counters> {
    let map = ebpf.map("counters").ok_or(Error::Missing("map counters"))?;
    let arr = PerCpuArray::<&MapData, u64>::try_from(map).map_err(|source| Error::Map {
        name: "counters",
        source,
    })?;
    let mut out = Vec::with_capacity(Counter::COUNT as usize);
    for i in 0..Counter::COUNT {
        let per_cpu = arr.get(&i, 0).map_err(|source| Error::Map {
            name: "counters",
            source,
        })?;
        out.push(per_cpu.iter().sum());
    }
    Ok(Counters(out))
}

/// A loaded proxy or agent object.
pub struct SplicePlane {
    ebpf: Ebpf,
    role: SpliceRole,
    /// What `proxy_cfg` holds (its fields are set by separate calls).
    cfg: ProxyCfg,
    /// What `client_owner` holds (proxy object).
    clients_written: Vec<u32>,
}

impl SplicePlane {
    /// Loads the object for `role` and all its programs (verifier runs here).
    pub fn load(role: SpliceRole) -> Result<SplicePlane> {
        let obj = match role {
            SpliceRole::Proxy => PROXY_OBJ,
            SpliceRole::Agent => AGENT_OBJ,
        };
        let mut ebpf = Ebpf::load(obj)?;
        for &name in role.programs() {
            let prog: &mut SchedClassifier = ebpf
                .program_mut(name)
                .ok_or(Error::Missing(name))?
                .try_into()
                .map_err(|source| Error::Program { name, source })?;
            prog.load()
                .map_err(|source| Error::Program { name, source })?;
        }
        Ok(SplicePlane {
            ebpf,
            role,
            cfg: ProxyCfg::default(),
            clients_written: vec![0; LB_SLOTS],
        })
    }

    pub fn role(&self) -> SpliceRole {
        self.role
    }

    fn classifier(&self, name: &'static str) -> Result<&SchedClassifier> {
        self.ebpf
            .program(name)
            .ok_or(Error::Missing(name))?
            .try_into()
            .map_err(|source| Error::Program { name, source })
    }

    /// Attaches the role's program to `iface` (ingress for the proxy,
    /// egress for the agent) in the calling thread's namespace.
    pub fn attach(&mut self, iface: &str) -> Result<()> {
        let (name, at) = match self.role {
            SpliceRole::Proxy => ("proxy_ingress", TcAttachType::Ingress),
            SpliceRole::Agent => ("agent_egress", TcAttachType::Egress),
        };
        let prog: &mut SchedClassifier = self
            .ebpf
            .program_mut(name)
            .ok_or(Error::Missing(name))?
            .try_into()
            .map_err(|source| Error::Program { name, source })?;
        prog.attach(iface, at)
            .map_err(|source| Error::Program { name, source })?;
        Ok(())
    }

    fn splices(&mut self) -> Result<HashMap<&mut MapData, SpliceKey, SpliceVal>> {
        let map = self
            .ebpf
            .map_mut("splices")
            .ok_or(Error::Missing("map splices"))?;
        HashMap::try_from(map).map_err(|source| Error::Map {
            name: "splices",
            source,
        })
    }

    /// Writes one raw entry.
    pub fn insert(&mut self, key: SpliceKey, val: SpliceVal) -> Result<()> {
        self.splices()?
            .insert(key, val, 0)
            .map_err(|source| Error::Map {
                name: "splices",
                source,
            })
    }

    /// Installs both directions of `s`.
    pub fn install(&mut self, s: &Splice) -> Result<()> {
        for (k, v) in splice_map::entries(s) {
            self.insert(k, v)?;
        }
        Ok(())
    }

    /// Installs `s` on hold: its packets are dropped until [`Self::install`].
    pub fn hold(&mut self, s: &Splice) -> Result<()> {
        for (k, v) in splice_map::hold_entries(s) {
            self.insert(k, v)?;
        }
        Ok(())
    }

    /// Removes both directions of `s` and what was seen of it (missing
    /// entries are fine).
    pub fn remove(&mut self, s: &Splice) -> Result<()> {
        let mut map = self.splices()?;
        for (k, _) in splice_map::entries(s) {
            removed(map.remove(&k), "splices")?;
        }
        self.forget_seen(s.id)
    }

    /// Sets the shared splice address and which proxy owns which SSA ports
    /// (proxy object only): packets to `ssa:port` matching no splice are
    /// forwarded to the owner of `port`. Ports not listed (this proxy's)
    /// go to the local stack.
    pub fn set_ssa_owners(
        &mut self,
        ssa: Ipv4Addr,
        owners: &[(RangeInclusive<u16>, Ipv4Addr)],
    ) -> Result<()> {
        {
            let mut arr = array_mut::<u32>(&mut self.ebpf, "ssa_owner", "map ssa_owner")?;
            for (range, owner) in owners {
                let v = u32::from_ne_bytes(owner.octets());
                for port in range.clone() {
                    arr.set(u32::from(port), v, 0)
                        .map_err(|source| Error::Map {
                            name: "ssa_owner",
                            source,
                        })?;
                }
            }
        }
        self.cfg.ssa = ssa.octets();
        self.write_cfg()
    }

    /// Sets the service address and the client-side owner table (proxy
    /// object only): a TCP packet to `vip` that matches no splice and no
    /// local socket goes to `owners[slot]`, the owner of its flow-hash slot
    /// (see [`crate::lb::owner_addrs`]; 0.0.0.0: this proxy). An empty
    /// `owners` keeps every connection here. Only changed slots are
    /// written, before the address is published.
    pub fn set_client_owners(&mut self, vip: Ipv4Addr, owners: &[Ipv4Addr]) -> Result<()> {
        if !owners.is_empty() && owners.len() != LB_SLOTS {
            return Err(Error::Invalid(format!(
                "{} client owners, want 0 or {LB_SLOTS}",
                owners.len()
            )));
        }
        let new: Vec<u32> = if owners.is_empty() {
            vec![0; LB_SLOTS]
        } else {
            owners
                .iter()
                .map(|a| u32::from_ne_bytes(a.octets()))
                .collect()
        };
        write_changed(
            &mut self.ebpf,
            "client_owner",
            "map client_owner",
            &mut self.clients_written,
            &new,
        )?;
        self.cfg.vip = vip.octets();
        self.write_cfg()
    }

    /// Devices (ifindex) that are veths whose peer is in another namespace
    /// (`ftsplice_linux::link::veth_peer_elsewhere`), proxy object only:
    /// packets redirected out of one go to the peer's ingress
    /// (`bpf_redirect_peer`). Never list any other device: the kernel drops
    /// packets redirected that way to it. At most [`PEER_DEVS`].
    pub fn set_peer_devices(&mut self, devs: &[u32]) -> Result<()> {
        if devs.len() > PEER_DEVS {
            return Err(Error::Invalid(format!(
                "{} peer devices > {PEER_DEVS}",
                devs.len()
            )));
        }
        let mut all = [0u32; PEER_DEVS];
        all[..devs.len()].copy_from_slice(devs);
        self.cfg.peer_dev = all;
        self.write_cfg()
    }

    fn write_cfg(&mut self) -> Result<()> {
        set_first(&mut self.ebpf, "proxy_cfg", "map proxy_cfg", self.cfg)
    }

    /// The latest TSval `ts_seen` holds for packets `src -> dst` (proxy
    /// object only; `None` when never seen or evicted).
    pub fn ts_seen(&self, src: SocketAddrV4, dst: SocketAddrV4) -> Result<Option<TsSeenVal>> {
        let map = self
            .ebpf
            .map("ts_seen")
            .ok_or(Error::Missing("map ts_seen"))?;
        let m = HashMap::<&MapData, SpliceKey, TsSeenVal>::try_from(map).map_err(|source| {
            Error::Map {
                name: "ts_seen",
                source,
            }
        })?;
        found(m.get(&splice_map::key(src, dst), 0), "ts_seen")
    }

    /// Drops the `ts_seen` entry of `src -> dst`.
    pub fn forget_ts(&mut self, src: SocketAddrV4, dst: SocketAddrV4) -> Result<()> {
        let map = self
            .ebpf
            .map_mut("ts_seen")
            .ok_or(Error::Missing("map ts_seen"))?;
        let mut m =
            HashMap::<&mut MapData, SpliceKey, TsSeenVal>::try_from(map).map_err(|source| {
                Error::Map {
                    name: "ts_seen",
                    source,
                }
            })?;
        removed(m.remove(&splice_map::key(src, dst)), "ts_seen")
    }

    /// What the program translated of splice `id` (`None`: nothing yet).
    pub fn seen(&self, id: SpliceId) -> Result<Option<SpliceSeen>> {
        let map = self
            .ebpf
            .map("splice_seen")
            .ok_or(Error::Missing("map splice_seen"))?;
        let m =
            HashMap::<&MapData, u64, SpliceSeen>::try_from(map).map_err(|source| Error::Map {
                name: "splice_seen",
                source,
            })?;
        found(m.get(&id.0, 0), "splice_seen")
    }

    /// Drops the `splice_seen` entry of `id`.
    pub fn forget_seen(&mut self, id: SpliceId) -> Result<()> {
        let map = self
            .ebpf
            .map_mut("splice_seen")
            .ok_or(Error::Missing("map splice_seen"))?;
        let mut m = HashMap::<&mut MapData, u64, SpliceSeen>::try_from(map).map_err(|source| {
            Error::Map {
                name: "splice_seen",
                source,
            }
        })?;
        removed(m.remove(&id.0), "splice_seen")
    }

    pub fn counters(&self) -> Result<Counters> {
        read_counters(&self.ebpf)
    }

    /// Runs program `name` once on `packet` (an Ethernet frame) through
    /// BPF_PROG_TEST_RUN and returns its verdict and output bytes.
    pub fn test_run(&self, name: &'static str, packet: &[u8]) -> Result<TestRun> {
        self.test_run_ctx(name, packet, None)
    }

    /// [`Self::test_run`], also returning the skb's mark after the run
    /// (read back from the context, `__sk_buff.mark`).
    pub fn test_run_mark(&self, name: &'static str, packet: &[u8]) -> Result<(TestRun, u32)> {
        let mut ctx = [0u8; SK_BUFF_LEN];
        let (run, _) = run_test(
            self.classifier(name)?,
            name,
            packet,
            None,
            Some(&mut ctx),
            1,
        )?;
        let mark = u32::from_ne_bytes([
            ctx[SK_BUFF_MARK],
            ctx[SK_BUFF_MARK + 1],
            ctx[SK_BUFF_MARK + 2],
            ctx[SK_BUFF_MARK + 3],
        ]);
        Ok((run, mark))
    }

    /// [`Self::test_run`] with the skb marked as a GSO packet of `segs`
    /// segments of `size` bytes (`__sk_buff.gso_segs`/`gso_size`, which
    /// BPF_PROG_TEST_RUN takes from the context it is given).
    pub fn test_run_gso(
        &self,
        name: &'static str,
        packet: &[u8],
        segs: u32,
        size: u32,
    ) -> Result<TestRun> {
        let mut ctx = [0u8; SK_BUFF_LEN];
        ctx[SK_BUFF_GSO_SEGS..SK_BUFF_GSO_SEGS + 4].copy_from_slice(&segs.to_ne_bytes());
        ctx[SK_BUFF_GSO_SIZE..SK_BUFF_GSO_SIZE + 4].copy_from_slice(&size.to_ne_bytes());
        self.test_run_ctx(name, packet, Some(&ctx))
    }

    fn test_run_ctx(
        &self,
        name: &'static str,
        packet: &[u8],
        ctx: Option<&[u8]>,
    ) -> Result<TestRun> {
        self.test_run_repeat(name, packet, ctx, 1).map(|(r, _)| r)
    }

    /// Runs program `name` `repeat` times on one skb holding `packet`
    /// (each run sees what the previous one wrote) and returns the last
    /// run's verdict and bytes with the kernel's mean time per run. The
    /// cost figure `benches/program_cost.rs` reports; it excludes the
    /// syscall, and what the verdict sets in motion (a redirect's
    /// transmission) is not run.
    pub fn test_run_repeat(
        &self,
        name: &'static str,
        packet: &[u8],
        ctx: Option<&[u8]>,
        repeat: u32,
    ) -> Result<(TestRun, core::time::Duration)> {
        run_test(self.classifier(name)?, name, packet, ctx, None, repeat)
    }
}

/// BPF_PROG_TEST_RUN of `prog` (`name` in errors) on `packet`, `repeat`
/// times on one buffer, with a context given in (`ctx_in`) and read back
/// (`ctx_out`): the last run's verdict and output bytes, and the kernel's
/// mean time per run.
fn run_test<P>(
    prog: &P,
    name: &'static str,
    packet: &[u8],
    ctx_in: Option<&[u8]>,
    ctx_out: Option<&mut [u8]>,
    repeat: u32,
) -> Result<(TestRun, core::time::Duration)>
where
    P: for<'a> aya::TestRun<Opts<'a> = TestRunOptions<'a>, Result = aya::TestRunResult>,
{
    let mut out = vec![0u8; packet.len() + 256];
    let opts = TestRunOptions {
        data_in: Some(packet),
        data_out: Some(&mut out),
        ctx_in,
        ctx_out,
        repeat: repeat.max(1),
        ..TestRunOptions::default()
    };
    let r = prog
        .test_run(opts)
        .map_err(|source| Error::Program { name, source })?;
    out.truncate(r.data_size_out as usize);
    Ok((
        TestRun {
            retval: r.return_value,
            packet: out,
        },
        r.duration,
    ))
}

/// Opens the array map `name` for writing (`missing` names it in the error
/// when the object has no such map).
fn array_mut<'a, T: aya::Pod>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
    missing: &'static str,
) -> Result<Array<&'a mut MapData, T>> {
    let map = ebpf.map_mut(name).ok_or(Error::Missing(missing))?;
    Array::try_from(map).map_err(|source| Error::Map { name, source })
}

/// Writes `value` at index 0 of the one-entry config array map `name`.
fn set_first<T: aya::Pod>(
    ebpf: &mut Ebpf,
    name: &'static str,
    missing: &'static str,
    value: T,
) -> Result<()> {
    array_mut::<T>(ebpf, name, missing)?
        .set(0, value, 0)
        .map_err(|source| Error::Map { name, source })
}

/// Writes the entries of `new` that differ from `shadow` (what the array
/// map `name` holds from index 0) and records them there.
fn write_changed<T: aya::Pod + PartialEq>(
    ebpf: &mut Ebpf,
    name: &'static str,
    missing: &'static str,
    shadow: &mut [T],
    new: &[T],
) -> Result<()> {
    let mut arr = array_mut::<T>(ebpf, name, missing)?;
    for (i, (old, s)) in shadow.iter_mut().zip(new).enumerate() {
        if *old == *s {
            continue;
        }
        arr.set(i as u32, *s, 0)
            .map_err(|source| Error::Map { name, source })?;
        *old = *s;
    }
    Ok(())
}

/// A loaded lb object.
pub struct LbPlane {
    ebpf: Ebpf,
    /// What the `lb_slots` map holds, so updates write only changed slots.
    written: Vec<LbSlot>,
    /// What `lb_port_owner` holds.
    ports_written: Vec<LbSlot>,
}

impl LbPlane {
    pub fn load() -> Result<LbPlane> {
        let mut ebpf = Ebpf::load(LB_OBJ)?;
        let prog: &mut Xdp = ebpf
            .program_mut("lb")
            .ok_or(Error::Missing("lb"))?
            .try_into()
            .map_err(|source| Error::Program { name: "lb", source })?;
        prog.load()
            .map_err(|source| Error::Program { name: "lb", source })?;
        let tc: &mut SchedClassifier = ebpf
            .program_mut("lb_tc")
            .ok_or(Error::Missing("lb_tc"))?
            .try_into()
            .map_err(|source| Error::Program {
                name: "lb_tc",
                source,
            })?;
        tc.load().map_err(|source| Error::Program {
            name: "lb_tc",
            source,
        })?;
        Ok(LbPlane {
            ebpf,
            written: vec![LbSlot::default(); LB_SLOTS],
            ports_written: vec![LbSlot::default(); LB_PORTS],
        })
    }

    /// Attaches `lb` to `iface` (driver mode where supported, else generic).
    pub fn attach(&mut self, iface: &str) -> Result<()> {
        self.attach_mode(iface, None)
    }

    /// Attaches `lb` to `iface`: `Some(true)` driver (native) mode only,
    /// `Some(false)` generic (skb) mode only, `None` the kernel's choice
    /// else generic. The program is detached when the plane is dropped.
    pub fn attach_mode(&mut self, iface: &str, native: Option<bool>) -> Result<()> {
        let prog: &mut Xdp = self
            .ebpf
            .program_mut("lb")
            .ok_or(Error::Missing("lb"))?
            .try_into()
            .map_err(|source| Error::Program { name: "lb", source })?;
        let r = match native {
            Some(true) => prog.attach(iface, XdpMode::Driver),
            Some(false) => prog.attach(iface, XdpMode::Skb),
            None => prog
                .attach(iface, XdpMode::Default)
                .or_else(|_| prog.attach(iface, XdpMode::Skb)),
        };
        r.map(drop)
            .map_err(|source| Error::Program { name: "lb", source })
    }

    /// Attaches `lb_tc`, the same balancer, to TC ingress of `iface`
    /// instead of XDP: on a veth with segmentation offloads on, generic XDP
    /// copies every GSO packet into one linear buffer before the program
    /// runs, TC hands it over as it is. Detached when the plane is dropped.
    pub fn attach_tc(&mut self, iface: &str) -> Result<()> {
        let prog: &mut SchedClassifier = self
            .ebpf
            .program_mut("lb_tc")
            .ok_or(Error::Missing("lb_tc"))?
            .try_into()
            .map_err(|source| Error::Program {
                name: "lb_tc",
                source,
            })?;
        prog.attach(iface, TcAttachType::Ingress)
            .map(drop)
            .map_err(|source| Error::Program {
                name: "lb_tc",
                source,
            })
    }

    /// Sets the service address, mode and burst length, and the slot table
    /// (see [`crate::lb::slot_table`]); an empty table stops balancing.
    /// Only slots that differ from what the map holds are written, before
    /// the new slot count is published.
    pub fn configure(&mut self, mut cfg: LbCfg, slots: &[LbSlot]) -> Result<()> {
        if slots.len() > LB_SLOTS {
            return Err(Error::Invalid(format!(
                "{} slots > {LB_SLOTS}",
                slots.len()
            )));
        }
        write_changed(
            &mut self.ebpf,
            "lb_slots",
            "map lb_slots",
            &mut self.written,
            slots,
        )?;
        cfg.nslots = slots.len() as u32;
        set_first(&mut self.ebpf, "lb_config", "map lb_config", cfg)
    }

    /// Sets the SSA gateway's port owners (`LB_MODE_PORT`): `owners[p]` is
    /// the slot of the live owner of destination port `p`, or the default
    /// (zero) slot for none. Only changed entries are written.
    pub fn set_port_owners(&mut self, owners: &[LbSlot]) -> Result<()> {
        if owners.len() != LB_PORTS {
            return Err(Error::Invalid(format!(
                "{} port owners, want {LB_PORTS}",
                owners.len()
            )));
        }
        write_changed(
            &mut self.ebpf,
            "lb_port_owner",
            "map lb_port_owner",
            &mut self.ports_written,
            owners,
        )
    }

    pub fn counters(&self) -> Result<Counters> {
        read_counters(&self.ebpf)
    }

    /// Runs `lb_tc` once on `packet` through BPF_PROG_TEST_RUN (its
    /// verdict is a TC action).
    pub fn test_run_tc(&self, packet: &[u8]) -> Result<TestRun> {
        self.test_run_tc_repeat(packet, 1).map(|(r, _)| r)
    }

    /// `lb_tc` `repeat` times on one skb: the last run's result and the
    /// kernel's mean time per run (see [`SplicePlane::test_run_repeat`]).
    pub fn test_run_tc_repeat(
        &self,
        packet: &[u8],
        repeat: u32,
    ) -> Result<(TestRun, core::time::Duration)> {
        let name = "lb_tc";
        let prog: &SchedClassifier = self
            .ebpf
            .program(name)
            .ok_or(Error::Missing(name))?
            .try_into()
            .map_err(|source| Error::Program { name, source })?;
        run_test(prog, name, packet, None, None, repeat)
    }

    /// Runs `lb` once on `packet` through BPF_PROG_TEST_RUN.
    pub fn test_run(&self, packet: &[u8]) -> Result<TestRun> {
        let prog: &Xdp = self
            .ebpf
            .program("lb")
            .ok_or(Error::Missing("lb"))?
            .try_into()
            .map_err(|source| Error::Program { name: "lb", source })?;
        run_test(prog, "lb", packet, None, None, 1).map(|(r, _)| r)
    }
}

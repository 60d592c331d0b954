//! What a run measured: drop counters by reason, notable events from nodes
//! (failure detected, address taken over), application goodput over time,
//! per-connection outcomes and progress stalls. Reports are built from this.

use crate::net::node::NodeId;
use core::net::Ipv4Addr;
use ftsplice_proto::Instant;
use std::collections::BTreeMap;

/// Something a node saw that a report may want to place on the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// A failure detector declared this peer dead.
    PeerDead(Ipv4Addr),
    /// A peer (re)joined.
    PeerAlive(Ipv4Addr),
    /// This node took over an address (e.g. a backup lb the VIP).
    Takeover(Ipv4Addr),
    /// A joining node finished its state sync.
    Synced,
    /// Anything else worth a line in a trace.
    Other(&'static str),
}

/// A node's note with where and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteRecord {
    pub at: Instant,
    pub node: NodeId,
    pub note: Note,
}

/// How a workload connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// All bytes arrived and the end-to-end hash matched.
    Completed,
    /// Reset, timed out, or still unfinished at the end of the run.
    Broken,
    /// Finished but the hash did not match.
    Corrupted,
}

/// One workload connection (or request) as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnRecord {
    /// Workload job id (transfer `r` of it is `id * 1000 + r`).
    pub id: u64,
    pub start: Instant,
    pub end: Instant,
    /// Payload bytes moved (the PUT body or GET response body).
    pub bytes: u64,
    pub outcome: Outcome,
    /// Requests completed on the connection.
    pub transfers: u32,
}

/// SHA-256 of one transfer's body as its sender and its receiver saw it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferHashes {
    pub sent: Option<[u8; 32]>,
    pub received: Option<[u8; 32]>,
}

impl TransferHashes {
    /// Both ends reported and agree.
    pub fn matches(&self) -> bool {
        self.sent.is_some() && self.sent == self.received
    }
}

/// A span during which some connection moved no payload at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stall {
    pub from: Instant,
    pub to: Instant,
}

/// Counters and traces of one run.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Frames delivered over links (one per hop).
    pub hops: u64,
    /// Frames handed to node handlers.
    pub handled: u64,
    drops: BTreeMap<&'static str, u64>,
    notes: Vec<NoteRecord>,
    bucket_us: u64,
    goodput: Vec<u64>,
    conns: Vec<ConnRecord>,
    stalls: Vec<Stall>,
    transfers: BTreeMap<u64, TransferHashes>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new(10_000)
    }
}

impl Stats {
    /// Goodput is bucketed into `bucket_us`-wide bins.
    pub fn new(bucket_us: u64) -> Stats {
        Stats {
            hops: 0,
            handled: 0,
            drops: BTreeMap::new(),
            notes: Vec::new(),
            bucket_us: bucket_us.max(1),
            goodput: Vec::new(),
            conns: Vec::new(),
            stalls: Vec::new(),
            transfers: BTreeMap::new(),
        }
    }

    /// Counts one dropped packet under `reason`.
    pub fn drop(&mut self, reason: &'static str) {
        *self.drops.entry(reason).or_insert(0) += 1;
    }

    pub fn drops(&self) -> &BTreeMap<&'static str, u64> {
        &self.drops
    }

    pub fn drop_count(&self, reason: &str) -> u64 {
        self.drops.get(reason).copied().unwrap_or(0)
    }

    pub fn note(&mut self, at: Instant, node: NodeId, note: Note) {
        self.notes.push(NoteRecord { at, node, note });
    }

    pub fn notes(&self) -> &[NoteRecord] {
        &self.notes
    }

    /// `bytes` of application payload arrived at `at`.
    pub fn goodput(&mut self, at: Instant, bytes: u64) {
        let i = (at.as_micros() / self.bucket_us) as usize;
        if self.goodput.len() <= i {
            self.goodput.resize(i + 1, 0);
        }
        self.goodput[i] += bytes;
    }

    /// Goodput per bucket, in bytes.
    pub fn goodput_series(&self) -> &[u64] {
        &self.goodput
    }

    pub fn bucket_us(&self) -> u64 {
        self.bucket_us
    }

    pub fn conn(&mut self, rec: ConnRecord) {
        self.conns.push(rec);
    }

    pub fn conns(&self) -> &[ConnRecord] {
        &self.conns
    }

    pub fn stall(&mut self, s: Stall) {
        self.stalls.push(s);
    }

    pub fn stalls(&self) -> &[Stall] {
        &self.stalls
    }

    /// The sender of transfer `id` finished hashing its body.
    pub fn transfer_sent(&mut self, id: u64, hash: [u8; 32]) {
        self.transfers.entry(id).or_default().sent = Some(hash);
    }

    /// The receiver of transfer `id` finished hashing the body it got.
    pub fn transfer_received(&mut self, id: u64, hash: [u8; 32]) {
        self.transfers.entry(id).or_default().received = Some(hash);
    }

    pub fn transfer(&self, id: u64) -> Option<&TransferHashes> {
        self.transfers.get(&id)
    }

    /// Every transfer of `rec` was hashed at both ends with equal results.
    pub fn conn_verified(&self, rec: &ConnRecord) -> bool {
        (0..u64::from(rec.transfers)).all(|r| {
            self.transfers
                .get(&(rec.id * 1000 + r))
                .is_some_and(TransferHashes::matches)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goodput_lands_in_its_bucket() {
        let mut s = Stats::new(1_000);
        s.goodput(Instant::from_micros(999), 10);
        s.goodput(Instant::from_micros(1_000), 5);
        s.goodput(Instant::from_micros(3_500), 7);
        assert_eq!(s.goodput_series(), &[10, 5, 0, 7]);
    }

    #[test]
    fn drops_are_counted_by_reason() {
        let mut s = Stats::default();
        s.drop("a");
        s.drop("a");
        s.drop("b");
        assert_eq!(s.drop_count("a"), 2);
        assert_eq!(s.drop_count("c"), 0);
        assert_eq!(s.drops().len(), 2);
    }
}

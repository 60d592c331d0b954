//! `presplice-crash`: a proxy crashes while it owns connections in their
//! pre-splice phase (handshake done, request head being read, splice not
//! yet created and replicated). Their sockets die with it and no replica
//! exists, so they cannot survive (the paper loses them too); what this
//! scenario measures is *how* they are lost. Without `proto::orphan` the
//! survivor dropped their segments and the clients retransmitted until the
//! run's end (hung); with it the survivor resets them once its slot table
//! has settled, so each client fails fast and its application can retry.
//!
//! Report `details`: `presplice_at_crash` (connections proxy1 was splicing
//! when it crashed), `completed`, `failed_fast` (broken before the run's
//! end: reset), `hung` (still unfinished at the end), `fail_fast_max_ms`
//! (the latest failure, from the crash), `orphan_resets` (resets the
//! proxies sent in answer to a client segment), `record_resets` (resets
//! sent proactively from a dead proxy's pre-splice records,
//! `proto::orphan_records`: the idle GET clients) and `record_messages`
//! (pre-splice record datagrams the proxies sent).

use super::{limit, params, prepare, report_run, Options, Run};
use crate::engine::fault::Fault;
use crate::roles::http::Method;
use crate::roles::proxy::Proxy;
use crate::stats::Outcome;
use core::time::Duration;
use ftsplice_proto::Instant;

/// When proxy1 crashes, counted from the clients' start.
pub const CRASH_AFTER: Duration = Duration::from_micros(300);

/// How the connections of one run ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub completed: usize,
    /// Broken before the run's end (the client saw a reset).
    pub failed_fast: usize,
    /// Unfinished when the run ended.
    pub hung: usize,
    pub corrupted: usize,
    /// The latest fast failure, after the crash.
    pub fail_fast_max: Duration,
}

/// Runs the scenario with proxy1 crashing [`CRASH_AFTER`] the start.
pub fn scenario(o: Options, method: Method) -> Result<Run, String> {
    scenario_at(o, method, CRASH_AFTER).map(|(run, _)| run)
}

/// Runs the scenario with the crash `after` the clients' start; also
/// returns the tally the report's details hold.
pub fn scenario_at(
    mut o: Options,
    method: Method,
    after: Duration,
) -> Result<(Run, Tally), String> {
    let p = params(&o, method);
    let crash_at = p.start + after;
    let mut t = super::topology::spliced(&p);
    prepare(&mut t, &mut o)?;
    t.sim.run_until(crash_at);
    let victim = t.proxies[0];
    let pre = t.sim.node::<Proxy>(victim).map_or(0, Proxy::presplicing);
    t.sim.inject(Fault::Crash(victim));
    t.run(limit(&o));
    let end = t.sim.now();
    let mut tally = Tally::default();
    for r in t.sim.stats().conns() {
        match r.outcome {
            Outcome::Completed => tally.completed += 1,
            Outcome::Corrupted => tally.corrupted += 1,
            Outcome::Broken if r.end < end => {
                tally.failed_fast += 1;
                tally.fail_fast_max = tally.fail_fast_max.max(r.end.saturating_since(crash_at));
            }
            Outcome::Broken => tally.hung += 1,
        }
    }
    let sum = |f: fn(&Proxy) -> u64| -> u64 {
        t.proxies
            .iter()
            .filter_map(|&n| t.sim.node::<Proxy>(n))
            .map(f)
            .sum()
    };
    let resets = sum(|px| px.stats.orphan_resets);
    let record_resets = sum(|px| px.stats.record_resets);
    let record_messages = sum(|px| px.stats.record_messages);
    let mut run = report_run("presplice-crash", t);
    let d = &mut run.report.details;
    d.insert("presplice_at_crash".into(), pre as f64);
    d.insert("completed".into(), tally.completed as f64);
    d.insert("failed_fast".into(), tally.failed_fast as f64);
    d.insert("hung".into(), tally.hung as f64);
    d.insert(
        "fail_fast_max_ms".into(),
        tally.fail_fast_max.as_secs_f64() * 1e3,
    );
    d.insert("orphan_resets".into(), resets as f64);
    d.insert("record_resets".into(), record_resets as f64);
    d.insert("record_messages".into(), record_messages as f64);
    d.insert("crash_at_ms".into(), ms(crash_at));
    Ok((run, tally))
}

fn ms(t: Instant) -> f64 {
    t.as_micros() as f64 / 1e3
}

//! The multiplayer scenarios zen-bench measures and the arena demo shows: the same game
//! played with zen-crdt on the simulated network and with plain yrs over the y-sync
//! protocol (`ysync.rs`) in both layouts (one Doc with one Map; one Doc per value), on the
//! same network with the same seed.
//!
//! Both sides are counted the same way (`ysync::Acct`): bytes per recipient (a mesh) and
//! per message (a relay), raw and LZ4; thread CPU time split by part of the work; over the
//! same window (the run after its first second). Staleness is measured per write: for
//! every sampled write and every remote peer, the time until that peer reads that write
//! or a newer one of the same value.
//!
//! Each arena is steppable one tick at a time so the demo can draw while it runs. The
//! including program must install `alloc_count::Counting` as its global allocator for the
//! memory figures.
use crate::alloc_count::thread_live_bytes;
use crate::baseline::{vec3_any, Layout};
use crate::thread_cpu_ns;
use crate::ysync::{Acct, Work};
use std::sync::Arc;
use yrs::Any;
use zen_crdt::sim::{LinkConfig, Sim};
use zen_crdt::*;

pub use crate::ysync_arena::{YSyncArena, YSyncNet};
use crate::zen_arena::Timed;
pub use crate::zen_arena::ZenArena;

pub const TICK: u64 = 16;
pub const PEERS: usize = 8;
pub const ENTITIES: usize = 125;
/// Entities per remote peer whose position every receiver samples for staleness.
pub const SAMPLED: usize = 8;
/// A local write still unchanged this long is no longer watched for a correction.
pub(crate) const CORRECTION_WINDOW_MS: u64 = 2_000;
/// The first second of a run is warm-up: CPU, bytes and staleness are measured after it.
pub const WARMUP_TICKS: u64 = 1000 / TICK;

/// The `q` quantile of `v`; -1 when there is no sample (so JSON stays valid).
pub fn quantile(v: &mut [u64], q: f64) -> f64 {
    if v.is_empty() {
        return -1.0;
    }
    v.sort_unstable();
    v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1] as f64
}

/// A histogram quantile in ms, -1 when empty.
pub fn hq(h: &Histogram, q: f64) -> i64 {
    h.quantile(q).map_or(-1, |v| v as i64)
}

/// Tick at which "memory at the start" is taken: 5 s in, or a quarter of a short run.
pub fn mem_mark(secs: u64) -> u64 {
    (5000 / TICK).min(secs * 1000 / TICK / 4).max(1)
}

/// 25 +- 5 ms one way, with `loss` (0.02 in the arena).
pub fn arena_link_with(loss: f64) -> LinkConfig {
    LinkConfig { latency_ms: 20, jitter_ms: 10, loss, duplicate: 0.0, reorder: 0.0, bandwidth_bytes_per_s: 0 }
}

pub fn arena_link() -> LinkConfig {
    arena_link_with(0.02)
}

/// The longest round trip of `link` plus a tick each way (ms): how long a y-sync peer
/// waits for sync step 2 before asking again.
pub fn rtt_ms(link: &LinkConfig) -> u64 {
    2 * (link.latency_ms + link.jitter_ms + TICK)
}

/// The three ways the scenarios are played.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Zen,
    YSync(Layout),
}

impl Side {
    pub const ALL: [Side; 3] = [Side::Zen, Side::YSync(Layout::OneMap), Side::YSync(Layout::DocPerValue)];

    /// The prefix of this side's zen-bench JSON keys.
    pub fn prefix(self) -> &'static str {
        match self {
            Side::Zen => "",
            Side::YSync(Layout::OneMap) => "baseline_ysync_map_",
            Side::YSync(Layout::DocPerValue) => "baseline_ysync_perdoc_",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Side::Zen => "zen-crdt",
            Side::YSync(Layout::OneMap) => "y-sync 1 Map",
            Side::YSync(Layout::DocPerValue) => "y-sync Doc/value",
        }
    }
}

/// One second of virtual time, for the plots and the growth figures.
#[derive(Clone, Copy, Default)]
pub struct Second {
    /// Corrections of FastLocal values (zen) or silently overwritten writes (plain yrs).
    pub corrections_fast: u32,
    /// Corrections of WaitForSync values (zen; by design none are ever shown).
    pub corrections_wait: u32,
    /// Bytes sent, per message (relay accounting), all peers.
    pub bytes_out: u64,
    /// Thread CPU time, all peers.
    pub cpu_ns: u64,
}

/// What one run of a scenario measured. Histograms are fixed size and `series` is
/// reserved up front: the harness must not grow the heap it measures.
pub struct Outcome {
    /// Per sampled write and remote peer: ms until that peer read it or a newer write.
    pub staleness_ms: Histogram,
    /// zen: WaitForSync write-to-converged on the writer (all peers' histograms merged).
    /// plain yrs: a score write until every other peer reads it.
    pub converge_ms: Histogram,
    /// Local write to the event (zen) or the read (plain yrs) that replaced it.
    pub correction_ms: Histogram,
    pub corrections: u64,
    pub series: Vec<Second>,
    /// Length of the run (s); `window_secs` of it after warm-up are measured.
    pub secs: f64,
    pub window_secs: f64,
    /// CPU and bytes over the measured window.
    pub acct: Acct,
    pub mem_start: i64,
    pub mem_end: i64,
    /// Scenario-specific: ms until the late joiner / healed partition / contenders agreed.
    pub catch_up_ms: Option<u64>,
    /// After the run, with writes stopped: whether every peer came to read every value as
    /// its writer does (within 3 s), and how long that took.
    pub settled_ms: Option<u64>,
}

impl Outcome {
    pub fn new(secs: u64) -> Outcome {
        Outcome {
            staleness_ms: Histogram::new(),
            converge_ms: Histogram::new(),
            correction_ms: Histogram::new(),
            corrections: 0,
            series: Vec::with_capacity(secs as usize + 8),
            secs: secs as f64,
            window_secs: (secs as f64 - (WARMUP_TICKS * TICK) as f64 / 1000.0).max(1e-3),
            acct: Acct::default(),
            mem_start: 0,
            mem_end: 0,
            catch_up_ms: None,
            settled_ms: None,
        }
    }
    pub fn cpu_pct_per_peer(&self, peers: usize) -> f64 {
        100.0 * self.acct.cpu_total_ns() as f64 / 1e9 / (self.window_secs * peers as f64)
    }
    /// Thread CPU of one part of the work, % of a core per peer.
    pub fn cpu_pct_of(&self, w: Work, peers: usize) -> f64 {
        100.0 * self.acct.cpu_ns[w as usize] as f64 / 1e9 / (self.window_secs * peers as f64)
    }
    pub fn per_s_per_peer(&self, bytes: u64, peers: usize) -> f64 {
        bytes as f64 / self.window_secs / peers as f64
    }
    pub fn mem_ratio(&self) -> f64 {
        self.mem_end as f64 / self.mem_start.max(1) as f64
    }
    pub fn corrections_per_min(&self) -> f64 {
        self.corrections as f64 / (self.window_secs / 60.0)
    }
    /// CPU and bytes of the last `k` measured seconds over the first `k` (k = 5, or
    /// half the window when shorter): above 1 when the cost grows with the run.
    pub fn growth(&self) -> (f64, f64) {
        let w = &self.series[(WARMUP_TICKS * TICK / 1000) as usize..self.series.len().max(1) - 1];
        let k = 5.min(w.len() / 2).max(1);
        if w.len() < 2 {
            return (1.0, 1.0);
        }
        let sum = |s: &[Second], f: fn(&Second) -> u64| s.iter().map(f).sum::<u64>().max(1) as f64;
        let (first, last) = (&w[..k], &w[w.len() - k..]);
        (
            sum(last, |s| s.cpu_ns) / sum(first, |s| s.cpu_ns),
            sum(last, |s| s.bytes_out) / sum(first, |s| s.bytes_out),
        )
    }
    pub(crate) fn second(&mut self, now: u64) -> &mut Second {
        let s = (now.saturating_sub(1) / 1000) as usize;
        while self.series.len() <= s {
            self.series.push(Second::default());
        }
        &mut self.series[s]
    }
}

/// Position encoding: x carries the tick of the write, so a receiver knows its age.
pub fn pos(tick: u64, i: usize, p: usize) -> [f32; 3] {
    [tick as f32, i as f32, p as f32]
}

pub fn pos_id(p: usize, i: usize) -> String {
    format!("e/{p}/{i}/pos")
}

pub(crate) fn hp_id(p: usize, i: usize) -> String {
    format!("e/{p}/{i}/hp")
}

pub(crate) fn score_id(p: usize) -> String {
    format!("score/{p}")
}

/// The arena's game logic, the same for every side: which health values peer `p`
/// writes at `tick` (its own unit healed, the next peer's unit hit: concurrent writes).
pub(crate) fn hp_writes(tick: u64, p: usize, peers: usize) -> Option<[(usize, usize, f64); 2]> {
    if !tick.is_multiple_of(30) {
        return None;
    }
    let i = (tick / 30) as usize % ENTITIES;
    Some([(p, i, 100.0 - (tick % 7) as f64), ((p + 1) % peers, i, 40.0 + (tick % 5) as f64)])
}

/// Tracks, per receiver and sampled value, the newest write read so far, and records
/// the staleness of every write in between when a newer one shows up.
struct Staleness {
    peers: usize,
    last: Vec<u64>,
    /// Writes after this tick are not counted (they could not be seen before the end).
    until: u64,
}

impl Staleness {
    fn new(peers: usize, last_tick: u64) -> Staleness {
        Staleness {
            peers,
            last: vec![WARMUP_TICKS; peers * peers * SAMPLED],
            until: last_tick.saturating_sub(1000 / TICK),
        }
    }

    fn slot(&self, r: usize, p: usize, i: usize) -> usize {
        (r * self.peers + p) * SAMPLED + i
    }

    /// Receiver `r` reads peer `p`'s entity `i` as written at tick `x`, at `now`.
    fn read(&mut self, r: usize, p: usize, i: usize, x: u64, now: u64, h: &mut Histogram) {
        let k = self.slot(r, p, i);
        for w in self.last[k] + 1..=x.min(self.until) {
            h.record(now - w * TICK);
        }
        self.last[k] = self.last[k].max(x);
    }

    /// The end of the run: writes still unread are counted with their age now.
    fn finish(&mut self, now: u64, online: impl Fn(usize) -> bool, h: &mut Histogram) {
        for r in (0..self.peers).filter(|&r| online(r)) {
            for p in (0..self.peers).filter(|&p| p != r) {
                for i in 0..SAMPLED {
                    let k = self.slot(r, p, i);
                    for w in self.last[k] + 1..=self.until {
                        h.record(now - w * TICK);
                    }
                    self.last[k] = self.until;
                }
            }
        }
    }
}

/// A game that advances one tick at a time and records into an `Outcome`.
pub trait Arena {
    fn peers(&self) -> usize;
    fn online(&self, p: usize) -> bool;
    /// One tick at `tick * TICK` ms: when `writes`, the game's writes on every online
    /// peer; then one network tick and the change events. Records into `out` when
    /// `measure` (corrections, score convergence).
    fn play(&mut self, tick: u64, writes: bool, out: &mut Outcome, measure: bool);
    /// The tick at which receiver `r` reads peer `p`'s entity `i` as written.
    fn pos_tick(&self, r: usize, p: usize, i: usize) -> Option<u64>;
    /// Every online peer reads every value as every other does.
    fn all_agree(&self) -> bool;
    /// Every online peer reads health and scores as the others do (positions change
    /// every tick, so they are never all equal at one instant), and knows every value.
    fn cold_agree(&self) -> bool;
    fn set_online(&mut self, p: usize, online: bool);
    /// Splits the network into groups that cannot reach each other (all 0: healed).
    fn set_groups(&mut self, groups: Vec<u32>);
    /// CPU and bytes so far, all peers.
    fn acct(&self) -> Acct;
    /// Fills the figures only known from the whole run.
    fn finish(&self, out: &mut Outcome);
}

/// A new arena of `side` on `link`.
pub fn arena(side: Side, seed: u64, link: LinkConfig) -> Box<dyn Arena> {
    match side {
        Side::Zen => Box::new(ZenArena::new(seed, PEERS, link)),
        Side::YSync(layout) => Box::new(YSyncArena::new(layout, seed, PEERS, link)),
    }
}

/// Runs `a` for `secs` of virtual time from tick 1, calling `each(a, tick, outcome so
/// far, live heap bytes grown since the start)` after every tick; then stops writing
/// and plays up to 3 s more until every peer reads every value alike (`settled_ms`).
pub fn run<A: Arena + ?Sized>(a: &mut A, secs: u64, mut each: impl FnMut(&A, u64, &Outcome, i64)) -> Outcome {
    let base = thread_live_bytes();
    let mut out = Outcome::new(secs);
    let ticks = secs * 1000 / TICK;
    let peers = a.peers();
    let mut stale = Staleness::new(peers, ticks);
    let mut start = a.acct();
    let mut last = start;
    for tick in 1..=ticks {
        let now = tick * TICK;
        a.play(tick, true, &mut out, tick > WARMUP_TICKS);
        if tick == WARMUP_TICKS {
            start = a.acct();
        }
        let acct = a.acct();
        let d = acct.minus(&last);
        last = acct;
        let s = out.second(now);
        s.cpu_ns += d.cpu_total_ns();
        s.bytes_out += d.bytes_relay;
        if tick > WARMUP_TICKS {
            for r in (0..peers).filter(|&r| a.online(r)) {
                for p in (0..peers).filter(|&p| p != r) {
                    for i in 0..SAMPLED {
                        if let Some(x) = a.pos_tick(r, p, i) {
                            stale.read(r, p, i, x, now, &mut out.staleness_ms);
                        }
                    }
                }
            }
        }
        if tick == mem_mark(secs) {
            out.mem_start = thread_live_bytes() - base;
        }
        each(a, tick, &out, thread_live_bytes() - base);
    }
    out.acct = a.acct().minus(&start);
    stale.finish(ticks * TICK, |r| a.online(r), &mut out.staleness_ms);
    a.finish(&mut out);
    out.mem_end = thread_live_bytes() - base;
    for t in 1..=3000 / TICK {
        a.play(ticks + t, false, &mut out, false);
        if a.all_agree() {
            out.settled_ms = Some(t * TICK);
            break;
        }
    }
    out
}

// ---- the other scenarios ---------------------------------------------------------------

/// 2..8 peers write the same 100 vec3 values every tick (LWW) for `secs`, then stop:
/// corrections (zen: correction events; yrs: a peer reading another writer's value right
/// after writing its own), bytes and CPU, and in `catch_up_ms` how long after the stop
/// everyone agrees (within 5 s).
pub fn contention(side: Side, seed: u64, peers: usize, secs: u64) -> Outcome {
    const VALUES: usize = 100;
    let ids: Vec<String> = (0..VALUES).map(|i| format!("shared/{i}")).collect();
    let mut out = Outcome::new(secs);
    let ticks = secs * 1000 / TICK;
    let mut start = Acct::default();
    match side {
        Side::Zen => {
            let mut sim = Sim::new(seed, peers, arena_link(), Options::default());
            let hs: Vec<Vec<ValueHandle>> = (0..peers)
                .map(|p| {
                    ids.iter()
                        .map(|id| sim.ctx(p).create(id, ValueType::Vec3, ValueOptions::default()).unwrap())
                        .collect()
                })
                .collect();
            sim.drain_events = false;
            let (mut acct, mut rejected) = (Acct::default(), 0);
            let mut step = |sim: &mut Sim, acct: &mut Acct, out: &mut Outcome| {
                sim.now += TICK;
                let mut hosts =
                    Timed { peers: &mut sim.peers, recipients: peers - 1, acct, rejected: &mut rejected };
                sim.net.step(sim.now, &mut hosts);
                for c in sim.peers.iter_mut() {
                    let t = thread_cpu_ns();
                    while let Some(ev) = c.poll_change() {
                        out.corrections += ev.is_correction as u64;
                    }
                    acct.cpu_ns[Work::Apply as usize] += thread_cpu_ns() - t;
                }
            };
            let agreed = |sim: &Sim| {
                ids.iter().all(|id| {
                    let r: Vec<_> = sim.peers.iter().map(|c| c.get(c.open(id).unwrap()).unwrap()).collect();
                    r.windows(2).all(|w| w[0].same_bits(&w[1]))
                })
            };
            for tick in 1..=ticks {
                if tick == WARMUP_TICKS + 1 {
                    start = acct;
                    out.corrections = 0;
                }
                for (p, h) in hs.iter().enumerate() {
                    let t = thread_cpu_ns();
                    for (i, &v) in h.iter().enumerate() {
                        sim.peers[p].set(v, [tick as f32, p as f32, i as f32]).unwrap();
                    }
                    acct.cpu_ns[Work::Write as usize] += thread_cpu_ns() - t;
                }
                step(&mut sim, &mut acct, &mut out);
            }
            out.acct = acct.minus(&start);
            let stop = sim.now;
            while !agreed(&sim) && sim.now < stop + 5_000 {
                step(&mut sim, &mut acct, &mut out);
            }
            out.catch_up_ms = agreed(&sim).then_some(sim.now - stop);
        }
        Side::YSync(layout) => {
            let keys: Vec<Arc<str>> = ids.iter().map(|id| Arc::from(id.as_str())).collect();
            let mut y = YSyncNet::new(layout, seed, peers, arena_link(), keys);
            let mut now = 0;
            for tick in 1..=ticks {
                if tick == WARMUP_TICKS + 1 {
                    start = y.acct();
                    out.corrections = 0;
                }
                now += TICK;
                for (p, peer) in y.peers.iter_mut().enumerate() {
                    let t = thread_cpu_ns();
                    for i in 0..VALUES {
                        peer.write(i, vec3_any([tick as f32, p as f32, i as f32]));
                    }
                    peer.acct.cpu_ns[Work::Write as usize] += thread_cpu_ns() - t;
                }
                y.deliver(now);
                // A writer that reads another writer's value after this delivery (and
                // before committing this tick's write) had its last write silently replaced.
                for (p, peer) in y.peers.iter().enumerate().filter(|_| tick > 1) {
                    for i in 0..VALUES {
                        if let Some(Any::Buffer(b)) = peer.replica.read_any(i) {
                            out.corrections +=
                                (f32::from_le_bytes([b[4], b[5], b[6], b[7]]) != p as f32) as u64;
                        }
                    }
                }
                y.tick(now);
            }
            out.acct = y.acct().minus(&start);
            let stop = now;
            while !y.agree(0..VALUES) && now < stop + 5_000 {
                now += TICK;
                y.step(now);
            }
            out.catch_up_ms = y.agree(0..VALUES).then_some(now - stop);
        }
    }
    out
}

/// The arena with the last peer joining after `join_after` s: ms until it reads what
/// everyone does.
pub fn late_join(side: Side, seed: u64, join_after: u64) -> Outcome {
    let mut a = arena(side, seed, arena_link());
    a.set_online(PEERS - 1, false);
    let mut out = Outcome::new(join_after);
    let join_tick = join_after * 1000 / TICK;
    for tick in 1..=join_tick + 5000 / TICK {
        if tick == join_tick {
            a.set_online(PEERS - 1, true);
        }
        a.play(tick, true, &mut out, false);
        if tick >= join_tick && a.cold_agree() {
            out.catch_up_ms = Some((tick - join_tick) * TICK);
            break;
        }
    }
    out
}

/// The arena split 4/4 for `split_secs` from 1 s in, then healed: ms until everyone
/// agrees again.
pub fn partition(side: Side, seed: u64, split_secs: u64) -> Outcome {
    let mut a = arena(side, seed, arena_link());
    let mut out = Outcome::new(split_secs);
    let start = 1000 / TICK;
    let healed = start + split_secs * 1000 / TICK;
    for tick in 1..=healed + 5000 / TICK {
        if tick == start {
            a.set_groups((0..PEERS).map(|p| (p < PEERS / 2) as u32).collect());
        }
        if tick == healed {
            a.set_groups(vec![0; PEERS]);
        }
        a.play(tick, true, &mut out, false);
        if tick > healed && a.cold_agree() {
            out.catch_up_ms = Some((tick - healed) * TICK);
            break;
        }
    }
    out
}

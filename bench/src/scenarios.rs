//! The multiplayer scenarios zen-bench measures and the arena demo shows: the same game
//! played with zen-crdt on `sim::Sim` and with plain yrs (one Doc and one Map per peer, a
//! state-vector diff per tick to each peer) on the same simulated network.
//!
//! Shared by the `zen-bench` and `arena` binaries, so both report the same numbers the
//! same way. Each arena is steppable one tick
//! at a time so the demo can draw while it runs. The including program must install
//! `alloc_count::Counting` as its global allocator for the memory figures.
use crate::alloc_count::live_bytes;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Any, Doc, Map, MapRef, Out, ReadTxn, StateVector, Transact, Update};
use zen_crdt::sim::{LinkConfig, Network, Sim};
use zen_crdt::*;

pub const TICK: u64 = 16;
pub const PEERS: usize = 8;
pub const ENTITIES: usize = 125;
/// Entities per remote peer whose position every receiver samples for visibility.
pub const SAMPLED: usize = 8;
/// A local write still unchanged this long is no longer watched for a correction.
const CORRECTION_WINDOW_MS: u64 = 2_000;

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

pub fn arena_link() -> LinkConfig {
    // 25 +- 5 ms one way, 2 % loss.
    LinkConfig {
        latency_ms: 20,
        jitter_ms: 10,
        loss: 0.02,
        duplicate: 0.0,
        reorder: 0.0,
        bandwidth_bytes_per_s: 0,
    }
}

/// One second of virtual time, for the plots.
#[derive(Clone, Copy, Default)]
pub struct Second {
    /// Corrections of FastLocal values (zen) or silently overwritten writes (plain yrs).
    pub corrections_fast: u32,
    /// Corrections of WaitForSync values (zen; by design none are ever shown).
    pub corrections_wait: u32,
    pub bytes_out: u64,
}

/// What one run of a scenario measured. Histograms are fixed size and `series` is
/// reserved up front: the harness must not grow the heap it measures.
pub struct Outcome {
    pub visibility_ms: Histogram,
    /// zen: WaitForSync write-to-converged on the writer (all peers' histograms merged).
    /// plain yrs: a score write until every other peer reads it.
    pub converge_ms: Histogram,
    /// Local write to the event (zen) or the read (plain yrs) that replaced it.
    pub correction_ms: Histogram,
    pub corrections: u64,
    pub series: Vec<Second>,
    pub secs: f64,
    pub bytes_out: u64,
    pub cpu_secs: f64,
    pub mem_start: i64,
    pub mem_end: i64,
    /// Scenario-specific: ms until the late joiner / healed partition agreed with everyone.
    pub catch_up_ms: Option<u64>,
}

impl Outcome {
    pub fn new(secs: u64) -> Outcome {
        Outcome {
            visibility_ms: Histogram::new(),
            converge_ms: Histogram::new(),
            correction_ms: Histogram::new(),
            corrections: 0,
            series: Vec::with_capacity(secs as usize + 2),
            secs: secs as f64,
            bytes_out: 0,
            cpu_secs: 0.0,
            mem_start: 0,
            mem_end: 0,
            catch_up_ms: None,
        }
    }
    pub fn cpu_pct_per_peer(&self, peers: usize) -> f64 {
        100.0 * self.cpu_secs / (self.secs * peers as f64)
    }
    pub fn bytes_per_s_per_peer(&self, peers: usize) -> f64 {
        self.bytes_out as f64 / self.secs / peers as f64
    }
    pub fn mem_ratio(&self) -> f64 {
        self.mem_end as f64 / self.mem_start.max(1) as f64
    }
    pub fn corrections_per_min(&self) -> f64 {
        self.corrections as f64 / (self.secs / 60.0)
    }
    fn second(&mut self, now: u64) -> &mut Second {
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

fn hp_id(p: usize, i: usize) -> String {
    format!("e/{p}/{i}/hp")
}

/// The arena's game logic, the same for both implementations: which health values peer
/// `p` writes at `tick` (its own unit healed, the next peer's unit hit: concurrent
/// writes) and its score.
fn hp_writes(tick: u64, p: usize, peers: usize) -> Option<[(usize, usize, f64); 2]> {
    if !tick.is_multiple_of(30) {
        return None;
    }
    let i = (tick / 30) as usize % ENTITIES;
    Some([(p, i, 100.0 - (tick % 7) as f64), ((p + 1) % peers, i, 40.0 + (tick % 5) as f64)])
}

/// A game that advances one tick at a time and records into an `Outcome`.
pub trait Arena {
    /// One tick of game logic on every online peer, then one network tick; records
    /// figures when `measure`.
    fn play(&mut self, tick: u64, out: &mut Outcome, measure: bool);
    /// Fills the figures only known from the whole run.
    fn finish(&self, out: &mut Outcome);
}

/// Runs `a` for `secs` of virtual time from tick 1, calling `each(a, tick, outcome so
/// far, live heap bytes grown since the start)` after every tick.
pub fn run<A: Arena>(a: &mut A, secs: u64, mut each: impl FnMut(&A, u64, &Outcome, i64)) -> Outcome {
    let base = live_bytes();
    let mut out = Outcome::new(secs);
    let ticks = secs * 1000 / TICK;
    for tick in 1..=ticks {
        a.play(tick, &mut out, true);
        if tick == mem_mark(secs) {
            out.mem_start = live_bytes() - base;
        }
        each(a, tick, &out, live_bytes() - base);
    }
    a.finish(&mut out);
    out.mem_end = live_bytes() - base;
    out
}

// ---- zen-crdt ------------------------------------------------------------------------

pub struct ZenArena {
    pub sim: Sim,
    pos: Vec<Vec<ValueHandle>>,
    hp: Vec<Vec<ValueHandle>>,
    score: Vec<ValueHandle>,
    /// Per receiver, per sampled (peer, entity): last seen write tick.
    seen: Vec<HashMap<(usize, usize), f32>>,
    /// Per peer: health values it wrote, and when (to time corrections).
    wrote: Vec<HashMap<ValueHandle, u64>>,
    bytes_seen: u64,
}

impl ZenArena {
    pub fn new(seed: u64, peers: usize, link: LinkConfig) -> ZenArena {
        let mut sim = Sim::new(seed, peers, link, Options::default());
        let (mut pos, mut hp, mut score) = (Vec::new(), Vec::new(), Vec::new());
        let avg = ValueOptions { mode: Mode::FastLocal, policy: Policy::TakeAverage };
        let wait = ValueOptions { mode: Mode::WaitForSync, policy: Policy::Max };
        for p in 0..peers {
            let c = sim.ctx(p);
            let v3 = ValueOptions::default();
            pos.push(
                (0..ENTITIES)
                    .map(|i| c.create(&pos_id(p, i), ValueType::Vec3, v3.clone()).unwrap())
                    .collect(),
            );
            hp.push(
                (0..ENTITIES).map(|i| c.create(&hp_id(p, i), ValueType::F64, avg.clone()).unwrap()).collect(),
            );
            score.push(c.create(&format!("score/{p}"), ValueType::I64, wait.clone()).unwrap());
        }
        sim.drain_events = false;
        let n = peers;
        ZenArena {
            sim,
            pos,
            hp,
            score,
            seen: vec![HashMap::new(); n],
            wrote: (0..n).map(|_| HashMap::with_capacity(4 * ENTITIES)).collect(),
            bytes_seen: 0,
        }
    }

    /// Everyone agrees on the values nobody is writing right now (scores and health):
    /// positions change every tick, so they are never all equal at one instant.
    pub fn agree_ignoring_hot(&self) -> bool {
        let ids: Vec<String> =
            self.sim.peers[0].value_ids().filter(|id| !id.ends_with("/pos")).map(String::from).collect();
        ids.iter().all(|id| {
            let reads: Vec<_> =
                self.sim.peers.iter().map(|c| c.open(id).ok().and_then(|h| c.get(h).ok())).collect();
            reads.windows(2).all(|w| match (&w[0], &w[1]) {
                (Some(a), Some(b)) => a.same_bits(b),
                _ => false,
            })
        })
    }

    pub fn converge_histogram(&self) -> Histogram {
        let mut h = Histogram::new();
        for c in &self.sim.peers {
            h.merge(c.converge_histogram());
        }
        h
    }
}

impl Arena for ZenArena {
    fn play(&mut self, tick: u64, out: &mut Outcome, measure: bool) {
        let peers = self.sim.peers.len();
        let t = Instant::now();
        let now = self.sim.now + self.sim.tick_ms;
        for p in 0..peers {
            if !self.sim.online(p) {
                continue;
            }
            let c = &mut self.sim.peers[p];
            for i in 0..ENTITIES {
                c.set(self.pos[p][i], pos(tick, i, p)).unwrap();
            }
            for (owner, i, hp) in hp_writes(tick, p, peers).into_iter().flatten() {
                let h = if owner == p { Ok(self.hp[p][i]) } else { c.open(&hp_id(owner, i)) };
                if let Ok(h) = h {
                    c.set(h, hp).unwrap();
                    self.wrote[p].insert(h, now);
                }
            }
            if tick.is_multiple_of(60) {
                let next = match c.get(self.score[p]) {
                    Ok(Value::I64(v)) => v + 1,
                    _ => 1,
                };
                c.set(self.score[p], next).unwrap();
            }
        }
        self.sim.step_keep_events();
        let mut fixes = [0u32; 2];
        for (p, c) in self.sim.peers.iter_mut().enumerate() {
            while let Some(ev) = c.poll_change() {
                if ev.is_correction && measure {
                    out.corrections += 1;
                    fixes[(ev.value == self.score[p]) as usize] += 1;
                    if let Some(t0) = self.wrote[p].remove(&ev.value) {
                        out.correction_ms.record(ev.time_ms.saturating_sub(t0));
                    }
                }
            }
            self.wrote[p].retain(|_, t0| now - *t0 < CORRECTION_WINDOW_MS);
        }
        if !measure {
            return;
        }
        out.cpu_secs += t.elapsed().as_secs_f64();
        let bytes: u64 = self.sim.peers.iter().map(|c| c.metrics().bytes_out).sum();
        let s = out.second(now);
        s.corrections_fast += fixes[0];
        s.corrections_wait += fixes[1];
        s.bytes_out += bytes - self.bytes_seen;
        out.bytes_out += bytes - self.bytes_seen;
        self.bytes_seen = bytes;
        for r in 0..peers {
            let c = &self.sim.peers[r];
            if !self.sim.net.online[r] {
                continue;
            }
            for p in (0..peers).filter(|&p| p != r) {
                for i in 0..SAMPLED {
                    let Ok(h) = c.open(&pos_id(p, i)) else { continue };
                    if let Ok(Value::Vec3([x, _, _])) = c.get(h) {
                        let last = self.seen[r].insert((p, i), x);
                        if last.is_some_and(|l| x > l) {
                            out.visibility_ms.record(now.saturating_sub(x as u64 * TICK));
                        }
                    }
                }
            }
        }
    }

    fn finish(&self, out: &mut Outcome) {
        out.converge_ms = self.converge_histogram();
    }
}

/// 2..8 peers write the same 100 values every tick (LWW), then stop; how many
/// corrections, and how long until everyone agrees.
pub fn contention(seed: u64, peers: usize, secs: u64) -> Outcome {
    let mut sim = Sim::new(seed, peers, arena_link(), Options::default());
    let hs: Vec<Vec<ValueHandle>> = (0..peers)
        .map(|p| {
            (0..100)
                .map(|i| {
                    sim.ctx(p)
                        .create(&format!("shared/{i}"), ValueType::Vec3, ValueOptions::default())
                        .unwrap()
                })
                .collect()
        })
        .collect();
    sim.drain_events = false;
    let mut out = Outcome::new(secs);
    let poll = |sim: &mut Sim, out: &mut Outcome| {
        for p in 0..peers {
            while let Some(ev) = sim.ctx(p).poll_change() {
                out.corrections += ev.is_correction as u64;
            }
        }
    };
    let t = Instant::now();
    for tick in 1..=secs * 1000 / TICK {
        for (p, h) in hs.iter().enumerate() {
            for (i, &v) in h.iter().enumerate() {
                sim.ctx(p).set(v, [tick as f32, p as f32, i as f32]).unwrap();
            }
        }
        sim.step_keep_events();
        poll(&mut sim, &mut out);
    }
    out.cpu_secs = t.elapsed().as_secs_f64();
    let stop = sim.now;
    let agreed = |sim: &Sim| {
        (0..100).all(|i| {
            let id = format!("shared/{i}");
            let r: Vec<_> = sim.peers.iter().map(|c| c.get(c.open(&id).unwrap()).unwrap()).collect();
            r.windows(2).all(|w| w[0].same_bits(&w[1]))
        })
    };
    while !agreed(&sim) && sim.now < stop + 5_000 {
        sim.step_keep_events();
        poll(&mut sim, &mut out);
    }
    out.catch_up_ms = Some(sim.now - stop);
    out.bytes_out = sim.peers.iter().map(|c| c.metrics().bytes_out).sum();
    out
}

/// The arena with the last peer joining after `join_after` s: ms until it reads what
/// everyone does.
pub fn late_join(seed: u64, join_after: u64) -> Outcome {
    let mut a = ZenArena::new(seed, PEERS, arena_link());
    a.sim.leave(PEERS - 1);
    late_join_run(
        &mut a,
        join_after,
        |a| a.sim.join(PEERS - 1),
        |a| a.sim.peers[PEERS - 1].value_count() == a.sim.peers[0].value_count() && a.agree_ignoring_hot(),
    )
}

/// The arena split 4/4 for `split_secs`, then healed: ms until everyone agrees again.
pub fn partition(seed: u64, split_secs: u64) -> Outcome {
    let mut a = ZenArena::new(seed, PEERS, arena_link());
    partition_run(
        &mut a,
        split_secs,
        |a| a.sim.partition(halves()),
        |a| a.sim.heal(),
        |a| a.agree_ignoring_hot(),
    )
}

fn halves() -> Vec<u32> {
    (0..PEERS).map(|p| (p < PEERS / 2) as u32).collect()
}

/// Plays `a` (not measuring), calls `join` at `join_after` s, and reports in
/// `catch_up_ms` how long after that `agreed` first held (within 5 s).
fn late_join_run<A: Arena>(
    a: &mut A,
    join_after: u64,
    join: impl Fn(&mut A),
    agreed: impl Fn(&A) -> bool,
) -> Outcome {
    let mut out = Outcome::new(join_after);
    let join_tick = join_after * 1000 / TICK;
    for tick in 1..=join_tick + 5000 / TICK {
        if tick == join_tick {
            join(a);
        }
        a.play(tick, &mut out, false);
        if tick > join_tick && agreed(a) {
            out.catch_up_ms = Some((tick - join_tick) * TICK);
            break;
        }
    }
    out
}

/// Plays `a` (not measuring), splits it 1 s in for `split_secs`, heals, and reports in
/// `catch_up_ms` how long after healing `agreed` first held (within 5 s).
fn partition_run<A: Arena>(
    a: &mut A,
    split_secs: u64,
    split: impl Fn(&mut A),
    heal: impl Fn(&mut A),
    agreed: impl Fn(&A) -> bool,
) -> Outcome {
    let mut out = Outcome::new(split_secs);
    let start = 1000 / TICK;
    let healed = start + split_secs * 1000 / TICK;
    for tick in 1..=healed + 5000 / TICK {
        if tick == start {
            split(a);
        }
        if tick == healed {
            heal(a);
        }
        a.play(tick, &mut out, false);
        if tick > healed && agreed(a) {
            out.catch_up_ms = Some((tick - healed) * TICK);
            break;
        }
    }
    out
}

// ---- plain yrs baseline -----------------------------------------------------------

/// One player with plain yrs: one Doc and one Map holding every value.
struct YPeer {
    doc: Doc,
    map: MapRef,
    /// Last state vector each peer reported (what it has).
    remote: Vec<StateVector>,
}

impl YPeer {
    fn new(p: usize, peers: usize) -> YPeer {
        let doc = Doc::with_client_id(p as u64 + 1);
        let map = doc.get_or_insert_map("m");
        YPeer { doc, map, remote: vec![StateVector::default(); peers] }
    }

    /// A message is `[sv len u32][state vector][diff]`.
    fn receive(&mut self, from: usize, bytes: &[u8]) {
        let n = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        let (sv, diff) = bytes[4..].split_at(n);
        if let Ok(sv) = StateVector::decode_v1(sv) {
            self.remote[from].merge(sv);
        }
        if let Ok(u) = Update::decode_v1(diff) {
            let _ = self.doc.transact_mut().apply_update(u);
        }
    }

    /// Sends every other online peer our state vector and the diff it lacks; returns
    /// the bytes sent.
    fn send(&self, p: usize, net: &mut Network, now: u64) -> u64 {
        let txn = self.doc.transact();
        let sv = txn.state_vector().encode_v1();
        let mut sent = 0;
        for q in 0..self.remote.len() {
            if q == p || !net.online[q] {
                continue;
            }
            let diff = txn.encode_diff_v1(&self.remote[q]);
            let mut msg = Vec::with_capacity(4 + sv.len() + diff.len());
            msg.extend_from_slice(&(sv.len() as u32).to_le_bytes());
            msg.extend_from_slice(&sv);
            msg.extend_from_slice(&diff);
            sent += msg.len() as u64;
            net.send(now, p, q, msg);
        }
        sent
    }

    fn get(&self, key: &str) -> Option<Any> {
        match self.map.get(&self.doc.transact(), key) {
            Some(Out::Any(a)) => Some(a),
            _ => None,
        }
    }

    /// Every entry except positions (which change every tick), as comparable strings.
    fn cold_entries(&self) -> Vec<(String, String)> {
        let txn = self.doc.transact();
        let mut v: Vec<(String, String)> = self
            .map
            .iter(&txn)
            .filter(|(k, _)| !k.ends_with("/pos"))
            .map(|(k, o)| (k.to_string(), format!("{o:?}")))
            .collect();
        v.sort();
        v
    }
}

fn vec3_any(v: [f32; 3]) -> Any {
    let b: Vec<u8> = v.iter().flat_map(|c| c.to_le_bytes()).collect();
    Any::Buffer(b.into())
}

/// The arena game with plain yrs: every tick each online peer writes its entities and
/// sends every other peer its state vector and the diff against that peer's last
/// reported state vector (so a lost message is covered by the next diff).
pub struct YArena {
    net: Network,
    peers: Vec<YPeer>,
    keys: Vec<Vec<Arc<str>>>,
    seen: Vec<HashMap<(usize, usize), f32>>,
    /// Per peer: health keys it wrote, the value and when (a later read of another value
    /// is a silent correction).
    wrote: Vec<HashMap<String, (f64, u64)>>,
    /// Score writes not yet read by every other online peer: (writer, score, time).
    scores: Vec<(usize, f64, u64)>,
    now: u64,
}

impl YArena {
    pub fn new(seed: u64, peers: usize, link: LinkConfig) -> YArena {
        let mut net = Network::new(seed, peers, link);
        net.online.iter_mut().for_each(|o| *o = true);
        YArena {
            net,
            peers: (0..peers).map(|p| YPeer::new(p, peers)).collect(),
            keys: (0..peers).map(|p| (0..ENTITIES).map(|i| Arc::from(pos_id(p, i))).collect()).collect(),
            seen: vec![HashMap::new(); peers],
            wrote: (0..peers).map(|_| HashMap::with_capacity(4 * ENTITIES)).collect(),
            scores: Vec::with_capacity(4 * peers),
            now: 0,
        }
    }

    /// Everyone online holds the same entries, positions aside.
    pub fn agree_ignoring_hot(&self) -> bool {
        let online: Vec<&YPeer> =
            (0..self.peers.len()).filter(|&p| self.net.online[p]).map(|p| &self.peers[p]).collect();
        let first = online[0].cold_entries();
        online[1..].iter().all(|y| y.cold_entries() == first)
    }
}

impl Arena for YArena {
    fn play(&mut self, tick: u64, out: &mut Outcome, measure: bool) {
        let n = self.peers.len();
        self.now += TICK;
        let now = self.now;
        let t = Instant::now();
        for (from, to, bytes) in self.net.due(now) {
            self.peers[to].receive(from, &bytes);
        }
        let mut sent = 0;
        for p in 0..n {
            if !self.net.online[p] {
                continue;
            }
            let y = &self.peers[p];
            {
                let mut txn = y.doc.transact_mut();
                for (i, key) in self.keys[p].iter().enumerate() {
                    y.map.insert(&mut txn, key.clone(), vec3_any(pos(tick, i, p)));
                }
                for (owner, i, hp) in hp_writes(tick, p, n).into_iter().flatten() {
                    y.map.insert(&mut txn, hp_id(owner, i), Any::from(hp));
                    self.wrote[p].insert(hp_id(owner, i), (hp, now));
                }
                if tick.is_multiple_of(60) {
                    let score = (tick / 60) as f64;
                    y.map.insert(&mut txn, format!("score/{p}"), Any::from(score));
                    self.scores.push((p, score, now));
                }
            }
            sent += y.send(p, &mut self.net, now);
        }
        if !measure {
            return;
        }
        out.cpu_secs += t.elapsed().as_secs_f64();
        out.bytes_out += sent;
        let mut fixes = 0;
        for p in 0..n {
            let y = &self.peers[p];
            self.wrote[p].retain(|key, (hp, t0)| {
                let shown = y.get(key);
                if shown.is_some_and(|a| a != Any::from(*hp)) {
                    out.correction_ms.record(now - *t0);
                    fixes += 1;
                    return false;
                }
                now - *t0 < CORRECTION_WINDOW_MS
            });
        }
        out.corrections += fixes as u64;
        let s = out.second(now);
        s.corrections_fast += fixes;
        s.bytes_out += sent;
        let (peers, net) = (&self.peers, &self.net);
        self.scores.retain(|&(w, score, t0)| {
            let all = (0..n).filter(|&r| r != w && net.online[r]).all(|r| {
                matches!(peers[r].get(&format!("score/{w}")), Some(Any::Number(x)) if x.as_f64().is_some_and(|x| x >= score))
            });
            if all {
                out.converge_ms.record(now - t0);
            }
            !all
        });
        for r in (0..n).filter(|&r| self.net.online[r]) {
            let y = &self.peers[r];
            let txn = y.doc.transact();
            for p in (0..n).filter(|&p| p != r) {
                for (i, key) in self.keys[p].iter().enumerate().take(SAMPLED) {
                    if let Some(Out::Any(Any::Buffer(b))) = y.map.get(&txn, key) {
                        let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                        let last = self.seen[r].insert((p, i), x);
                        if last.is_some_and(|l| x > l) {
                            out.visibility_ms.record(now.saturating_sub(x as u64 * TICK));
                        }
                    }
                }
            }
        }
    }

    fn finish(&self, _out: &mut Outcome) {}
}

/// The late join scenario with plain yrs.
pub fn baseline_late_join(seed: u64, join_after: u64) -> Outcome {
    let mut a = YArena::new(seed, PEERS, arena_link());
    a.net.online[PEERS - 1] = false;
    late_join_run(&mut a, join_after, |a| a.net.online[PEERS - 1] = true, |a| a.agree_ignoring_hot())
}

/// The partition scenario with plain yrs.
pub fn baseline_partition(seed: u64, split_secs: u64) -> Outcome {
    let mut a = YArena::new(seed, PEERS, arena_link());
    partition_run(
        &mut a,
        split_secs,
        |a| a.net.group = halves(),
        |a| a.net.group = vec![0; PEERS],
        |a| a.agree_ignoring_hot(),
    )
}

/// The contention scenario with plain yrs: every peer writes the same 100 keys every
/// tick; a peer that reads another peer's value right after writing its own was
/// silently corrected.
pub fn baseline_contention(seed: u64, peers: usize, secs: u64) -> Outcome {
    let mut net = Network::new(seed, peers, arena_link());
    net.online.iter_mut().for_each(|o| *o = true);
    let ys: Vec<YPeer> = (0..peers).map(|p| YPeer::new(p, peers)).collect();
    let mut ys = ys;
    let keys: Vec<Arc<str>> = (0..100).map(|i| Arc::from(format!("shared/{i}"))).collect();
    let mut out = Outcome::new(secs);
    let mut now = 0;
    let deliver = |ys: &mut Vec<YPeer>, net: &mut Network, now| {
        for (from, to, bytes) in net.due(now) {
            ys[to].receive(from, &bytes);
        }
    };
    let t = Instant::now();
    for tick in 1..=secs * 1000 / TICK {
        now += TICK;
        deliver(&mut ys, &mut net, now);
        // Each peer's last writes that it no longer reads after this delivery.
        for (p, y) in ys.iter().enumerate() {
            let txn = y.doc.transact();
            for key in &keys {
                if let Some(Out::Any(Any::Buffer(b))) = y.map.get(&txn, key) {
                    let writer = f32::from_le_bytes([b[4], b[5], b[6], b[7]]);
                    out.corrections += (tick > 1 && writer != p as f32) as u64;
                }
            }
        }
        for (p, y) in ys.iter().enumerate() {
            {
                let mut txn = y.doc.transact_mut();
                for (i, key) in keys.iter().enumerate() {
                    y.map.insert(&mut txn, key.clone(), vec3_any([tick as f32, p as f32, i as f32]));
                }
            }
            out.bytes_out += y.send(p, &mut net, now);
        }
    }
    out.cpu_secs = t.elapsed().as_secs_f64();
    let stop = now;
    let agreed = |ys: &Vec<YPeer>| {
        let first: Vec<Option<Any>> = keys.iter().map(|k| ys[0].get(k)).collect();
        ys[1..].iter().all(|y| keys.iter().zip(&first).all(|(k, f)| &y.get(k) == f))
    };
    while !agreed(&ys) && now < stop + 5_000 {
        now += TICK;
        deliver(&mut ys, &mut net, now);
        for (p, y) in ys.iter().enumerate() {
            out.bytes_out += y.send(p, &mut net, now);
        }
    }
    out.catch_up_ms = Some(now - stop);
    out
}

//! zen-bench: multiplayer scenarios on the simulated network, with the same game done
//! with plain yrs (one Doc, one Map, a state-vector diff per tick to each peer) in the
//! same run. Prints tables; `--json` prints one JSON object instead.
//!
//! `cargo run --release --bin zen-bench [-- --json] [--secs 60] [--baseline-secs 10] [--seed 1]`
//! (`--secs` also bounds the other scenarios: contention runs min(10, secs) s, the late
//! joiner arrives after min(30, secs/2) s, the partition lasts min(5, secs/2) s.)

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Any, Doc, Map, MapRef, Out, ReadTxn, StateVector, Transact, Update};
use zen_crdt::alloc_count::{live_bytes, Counting};
use zen_crdt::sim::{arg, LinkConfig, Network, Sim};
use zen_crdt::*;

#[global_allocator]
static ALLOC: Counting = Counting;

const TICK: u64 = 16;
const PEERS: usize = 8;
const ENTITIES: usize = 125;
/// Entities per remote peer whose position every receiver samples for visibility.
const SAMPLED: usize = 8;

/// The `q` quantile; -1 when there is no sample (so the JSON stays valid).
fn quantile(v: &mut [u64], q: f64) -> f64 {
    if v.is_empty() {
        return -1.0;
    }
    v.sort_unstable();
    v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1] as f64
}

/// Tick at which "memory at the start" is taken: 5 s in, or a quarter of a short run.
fn mem_mark(secs: u64) -> u64 {
    (5000 / TICK).min(secs * 1000 / TICK / 4).max(1)
}

fn arena_link() -> LinkConfig {
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

/// What one run of a scenario measured.
struct Outcome {
    /// Visibility latency samples (fixed size: the harness must not grow the heap it
    /// measures).
    visibility_ms: Histogram,
    converge_p50: f64,
    converge_p99: f64,
    corrections: u64,
    secs: f64,
    bytes_out: u64,
    cpu_secs: f64,
    mem_start: i64,
    mem_end: i64,
    /// Scenario-specific: ms until the late joiner / healed partition agreed with everyone.
    catch_up_ms: Option<u64>,
}

impl Default for Outcome {
    fn default() -> Outcome {
        Outcome {
            visibility_ms: Histogram::new(),
            converge_p50: 0.0,
            converge_p99: 0.0,
            corrections: 0,
            secs: 0.0,
            bytes_out: 0,
            cpu_secs: 0.0,
            mem_start: 0,
            mem_end: 0,
            catch_up_ms: None,
        }
    }
}

impl Outcome {
    fn cpu_pct_per_peer(&self, peers: usize) -> f64 {
        100.0 * self.cpu_secs / (self.secs * peers as f64)
    }
    fn bytes_per_s_per_peer(&self, peers: usize) -> f64 {
        self.bytes_out as f64 / self.secs / peers as f64
    }
    fn mem_ratio(&self) -> f64 {
        self.mem_end as f64 / self.mem_start.max(1) as f64
    }
}

/// Position encoding: x carries the tick of the write, so a receiver knows its age.
fn pos(tick: u64, i: usize, p: usize) -> [f32; 3] {
    [tick as f32, i as f32, p as f32]
}

fn pos_id(p: usize, i: usize) -> String {
    format!("e/{p}/{i}/pos")
}

// ---- zen-crdt ------------------------------------------------------------------------

struct ZenArena {
    sim: Sim,
    pos: Vec<Vec<ValueHandle>>,
    hp: Vec<Vec<ValueHandle>>,
    score: Vec<ValueHandle>,
    /// Per receiver, per sampled (peer, entity): last seen write tick.
    seen: Vec<HashMap<(usize, usize), f32>>,
}

impl ZenArena {
    fn new(seed: u64, peers: usize, link: LinkConfig) -> ZenArena {
        let mut sim = Sim::new(seed, peers, link, Options::default());
        let mut pos = Vec::new();
        let mut hp = Vec::new();
        let mut score = Vec::new();
        for p in 0..peers {
            let c = sim.ctx(p);
            pos.push(
                (0..ENTITIES)
                    .map(|i| c.create(&pos_id(p, i), ValueType::Vec3, ValueOptions::default()).unwrap())
                    .collect(),
            );
            let avg = ValueOptions { mode: Mode::FastLocal, policy: Policy::TakeAverage };
            hp.push(
                (0..ENTITIES)
                    .map(|i| c.create(&format!("e/{p}/{i}/hp"), ValueType::F64, avg.clone()).unwrap())
                    .collect(),
            );
            let wait = ValueOptions { mode: Mode::WaitForSync, policy: Policy::Max };
            score.push(c.create(&format!("score/{p}"), ValueType::I64, wait).unwrap());
        }
        sim.drain_events = false;
        ZenArena { sim, pos, hp, score, seen: vec![HashMap::new(); peers] }
    }

    /// One tick of game logic on every online peer, then one network tick.
    fn play(&mut self, tick: u64, out: &mut Outcome, measure: bool) {
        let peers = self.sim.peers.len();
        let t = Instant::now();
        for p in 0..peers {
            if !self.sim.online(p) {
                continue;
            }
            for i in 0..ENTITIES {
                self.sim.peers[p].set(self.pos[p][i], pos(tick, i, p)).unwrap();
            }
            if tick.is_multiple_of(30) {
                // Heal one of our own units while the next peer hits it: concurrent writes.
                let i = (tick / 30) as usize % ENTITIES;
                self.sim.peers[p].set(self.hp[p][i], 100.0 - (tick % 7) as f64).unwrap();
                let victim = (p + 1) % peers;
                if let Ok(h) = self.sim.peers[p].open(&format!("e/{victim}/{i}/hp")) {
                    self.sim.peers[p].set(h, 40.0 + (tick % 5) as f64).unwrap();
                }
            }
            if tick.is_multiple_of(60) {
                let next = match self.sim.peers[p].get(self.score[p]) {
                    Ok(Value::I64(v)) => v + 1,
                    _ => 1,
                };
                self.sim.peers[p].set(self.score[p], next).unwrap();
            }
        }
        self.sim.step_keep_events();
        for c in self.sim.peers.iter_mut() {
            while let Some(ev) = c.poll_change() {
                if measure && ev.is_correction {
                    out.corrections += 1;
                }
            }
        }
        if measure {
            out.cpu_secs += t.elapsed().as_secs_f64();
        }
        let now = self.sim.now;
        for r in 0..peers {
            let c = &self.sim.peers[r];
            if !measure || !self.sim.net.online[r] {
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
}

fn finish_zen(arena: &ZenArena, out: &mut Outcome) {
    let peers = &arena.sim.peers;
    let mut p50: Vec<u64> = peers.iter().filter_map(|c| c.metrics().converge_ms_p50).collect();
    let mut p99: Vec<u64> = peers.iter().filter_map(|c| c.metrics().converge_ms_p99).collect();
    out.converge_p50 = quantile(&mut p50, 0.5);
    out.converge_p99 = quantile(&mut p99, 0.5);
    out.bytes_out = peers.iter().map(|c| c.metrics().bytes_out).sum();
    out.mem_end = live_bytes();
}

fn arena(seed: u64, secs: u64) -> Outcome {
    let base = live_bytes();
    let mut a = ZenArena::new(seed, PEERS, arena_link());
    let mut out = Outcome { secs: secs as f64, ..Outcome::default() };
    let ticks = secs * 1000 / TICK;
    for tick in 1..=ticks {
        a.play(tick, &mut out, true);
        if tick == mem_mark(secs) {
            out.mem_start = live_bytes() - base;
        }
    }
    finish_zen(&a, &mut out);
    out.mem_end -= base;
    out
}

/// 2..8 peers write the same 100 values every tick (LWW), then stop; how many
/// corrections, and how long until everyone agrees.
fn contention(seed: u64, peers: usize, secs: u64) -> Outcome {
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
    let mut out = Outcome { secs: secs as f64, ..Outcome::default() };
    let t = Instant::now();
    for tick in 1..=secs * 1000 / TICK {
        for (p, h) in hs.iter().enumerate() {
            for (i, &v) in h.iter().enumerate() {
                sim.ctx(p).set(v, [tick as f32, p as f32, i as f32]).unwrap();
            }
        }
        sim.step_keep_events();
        for p in 0..peers {
            while let Some(ev) = sim.ctx(p).poll_change() {
                out.corrections += ev.is_correction as u64;
            }
        }
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
        for p in 0..peers {
            while let Some(ev) = sim.ctx(p).poll_change() {
                out.corrections += ev.is_correction as u64;
            }
        }
    }
    out.catch_up_ms = Some(sim.now - stop);
    out.bytes_out = sim.peers.iter().map(|c| c.metrics().bytes_out).sum();
    out
}

/// The arena with peer 8 joining after `join_after` s: ms until it reads what everyone does.
fn late_join(seed: u64, join_after: u64) -> Outcome {
    let mut a = ZenArena::new(seed, PEERS, arena_link());
    a.sim.leave(PEERS - 1);
    let mut out = Outcome { secs: join_after as f64, ..Outcome::default() };
    let join_tick = join_after * 1000 / TICK;
    for tick in 1..=join_tick + 5000 / TICK {
        if tick == join_tick {
            a.sim.join(PEERS - 1);
        }
        a.play(tick, &mut out, false);
        if tick > join_tick && out.catch_up_ms.is_none() {
            let newcomer = &a.sim.peers[PEERS - 1];
            if newcomer.value_count() == a.sim.peers[0].value_count() && a.agree_ignoring_hot() {
                out.catch_up_ms = Some((tick - join_tick) * TICK);
                break;
            }
        }
    }
    out
}

impl ZenArena {
    /// Everyone agrees on the values nobody is writing right now (scores and health):
    /// positions change every tick, so they are never all equal at one instant.
    fn agree_ignoring_hot(&self) -> bool {
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
}

/// The arena split 4/4 for `split_secs`, then healed: ms until everyone agrees again.
fn partition(seed: u64, split_secs: u64) -> Outcome {
    let mut a = ZenArena::new(seed, PEERS, arena_link());
    let mut out = Outcome { secs: split_secs as f64, ..Outcome::default() };
    let start = 1000 / TICK;
    let heal = start + split_secs * 1000 / TICK;
    for tick in 1..=heal + 5000 / TICK {
        if tick == start {
            a.sim.partition((0..PEERS).map(|p| (p < PEERS / 2) as u32).collect());
        }
        if tick == heal {
            a.sim.heal();
        }
        a.play(tick, &mut out, false);
        if tick > heal && out.catch_up_ms.is_none() && a.agree_ignoring_hot() {
            out.catch_up_ms = Some((tick - heal) * TICK);
            break;
        }
    }
    out
}

// ---- plain yrs baseline -----------------------------------------------------------

struct YPeer {
    doc: Doc,
    map: MapRef,
    /// Last state vector each peer reported (what it has).
    remote: Vec<StateVector>,
}

/// The arena game with plain yrs: one Doc and Map per peer; every tick each peer writes
/// its entities and sends every other peer its state vector and the diff against that
/// peer's last reported state vector.
fn baseline_arena(seed: u64, secs: u64) -> Outcome {
    let base = live_bytes();
    let mut net = Network::new(seed, PEERS, arena_link());
    net.online.iter_mut().for_each(|o| *o = true);
    let mut peers: Vec<YPeer> = (0..PEERS)
        .map(|p| {
            let doc = Doc::with_client_id(p as u64 + 1);
            let map = doc.get_or_insert_map("m");
            YPeer { doc, map, remote: vec![StateVector::default(); PEERS] }
        })
        .collect();
    let keys: Vec<Vec<Arc<str>>> =
        (0..PEERS).map(|p| (0..ENTITIES).map(|i| Arc::from(pos_id(p, i))).collect()).collect();
    let mut seen: Vec<HashMap<(usize, usize), f32>> = vec![HashMap::new(); PEERS];
    let mut out = Outcome { secs: secs as f64, ..Outcome::default() };
    let mut now = 0;
    for tick in 1..=secs * 1000 / TICK {
        now += TICK;
        let t = Instant::now();
        for (from, to, bytes) in net.due(now) {
            let _ = from;
            let (sv_len, rest) = bytes.split_at(4);
            let n = u32::from_le_bytes([sv_len[0], sv_len[1], sv_len[2], sv_len[3]]) as usize;
            let (sv, diff) = rest.split_at(n);
            let sender = from;
            let y = &mut peers[to];
            if let Ok(sv) = StateVector::decode_v1(sv) {
                y.remote[sender].merge(sv);
            }
            if let Ok(u) = Update::decode_v1(diff) {
                let _ = y.doc.transact_mut().apply_update(u);
            }
        }
        for p in 0..PEERS {
            let y = &peers[p];
            {
                let mut txn = y.doc.transact_mut();
                for (i, key) in keys[p].iter().enumerate() {
                    let v: Vec<u8> = pos(tick, i, p).iter().flat_map(|c| c.to_le_bytes()).collect();
                    y.map.insert(&mut txn, key.clone(), Any::Buffer(v.into()));
                }
                if tick.is_multiple_of(30) {
                    let i = (tick / 30) as usize % ENTITIES;
                    y.map.insert(&mut txn, format!("e/{p}/{i}/hp"), Any::from(100.0 - (tick % 7) as f64));
                    y.map.insert(
                        &mut txn,
                        format!("e/{}/{i}/hp", (p + 1) % PEERS),
                        Any::from(40.0 + (tick % 5) as f64),
                    );
                }
                if tick.is_multiple_of(60) {
                    y.map.insert(&mut txn, format!("score/{p}"), Any::from((tick / 60) as f64));
                }
            }
            let txn = y.doc.transact();
            let sv = txn.state_vector().encode_v1();
            for q in (0..PEERS).filter(|&q| q != p) {
                let diff = txn.encode_diff_v1(&y.remote[q]);
                let mut msg = Vec::with_capacity(4 + sv.len() + diff.len());
                msg.extend_from_slice(&(sv.len() as u32).to_le_bytes());
                msg.extend_from_slice(&sv);
                msg.extend_from_slice(&diff);
                out.bytes_out += msg.len() as u64;
                net.send(now, p, q, msg);
            }
        }
        for r in 0..PEERS {
            let y = &peers[r];
            let txn = y.doc.transact();
            for p in (0..PEERS).filter(|&p| p != r) {
                for (i, key) in keys[p].iter().enumerate().take(SAMPLED) {
                    if let Some(Out::Any(Any::Buffer(b))) = y.map.get(&txn, key) {
                        let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                        let last = seen[r].insert((p, i), x);
                        if last.is_some_and(|l| x > l) {
                            out.visibility_ms.record(now.saturating_sub(x as u64 * TICK));
                        }
                    }
                }
            }
        }
        out.cpu_secs += t.elapsed().as_secs_f64();
        if tick == mem_mark(secs) {
            out.mem_start = live_bytes() - base;
        }
    }
    out.mem_end = live_bytes() - base;
    out
}

// ---- the core figures, small versions of benches/core.rs ---------------------------

fn core_figures(ticks: u64) -> (f64, f64, f64, f64) {
    let mut a = Context::new(1, Options::default()).unwrap();
    let mut b = Context::new(2, Options::default()).unwrap();
    a.add_peer(2).unwrap();
    b.add_peer(1).unwrap();
    let hs: Vec<_> = (0..1000)
        .map(|i| a.create(&format!("u/{i}"), ValueType::Vec3, ValueOptions::default()).unwrap())
        .collect();
    let (mut set, mut pipe, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
    let heap0 = live_bytes();
    let mut start_mem = 0;
    for s in 1..=ticks.max(20) {
        let t = Instant::now();
        for (i, &h) in hs.iter().enumerate() {
            a.set(h, [i as f32, s as f32, 0.0]).unwrap();
        }
        let st = t.elapsed().as_nanos() as u64;
        let t = Instant::now();
        a.tick(s * TICK);
        let mut n = 0;
        while let Some(m) = a.poll_outbound() {
            n += m.bytes.len();
            b.receive(&m.bytes).unwrap();
        }
        b.tick(s * TICK);
        let pt = t.elapsed().as_nanos() as u64;
        while let Some(m) = b.poll_outbound() {
            a.receive(&m.bytes).unwrap();
        }
        while a.poll_change().is_some() {}
        while b.poll_change().is_some() {}
        set.push(st);
        pipe.push(pt);
        bytes.push(n as u64);
        if s == ticks.max(20) / 3 {
            start_mem = live_bytes() - heap0;
        }
    }
    let end_mem = live_bytes() - heap0;
    (
        quantile(&mut set, 0.5) / 1000.0,
        quantile(&mut pipe, 0.5) / 1000.0,
        quantile(&mut bytes, 0.5) / 1000.0,
        end_mem as f64 / start_mem.max(1) as f64,
    )
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let seed = arg("--seed", 1);
    let secs = arg("--secs", 60);
    let baseline_secs = arg("--baseline-secs", 10);
    let log = |s: &str| {
        if !json {
            eprintln!("{s}");
        }
    };
    let clock = Instant::now();
    let lap = |what: &str| log(&format!("[{:>5.1}s] {what}", clock.elapsed().as_secs_f64()));
    lap("core figures");
    let (set_ns, pipe_ns, bytes_per, soak_ratio) = core_figures(arg("--core-ticks", 3000));
    lap(&format!("arena: {PEERS} peers x {ENTITIES} entities, {secs} s of virtual time"));
    let z = arena(seed, secs);
    lap(&format!("arena with plain yrs, {baseline_secs} s (its memory grows ~400 B per write)"));
    let y = baseline_arena(seed, baseline_secs);
    lap("contention");
    let cont: Vec<(usize, Outcome)> =
        [2usize, 4, 8].iter().map(|&n| (n, contention(seed, n, 10.min(secs)))).collect();
    lap("late join");
    let late = late_join(seed, 30.min(secs / 2).max(1));
    lap("partition");
    let split = partition(seed, 5.min(secs / 2).max(1));
    lap("done");

    let zv50 = z.visibility_ms.quantile(0.5).map_or(-1, |v| v as i64);
    let zv99 = z.visibility_ms.quantile(0.99).map_or(-1, |v| v as i64);
    let yv50 = y.visibility_ms.quantile(0.5).map_or(-1, |v| v as i64);
    let yv99 = y.visibility_ms.quantile(0.99).map_or(-1, |v| v as i64);
    if json {
        println!(
            "{{\"set_ns_p50\": {set_ns:.1}, \"flush_apply_ns_per_value\": {pipe_ns:.1}, \"bytes_per_vec3_update\": {bytes_per:.2}, \
\"soak_mem_ratio\": {soak_ratio:.3}, \"arena_visibility_ms_p50\": {zv50}, \"arena_visibility_ms_p99\": {zv99}, \
\"arena_converge_ms_p50\": {}, \"arena_converge_ms_p99\": {}, \"arena_cpu_pct_per_peer\": {:.3}, \
\"arena_bytes_per_s_per_peer\": {:.0}, \"arena_mem_ratio\": {:.3}, \"arena_corrections_per_min\": {:.1}, \
\"baseline_arena_visibility_ms_p50\": {yv50}, \"baseline_arena_visibility_ms_p99\": {yv99}, \
\"baseline_arena_cpu_pct_per_peer\": {:.3}, \"baseline_arena_bytes_per_s_per_peer\": {:.0}, \"baseline_arena_mem_ratio\": {:.3}, \
\"late_join_catch_up_ms\": {}, \"partition_heal_ms\": {}}}",
            z.converge_p50,
            z.converge_p99,
            z.cpu_pct_per_peer(PEERS),
            z.bytes_per_s_per_peer(PEERS),
            z.mem_ratio(),
            z.corrections as f64 / (z.secs / 60.0),
            y.cpu_pct_per_peer(PEERS),
            y.bytes_per_s_per_peer(PEERS),
            y.mem_ratio(),
            late.catch_up_ms.map_or(-1, |v| v as i64),
            split.catch_up_ms.map_or(-1, |v| v as i64),
        );
        return;
    }
    println!("\nzen-bench (seed {seed}; arena: 8 peers x 125 entities, vec3 60 Hz FastLocal, hp TakeAverage, score WaitForSync;");
    println!("25 +- 5 ms one way, 2% loss; plain yrs: one Doc + Map per peer, a state-vector diff per tick to each peer)\n");
    println!("| arena                                  |     zen-crdt |    plain yrs |");
    println!("|----------------------------------------|--------------|--------------|");
    println!("| virtual seconds                        | {:>12} | {:>12} |", secs, baseline_secs);
    println!(
        "| FastLocal visibility p50 / p99 (ms)    | {:>5} / {:<5} | {:>5} / {:<5} |",
        zv50, zv99, yv50, yv99
    );
    println!(
        "| WaitForSync converge p50 / p99 (ms)    | {:>5} / {:<5} | {:>12} |",
        z.converge_p50, z.converge_p99, "n/a"
    );
    println!(
        "| corrections per minute                 | {:>12.1} | {:>12} |",
        z.corrections as f64 / (z.secs / 60.0),
        "n/a"
    );
    println!(
        "| bytes per second per peer              | {:>12.0} | {:>12.0} |",
        z.bytes_per_s_per_peer(PEERS),
        y.bytes_per_s_per_peer(PEERS)
    );
    println!(
        "| CPU % of one core per peer             | {:>12.2} | {:>12.2} |",
        z.cpu_pct_per_peer(PEERS),
        y.cpu_pct_per_peer(PEERS)
    );
    println!(
        "| memory at 5 s -> end (all peers)       | {:>5.1}->{:<5.1}MB | {:>5.0}->{:<5.0}MB |",
        z.mem_start as f64 / 1e6,
        z.mem_end as f64 / 1e6,
        y.mem_start as f64 / 1e6,
        y.mem_end as f64 / 1e6
    );
    println!(
        "| memory end / start                     | {:>12.2} | {:>12.2} |",
        z.mem_ratio(),
        y.mem_ratio()
    );
    println!("\n| contention (100 shared vec3, all peers write every tick, {:>2} s) | corrections/min | agree after stop (ms) | KB/s per peer |", 10.min(secs));
    println!("|----------------------------------------------------------------|-----------------|-----------------------|---------------|");
    for (n, o) in &cont {
        println!(
            "| {n} peers                                                        | {:>15.0} | {:>21} | {:>13.1} |",
            o.corrections as f64 / (o.secs / 60.0),
            o.catch_up_ms.unwrap_or(0),
            o.bytes_per_s_per_peer(*n) / 1000.0
        );
    }
    println!(
        "\nlate join after {} s: the newcomer agrees on every value after {} ms",
        30.min(secs / 2).max(1),
        late.catch_up_ms.map_or("(not within 5 s)".into(), |v| v.to_string())
    );
    println!(
        "partition 4/4 for {} s: everyone agrees {} ms after healing",
        5.min(secs / 2).max(1),
        split.catch_up_ms.map_or("(not within 5 s)".into(), |v| v.to_string())
    );
    println!(
        "\ncore: set p50 {set_ns:.1} ns, set+flush+apply {pipe_ns:.0} ns/value, {bytes_per:.1} B per vec3 update, memory end/start over the core run x{soak_ratio:.2}"
    );
}

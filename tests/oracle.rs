//! Agreement is not correctness: peers that agree on a wrong value pass a convergence
//! test. Here an independent model (written from the policies' documented meaning, not
//! from the library's code) computes what every value must read after rounds of writes,
//! and every peer must read exactly that.
//!
//! A round is a set of writes made in one tick, before any of them can be delivered, so
//! writes of one round to one value are concurrent; then the network misbehaves (loss,
//! duplication, reordering, partitions) and finally heals until everything converges, so
//! every write of a round happened before every write of the next. For one value, the
//! writes of the last round that touched it are the concurrent frontier (a writer's last
//! write in the round stands for it: writes in one tick coalesce). The model resolves the
//! frontier: a removal wins; one write is the value; several are merged by the policy.
//! LastWriterWins is checked as "one of the concurrent values" (its total order is the
//! library's choice); every other policy is checked exactly.
//!
//! Touches made in a round's tick (by writers of the round or by anyone else) must leave
//! the model as it is: a touch re-announces, it never competes with the writes it races.
//!
//! A peer may save halfway through a round's misbehaviour and be replaced by a context
//! loaded from that save: the model is the same, so save → load → continue must end
//! where a context that never stopped would.
//!
//! `the_oracle_catches_a_broken_policy` shows the check has teeth: a Max that keeps the
//! first write instead passes the agreement test but fails this one.

use proptest::prelude::*;
use std::sync::Arc;
use zen_crdt::sim::{LinkConfig, Sim};
use zen_crdt::*;

/// The values of every session: (type, policy name). "mix" is `mix()` below.
const VALUES: [(ValueType, &str); 12] = [
    (ValueType::I64, "max"),
    (ValueType::I64, "min"),
    (ValueType::I64, "avg"),
    (ValueType::I64, "lww"),
    (ValueType::F64, "avg"),
    (ValueType::Str, "max"),
    (ValueType::Vec3, "max"),
    (ValueType::Vec3, "avg"),
    (ValueType::Color, "min"),
    (ValueType::Quat, "avg"),
    (ValueType::Bool, "lww"),
    (ValueType::I64, "mix"),
];

fn policy(name: &str) -> Policy {
    match name {
        "max" => Policy::Max,
        "min" => Policy::Min,
        "avg" => Policy::TakeAverage,
        "lww" => Policy::LastWriterWins,
        other => Policy::Custom(other.into()),
    }
}

/// A deterministic custom merge: the candidate whose writer id, mixed with the count,
/// is largest. The model applies the same function (it is the host's, not the library's).
fn mix_pick(writers: &[u64]) -> usize {
    let n = writers.len() as u64;
    (0..writers.len())
        .max_by_key(|&i| (writers[i].wrapping_mul(0x9E37_79B9).wrapping_add(n) % 17, writers[i]))
        .expect("candidates")
}

fn mix() -> MergeFn {
    Arc::new(|c: &[Candidate]| {
        let writers: Vec<u64> = c.iter().map(|c| c.writer).collect();
        Some(c[mix_pick(&writers)].value.clone())
    })
}

fn value_of(ty: ValueType, raw: u64) -> Value {
    let f = (raw % 2001) as f32 / 8.0 - 125.0;
    match ty {
        ValueType::Bool => Value::Bool(raw & 1 == 1),
        ValueType::I64 => Value::I64((raw % 1000) as i64 - 500),
        ValueType::F64 => Value::F64((raw % 100_000) as f64 / 7.0),
        ValueType::Str => Value::Str(format!("s{}", raw % 97)),
        ValueType::Vec3 => Value::Vec3([f, -f * 0.5, (raw % 7) as f32]),
        ValueType::Color => Value::Color([(raw % 11) as f32 / 10.0, 0.5, f / 125.0, 1.0]),
        ValueType::Quat => {
            let a = (raw % 360) as f32 * std::f32::consts::PI / 180.0;
            let s = if raw & 4 == 0 { 1.0 } else { -1.0 }; // either hemisphere
            Value::Quat([0.0, s * (a / 2.0).sin(), 0.0, s * (a / 2.0).cos()])
        }
        _ => unreachable!("not in VALUES"),
    }
}

/// What a value must read: exactly this, one of these, or removed.
#[derive(Clone, Debug)]
enum Expect {
    Unwritten,
    Exactly(Value),
    OneOf(Vec<Value>),
    Removed,
}

/// The model: the frontier (writer, write; `None` is a removal), sorted by writer, of
/// one value under `policy` (the name of `VALUES`).
fn expect(policy: &str, frontier: &[(u64, Option<Value>)]) -> Expect {
    if frontier.iter().any(|(_, w)| w.is_none()) {
        return Expect::Removed;
    }
    let vals: Vec<Value> = frontier.iter().map(|(_, w)| w.clone().expect("a write")).collect();
    if vals.len() == 1 {
        return Expect::Exactly(vals[0].clone());
    }
    match policy {
        "lww" => Expect::OneOf(vals),
        "mix" => {
            let writers: Vec<u64> = frontier.iter().map(|(w, _)| *w).collect();
            Expect::Exactly(vals[mix_pick(&writers)].clone())
        }
        "max" | "min" => Expect::Exactly(extreme(&vals, policy == "max")),
        "avg" => Expect::Exactly(mean(&vals)),
        other => unreachable!("{other}"),
    }
}

/// Max or Min: numbers by value (floats by IEEE total order), strings by bytes,
/// vectors and colors component by component.
fn extreme(vals: &[Value], max: bool) -> Value {
    let pick = |a: f32, b: f32| if (b.total_cmp(&a) == std::cmp::Ordering::Greater) == max { b } else { a };
    vals.iter()
        .cloned()
        .reduce(|a, b| match (a, b) {
            (Value::I64(x), Value::I64(y)) => Value::I64(if max { x.max(y) } else { x.min(y) }),
            (Value::Str(x), Value::Str(y)) => Value::Str(if (y > x) == max { y } else { x }),
            (Value::Vec3(x), Value::Vec3(y)) => Value::Vec3([0, 1, 2].map(|i| pick(x[i], y[i]))),
            (Value::Color(x), Value::Color(y)) => Value::Color([0, 1, 2, 3].map(|i| pick(x[i], y[i]))),
            other => unreachable!("{other:?}"),
        })
        .expect("several values")
}

/// TakeAverage: integers floor(sum / n); floats and vectors the f64 mean of the writes
/// in writer order; rotations the normalised sum of the unit quaternions, each flipped
/// into the first one's hemisphere.
fn mean(vals: &[Value]) -> Value {
    let n = vals.len() as f64;
    match &vals[0] {
        Value::I64(_) => {
            let sum: i128 = vals.iter().map(|v| if let Value::I64(x) = v { *x as i128 } else { 0 }).sum();
            Value::I64(sum.div_euclid(vals.len() as i128) as i64)
        }
        Value::F64(_) => {
            Value::F64(vals.iter().map(|v| if let Value::F64(x) = v { *x } else { 0.0 }).sum::<f64>() / n)
        }
        Value::Vec3(_) => {
            let mut s = [0f64; 3];
            for v in vals {
                if let Value::Vec3(x) = v {
                    (0..3).for_each(|i| s[i] += x[i] as f64);
                }
            }
            Value::Vec3(s.map(|c| (c / n) as f32))
        }
        Value::Quat(_) => {
            let unit = |v: &Value| {
                let Value::Quat(q) = v else { unreachable!() };
                let q = q.map(|c| c as f64);
                let len = q.iter().map(|c| c * c).sum::<f64>().sqrt();
                q.map(|c| c / len)
            };
            let first = unit(&vals[0]);
            let mut s = [0f64; 4];
            for v in vals {
                let q = unit(v);
                let flip =
                    if q.iter().zip(&first).map(|(a, b)| a * b).sum::<f64>() < 0.0 { -1.0 } else { 1.0 };
                (0..4).for_each(|i| s[i] += flip * q[i]);
            }
            let len = s.iter().map(|c| c * c).sum::<f64>().sqrt();
            Value::Quat(s.map(|c| (c / len) as f32))
        }
        other => unreachable!("{other:?}"),
    }
}

/// Whether `read` (what a peer's `get` returned) is what the model expects. Floats
/// compare bitwise except where the model's own arithmetic may round differently (the
/// rotation average), where 1e-5 is allowed.
fn matches(expect: &Expect, read: &Result<Value, Error>, ty: ValueType) -> bool {
    let same = |a: &Value, b: &Value| match (a, b) {
        (Value::Quat(x), Value::Quat(y)) => x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-5),
        _ => a.same_bits(b),
    };
    match (expect, read) {
        (Expect::Removed, Err(Error::Removed(_))) => true,
        (Expect::Unwritten, Ok(v)) => v.same_bits(&ty.zero()),
        (Expect::Exactly(e), Ok(v)) => same(e, v),
        (Expect::OneOf(es), Ok(v)) => es.iter().any(|e| same(e, v)),
        _ => false,
    }
}

#[derive(Clone, Debug)]
struct Case {
    seed: u64,
    peers: usize,
    loss: f64,
    /// Rounds of writes: (peer, value index, raw; `None` = a removal).
    rounds: Vec<Vec<(usize, usize, Option<u64>)>>,
    /// Per round, touches made in the same tick as its writes: (peer, value index).
    touches: Vec<Vec<(usize, usize)>>,
    /// A partition mask per round (0 = none) during its misbehaving phase.
    partitions: Vec<u8>,
    /// Per round, a peer that saves halfway through the misbehaving phase and is
    /// replaced by a context loaded from that save (`None`: nobody restarts).
    restarts: Vec<Option<usize>>,
}

fn case() -> impl Strategy<Value = Case> {
    let write = (0..6usize, 0..VALUES.len(), prop::option::weighted(0.9, any::<u64>()));
    (
        any::<u64>(),
        2..=6usize,
        0.0..0.3f64,
        prop::collection::vec(prop::collection::vec(write, 1..12), 1..6),
        prop::collection::vec(any::<u8>(), 6),
        prop::collection::vec(prop::option::weighted(0.3, 0..6usize), 6),
        prop::collection::vec(prop::collection::vec((0..6usize, 0..VALUES.len()), 0..4), 6),
    )
        .prop_map(|(seed, peers, loss, rounds, partitions, restarts, touches)| Case {
            seed,
            peers,
            loss,
            rounds,
            touches,
            partitions,
            restarts,
        })
}

/// Plays `case`; `lie` names a value index whose policy the model is told wrongly
/// (for the test of the oracle itself). Returns the first mismatch, if any.
fn play(case: &Case, registered: &dyn Fn() -> MergeFn, broken: Option<usize>) -> Result<(), String> {
    let n = case.peers;
    let mut sim = Sim::new(case.seed, n, LinkConfig::default(), Options::default());
    for i in 0..n {
        sim.ctx(i).register_merge("mix", mix());
        sim.ctx(i).register_merge("broken-max", registered());
    }
    // Peer 1 creates every value over a clean network, so every peer knows its policy.
    for (v, (ty, p)) in VALUES.iter().enumerate() {
        let p = if Some(v) == broken { Policy::Custom("broken-max".into()) } else { policy(p) };
        sim.ctx(0).create(&format!("v{v}"), *ty, ValueOptions { policy: p, ..Default::default() }).unwrap();
    }
    sim.run_for(500);
    let mut model: Vec<Expect> = vec![Expect::Unwritten; VALUES.len()];
    let lossy = LinkConfig {
        latency_ms: 20,
        jitter_ms: 30,
        loss: case.loss,
        duplicate: 0.05,
        reorder: 0.1,
        bandwidth_bytes_per_s: 0,
    };
    for (r, round) in case.rounds.iter().enumerate() {
        // The frontier of each value this round: each writer's last write.
        let mut frontier: Vec<Vec<(u64, Option<Value>)>> = vec![Vec::new(); VALUES.len()];
        for &(peer, v, raw) in round {
            let (p, ty) = (peer % n, VALUES[v].0);
            let write = raw.map(|raw| value_of(ty, raw));
            let h = sim.ctx(p).open(&format!("v{v}")).unwrap();
            match &write {
                Some(w) => sim.ctx(p).set(h, w.clone()).unwrap(),
                None => sim.ctx(p).remove(h).unwrap(),
            }
            let writer = p as u64 + 1;
            frontier[v].retain(|(w, _)| *w != writer);
            frontier[v].push((writer, write));
        }
        for &(peer, v) in &case.touches[r % case.touches.len()] {
            let p = peer % n;
            let h = sim.ctx(p).open(&format!("v{v}")).unwrap();
            // Refused (and harmless) on a value never written or removed.
            let _ = sim.ctx(p).touch(h);
        }
        for (v, f) in frontier.iter_mut().enumerate() {
            if !f.is_empty() {
                f.sort_by_key(|(w, _)| *w);
                model[v] = expect(VALUES[v].1, f);
            }
        }
        sim.net.link = lossy.clone();
        let mask = case.partitions[r % case.partitions.len()];
        sim.partition((0..n).map(|i| ((mask >> i) & 1) as u32).collect());
        sim.run_for(200);
        // Save, stop, load, continue: under its own id the loaded context takes up its
        // stream where the save left it, and the model must not notice.
        if let Some(p) = case.restarts[r % case.restarts.len()].map(|p| p % n) {
            let saved = sim.ctx(p).save();
            let mut back =
                Context::load(p as u64 + 1, Options::default(), &saved).map_err(|e| e.to_string())?;
            back.register_merge("mix", mix());
            back.register_merge("broken-max", registered());
            sim.restart(p, back);
        }
        sim.run_for(200);
        sim.heal();
        sim.net.link = LinkConfig::default();
        sim.run_for(6_000);
        for i in 0..n {
            for (v, e) in model.iter().enumerate() {
                let c = sim.ctx(i);
                let h = c.open(&format!("v{v}")).unwrap();
                let read = c.get(h);
                if !matches(e, &read, VALUES[v].0) {
                    return Err(format!(
                        "round {r}: peer {} reads {read:?} for v{v} ({:?}, {}), the model says {e:?}",
                        i + 1,
                        VALUES[v].0,
                        VALUES[v].1
                    ));
                }
                if c.state(h).unwrap() != SyncState::Converged {
                    return Err(format!("round {r}: peer {} v{v} not converged", i + 1));
                }
            }
        }
    }
    if sim.rejected > 0 {
        return Err(format!("{} messages rejected: {:?}", sim.rejected, sim.last_error));
    }
    Ok(())
}

fn config() -> ProptestConfig {
    let cases = std::env::var("ZEN_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(256);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    /// Every peer reads what the model says, after every round.
    #[test]
    fn every_peer_reads_what_the_policies_mean(case in case()) {
        let unused: &dyn Fn() -> MergeFn = &|| mix();
        if let Err(e) = play(&case, unused, None) {
            prop_assert!(false, "{e}\n{case:?}");
        }
    }
}

/// The oracle has teeth: value 0 is told to be Max, but runs a merge that keeps the
/// first (lowest writer's) candidate. Peers still agree, and the oracle fails it as soon
/// as a round has concurrent writes whose first is not the largest.
#[test]
fn the_oracle_catches_a_broken_policy() {
    let keeps_first = || -> MergeFn { Arc::new(|c: &[Candidate]| Some(c[0].value.clone())) };
    let case = Case {
        seed: 3,
        peers: 2,
        loss: 0.0,
        rounds: vec![vec![(0, 0, Some(100)), (1, 0, Some(900))]],
        touches: vec![vec![]],
        partitions: vec![0],
        restarts: vec![None],
    };
    let err = play(&case, &keeps_first, Some(0)).expect_err("the broken Max must be caught");
    assert!(err.contains("v0") && err.contains("model says Exactly(I64(400))"), "{err}");
    // The same case with the real Max passes.
    play(&case, &keeps_first, None).unwrap();
    // And the model itself, directly.
    let f = [(1, Some(Value::I64(3))), (2, Some(Value::I64(9)))];
    assert!(!matches(&expect("max", &f), &Ok(Value::I64(3)), ValueType::I64));
    assert!(matches(&expect("max", &f), &Ok(Value::I64(9)), ValueType::I64));
    assert!(matches(&expect("lww", &f), &Ok(Value::I64(3)), ValueType::I64));
    assert!(!matches(&expect("lww", &f), &Ok(Value::I64(4)), ValueType::I64));
    assert!(matches(
        &expect("min", &[(1, None), (2, Some(Value::I64(1)))]),
        &Err(Error::Removed("v".into())),
        ValueType::I64
    ));
}

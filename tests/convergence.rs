//! The CRDT promise, checked by property tests: whatever the writes, modes, policies and
//! delivery (loss, duplication, reordering, partitions that heal, late join, leave and
//! rejoin), once the network heals every peer reads identical values and every value is
//! Converged. Each case runs a seeded simulation; a failing case prints its inputs,
//! seed included, and `PROPTEST_CASES`/the persisted seed replay it.

use proptest::prelude::*;
use std::sync::Arc;
use zen_crdt::sim::{LinkConfig, Sim};
use zen_crdt::*;

const TYPES: [ValueType; 10] = [
    ValueType::Bool,
    ValueType::I64,
    ValueType::F64,
    ValueType::Str,
    ValueType::Bytes,
    ValueType::Vec2,
    ValueType::Vec3,
    ValueType::Vec4,
    ValueType::Color,
    ValueType::Quat,
];

#[derive(Clone, Debug)]
enum Op {
    Write { peer: usize, value: usize, policy: u8, raw: u64 },
    Remove { peer: usize, value: usize },
    Mode { peer: usize, value: usize, wait: bool },
    Step { ticks: u8 },
    Partition { mask: u8 },
    Heal,
    Leave { peer: usize },
    Join { peer: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0..8usize, 0..10usize, 0..5u8, any::<u64>()).prop_map(|(peer, value, policy, raw)| Op::Write { peer, value, policy, raw }),
        1 => (0..8usize, 0..10usize).prop_map(|(peer, value)| Op::Remove { peer, value }),
        2 => (0..8usize, 0..10usize, any::<bool>()).prop_map(|(peer, value, wait)| Op::Mode { peer, value, wait }),
        6 => (1..6u8).prop_map(|ticks| Op::Step { ticks }),
        1 => any::<u8>().prop_map(|mask| Op::Partition { mask }),
        1 => Just(Op::Heal),
        1 => (0..8usize).prop_map(|peer| Op::Leave { peer }),
        1 => (0..8usize).prop_map(|peer| Op::Join { peer }),
    ]
}

fn value_of(ty: ValueType, raw: u64) -> Value {
    let f = (raw % 2001) as f32 / 8.0 - 125.0;
    match ty {
        ValueType::Bool => Value::Bool(raw & 1 == 1),
        ValueType::I64 => Value::I64((raw % 1000) as i64 - 500),
        ValueType::F64 => Value::F64((raw % 100_000) as f64 / 7.0),
        ValueType::Str => Value::Str(format!("s{}", raw % 97)),
        ValueType::Bytes => Value::Bytes((raw % 251).to_le_bytes()[..(raw % 5) as usize].to_vec()),
        ValueType::Vec2 => Value::Vec2([f, -f]),
        ValueType::Vec3 => Value::Vec3([f, f * 0.5, (raw % 7) as f32]),
        ValueType::Vec4 => Value::Vec4([f, 1.0, -f, (raw % 3) as f32]),
        ValueType::Color => Value::Color([(raw % 11) as f32 / 10.0, 0.5, f / 125.0, 1.0]),
        // Not normalised, and sometimes in opposite hemispheres: TakeAverage aligns them.
        ValueType::Quat => Value::Quat([f / 125.0, (raw % 5) as f32 / 4.0, -0.5, (raw % 3) as f32]),
    }
}

fn policy_for(ty: ValueType, code: u8) -> Policy {
    let p = match code {
        0 => Policy::LastWriterWins,
        1 => Policy::Max,
        2 => Policy::Min,
        3 => Policy::TakeAverage,
        _ => Policy::Custom("mix".into()),
    };
    if p.check(ty).is_err() {
        Policy::LastWriterWins
    } else {
        p
    }
}

/// A deterministic custom merge: the candidate whose writer id, mixed with the count,
/// is largest (order-independent, as merges must be).
fn mix() -> MergeFn {
    Arc::new(|c: &[Candidate]| {
        let n = c.len() as u64;
        c.iter()
            .max_by_key(|c| (c.writer.wrapping_mul(0x9E37_79B9).wrapping_add(n) % 17, c.writer))
            .map(|c| c.value.clone())
    })
}

struct Case {
    peers: usize,
    seed: u64,
    loss: f64,
    duplicate: f64,
    reorder: f64,
    jitter: u64,
    late: Option<usize>,
    ops: Vec<Op>,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "Case {{ seed: {}, peers: {}, loss: {:?}, dup: {:?}, reorder: {:?}, jitter: {}, late: {:?}, ops: {:?} }}",
            self.seed, self.peers, self.loss, self.duplicate, self.reorder, self.jitter, self.late, self.ops
        )
    }
}

fn case() -> impl Strategy<Value = Case> {
    (
        2..=8usize,
        any::<u64>(),
        0.0..0.3f64,
        0.0..0.2f64,
        0.0..0.3f64,
        0..40u64,
        proptest::option::of(0..8usize),
        prop::collection::vec(op(), 20..250),
    )
        .prop_map(|(peers, seed, loss, duplicate, reorder, jitter, late, ops)| Case {
            peers,
            seed,
            loss,
            duplicate,
            reorder,
            jitter,
            late: late.filter(|&l| l < peers),
            ops,
        })
}

fn run(case: &Case) -> Result<(), TestCaseError> {
    let link = LinkConfig {
        latency_ms: 20,
        jitter_ms: case.jitter,
        loss: case.loss,
        duplicate: case.duplicate,
        reorder: case.reorder,
        bandwidth_bytes_per_s: 0,
    };
    let opts = Options { peer_timeout_ms: 1000, hibernate_after_ms: 300, ..Options::default() };
    let mut sim = Sim::new(case.seed, case.peers, link, opts);
    for i in 0..case.peers {
        sim.ctx(i).register_merge("mix", mix());
    }
    if let Some(l) = case.late {
        sim.leave(l);
    }
    let n = case.peers;
    for op in &case.ops {
        match *op {
            Op::Write { peer, value, policy, raw } => {
                let p = peer % n;
                let ty = TYPES[value];
                let opts = ValueOptions {
                    mode: Mode::FastLocal,
                    policy: policy_for(ty, policy),
                    ..Default::default()
                };
                // A concurrent creator may have fixed another type; then the write is refused.
                let id = format!("v{value}");
                let h = match sim.ctx(p).open(&id) {
                    Ok(h) => Ok(h),
                    Err(_) => sim.ctx(p).create(&id, ty, opts),
                };
                if let Ok(h) = h {
                    let _ = sim.ctx(p).set(h, value_of(ty, raw));
                }
            }
            Op::Remove { peer, value } => {
                if let Ok(h) = sim.ctx(peer % n).open(&format!("v{value}")) {
                    sim.ctx(peer % n).remove(h).unwrap();
                }
            }
            Op::Mode { peer, value, wait } => {
                if let Ok(h) = sim.ctx(peer % n).open(&format!("v{value}")) {
                    let mode = if wait { Mode::WaitForSync } else { Mode::FastLocal };
                    sim.ctx(peer % n).set_mode(h, mode).unwrap();
                }
            }
            Op::Step { ticks } => (0..ticks).for_each(|_| sim.step()),
            Op::Partition { mask } => sim.partition((0..n).map(|i| ((mask >> i) & 1) as u32).collect()),
            Op::Heal => sim.heal(),
            Op::Leave { peer } => sim.leave(peer % n),
            Op::Join { peer } => sim.join(peer % n),
        }
    }
    sim.heal();
    for i in 0..n {
        if !sim.online(i) {
            sim.join(i);
        }
    }
    sim.run_for(15_000);
    if std::env::var("ZEN_TRACE").is_ok() {
        eprintln!(
            "case peers={} now={} delivered={} dropped={} values={}",
            n,
            sim.now,
            sim.net.delivered,
            sim.net.dropped,
            sim.peers[0].value_count()
        );
    }
    prop_assert_eq!(sim.rejected, 0, "well-formed messages were rejected: {:?}", sim.last_error);
    check_converged(&sim)
}

fn check_converged(sim: &Sim) -> Result<(), TestCaseError> {
    let n = sim.peers.len();
    let mut ids: Vec<String> = sim.peers.iter().flat_map(|c| c.value_ids().map(String::from)).collect();
    ids.sort();
    ids.dedup();
    for id in &ids {
        let mut reads = Vec::new();
        for i in 0..n {
            let c = &sim.peers[i];
            let h = c.open(id).map_err(|e| TestCaseError::fail(format!("peer {} lacks {id}: {e}", i + 1)))?;
            if c.state(h).unwrap() != SyncState::Converged {
                let all: Vec<String> = sim
                    .peers
                    .iter()
                    .map(|c| c.open(id).map(|h| c.debug_value(h)).unwrap_or_default())
                    .collect();
                prop_assert!(false, "peer {} value {} not converged:\n{}", i + 1, id, all.join("\n"));
            }
            reads.push((c.get(h), c.value_type(h).unwrap(), c.policy(h).unwrap()));
        }
        for (i, r) in reads.iter().enumerate().skip(1) {
            let same = match (&reads[0].0, &r.0) {
                (Ok(a), Ok(b)) => a.same_bits(b),
                (Err(a), Err(b)) => a == b,
                _ => false,
            };
            prop_assert!(
                same,
                "value {} differs: peer 1 reads {:?}, peer {} reads {:?}",
                id,
                reads[0],
                i + 1,
                r
            );
            prop_assert_eq!(&reads[0].1, &r.1);
            prop_assert_eq!(&reads[0].2, &r.2);
        }
    }
    Ok(())
}

/// 200 cases by default; `ZEN_CASES=5000` for a longer hunt. Failures print the case
/// (seed included) rather than persisting it, so CI output alone replays them.
fn config() -> ProptestConfig {
    let cases = std::env::var("ZEN_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    /// Every peer ends with identical, Converged values.
    #[test]
    fn all_peers_converge(case in case()) {
        run(&case)?;
    }
}

proptest! {
    #![proptest_config(config())]

    /// The same writes delivered in any order, any number of times, give the same values:
    /// two sessions with the same writes and different network seeds agree.
    #[test]
    fn delivery_order_does_not_matter(writes in prop::collection::vec((0..4usize, 0..10usize, 0..5u8, any::<u64>()), 5..40), s1 in any::<u64>(), s2 in any::<u64>()) {
        let mut results = Vec::new();
        for seed in [s1, s2] {
            let lossy = LinkConfig { latency_ms: 10, jitter_ms: 60, loss: 0.2, duplicate: 0.2, reorder: 0.3, bandwidth_bytes_per_s: 0 };
            // The values are created over a clean network, so every writer starts from the
            // same state and the writes are the same in both sessions.
            let mut sim = Sim::new(seed, 4, LinkConfig::default(), Options::default());
            for i in 0..4 {
                sim.ctx(i).register_merge("mix", mix());
            }
            // Every value is created by peer 1 first so all sessions share policies.
            for (v, ty) in TYPES.iter().enumerate() {
                let policy = policy_for(*ty, (v % 5) as u8);
                sim.ctx(0).create(&format!("v{v}"), *ty, ValueOptions { policy, ..Default::default() }).unwrap();
            }
            sim.run_for(500);
            sim.net.link = lossy;
            // All writes happen in one tick, concurrently.
            for &(peer, v, _, raw) in &writes {
                let ty = TYPES[v];
                let h = sim.ctx(peer).create(&format!("v{v}"), ty, ValueOptions::default()).unwrap();
                sim.ctx(peer).set(h, value_of(ty, raw)).unwrap();
            }
            sim.run_for(15_000);
            check_converged(&sim)?;
            let reads: Vec<_> = (0..TYPES.len()).map(|v| {
                let c = sim.ctx(0);
                let h = c.open(&format!("v{v}")).unwrap();
                c.get(h)
            }).collect();
            results.push(reads);
        }
        for (a, b) in results[0].iter().zip(&results[1]) {
            let same = match (a, b) { (Ok(a), Ok(b)) => a.same_bits(b), (a, b) => a == b };
            prop_assert!(same, "{:?} vs {:?}", a, b);
        }
    }
}

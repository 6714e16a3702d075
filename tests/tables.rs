//! Tables: keys (string or integer) to typed entries, replicated like values. Events per
//! key (`Added`, `Removed`, `Modified`), initial ones on a late join, one entry per key on
//! every peer after concurrent inserts, removed entries forgotten once every member
//! holds the removal, and a model of what every key must read after rounds of
//! concurrent writes under loss, duplication, reordering, partitions and late joins.

// Peers are numbered: `p` indexes the session and its handles alike.
#![allow(clippy::needless_range_loop)]

use proptest::prelude::*;
use zen_crdt::sim::{LinkConfig, Sim};
use zen_crdt::*;

fn opts() -> Options {
    Options { tick_interval_ms: 16, ..Options::default() }
}

fn lossy() -> LinkConfig {
    LinkConfig { loss: 0.15, duplicate: 0.1, reorder: 0.1, ..LinkConfig::default() }
}

fn table_events(ctx: &mut Context) -> Vec<TableEvent> {
    std::iter::from_fn(|| ctx.poll_table_change()).collect()
}

fn open(s: &mut Sim, p: usize, id: &str, ty: ValueType) -> TableHandle {
    s.ctx(p).open_table(id, ty, TableOptions::default()).unwrap()
}

fn entries(s: &mut Sim, p: usize, id: &str, ty: ValueType) -> Vec<(Key, Value)> {
    let t = open(s, p, id, ty);
    s.ctx(p).table_entries(t).unwrap()
}

#[test]
fn inserts_updates_and_removals_reach_every_peer_with_one_event_each() {
    let mut s = Sim::new(1, 3, LinkConfig::default(), opts());
    let t: Vec<TableHandle> = (0..3).map(|p| open(&mut s, p, "blocks", ValueType::I64)).collect();
    s.ctx(0).table_set(t[0], 7i64, 70i64).unwrap();
    s.ctx(0).table_set(t[0], "door", 1i64).unwrap();
    // FastLocal: the writer reads it at once, and hears of it at once.
    assert_eq!(s.ctx(0).table_get(t[0], 7i64).unwrap(), Some(Value::I64(70)));
    let ev = table_events(s.ctx(0));
    assert_eq!(
        ev.iter().map(|e| (e.kind, e.key.clone())).collect::<Vec<_>>(),
        [(EntryKind::Added, Key::Int(7)), (EntryKind::Added, Key::from("door"))]
    );
    assert_eq!((ev[0].old.clone(), ev[0].new.clone(), ev[0].origin), (None, Some(Value::I64(70)), 1));
    s.run_for_keep_events(300);
    for p in 1..3 {
        let ev = table_events(s.ctx(p));
        assert_eq!(ev.len(), 2, "peer {}: {ev:?}", p + 1);
        assert!(ev.iter().all(|e| e.kind == EntryKind::Added && e.origin == 1 && !e.is_initial));
        assert_eq!(s.ctx(p).table_len(t[p]).unwrap(), 2);
        assert_eq!(
            s.ctx(p).table_entries(t[p]).unwrap(),
            [(Key::Int(7), Value::I64(70)), (Key::from("door"), Value::I64(1))]
        );
    }
    // Another peer updates one key and removes the other.
    s.ctx(1).table_set(t[1], 7i64, 71i64).unwrap();
    assert!(s.ctx(1).table_remove(t[1], "door").unwrap());
    assert!(!s.ctx(1).table_remove(t[1], "nothing").unwrap());
    s.run_for_keep_events(300);
    for p in [0, 2] {
        let ev = table_events(s.ctx(p));
        let seen: Vec<_> =
            ev.iter().map(|e| (e.kind, e.key.clone(), e.old.clone(), e.new.clone(), e.origin)).collect();
        assert_eq!(
            seen,
            [
                (EntryKind::Modified, Key::Int(7), Some(Value::I64(70)), Some(Value::I64(71)), 2),
                (EntryKind::Removed, Key::from("door"), Some(Value::I64(1)), None, 2),
            ],
            "peer {}",
            p + 1
        );
        assert_eq!(s.ctx(p).table_get(t[p], "door").unwrap(), None);
        assert_eq!(s.ctx(p).table_len(t[p]).unwrap(), 1);
    }
    // A removed key inserted again is a new entry, on every peer.
    s.ctx(2).table_set(t[2], "door", 2i64).unwrap();
    s.run_for(300);
    for p in 0..3 {
        assert_eq!(s.ctx(p).table_get(t[p], "door").unwrap(), Some(Value::I64(2)), "peer {}", p + 1);
    }
    // Tables and values are separate names; entries are not values.
    assert_eq!(s.ctx(0).value_count(), 0);
    assert!(s.ctx(0).open("blocks").is_err());
}

#[test]
fn bad_calls_are_refused_and_change_nothing() {
    let mut c = Context::new(1, opts()).unwrap();
    let t = c.open_table("t", ValueType::I64, TableOptions::default()).unwrap();
    assert!(matches!(c.table_set(t, 1i64, 1.5f64), Err(Error::WrongType { .. })));
    assert!(matches!(
        c.open_table("t", ValueType::Str, TableOptions::default()),
        Err(Error::WrongType { .. })
    ));
    let long = "k".repeat(300);
    assert!(matches!(c.table_set(t, long.as_str(), 1i64), Err(Error::TooLarge { .. })));
    assert!(matches!(c.create("\u{1}x", ValueType::I64, ValueOptions::default()), Err(Error::ReservedId(_))));
    let other = Context::new(2, opts()).unwrap().open_table("t", ValueType::I64, TableOptions::default());
    assert!(matches!(c.table_len(other.unwrap()), Err(Error::ForeignHandle(_))));
    assert!(matches!(c.table_len(TableHandle::from_raw(c.serial(), 9)), Err(Error::StaleHandle(_))));
    assert_eq!(c.table_len(t).unwrap(), 0);
    assert_eq!(c.pending_table_changes(), 0);
}

#[test]
fn concurrent_inserts_of_one_key_show_one_entry_everywhere_and_the_next_write_keeps_one() {
    let mut s = Sim::new(3, 3, lossy(), opts());
    let t: Vec<TableHandle> = (0..3).map(|p| open(&mut s, p, "flags", ValueType::Str)).collect();
    for p in 0..3 {
        s.ctx(p).table_set(t[p], "goal", format!("from {}", p + 1)).unwrap();
    }
    s.run_for(2000);
    let shown = entries(&mut s, 0, "flags", ValueType::Str);
    assert_eq!(shown.len(), 1);
    for p in 1..3 {
        assert_eq!(entries(&mut s, p, "flags", ValueType::Str), shown, "peer {}", p + 1);
        // Three births held, one shown.
        assert_eq!(s.ctx(p).metrics().table_entries, 3);
    }
    s.ctx(1).table_set(t[1], "goal", "settled").unwrap();
    s.run_for(2000);
    for p in 0..3 {
        assert_eq!(
            entries(&mut s, p, "flags", ValueType::Str),
            [(Key::from("goal"), Value::from("settled"))]
        );
        let m = s.ctx(p).metrics();
        assert_eq!((m.table_entries, m.entries_forgotten), (1, 2), "peer {}", p + 1);
    }
}

#[test]
fn removed_entries_are_forgotten_so_churn_leaves_memory_flat() {
    let mut s = Sim::new(4, 3, lossy(), opts());
    let t: Vec<TableHandle> = (0..3).map(|p| open(&mut s, p, "units", ValueType::Vec3)).collect();
    // Each peer keeps its last 5 insertions (keys it can see, since it made them).
    let live = 15u64;
    let mut next = 0u64;
    for round in 0..60u64 {
        let p = (round % 3) as usize;
        for _ in 0..5 {
            s.ctx(p).table_set(t[p], next as i64, Value::Vec3([next as f32, 0.0, 0.0])).unwrap();
            if next >= live {
                assert!(s.ctx(p).table_remove(t[p], (next - live) as i64).unwrap());
            }
            next += 1;
        }
        s.run_for(100);
    }
    s.run_for(3000);
    for p in 0..3 {
        let m = s.ctx(p).metrics();
        assert_eq!(s.ctx(p).table_len(t[p]).unwrap(), live as usize, "peer {}", p + 1);
        assert_eq!(m.table_entries, live, "peer {}: removed entries still held", p + 1);
        // A catch-up from a peer that had not forgotten an entry yet may bring it back
        // (removed, so it shows nothing) to be forgotten again.
        assert!(m.entries_forgotten >= next - live, "peer {}: {}", p + 1, m.entries_forgotten);
        let keys: Vec<i64> = s
            .ctx(p)
            .table_entries(t[p])
            .unwrap()
            .into_iter()
            .map(|(k, _)| match k {
                Key::Int(k) => k,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(keys, ((next - live) as i64..next as i64).collect::<Vec<_>>());
    }
}

#[test]
fn a_removal_is_not_forgotten_while_a_silent_member_lacks_it() {
    let mut s = Sim::new(5, 3, LinkConfig::default(), opts());
    let t: Vec<TableHandle> = (0..3).map(|p| open(&mut s, p, "t", ValueType::I64)).collect();
    s.ctx(0).table_set(t[0], 1i64, 1i64).unwrap();
    s.run_for(500);
    // Peer 3 is cut off past the peer timeout: it stops blocking convergence, but it must
    // still receive the removal when it is back.
    s.partition(vec![0, 0, 1]);
    s.ctx(0).table_remove(t[0], 1i64).unwrap();
    s.run_for(opts().peer_timeout_ms + 2000);
    assert_eq!(s.ctx(0).metrics().table_entries, 1, "forgotten while a member lacks the removal");
    s.heal();
    s.run_for(3000);
    for p in 0..3 {
        assert_eq!(s.ctx(p).table_get(t[p], 1i64).unwrap(), None, "peer {}", p + 1);
        assert_eq!(s.ctx(p).metrics().table_entries, 0, "peer {}", p + 1);
    }
}

#[test]
fn a_late_joiner_hears_what_was_there_as_initial() {
    let mut s = Sim::new(6, 3, lossy(), opts());
    s.leave(2);
    let t0 = open(&mut s, 0, "world", ValueType::I64);
    for k in 0..10i64 {
        s.ctx(0).table_set(t0, k, k * 10).unwrap();
    }
    s.run_for(1000);
    s.join(2);
    s.run_for_keep_events(3000);
    let ev = table_events(s.ctx(2));
    assert_eq!(ev.len(), 10, "{ev:?}");
    assert!(ev.iter().all(|e| e.kind == EntryKind::Added && e.is_initial), "{ev:?}");
    let t2 = open(&mut s, 2, "world", ValueType::I64);
    s.ctx(0).table_set(t0, 99i64, 1i64).unwrap();
    s.run_for_keep_events(1000);
    let ev = table_events(s.ctx(2));
    assert_eq!(ev.len(), 1);
    assert!(!ev[0].is_initial && ev[0].kind == EntryKind::Added);
    assert_eq!(s.ctx(2).table_len(t2).unwrap(), 11);
}

#[test]
fn wait_for_sync_tables_show_keys_once_every_member_holds_them() {
    let mut s = Sim::new(7, 2, LinkConfig { latency_ms: 50, ..LinkConfig::default() }, opts());
    let wfs = TableOptions { mode: Mode::WaitForSync, ..TableOptions::default() };
    let t = s.ctx(0).open_table("score", ValueType::I64, wfs).unwrap();
    assert_eq!(s.ctx(0).table_state(t).unwrap(), SyncState::Converged);
    s.ctx(0).table_set(t, "red", 3i64).unwrap();
    assert_eq!(s.ctx(0).table_get(t, "red").unwrap(), None);
    assert_eq!(s.ctx(0).table_state(t).unwrap(), SyncState::LocalOnly);
    assert!(table_events(s.ctx(0)).is_empty());
    s.run_for_keep_events(500);
    assert_eq!(s.ctx(0).table_state(t).unwrap(), SyncState::Converged);
    assert_eq!(s.ctx(0).table_get(t, "red").unwrap(), Some(Value::I64(3)));
    let ev = table_events(s.ctx(0));
    assert_eq!((ev.len(), ev[0].kind, ev[0].state), (1, EntryKind::Added, SyncState::Converged));
}

#[test]
fn tables_survive_save_and_load() {
    let mut s = Sim::new(8, 2, LinkConfig::default(), opts());
    let t = open(&mut s, 0, "inv", ValueType::Str);
    s.ctx(0).table_set(t, "sword", "iron").unwrap();
    s.ctx(0).table_set(t, 5i64, "potion").unwrap();
    s.run_for(500);
    let bytes = s.ctx(0).save();
    let loaded = Context::load(1, opts(), &bytes).unwrap();
    s.restart(0, loaded);
    let t = open(&mut s, 0, "inv", ValueType::Str);
    assert_eq!(s.ctx(0).table_len(t).unwrap(), 2);
    // Writing after the load continues the same entries and makes new births, never
    // an old one again.
    s.ctx(0).table_set(t, "sword", "steel").unwrap();
    s.ctx(0).table_set(t, "shield", "oak").unwrap();
    s.run_for(1000);
    for p in 0..2 {
        assert_eq!(
            entries(&mut s, p, "inv", ValueType::Str),
            [
                (Key::Int(5), Value::from("potion")),
                (Key::from("shield"), Value::from("oak")),
                (Key::from("sword"), Value::from("steel")),
            ],
            "peer {}",
            p + 1
        );
    }
}

// ---- the model ----------------------------------------------------------------------

/// The tables of every session: (id, element policy). Integer values.
const TABLES: [(&str, Policy); 2] = [("lww", Policy::LastWriterWins), ("max", Policy::Max)];
/// Keys: a few integers and strings, so rounds collide on them.
fn key_of(k: usize) -> Key {
    if k.is_multiple_of(2) {
        Key::Int(k as i64 / 2 - 1)
    } else {
        Key::Str(format!("k{k}"))
    }
}
const KEYS: usize = 6;

/// What a key must show after a round.
#[derive(Clone, Debug, PartialEq)]
enum Shows {
    Nothing,
    Exactly(i64),
    OneOf(Vec<i64>),
}

/// The model of one round for one key: `before` is what it showed (every peer agreed),
/// `ops` each writer's one operation this round (`None` a removal), all concurrent.
/// An update of a shown entry competes by the table's policy and loses to a removal; a
/// removal of a key that shows nothing does nothing; concurrent inserts are separate
/// entries, of which every peer shows the same one (which one is the library's order).
fn model(before: Option<i64>, policy: &Policy, ops: &[Option<i64>]) -> Shows {
    let sets: Vec<i64> = ops.iter().flatten().copied().collect();
    match before {
        Some(_) if ops.iter().any(|o| o.is_none()) => Shows::Nothing,
        Some(b) if sets.is_empty() => Shows::Exactly(b),
        Some(_) => match policy {
            Policy::Max => Shows::Exactly(*sets.iter().max().expect("sets")),
            _ if sets.len() == 1 => Shows::Exactly(sets[0]),
            _ => Shows::OneOf(sets),
        },
        None if sets.is_empty() => Shows::Nothing,
        None if sets.len() == 1 => Shows::Exactly(sets[0]),
        None => Shows::OneOf(sets),
    }
}

/// (peer, table, key, value; `None` = a removal).
type Op = (usize, usize, usize, Option<u16>);
/// Per table, per key: each writer's operation this round.
type RoundOps = Vec<Vec<Vec<(usize, Option<i64>)>>>;

#[derive(Clone, Debug)]
struct Case {
    seed: u64,
    peers: usize,
    loss: f64,
    /// Rounds of operations: (peer, table, key, value; `None` = a removal). A peer's
    /// second operation on a key in one round is skipped (the model takes one).
    rounds: Vec<Vec<Op>>,
    /// A partition mask per round (0 = none) during its misbehaving phase.
    partitions: Vec<u8>,
    /// Per round, a peer that drops out of the session and comes back during the
    /// misbehaving phase: `(peer, true)` from a save (a restart), `(peer, false)` with
    /// the context it had (a reconnect).
    away: Vec<Option<(usize, bool)>>,
}

fn case() -> impl Strategy<Value = Case> {
    let op = (0..6usize, 0..TABLES.len(), 0..KEYS, prop::option::weighted(0.7, any::<u16>()));
    (
        any::<u64>(),
        2..=5usize,
        0.0..0.3f64,
        prop::collection::vec(prop::collection::vec(op, 1..14), 1..7),
        prop::collection::vec(any::<u8>(), 7),
        prop::collection::vec(prop::option::weighted(0.4, (0..6usize, any::<bool>())), 7),
    )
        .prop_map(|(seed, peers, loss, rounds, partitions, away)| Case {
            seed,
            peers,
            loss,
            rounds,
            partitions,
            away,
        })
}

fn read_all(sim: &mut Sim, p: usize) -> Vec<Vec<(Key, Value)>> {
    (0..TABLES.len())
        .map(|t| {
            let h = sim.ctx(p).open_table(TABLES[t].0, ValueType::I64, table_opts(t)).unwrap();
            sim.ctx(p).table_entries(h).unwrap()
        })
        .collect()
}

fn table_opts(t: usize) -> TableOptions {
    TableOptions { policy: TABLES[t].1.clone(), ..TableOptions::default() }
}

/// Round `r`'s misbehaving phase: a lossy, reordering network, its partition, its peer
/// dropping out and coming back (from a save or as it was), then healed until settled.
fn misbehave(sim: &mut Sim, case: &Case, r: usize) -> Result<(), String> {
    let n = case.peers;
    sim.net.link = LinkConfig {
        latency_ms: 20,
        jitter_ms: 30,
        loss: case.loss,
        duplicate: 0.05,
        reorder: 0.1,
        bandwidth_bytes_per_s: 0,
    };
    let mask = case.partitions[r % case.partitions.len()];
    sim.partition((0..n).map(|i| ((mask >> i) & 1) as u32).collect());
    sim.run_for(150);
    if let Some((p, from_save)) = case.away[r % case.away.len()] {
        let p = p % n;
        if from_save {
            let saved = sim.ctx(p).save();
            let back = Context::load(p as u64 + 1, Options::default(), &saved).map_err(|e| e.to_string())?;
            sim.restart(p, back);
        } else {
            sim.leave(p);
            sim.run_for(200);
            sim.join(p);
        }
    }
    sim.run_for(150);
    sim.heal();
    sim.net.link = LinkConfig::default();
    sim.run_for(6_000);
    Ok(())
}

/// Plays `case` and checks every peer against the model after every round; the first
/// mismatch is the error.
fn play(case: &Case) -> Result<(), String> {
    let n = case.peers;
    let mut sim = Sim::new(case.seed, n, LinkConfig::default(), Options::default());
    let mut shown: Vec<Vec<Option<i64>>> = vec![vec![None; KEYS]; TABLES.len()];
    for (r, round) in case.rounds.iter().enumerate() {
        let mut ops: RoundOps = vec![vec![Vec::new(); KEYS]; TABLES.len()];
        for &(peer, t, k, raw) in round {
            let p = peer % n;
            if ops[t][k].iter().any(|(w, _)| *w == p) {
                continue;
            }
            let op = raw.map(|v| v as i64 - 30_000);
            let c = sim.ctx(p);
            let h = c.open_table(TABLES[t].0, ValueType::I64, table_opts(t)).unwrap();
            match op {
                Some(v) => c.table_set(h, key_of(k), v).unwrap(),
                None => {
                    c.table_remove(h, key_of(k)).unwrap();
                }
            }
            ops[t][k].push((p, op));
        }
        let mut expect: Vec<Vec<Shows>> = Vec::new();
        for t in 0..TABLES.len() {
            let e = (0..KEYS)
                .map(|k| {
                    let o: Vec<Option<i64>> = ops[t][k].iter().map(|x| x.1).collect();
                    model(shown[t][k], &TABLES[t].1, &o)
                })
                .collect();
            expect.push(e);
        }
        misbehave(&mut sim, case, r)?;
        let first = read_all(&mut sim, 0);
        for p in 0..n {
            let got = read_all(&mut sim, p);
            if got != first {
                return Err(format!("round {r}: peer {} shows {got:?}, peer 1 {first:?}", p + 1));
            }
        }
        for t in 0..TABLES.len() {
            for k in 0..KEYS {
                let read = first[t].iter().find(|(key, _)| *key == key_of(k)).map(|(_, v)| match v {
                    Value::I64(x) => *x,
                    other => panic!("{other:?}"),
                });
                let ok = match &expect[t][k] {
                    Shows::Nothing => read.is_none(),
                    Shows::Exactly(x) => read == Some(*x),
                    Shows::OneOf(xs) => read.is_some_and(|x| xs.contains(&x)),
                };
                if !ok {
                    return Err(format!(
                        "round {r}: table {} key {} shows {read:?}, the model says {:?}",
                        TABLES[t].0,
                        key_of(k),
                        expect[t][k]
                    ));
                }
                shown[t][k] = read;
            }
        }
    }
    // A write of every key that shows settles concurrent inserts; then every removed
    // entry is forgotten everywhere: only what shows is held.
    for t in 0..TABLES.len() {
        for k in 0..KEYS {
            if let Some(v) = shown[t][k] {
                let h = sim.ctx(0).open_table(TABLES[t].0, ValueType::I64, table_opts(t)).unwrap();
                sim.ctx(0).table_set(h, key_of(k), v).unwrap();
            }
        }
    }
    sim.run_for(6_000);
    let showing = shown.iter().flatten().filter(|s| s.is_some()).count() as u64;
    for p in 0..n {
        let held = sim.ctx(p).metrics().table_entries;
        if held != showing {
            let detail = sim.ctx(p).debug_table_entries().join("\n  ");
            let peers = sim.ctx(p).peers();
            return Err(format!(
                "peer {} holds {held} entries, {showing} show; members {peers:?}:\n  {detail}",
                p + 1
            ));
        }
    }
    if sim.rejected > 0 {
        return Err(format!("{} messages rejected: {:?}", sim.rejected, sim.last_error));
    }
    Ok(())
}

/// Plays `case` on a set of integers: an operation's key is the member, a value means
/// add, `None` remove. The model: a member added by anyone in a round is in the set
/// (add wins over a concurrent remove); else one removed is out; else it stays as it
/// was.
fn play_set(case: &Case) -> Result<(), String> {
    let n = case.peers;
    let mut sim = Sim::new(case.seed, n, LinkConfig::default(), Options::default());
    let mut present = [false; KEYS];
    let open = |sim: &mut Sim, p: usize| {
        sim.ctx(p).open_set("flags", ValueType::I64, TableOptions::default()).unwrap()
    };
    for (r, round) in case.rounds.iter().enumerate() {
        let (mut added, mut removed) = ([false; KEYS], [false; KEYS]);
        let mut done: Vec<(usize, usize)> = Vec::new();
        for &(peer, _, k, raw) in round {
            let p = peer % n;
            if done.contains(&(p, k)) {
                continue;
            }
            done.push((p, k));
            let h = open(&mut sim, p);
            match raw {
                Some(_) => {
                    sim.ctx(p).set_add(h, k as i64).unwrap();
                    added[k] = true;
                }
                None => {
                    sim.ctx(p).set_remove(h, k as i64).unwrap();
                    removed[k] = true;
                }
            }
        }
        for k in 0..KEYS {
            present[k] = added[k] || (present[k] && !removed[k]);
        }
        misbehave(&mut sim, case, r)?;
        let want: Vec<Value> = (0..KEYS).filter(|&k| present[k]).map(|k| Value::I64(k as i64)).collect();
        for p in 0..n {
            let h = open(&mut sim, p);
            let got = sim.ctx(p).set_members(h).unwrap();
            if got != want {
                return Err(format!("round {r}: peer {} has {got:?}, the model says {want:?}", p + 1));
            }
        }
    }
    // Adding every member again keeps one insertion of each; removed ones are forgotten.
    let h = open(&mut sim, 0);
    for k in (0..KEYS).filter(|&k| present[k]) {
        sim.ctx(0).set_add(h, k as i64).unwrap();
    }
    sim.run_for(6_000);
    let members = present.iter().filter(|&&x| x).count() as u64;
    for p in 0..n {
        let held = sim.ctx(p).metrics().table_entries;
        if held != members {
            let detail = sim.ctx(p).debug_table_entries().join("\n  ");
            return Err(format!("peer {} holds {held} entries for {members} members:\n  {detail}", p + 1));
        }
    }
    if sim.rejected > 0 {
        return Err(format!("{} messages rejected: {:?}", sim.rejected, sim.last_error));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_peer_shows_what_the_model_says(case in case()) {
        if let Err(e) = play(&case) {
            prop_assert!(false, "seed {}: {e}", case.seed);
        }
    }

    #[test]
    fn every_peer_holds_the_members_the_model_says_add_wins(case in case()) {
        if let Err(e) = play_set(&case) {
            prop_assert!(false, "seed {}: {e}", case.seed);
        }
    }
}

#[test]
fn a_peer_that_was_away_drops_what_was_removed_and_forgotten_meanwhile() {
    for from_save in [false, true] {
        let mut s = Sim::new(9, 3, LinkConfig::default(), opts());
        let t: Vec<TableHandle> = (0..3).map(|p| open(&mut s, p, "t", ValueType::I64)).collect();
        for k in 0..4i64 {
            s.ctx(0).table_set(t[0], k, k).unwrap();
        }
        s.run_for(500);
        // Peer 3 drops out; the others remove two keys and, with peer 3 no longer a
        // member, forget them.
        let saved = s.ctx(2).save();
        s.leave(2);
        s.ctx(1).table_remove(t[1], 0i64).unwrap();
        s.ctx(0).table_remove(t[0], 1i64).unwrap();
        // Peer 3, away, removes another (sent when it is back, unless it comes back
        // from the save it made before).
        s.ctx(2).table_remove(t[2], 2i64).unwrap();
        s.run_for(1000);
        assert_eq!(s.ctx(0).metrics().table_entries, 2);
        if from_save {
            let back = Context::load(3, opts(), &saved).unwrap();
            s.restart(2, back);
        } else {
            s.join(2);
        }
        s.run_for(3000);
        for p in 0..3 {
            let shown = entries(&mut s, p, "t", ValueType::I64);
            let want = if from_save {
                vec![(Key::Int(2), Value::I64(2)), (Key::Int(3), Value::I64(3))]
            } else {
                vec![(Key::Int(3), Value::I64(3))]
            };
            assert_eq!(shown, want, "peer {} (from a save: {from_save})", p + 1);
            assert_eq!(s.ctx(p).metrics().table_entries, want.len() as u64, "peer {}", p + 1);
        }
    }
}

#[test]
fn sets_add_remove_and_an_add_wins_over_a_concurrent_remove() {
    let mut s = Sim::new(10, 3, LinkConfig::default(), opts());
    let f: Vec<TableHandle> = (0..3)
        .map(|p| s.ctx(p).open_set("flags", ValueType::Str, TableOptions::default()).unwrap())
        .collect();
    s.ctx(0).set_add(f[0], "door_open").unwrap();
    s.ctx(0).set_add(f[0], "boss_dead").unwrap();
    assert!(s.ctx(0).set_contains(f[0], "door_open").unwrap());
    s.run_for_keep_events(300);
    let ev = table_events(s.ctx(1));
    assert_eq!(ev.len(), 2);
    assert!(ev.iter().all(|e| e.kind == EntryKind::Added && e.old.is_none() && e.origin == 1));
    assert_eq!(s.ctx(2).set_members(f[2]).unwrap(), [Value::from("boss_dead"), Value::from("door_open")]);
    // Peer 2 removes a flag while peer 3 adds it again, concurrently: the add wins.
    s.ctx(1).set_remove(f[1], "door_open").unwrap();
    s.ctx(2).set_add(f[2], "door_open").unwrap();
    // And a plain removal with nothing concurrent removes.
    assert!(s.ctx(1).set_remove(f[1], "boss_dead").unwrap());
    assert!(!s.ctx(1).set_remove(f[1], "never").unwrap());
    s.run_for_keep_events(1000);
    for p in 0..3 {
        assert_eq!(s.ctx(p).set_members(f[p]).unwrap(), [Value::from("door_open")], "peer {}", p + 1);
        assert_eq!(s.ctx(p).table_len(f[p]).unwrap(), 1);
    }
    let ev = table_events(s.ctx(0));
    assert!(
        ev.iter().any(|e| e.kind == EntryKind::Removed && e.old == Some(Value::from("boss_dead"))),
        "{ev:?}"
    );
    // A set and a table may share a name; each refuses the other's calls.
    let t = s.ctx(0).open_table("flags", ValueType::Str, TableOptions::default()).unwrap();
    assert_ne!(t, f[0]);
    assert!(s.ctx(0).is_set(f[0]).unwrap() && !s.ctx(0).is_set(t).unwrap());
    assert_eq!(s.ctx(0).table_id(f[0]).unwrap(), "flags");
    assert!(matches!(s.ctx(0).table_set(f[0], "k", "v"), Err(Error::WrongKind { is: "set", .. })));
    assert!(matches!(s.ctx(0).set_add(t, "x"), Err(Error::WrongKind { is: "table", .. })));
    assert!(matches!(s.ctx(0).set_add(f[0], 5i64), Err(Error::WrongType { .. })));
    assert!(matches!(
        s.ctx(0).open_set("\u{2}x", ValueType::I64, TableOptions::default()),
        Err(Error::ReservedId(_))
    ));
}

#[test]
fn sets_of_vectors_and_memory_under_churn() {
    let mut s = Sim::new(11, 2, lossy(), opts());
    let f: Vec<TableHandle> = (0..2)
        .map(|p| s.ctx(p).open_set("cells", ValueType::Vec3, TableOptions::default()).unwrap())
        .collect();
    for k in 0..300 {
        s.ctx(0).set_add(f[0], [k as f32, 0.5, -1.0]).unwrap();
        if k >= 10 {
            s.ctx(0).set_remove(f[0], [(k - 10) as f32, 0.5, -1.0]).unwrap();
        }
        s.run_for(16);
    }
    s.run_for(3000);
    for p in 0..2 {
        assert_eq!(s.ctx(p).table_len(f[p]).unwrap(), 10);
        assert!(s.ctx(p).set_contains(f[p], [299.0f32, 0.5, -1.0]).unwrap());
        assert!(!s.ctx(p).set_contains(f[p], [0.0f32, 0.5, -1.0]).unwrap());
        assert_eq!(s.ctx(p).metrics().table_entries, 10, "peer {}", p + 1);
    }
}

// ---- sequences ---------------------------------------------------------------------------

fn items(s: &mut Sim, p: usize, id: &str) -> Vec<i64> {
    let h = s.ctx(p).open_seq(id, ValueType::I64, TableOptions::default()).unwrap();
    s.ctx(p)
        .seq_items(h)
        .unwrap()
        .into_iter()
        .map(|v| match v {
            Value::I64(x) => x,
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn sequences_insert_remove_move_and_concurrent_inserts_keep_both() {
    let mut s = Sim::new(12, 3, LinkConfig::default(), opts());
    let q: Vec<TableHandle> = (0..3)
        .map(|p| s.ctx(p).open_seq("units", ValueType::I64, TableOptions::default()).unwrap())
        .collect();
    for x in [10i64, 20, 30] {
        s.ctx(0).seq_push(q[0], x).unwrap();
    }
    s.ctx(0).seq_insert(q[0], 1, 15i64).unwrap();
    assert_eq!(s.ctx(0).seq_items(q[0]).unwrap(), [10i64, 15, 20, 30].map(Value::I64));
    let ev = table_events(s.ctx(0));
    assert_eq!(ev.last().map(|e| (e.kind, e.index)), Some((EntryKind::Added, Some(1))));
    s.run_for_keep_events(300);
    let ev = table_events(s.ctx(2));
    assert_eq!(ev.iter().filter(|e| e.kind == EntryKind::Added).count(), 4);
    assert_eq!(items(&mut s, 2, "units"), [10, 15, 20, 30]);
    // Two peers insert at the same place at once: both items, one order everywhere.
    s.ctx(1).seq_insert(q[1], 2, 17i64).unwrap();
    s.ctx(2).seq_insert(q[2], 2, 18i64).unwrap();
    s.run_for(300);
    let agreed = items(&mut s, 0, "units");
    assert!(agreed == [10, 15, 17, 18, 20, 30] || agreed == [10, 15, 18, 17, 20, 30], "{agreed:?}");
    for p in 1..3 {
        assert_eq!(items(&mut s, p, "units"), agreed, "peer {}", p + 1);
    }
    // Remove, replace, move; events say where.
    table_events(s.ctx(1));
    assert_eq!(s.ctx(0).seq_remove(q[0], 0).unwrap(), Value::I64(10));
    s.ctx(0).seq_set(q[0], 0, 16i64).unwrap();
    s.ctx(0).seq_move(q[0], 0, 4).unwrap();
    s.run_for_keep_events(300);
    let want: Vec<i64> = {
        let mut v: Vec<i64> = agreed[1..].to_vec();
        v[0] = 16;
        let x = v.remove(0);
        v.insert(4, x);
        v
    };
    for p in 0..3 {
        assert_eq!(items(&mut s, p, "units"), want, "peer {}", p + 1);
    }
    let ev = table_events(s.ctx(1));
    assert!(
        ev.iter()
            .any(|e| e.kind == EntryKind::Removed && e.index == Some(0) && e.old == Some(Value::I64(10))),
        "{ev:?}"
    );
    assert_eq!(s.ctx(2).seq_get(q[2], 4).unwrap(), Value::I64(16));
    // Errors change nothing.
    assert!(matches!(
        s.ctx(0).seq_insert(q[0], 99, 1i64),
        Err(Error::IndexOutOfRange { index: 99, len: 5, .. })
    ));
    assert!(matches!(s.ctx(0).seq_remove(q[0], 5), Err(Error::IndexOutOfRange { .. })));
    assert!(matches!(s.ctx(0).seq_get(q[0], 5), Err(Error::IndexOutOfRange { .. })));
    assert!(matches!(s.ctx(0).seq_push(q[0], "text"), Err(Error::WrongType { .. })));
    let t = s.ctx(0).open_table("units", ValueType::I64, TableOptions::default()).unwrap();
    assert!(matches!(
        s.ctx(0).seq_push(t, 1i64),
        Err(Error::WrongKind { is: "table", wanted: "sequence", .. })
    ));
    assert!(matches!(s.ctx(0).table_set(q[0], 1i64, 1i64), Err(Error::WrongKind { is: "sequence", .. })));
    assert_eq!(s.ctx(0).collection_kind(q[0]).unwrap(), CollectionKind::Sequence);
    assert_eq!(s.ctx(0).table_len(q[0]).unwrap(), 5);
}

#[test]
fn sequence_churn_keeps_memory_flat() {
    let mut s = Sim::new(13, 2, lossy(), opts());
    let q = s.ctx(0).open_seq("log", ValueType::I64, TableOptions::default()).unwrap();
    for k in 0..300i64 {
        s.ctx(0).seq_push(q, k).unwrap();
        if k >= 10 {
            s.ctx(0).seq_remove(q, 0).unwrap();
        }
        s.run_for(16);
    }
    s.run_for(3000);
    for p in 0..2 {
        assert_eq!(items(&mut s, p, "log"), (290..300).collect::<Vec<_>>());
        assert_eq!(s.ctx(p).metrics().table_entries, 10, "peer {}", p + 1);
    }
}

/// Plays `case` on a sequence of integers: an operation with a value inserts it at the
/// index its key names (modulo the length), `None` removes the item there. Every item is
/// a value of its own, so the model can follow each: after a round, the items are the
/// survivors (those no one removed) in their old order plus every insertion, each after
/// its left neighbour and before its right one where those survived, the same list on
/// every peer.
fn play_seq(case: &Case) -> Result<(), String> {
    let n = case.peers;
    let mut sim = Sim::new(case.seed, n, LinkConfig::default(), Options::default());
    let mut list: Vec<i64> = Vec::new();
    let mut next = 1i64;
    for (r, round) in case.rounds.iter().enumerate() {
        let mut removed: Vec<i64> = Vec::new();
        let mut inserted: Vec<(i64, Option<i64>, Option<i64>)> = Vec::new();
        let mut local: Vec<Vec<i64>> = vec![list.clone(); n];
        for &(peer, _, k, raw) in round {
            let p = peer % n;
            let h = sim.ctx(p).open_seq("q", ValueType::I64, TableOptions::default()).unwrap();
            match raw {
                Some(_) => {
                    let at = k % (local[p].len() + 1);
                    let (left, right) = (at.checked_sub(1).map(|i| local[p][i]), local[p].get(at).copied());
                    sim.ctx(p).seq_insert(h, at, next).unwrap();
                    local[p].insert(at, next);
                    inserted.push((next, left, right));
                    next += 1;
                }
                None if !local[p].is_empty() => {
                    let at = k % local[p].len();
                    sim.ctx(p).seq_remove(h, at).unwrap();
                    removed.push(local[p].remove(at));
                }
                None => {}
            }
        }
        misbehave(&mut sim, case, r)?;
        let got = items(&mut sim, 0, "q");
        for p in 1..n {
            let other = items(&mut sim, p, "q");
            if other != got {
                let d = |sim: &mut Sim, p: usize| sim.ctx(p).debug_table_entries().join("\n  ");
                let (d0, dp) = (d(&mut sim, 0), d(&mut sim, p));
                return Err(format!(
                    "round {r}: peer {} has {other:?}, peer 1 {got:?}\npeer 1:\n  {d0}\npeer {}:\n  {dp}",
                    p + 1,
                    p + 1
                ));
            }
        }
        let survivors: Vec<i64> = list.iter().copied().filter(|x| !removed.contains(x)).collect();
        let kept: Vec<i64> = got.iter().copied().filter(|x| survivors.contains(x)).collect();
        if kept != survivors {
            return Err(format!("round {r}: old items {kept:?} in {got:?}, the model says {survivors:?}"));
        }
        let mut want: Vec<i64> = survivors.clone();
        want.extend(inserted.iter().map(|i| i.0).filter(|x| !removed.contains(x)));
        let (mut a, mut b) = (got.clone(), want);
        a.sort_unstable();
        b.sort_unstable();
        if a != b {
            return Err(format!("round {r}: items {got:?}, the model's {b:?}"));
        }
        let at = |x: i64| got.iter().position(|&y| y == x);
        for &(x, left, right) in &inserted {
            let Some(px) = at(x) else { continue };
            let bad =
                left.and_then(at).is_some_and(|pl| pl > px) || right.and_then(at).is_some_and(|pr| pr < px);
            if bad {
                return Err(format!("round {r}: {x} was inserted between {left:?} and {right:?}: {got:?}"));
            }
        }
        list = got;
    }
    let held = sim.ctx(0).metrics().table_entries;
    if held != list.len() as u64 {
        return Err(format!("peer 1 holds {held} entries for {} items", list.len()));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_peer_holds_the_sequence_the_model_allows(case in case()) {
        if let Err(e) = play_seq(&case) {
            prop_assert!(false, "seed {}: {e}", case.seed);
        }
    }
}

/// Found by the sequence property test: a member that was away and lacks nothing of the
/// stream of the peer that forgot an entry gets no catch-up from it, so the manifest
/// must travel on its own, retried until the member confirms it.
#[test]
fn a_manifest_reaches_a_member_that_lacks_nothing_of_its_sender() {
    let case = Case {
        seed: 9101921497925038490,
        peers: 5,
        loss: 0.1514080685167481,
        rounds: vec![
            vec![
                (2, 0, 0, Some(0)),
                (4, 0, 0, Some(0)),
                (2, 0, 1, Some(0)),
                (2, 0, 2, None),
                (0, 0, 0, Some(0)),
            ],
            vec![(5, 0, 1, None), (3, 0, 0, None), (4, 0, 0, None), (2, 0, 0, None)],
        ],
        partitions: vec![53, 123, 0, 0, 0, 0, 0],
        away: vec![Some((1, false)), Some((4, false)), None, None, None, None, None],
    };
    if let Err(e) = play_seq(&case) {
        panic!("{e}");
    }
}

/// model_citizen's `touch` on collections: a table key, a set member or a sequence item
/// re-announced unchanged reaches every peer as `Touched` (this one at once), carrying
/// what it shows (and a sequence item's index); touching with another value writes it;
/// touching nothing fails and changes nothing. An owner-only collection's touch is its
/// owner's to make.
#[test]
fn touches_reach_every_peer_as_touched() {
    let mut s = Sim::new(21, 3, LinkConfig::default(), opts());
    let t: Vec<TableHandle> = (0..3).map(|p| open(&mut s, p, "blocks", ValueType::I64)).collect();
    let f: Vec<TableHandle> = (0..3)
        .map(|p| s.ctx(p).open_set("flags", ValueType::Str, TableOptions::default()).unwrap())
        .collect();
    let q: Vec<TableHandle> = (0..3)
        .map(|p| s.ctx(p).open_seq("units", ValueType::I64, TableOptions::default()).unwrap())
        .collect();
    s.ctx(0).table_set(t[0], 7i64, 70i64).unwrap();
    s.ctx(0).set_add(f[0], "door").unwrap();
    s.ctx(0).seq_push(q[0], 1i64).unwrap();
    s.ctx(0).seq_push(q[0], 2i64).unwrap();
    s.run_for_keep_events(300);
    for p in 0..3 {
        table_events(s.ctx(p));
    }
    s.ctx(1).table_touch(t[1], 7i64, 70i64).unwrap();
    s.ctx(1).set_touch(f[1], "door").unwrap();
    s.ctx(1).seq_touch(q[1], 1).unwrap();
    // (kind, old, new, index, origin) of each event.
    type Said = (EntryKind, Option<Value>, Option<Value>, Option<u64>, u64);
    let summary = |ev: &[TableEvent]| -> Vec<Said> {
        ev.iter().map(|e| (e.kind, e.old.clone(), e.new.clone(), e.index, e.origin)).collect()
    };
    let want = vec![
        (EntryKind::Touched, Some(Value::I64(70)), Some(Value::I64(70)), None, 2),
        (EntryKind::Touched, Some(Value::from("door")), Some(Value::from("door")), None, 2),
        (EntryKind::Touched, Some(Value::I64(2)), Some(Value::I64(2)), Some(1), 2),
    ];
    assert_eq!(summary(&table_events(s.ctx(1))), want, "the toucher hears it at once");
    s.run_for_keep_events(300);
    for p in [0, 2] {
        assert_eq!(summary(&table_events(s.ctx(p))), want, "peer {}", p + 1);
    }
    // Touching with another value writes it; touching a member not in the set adds it.
    s.ctx(1).table_touch(t[1], 7i64, 71i64).unwrap();
    s.ctx(1).set_touch(f[1], "gate").unwrap();
    s.run_for_keep_events(300);
    let ev = table_events(s.ctx(0));
    assert_eq!(
        ev.iter().map(|e| (e.kind, e.new.clone())).collect::<Vec<_>>(),
        [(EntryKind::Modified, Some(Value::I64(71))), (EntryKind::Added, Some(Value::from("gate")))]
    );
    table_events(s.ctx(1));
    // Nothing to touch: an error, and nothing changes anywhere.
    assert!(matches!(s.ctx(1).seq_touch(q[1], 5), Err(Error::IndexOutOfRange { index: 5, len: 2, .. })));
    assert!(matches!(s.ctx(1).table_touch(t[1], 9i64, "x"), Err(Error::WrongType { .. })));
    assert!(matches!(s.ctx(1).set_touch(t[1], "x"), Err(Error::WrongKind { .. })));
    assert!(table_events(s.ctx(1)).is_empty());
    // Owner-only: only the owner touches.
    let owned = TableOptions { owner: Some(1), ..TableOptions::default() };
    let o: Vec<TableHandle> =
        (0..3).map(|p| s.ctx(p).open_table("army", ValueType::I64, owned.clone()).unwrap()).collect();
    s.ctx(0).table_set(o[0], 1i64, 10i64).unwrap();
    s.run_for_keep_events(300);
    for p in 0..3 {
        table_events(s.ctx(p));
    }
    assert!(matches!(s.ctx(1).table_touch(o[1], 1i64, 10i64), Err(Error::NotOwner { owner: 1, .. })));
    s.ctx(0).table_touch(o[0], 1i64, 10i64).unwrap();
    s.run_for_keep_events(300);
    for p in 1..3 {
        let ev = table_events(s.ctx(p));
        assert_eq!(summary(&ev), [(EntryKind::Touched, Some(Value::I64(10)), Some(Value::I64(10)), None, 1)]);
    }
}

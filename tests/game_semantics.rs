//! The game semantics users of other sync libraries keep asking for: events that say a
//! value "was already there" (`is_initial`), `touch` ("same value, act again") and
//! local-only values that never reach the wire. Sessions on the simulator, with loss,
//! duplication, reordering, late joins, partitions and restarts from saves.

use std::collections::HashMap;
use zen_crdt::sim::{LinkConfig, Sim};
use zen_crdt::*;

/// (value id, event) for every event a peer polled, in order.
type Log = Vec<(String, ChangeEvent)>;

/// Runs `ms` of virtual time, polling every online peer's events after each tick into
/// `logs` (one per peer).
fn run(s: &mut Sim, ms: u64, logs: &mut [Log]) {
    for _ in 0..ms / 16 {
        s.step_keep_events();
        drain(s, logs);
    }
}

fn drain(s: &mut Sim, logs: &mut [Log]) {
    for (p, log) in logs.iter_mut().enumerate() {
        let ctx = s.ctx(p);
        while let Some(ev) = ctx.poll_change() {
            let id = ctx.id(ev.value).expect("live handle").to_string();
            log.push((id, ev));
        }
    }
}

fn of<'a>(log: &'a Log, id: &str) -> Vec<&'a ChangeEvent> {
    log.iter().filter(|(i, _)| i == id).map(|(_, e)| e).collect()
}

fn lossy() -> LinkConfig {
    LinkConfig { loss: 0.15, duplicate: 0.1, reorder: 0.1, ..LinkConfig::default() }
}

fn opts() -> Options {
    Options { tick_interval_ms: 16, ..Options::default() }
}

fn i64_value(s: &mut Sim, p: usize, id: &str) -> ValueHandle {
    s.ctx(p).create(id, ValueType::I64, ValueOptions::default()).unwrap()
}

// ---- is_initial ---------------------------------------------------------------------------

/// The rule, on every peer and whatever reached it how: of the events of a value this
/// peer never wrote, those before the first one with content are initial, and none after.
/// A peer's own writes are never initial. `restarts`: (peer index, log length) where a
/// peer's context was replaced by one loaded from a save, which starts over.
fn assert_initial_rule(logs: &[Log], writers: &HashMap<String, u64>, restarts: &[(usize, usize)], seed: u64) {
    for (p, log) in logs.iter().enumerate() {
        let me = p as u64 + 1;
        let mut content_seen: HashMap<&str, bool> = HashMap::new();
        for (k, (id, ev)) in log.iter().enumerate() {
            if restarts.contains(&(p, k)) {
                content_seen.clear();
            }
            let seen = content_seen.entry(id.as_str()).or_insert(false);
            // (A loaded context's Created events name the newest writer, possibly itself:
            // they report the save, not a write.)
            if ev.origin == me && !matches!(ev.kind, ChangeKind::StateChanged | ChangeKind::Created) {
                assert!(!ev.is_initial, "seed {seed}: peer {me}'s own write to {id} is initial: {ev:?}");
            } else if writers.get(id) != Some(&me) {
                assert_eq!(
                    ev.is_initial, !*seen,
                    "seed {seed}: peer {me}, {id}: is_initial must be true exactly until content was shown: {ev:?}"
                );
            }
            *seen |= ev.new.is_some() || ev.kind == ChangeKind::Removed;
        }
    }
}

#[test]
fn a_value_created_elsewhere_arrives_initial_then_changes_are_not() {
    let mut s = Sim::new(3, 2, LinkConfig::default(), opts());
    let mut logs = vec![Log::new(), Log::new()];
    let h = i64_value(&mut s, 0, "score");
    s.ctx(0).set(h, 5i64).unwrap();
    run(&mut s, 300, &mut logs);
    s.ctx(0).set(h, 6i64).unwrap();
    run(&mut s, 300, &mut logs);
    let b = of(&logs[1], "score");
    assert_eq!((b[0].kind, b[0].is_initial, &b[0].new), (ChangeKind::Created, true, &Some(Value::I64(5))));
    let later: Vec<_> = b[1..].iter().filter(|e| e.kind == ChangeKind::Modified).collect();
    assert_eq!(later.len(), 1);
    assert_eq!((later[0].is_initial, &later[0].new), (false, &Some(Value::I64(6))));
    assert!(of(&logs[0], "score").iter().all(|e| !e.is_initial), "the writer's own events: {:?}", logs[0]);
}

#[test]
fn a_late_joiner_gets_everything_initial_once() {
    let mut s = Sim::new(5, 3, LinkConfig::default(), opts());
    s.leave(2);
    let mut logs = vec![Log::new(), Log::new(), Log::new()];
    for (p, id) in [(0, "a"), (1, "b"), (0, "c")] {
        let h = i64_value(&mut s, p, id);
        s.ctx(p).set(h, 7i64).unwrap();
    }
    run(&mut s, 500, &mut logs);
    // Peer 3 declared "c" itself before it joined; "a" and "b" it never heard of.
    i64_value(&mut s, 2, "c");
    s.join(2);
    run(&mut s, 1000, &mut logs);
    for id in ["a", "b", "c"] {
        let evs = of(&logs[2], id);
        let with_content: Vec<_> = evs.iter().filter(|e| e.new.is_some()).collect();
        assert!(!with_content.is_empty(), "{id}: {evs:?}");
        assert!(with_content[0].is_initial && with_content[0].new == Some(Value::I64(7)), "{id}: {evs:?}");
    }
    assert_eq!(of(&logs[2], "a")[0].kind, ChangeKind::Created);
    assert_eq!(
        of(&logs[2], "c")[0].kind,
        ChangeKind::Modified,
        "declared here: its first content modifies it"
    );
    // Then a live write is a change, not initial.
    let h = s.ctx(0).open("a").unwrap();
    s.ctx(0).set(h, 8i64).unwrap();
    run(&mut s, 500, &mut logs);
    let last = of(&logs[2], "a").into_iter().rev().find(|e| e.kind == ChangeKind::Modified).unwrap();
    assert_eq!((last.is_initial, &last.new), (false, &Some(Value::I64(8))));
}

#[test]
fn after_a_partition_what_was_created_on_the_other_side_is_initial_what_changed_is_not() {
    let mut s = Sim::new(9, 4, LinkConfig::default(), opts());
    let mut logs = vec![Log::new(); 4];
    let shared = i64_value(&mut s, 0, "shared");
    s.ctx(0).set(shared, 1i64).unwrap();
    run(&mut s, 500, &mut logs);
    s.partition(vec![0, 0, 1, 1]);
    run(&mut s, 100, &mut logs);
    s.ctx(0).set(shared, 2i64).unwrap();
    let fresh = i64_value(&mut s, 1, "fresh");
    s.ctx(1).set(fresh, 3i64).unwrap();
    run(&mut s, 1000, &mut logs);
    assert!(of(&logs[2], "fresh").is_empty(), "peer 3 is cut off");
    s.heal();
    run(&mut s, 3000, &mut logs);
    for p in [2, 3] {
        let fresh = of(&logs[p], "fresh");
        assert!(fresh[0].is_initial && fresh[0].kind == ChangeKind::Created, "peer {}: {fresh:?}", p + 1);
        assert_eq!(fresh[0].new, Some(Value::I64(3)));
        let shared: Vec<_> =
            of(&logs[p], "shared").into_iter().filter(|e| e.new == Some(Value::I64(2))).collect();
        assert!(!shared.is_empty() && !shared[0].is_initial, "peer {}: {shared:?}", p + 1);
    }
}

/// Random sessions under loss, duplication and reordering, with late joins, partitions
/// and a restart from a save: every peer follows the rule, whatever way each value
/// reached it (live delta, catch-up snapshot, save).
#[test]
fn every_peer_follows_the_initial_rule_under_a_bad_network() {
    for seed in 0..12u64 {
        let n = 4;
        let mut s = Sim::new(seed, n, lossy(), opts());
        let mut rng = zen_crdt::sim::Rng::new(seed);
        let mut logs = vec![Log::new(); n];
        let mut writers: HashMap<String, u64> = HashMap::new();
        let mut restarts = Vec::new();
        // Whether a value's last write was a set (it ends with content everywhere).
        let mut holds: HashMap<String, bool> = HashMap::new();
        s.leave(3);
        for round in 0..30 {
            let p = rng.below(3) as usize;
            if !s.online(p) {
                continue;
            }
            // Each value has one writer here, so "never wrote it" is well defined.
            let id = format!("v{}", rng.below(10));
            let w = *writers.entry(id.clone()).or_insert(p as u64 + 1);
            let wp = w as usize - 1;
            if s.online(wp) {
                let h = i64_value(&mut s, wp, &id);
                match rng.below(6) {
                    0 => {
                        s.ctx(wp).remove(h).unwrap();
                        holds.insert(id.clone(), false);
                    }
                    1 => {
                        let _ = s.ctx(wp).touch(h);
                    }
                    _ => {
                        s.ctx(wp).set(h, round as i64).unwrap();
                        holds.insert(id.clone(), true);
                    }
                }
            }
            match round {
                8 => s.join(3),
                12 => s.partition(vec![0, 0, 1, 1]),
                18 => s.heal(),
                22 => {
                    drain(&mut s, &mut logs);
                    restarts.push((2, logs[2].len()));
                    let save = s.ctx(2).save();
                    let loaded = Context::load(3, opts(), &save).unwrap();
                    s.restart(2, loaded);
                }
                _ => {}
            }
            run(&mut s, 16 * (1 + rng.below(20)), &mut logs);
        }
        run(&mut s, 5000, &mut logs);
        assert_initial_rule(&logs, &writers, &restarts, seed);
        // Each peer saw a value's content initial at most once, and once if it ends with
        // content (peer 3's log restarts with its load: the loaded context's events are
        // initial).
        for (p, log) in logs.iter().enumerate() {
            for (id, &w) in &writers {
                if w == p as u64 + 1 {
                    continue;
                }
                let shown_initial = of(log, id)
                    .iter()
                    .filter(|e| e.is_initial && (e.new.is_some() || e.kind == ChangeKind::Removed))
                    .count();
                let most = if p == 2 { 2 } else { 1 };
                let least = holds.get(id).copied().unwrap_or(false) as usize;
                assert!(
                    (least..=most).contains(&shown_initial),
                    "seed {seed}: peer {}, {id}: {shown_initial} initial events with content: {:?}",
                    p + 1,
                    of(log, id)
                );
            }
        }
    }
}

#[test]
fn a_loaded_context_reports_its_values_initial() {
    let mut s = Sim::new(1, 1, LinkConfig::default(), opts());
    let h = i64_value(&mut s, 0, "gold");
    s.ctx(0).set(h, 40i64).unwrap();
    s.run_for(100);
    let mut loaded = Context::load(1, opts(), &s.ctx(0).save()).unwrap();
    let ev = loaded.poll_change().unwrap();
    assert_eq!((ev.kind, ev.is_initial, ev.new), (ChangeKind::Created, true, Some(Value::I64(40))));
    let h = loaded.open("gold").unwrap();
    loaded.set(h, 41i64).unwrap();
    assert!(!loaded.poll_change().unwrap().is_initial);
}

// ---- touch --------------------------------------------------------------------------------

#[test]
fn touch_tells_every_peer_the_same_value_again() {
    let mut s = Sim::new(2, 3, LinkConfig::default(), opts());
    let mut logs = vec![Log::new(); 3];
    let h = i64_value(&mut s, 0, "door");
    s.ctx(0).set(h, 1i64).unwrap();
    run(&mut s, 500, &mut logs);
    // Peer 3 reads it WaitForSync: it is told as well.
    let w = s.ctx(2).open("door").unwrap();
    s.ctx(2).set_mode(w, Mode::WaitForSync).unwrap();
    for l in logs.iter_mut() {
        l.clear();
    }
    // Touched by peer 2, who never wrote it.
    let b = s.ctx(1).open("door").unwrap();
    s.ctx(1).touch(b).unwrap();
    let at_once = s.ctx(1).poll_change().unwrap();
    assert_eq!(
        (at_once.kind, at_once.old.clone(), at_once.new.clone(), at_once.origin, at_once.is_initial),
        (ChangeKind::Touched, Some(Value::I64(1)), Some(Value::I64(1)), 2, false)
    );
    run(&mut s, 500, &mut logs);
    for p in [0, 2] {
        let touched: Vec<_> =
            of(&logs[p], "door").into_iter().filter(|e| e.kind == ChangeKind::Touched).collect();
        assert_eq!(touched.len(), 1, "peer {}: {:?}", p + 1, logs[p]);
        assert_eq!((touched[0].origin, &touched[0].new), (2, &Some(Value::I64(1))));
        assert!(of(&logs[p], "door").iter().all(|e| e.kind != ChangeKind::Modified), "{:?}", logs[p]);
    }
    for p in 0..3 {
        let h = s.ctx(p).open("door").unwrap();
        assert_eq!(s.ctx(p).get(h).unwrap(), Value::I64(1));
        assert_eq!(s.ctx(p).state(h).unwrap(), SyncState::Converged);
    }
}

#[test]
fn a_touch_arrives_once_through_loss_duplication_and_reordering() {
    for seed in 0..8 {
        let mut s = Sim::new(seed, 3, lossy(), opts());
        let mut logs = vec![Log::new(); 3];
        let h = i64_value(&mut s, 0, "bell");
        s.ctx(0).set(h, 9i64).unwrap();
        run(&mut s, 2000, &mut logs);
        for t in 0..5 {
            s.ctx(0).touch(h).unwrap();
            // Spaced so each touch is its own write on the wire.
            run(&mut s, 48 + 16 * t, &mut logs);
        }
        run(&mut s, 4000, &mut logs);
        for p in [1, 2] {
            let n = of(&logs[p], "bell").iter().filter(|e| e.kind == ChangeKind::Touched).count();
            // A touch overtaken by the next one before it arrives is part of it (a
            // catch-up carries only the newest record): at least one, at most five,
            // never a duplicate.
            assert!(
                (1..=5).contains(&n),
                "seed {seed}, peer {}: {n} touches: {:?}",
                p + 1,
                of(&logs[p], "bell")
            );
        }
    }
}

/// A touch racing a write does not compete with it: an average is not pulled back
/// toward the touched value, a last write is not reverted.
#[test]
fn a_touch_racing_a_write_leaves_the_write_standing() {
    for policy in [Policy::TakeAverage, Policy::LastWriterWins, Policy::Min] {
        let mut s = Sim::new(8, 3, LinkConfig::default(), opts());
        let o = ValueOptions { policy: policy.clone(), ..ValueOptions::default() };
        let a = s.ctx(0).create("speed", ValueType::I64, o.clone()).unwrap();
        s.ctx(0).set(a, 100i64).unwrap();
        s.run_for(500);
        let b = s.ctx(1).open("speed").unwrap();
        let c = s.ctx(2).open("speed").unwrap();
        // In one tick, before either arrives anywhere: b writes, a and c touch.
        s.ctx(1).set(b, 300i64).unwrap();
        s.ctx(0).touch(a).unwrap();
        s.ctx(2).touch(c).unwrap();
        s.run_for(1000);
        for p in 0..3 {
            let h = s.ctx(p).open("speed").unwrap();
            assert_eq!(s.ctx(p).get(h).unwrap(), Value::I64(300), "{policy:?}, peer {}", p + 1);
            assert_eq!(s.ctx(p).state(h).unwrap(), SyncState::Converged);
        }
    }
}

#[test]
fn touch_with_a_write_in_the_same_tick_is_the_write_and_bad_touches_are_refused() {
    let mut s = Sim::new(4, 2, LinkConfig::default(), opts());
    let mut logs = vec![Log::new(); 2];
    let h = i64_value(&mut s, 0, "hp");
    assert!(matches!(s.ctx(0).touch(h), Err(Error::NeverWritten(_))));
    s.ctx(0).set(h, 10i64).unwrap();
    run(&mut s, 300, &mut logs);
    s.ctx(0).touch(h).unwrap();
    s.ctx(0).set(h, 11i64).unwrap();
    run(&mut s, 300, &mut logs);
    let b: Vec<_> = of(&logs[1], "hp").into_iter().filter(|e| e.kind != ChangeKind::StateChanged).collect();
    assert_eq!(b.last().map(|e| (e.kind, e.new.clone())), Some((ChangeKind::Modified, Some(Value::I64(11)))));
    assert!(b.iter().all(|e| e.kind != ChangeKind::Touched), "{b:?}");
    s.ctx(0).remove(h).unwrap();
    assert!(matches!(s.ctx(0).touch(h), Err(Error::Removed(_))));
    run(&mut s, 300, &mut logs);
    assert!(matches!(s.ctx(0).touch(h), Err(Error::Removed(_))));
    let hb = s.ctx(1).open("hp").unwrap();
    assert!(matches!(s.ctx(1).touch(hb), Err(Error::Removed(_))));
}

// ---- local-only values ------------------------------------------------------------------

fn local() -> ValueOptions {
    ValueOptions { local_only: true, ..ValueOptions::default() }
}

/// Two sessions with the same seed, one also writing local-only values every tick:
/// every byte on the wire is the same.
#[test]
fn local_only_values_never_reach_the_wire() {
    let play = |with_local: bool| {
        let mut s = Sim::new(11, 3, lossy(), opts());
        let shared = i64_value(&mut s, 0, "shared");
        let mut locals = Vec::new();
        if with_local {
            for p in 0..3 {
                let ui = s.ctx(p).create("ui", ValueType::Str, local()).unwrap();
                let wait = s
                    .ctx(p)
                    .create("cfg", ValueType::F64, ValueOptions { mode: Mode::WaitForSync, ..local() })
                    .unwrap();
                locals.push((ui, wait));
            }
        }
        for t in 0..200i64 {
            if t % 10 == 0 {
                s.ctx(0).set(shared, t).unwrap();
            }
            for (p, &(ui, cfg)) in locals.iter().enumerate() {
                s.ctx(p).set(ui, format!("peer {p} tick {t}")).unwrap();
                s.ctx(p).set(cfg, t as f64).unwrap();
                if t % 7 == 0 {
                    s.ctx(p).touch(ui).unwrap();
                }
            }
            s.step();
        }
        s.run_for(2000);
        let m: Vec<_> = (0..3).map(|p| s.ctx(p).metrics()).collect();
        for (p, &(ui, cfg)) in locals.iter().enumerate() {
            assert_eq!(s.ctx(p).get(ui).unwrap(), Value::Str(format!("peer {p} tick 199")));
            assert_eq!(s.ctx(p).get(cfg).unwrap(), Value::F64(199.0));
            assert_eq!(s.ctx(p).state(ui).unwrap(), SyncState::LocalOnly);
            assert!(s.ctx(p).is_local_only(ui).unwrap());
        }
        m.iter().map(|m| (m.messages_out, m.bytes_out, m.bytes_in, m.writes_flushed)).collect::<Vec<_>>()
    };
    let (plain, with_local) = (play(false), play(true));
    for p in 0..3 {
        assert_eq!((plain[p].0, plain[p].1, plain[p].2), (with_local[p].0, with_local[p].1, with_local[p].2));
        assert!(with_local[p].3 > plain[p].3 + 300, "the local writes were flushed into their documents");
    }
}

#[test]
fn a_local_only_value_has_the_usual_events_and_takes_nothing_from_peers() {
    let mut s = Sim::new(6, 2, LinkConfig::default(), opts());
    let mut logs = vec![Log::new(); 2];
    let a = s.ctx(0).create("tool", ValueType::I64, local()).unwrap();
    let w =
        s.ctx(0).create("slow", ValueType::I64, ValueOptions { mode: Mode::WaitForSync, ..local() }).unwrap();
    // Peer 2 shares a value of the same id: peer 1 ignores it, without asking for catch-ups.
    let b = i64_value(&mut s, 1, "tool");
    s.ctx(0).set(a, 1i64).unwrap();
    s.ctx(0).set(w, 2i64).unwrap();
    assert_eq!(s.ctx(0).get(w).unwrap(), Value::I64(0), "WaitForSync: shown once flushed");
    drain(&mut s, &mut logs);
    run(&mut s, 32, &mut logs);
    assert_eq!(s.ctx(0).get(w).unwrap(), Value::I64(2), "nobody else to wait for");
    for t in 0..20i64 {
        s.ctx(1).set(b, 100 + t).unwrap();
        run(&mut s, 32, &mut logs);
    }
    run(&mut s, 1000, &mut logs);
    assert_eq!(s.ctx(0).get(a).unwrap(), Value::I64(1));
    assert_eq!(s.ctx(1).get(b).unwrap(), Value::I64(119));
    assert!(s.ctx(1).open("slow").is_err(), "never announced");
    let kinds: Vec<_> = of(&logs[0], "tool").iter().map(|e| (e.kind, e.new.clone(), e.is_initial)).collect();
    assert_eq!(kinds, vec![(ChangeKind::Modified, Some(Value::I64(1)), false)]);
    let slow: Vec<_> = of(&logs[0], "slow").iter().map(|e| (e.kind, e.new.clone())).collect();
    assert_eq!(slow, vec![(ChangeKind::Modified, Some(Value::I64(2)))]);
    assert_eq!(s.ctx(0).metrics().catchups_sent + s.ctx(1).metrics().catchups_sent, 0);
    // The choice is made once.
    let err = s.ctx(0).create("tool", ValueType::I64, ValueOptions::default()).unwrap_err();
    assert!(matches!(err, Error::LocalOnlyMismatch { local_only: true, .. }), "{err}");
    let err = s.ctx(1).create("tool", ValueType::I64, local()).unwrap_err();
    assert!(matches!(err, Error::LocalOnlyMismatch { local_only: false, .. }), "{err}");
    // A touch saved before it was sent goes out after the load.
    let t = i64_value(&mut s, 0, "bell");
    s.ctx(0).set(t, 1i64).unwrap();
    s.run_for(300);
    s.ctx(0).touch(t).unwrap();
    let saved = s.ctx(0).save();
    s.restart(0, Context::load(1, opts(), &saved).unwrap());
    drain(&mut s, &mut logs);
    logs[1].clear();
    run(&mut s, 500, &mut logs);
    assert_eq!(
        of(&logs[1], "bell").iter().filter(|e| e.kind == ChangeKind::Touched).count(),
        1,
        "{:?}",
        logs[1]
    );
    // A save keeps it local-only.
    let loaded = Context::load(1, opts(), &s.ctx(0).save()).unwrap();
    let h = loaded.open("tool").unwrap();
    assert!(loaded.is_local_only(h).unwrap());
    assert_eq!(loaded.get(h).unwrap(), Value::I64(1));
}

//! Save and load: every type, policy and mode round-trips; a loaded context catches up
//! with a running session under its own id, or takes a peer's state over under another
//! (a room's keeper); files are written atomically; corrupt, truncated and hostile saves
//! are refused and load nothing.

use std::sync::Arc;
use zen_crdt::sim::{LinkConfig, Sim};
use zen_crdt::*;

fn opts() -> Options {
    Options::default()
}

/// Every type, each under a policy it takes, in both modes.
fn every_kind() -> Vec<(String, Value, Policy, Mode)> {
    let vals: Vec<(Value, Policy)> = vec![
        (Value::Bool(true), Policy::LastWriterWins),
        (Value::I64(-42), Policy::Max),
        (Value::F64(2.5), Policy::TakeAverage),
        (Value::Str("hello".into()), Policy::Min),
        (Value::Bytes(vec![0, 1, 2, 255]), Policy::LastWriterWins),
        (Value::Vec2([1.0, -2.0]), Policy::Max),
        (Value::Vec3([1.0, 2.0, 3.0]), Policy::TakeAverage),
        (Value::Vec4([1.0, 2.0, 3.0, 4.0]), Policy::Min),
        (Value::Color([0.1, 0.2, 0.3, 1.0]), Policy::LastWriterWins),
        (Value::Quat([0.0, 0.0, 0.0, 1.0]), Policy::TakeAverage),
        (Value::I64(7), Policy::Custom("pick-high".into())),
    ];
    let mut out = Vec::new();
    for (k, (v, p)) in vals.into_iter().enumerate() {
        for mode in [Mode::FastLocal, Mode::WaitForSync] {
            out.push((format!("v{k}/{mode:?}"), v.clone(), p.clone(), mode));
        }
    }
    out
}

fn pick_high() -> MergeFn {
    Arc::new(|c: &[Candidate]| {
        c.iter().map(|c| c.value.clone()).max_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")))
    })
}

/// What a peer shows of a value: read, type, policy, mode, state.
type Shown = (Result<Value, Error>, ValueType, Policy, Mode, SyncState);

fn shown(c: &Context, id: &str) -> Shown {
    let h = c.open(id).unwrap();
    (c.get(h), c.value_type(h).unwrap(), c.policy(h).unwrap(), c.mode(h).unwrap(), c.state(h).unwrap())
}

fn all_shown(c: &Context) -> Vec<(String, Shown)> {
    let mut ids: Vec<String> = c.value_ids().map(str::to_owned).collect();
    ids.sort();
    ids.into_iter().map(|id| (id.clone(), shown(c, &id))).collect()
}

fn reads(c: &Context) -> Vec<(String, Result<Value, Error>)> {
    all_shown(c).into_iter().map(|(id, s)| (id, s.0)).collect()
}

/// Two peers write every kind of value, concurrently for some; one value is removed and
/// one write is still pending when peer 1 saves.
fn session_with_every_kind() -> Sim {
    let mut s = Sim::new(11, 2, LinkConfig::default(), opts());
    for i in 0..2 {
        s.ctx(i).register_merge("pick-high", pick_high());
    }
    for (id, v, policy, mode) in every_kind() {
        let h = s
            .ctx(0)
            .create(&id, v.value_type(), ValueOptions { mode, policy, ..Default::default() })
            .unwrap();
        s.ctx(0).set(h, v).unwrap();
    }
    s.run_for(300);
    // Concurrent writes from both peers to the integer values.
    for i in 0..2 {
        let c = s.ctx(i);
        for id in ["v1/FastLocal", "v1/WaitForSync", "v10/FastLocal"] {
            let h = c.open(id).unwrap();
            c.set(h, 100 + i as i64).unwrap();
        }
    }
    s.run_for(300);
    let h = s.ctx(1).open("v0/FastLocal").unwrap();
    s.ctx(1).remove(h).unwrap();
    s.run_for(300);
    let h = s.ctx(0).open("v2/FastLocal").unwrap();
    s.ctx(0).set(h, 9.0f64).unwrap();
    s
}

#[test]
fn every_type_policy_and_mode_round_trips() {
    let mut s = session_with_every_kind();
    let before = all_shown(s.ctx(0));
    let bytes = s.ctx(0).save();
    let mut loaded = Context::load(1, opts(), &bytes).unwrap();
    assert_eq!(all_shown(&loaded), before, "reads, types, policies, modes and states survive");
    // Each value is announced as created, as to a joiner.
    let created: Vec<ChangeEvent> = std::iter::from_fn(|| loaded.poll_change()).collect();
    assert_eq!(created.len(), before.len());
    assert!(created.iter().all(|e| e.kind == ChangeKind::Created));
    // The custom merge resolves again once registered; a second save is the same state.
    loaded.register_merge("pick-high", pick_high());
    let again = Context::load(1, opts(), &loaded.save()).unwrap();
    assert_eq!(all_shown(&again), before);
    // Alone after a tick: the pending write is flushed and shows, everything LocalOnly.
    loaded.tick(1);
    let h = loaded.open("v2/FastLocal").unwrap();
    assert_eq!(loaded.get(h).unwrap(), Value::F64(9.0));
    assert!(loaded.all_in_state(SyncState::LocalOnly));
    assert_eq!(loaded.get(loaded.open("v0/FastLocal").unwrap()), Err(Error::Removed("v0/FastLocal".into())));
}

/// Peer 2 saves, stops, the session goes on without it, and its save comes back under
/// its own id: it catches up, its writes reach everyone, and nothing is rejected.
#[test]
fn a_loaded_context_catches_up_with_a_running_session() {
    let lossy = LinkConfig { loss: 0.1, latency_ms: 20, jitter_ms: 20, ..LinkConfig::default() };
    let mut s = Sim::new(5, 3, lossy, opts());
    let ids: Vec<String> = (0..20).map(|k| format!("e{k}")).collect();
    for (k, id) in ids.iter().enumerate() {
        let w = k % 3;
        let h = s.ctx(w).create(id, ValueType::I64, ValueOptions::default()).unwrap();
        s.ctx(w).set(h, k as i64).unwrap();
    }
    s.run_for(2_000);
    let saved = s.ctx(1).save();
    s.leave(1);
    for round in 0..5i64 {
        for w in [0, 2] {
            for id in ids.iter().skip(w).step_by(2) {
                let h = s.ctx(w).open(id).unwrap();
                s.ctx(w).set(h, 1000 * round + w as i64).unwrap();
            }
        }
        s.run_for(200);
    }
    let mut back = Context::load(2, opts(), &saved).unwrap();
    let h = back.open("e1").unwrap();
    back.set(h, -1i64).unwrap();
    let late = back.create("from-the-loaded", ValueType::Str, ValueOptions::default()).unwrap();
    back.set(late, "after load").unwrap();
    s.restart(1, back);
    s.net.link = LinkConfig::default();
    s.run_for(4_000);
    let expect = reads(s.ctx(0));
    for i in 1..3 {
        assert_eq!(reads(s.ctx(i)), expect, "peer {} differs", i + 1);
        assert!(s.ctx(i).all_in_state(SyncState::Converged), "peer {} not converged", i + 1);
    }
    let h = s.ctx(0).open("from-the-loaded").unwrap();
    assert_eq!(s.ctx(0).get(h).unwrap(), Value::Str("after load".into()));
    assert_eq!(s.rejected, 0, "{:?}", s.last_error);
}

/// A keeper's path: peer 2's save is loaded under a new id after every player left; a
/// newcomer who never met peer 2 gets peer 2's writes from the loaded context, and
/// later writes by anyone merge with them.
#[test]
fn a_save_taken_over_under_a_new_id_serves_a_newcomer() {
    let mut s = Sim::new(9, 3, LinkConfig { loss: 0.05, ..LinkConfig::default() }, opts());
    s.leave(2);
    let h = s.ctx(1).create("door", ValueType::Bool, ValueOptions::default()).unwrap();
    s.ctx(1).set(h, true).unwrap();
    let h = s
        .ctx(0)
        .create("score", ValueType::I64, ValueOptions { policy: Policy::Max, ..Default::default() })
        .unwrap();
    s.ctx(0).set(h, 30i64).unwrap();
    s.run_for(1_000);
    let h = s.ctx(1).open("score").unwrap();
    s.ctx(1).set(h, 50i64).unwrap();
    s.run_for(1_000);
    let saved = s.ctx(1).save();
    s.leave(0);
    s.leave(1);
    // The keeper (id 77) takes the state over; a newcomer (id 3) joins it alone.
    let keeper = Context::load(77, opts(), &saved).unwrap();
    s.restart(1, keeper);
    s.join(2);
    s.run_for(2_000);
    let newcomer = s.ctx(2);
    assert_eq!(newcomer.get(newcomer.open("door").unwrap()).unwrap(), Value::Bool(true));
    assert_eq!(newcomer.get(newcomer.open("score").unwrap()).unwrap(), Value::I64(50));
    let h = newcomer.open("score").unwrap();
    newcomer.set(h, 40i64).unwrap();
    s.run_for(1_000);
    // The newcomer's write saw 30 and 50, so it supersedes them (Max merges only
    // concurrent writes): 40 on both, and both converged.
    for i in [1, 2] {
        let c = s.ctx(i);
        assert_eq!(c.get(c.open("score").unwrap()).unwrap(), Value::I64(40));
        assert!(c.all_in_state(SyncState::Converged));
    }
    // The original writer comes back and agrees.
    s.join(0);
    s.run_for(2_000);
    assert_eq!(reads(s.ctx(0)), reads(s.ctx(2)));
    assert_eq!(s.rejected, 0, "{:?}", s.last_error);
}

#[test]
fn an_id_that_wrote_in_the_save_cannot_continue_from_it() {
    let mut s = Sim::new(3, 2, LinkConfig::default(), opts());
    let h = s.ctx(0).create("x", ValueType::I64, ValueOptions::default()).unwrap();
    s.ctx(0).set(h, 1i64).unwrap();
    s.run_for(500);
    let saved = s.ctx(1).save();
    let err = Context::load(1, opts(), &saved).map(|_| ()).unwrap_err();
    assert_eq!(err, Error::SavedPeerTaken { peer: 1, saver: 2 });
    assert!(err.to_string().contains("load as peer 2"), "{err}");
    assert!(Context::load(2, opts(), &saved).is_ok());
    assert!(Context::load(3, opts(), &saved).is_ok());
    assert_eq!(Context::load(0, opts(), &saved).map(|_| ()).unwrap_err(), Error::BadPeerId(0));
}

/// Loading an older save under its saver's id is the caller's mistake (the module docs
/// say so); the members' acknowledgements then show it, and the refusal says what to do.
#[test]
fn a_stale_save_under_its_savers_id_is_named_in_the_refusal() {
    let mut s = Sim::new(4, 2, LinkConfig::default(), opts());
    let h = s.ctx(1).create("x", ValueType::I64, ValueOptions::default()).unwrap();
    s.ctx(1).set(h, 1i64).unwrap();
    s.run_for(500);
    let stale = s.ctx(1).save();
    s.ctx(1).set(h, 2i64).unwrap();
    s.run_for(500);
    let mut back = Context::load(2, opts(), &stale).unwrap();
    back.add_peer(1).unwrap();
    s.ctx(0).tick(10_000);
    let acks: Vec<Outbound> = std::iter::from_fn(|| s.ctx(0).poll_outbound()).collect();
    let err = acks.iter().find_map(|m| back.receive(&m.bytes).err()).expect("the stale stream is noticed");
    assert!(err.to_string().contains("load it under an id that never wrote"), "{err}");
}

fn reseal(mut bytes: Vec<u8>) -> Vec<u8> {
    let n = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..n]);
    bytes[n..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

#[test]
fn corrupt_truncated_and_hostile_saves_are_refused() {
    let mut s = session_with_every_kind();
    let good = s.ctx(0).save();
    assert!(Context::load(1, opts(), &good).is_ok());
    for len in 0..good.len() {
        let err = Context::load(1, opts(), &good[..len]).map(|_| ()).unwrap_err();
        assert!(matches!(err, Error::BadSave(_)), "truncated to {len}: {err}");
    }
    for at in (0..good.len()).step_by(7) {
        let mut bad = good.clone();
        bad[at] ^= 0x41;
        let err = Context::load(1, opts(), &bad).map(|_| ()).unwrap_err();
        assert!(matches!(err, Error::BadSave(_)), "byte {at} flipped: {err}");
    }
    let mut newer = good.clone();
    newer[7] = SAVE_VERSION + 1;
    let err = Context::load(1, opts(), &reseal(newer)).map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("version"), "{err}");
    // Mutations behind a valid checksum reach the field checks and yrs: refused or
    // loaded, never a panic; a save of a whole session never loads as something else
    // silently wrong in shape (every id still unique).
    let mut rng = zen_crdt::sim::Rng::new(1);
    let mut refused = 0;
    for _ in 0..3_000 {
        let mut bad = good.clone();
        for _ in 0..1 + rng.below(3) {
            let at = 8 + rng.below(good.len() as u64 - 12) as usize;
            bad[at] = rng.next_u64() as u8;
        }
        match Context::load(1, opts(), &reseal(bad)) {
            Err(_) => refused += 1,
            Ok(c) => {
                let ids: std::collections::HashSet<&str> = c.value_ids().collect();
                assert_eq!(ids.len(), c.value_count());
            }
        }
    }
    assert!(refused > 1_000, "only {refused} of 3000 mutated saves refused");
    // Limits of the loading host hold.
    let small = Options { max_values: 3, ..opts() };
    assert!(matches!(Context::load(1, small, &good), Err(Error::TooManyValues(_))));
    let short_ids = Options { max_id_bytes: 4, ..opts() };
    assert!(matches!(Context::load(1, short_ids, &good), Err(Error::BadValueId { .. })));
}

#[test]
fn files_are_written_atomically_and_read_back() {
    let dir = std::env::temp_dir().join(format!("zen-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("room.zen");
    let mut s = session_with_every_kind();
    s.ctx(0).save_file(&path).unwrap();
    let before = all_shown(s.ctx(0));
    assert_eq!(all_shown(&Context::load_file(1, opts(), &path).unwrap()), before);
    // Saved again over the old file; nothing else is left in the directory.
    let h = s.ctx(0).open("v3/FastLocal").unwrap();
    s.ctx(0).set(h, "changed").unwrap();
    s.ctx(0).save_file(&path).unwrap();
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("room.zen")]);
    let c = Context::load_file(1, opts(), &path).unwrap();
    assert_eq!(c.get(c.open("v3/FastLocal").unwrap()).unwrap(), Value::Str("changed".into()));
    // A truncated file is a clear error; a missing one or a directory names the file.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = Context::load_file(1, opts(), &path).map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("damaged or truncated"), "{err}");
    let err = Context::load_file(1, opts(), dir.join("missing.zen")).map(|_| ()).unwrap_err();
    assert!(matches!(&err, Error::Io(m) if m.contains("missing.zen")), "{err}");
    let err = s.ctx(0).save_file(dir.join("no-such-dir").join("x.zen")).unwrap_err();
    assert!(matches!(&err, Error::Io(m) if m.contains("no-such-dir")), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

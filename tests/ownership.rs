//! Write permissions: owner-only values (`ValueOptions::owner`). Only the owner's writes
//! show, on every peer, under loss, duplication, reordering, partitions, late joins and
//! restarts; the owner transfers; when the host removes the owner, its heir takes over;
//! a write refused because the ownership moved is reported to its writer (`Rejected`).

use zen_crdt::sim::{LinkConfig, Sim};
use zen_crdt::*;

fn opts() -> Options {
    Options { tick_interval_ms: 16, ..Options::default() }
}

fn owned_by(peer: u64) -> ValueOptions {
    ValueOptions { owner: Some(peer), ..ValueOptions::default() }
}

fn lossy() -> LinkConfig {
    LinkConfig { loss: 0.15, duplicate: 0.1, reorder: 0.1, ..LinkConfig::default() }
}

fn events(ctx: &mut Context) -> Vec<ChangeEvent> {
    std::iter::from_fn(|| ctx.poll_change()).collect()
}

fn read(s: &mut Sim, p: usize, id: &str) -> Option<Value> {
    let ctx = s.ctx(p);
    ctx.open(id).ok().and_then(|h| ctx.get(h).ok())
}

fn owner(s: &mut Sim, p: usize, id: &str) -> Option<u64> {
    let ctx = s.ctx(p);
    ctx.owner(ctx.open(id).expect("known value")).expect("live handle")
}

#[test]
fn only_the_owner_may_write_and_every_peer_knows_who_that_is() {
    let mut s = Sim::new(1, 3, LinkConfig::default(), opts());
    let hp = s.ctx(0).create("hp", ValueType::I64, owned_by(1)).unwrap();
    s.ctx(0).set(hp, 100i64).unwrap();
    s.run_for_keep_events(500);
    for p in 0..3 {
        assert_eq!(read(&mut s, p, "hp"), Some(Value::I64(100)), "peer {}", p + 1);
        assert_eq!(owner(&mut s, p, "hp"), Some(1), "peer {}", p + 1);
    }
    let h2 = s.ctx(1).open("hp").unwrap();
    events(s.ctx(1));
    let not_owner = |r: Result<(), Error>| matches!(r, Err(Error::NotOwner { owner: 1, .. }));
    assert!(not_owner(s.ctx(1).set(h2, 5i64)));
    assert!(not_owner(s.ctx(1).touch(h2)));
    assert!(not_owner(s.ctx(1).remove(h2)));
    assert!(not_owner(s.ctx(1).transfer(h2, 2)));
    // A refused call changes nothing, here or anywhere.
    assert!(events(s.ctx(1)).is_empty());
    s.run_for_keep_events(300);
    assert_eq!(read(&mut s, 1, "hp"), Some(Value::I64(100)));
    // A value anyone may write has no owner and cannot be transferred.
    let free = s.ctx(0).create("free", ValueType::I64, ValueOptions::default()).unwrap();
    assert_eq!(s.ctx(0).owner(free).unwrap(), None);
    assert!(matches!(s.ctx(0).transfer(free, 2), Err(Error::NotOwnerOnly(_))));
    assert!(matches!(s.ctx(0).transfer(hp, 0), Err(Error::BadPeerId(0))));
}

#[test]
fn a_transfer_moves_the_right_to_write_and_every_peer_hears_of_it() {
    let mut s = Sim::new(2, 3, lossy(), opts());
    let h1 = s.ctx(0).create("ball", ValueType::Vec3, owned_by(1)).unwrap();
    s.ctx(0).set(h1, Value::Vec3([1.0, 0.0, 0.0])).unwrap();
    s.run_for_keep_events(1000);
    events(s.ctx(0));
    events(s.ctx(1));
    events(s.ctx(2));
    s.ctx(0).transfer(h1, 2).unwrap();
    // The giver may not write any more, at once; it hears of its transfer at once too.
    assert!(matches!(s.ctx(0).set(h1, Value::Vec3([9.0, 9.0, 9.0])), Err(Error::NotOwner { owner: 2, .. })));
    let ev = events(s.ctx(0));
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0].kind, ev[0].owner_changed, ev[0].origin), (ChangeKind::OwnerChanged, true, 2));
    s.run_for_keep_events(1500);
    for p in 0..3 {
        assert_eq!(owner(&mut s, p, "ball"), Some(2), "peer {}", p + 1);
        // Once on every peer: the giver heard of it when it gave.
        let ev = events(s.ctx(p));
        let changed: Vec<_> = ev.iter().filter(|e| e.owner_changed).collect();
        assert_eq!(changed.len(), (p != 0) as usize, "peer {}: {ev:?}", p + 1);
        if p != 0 {
            assert_eq!((changed[0].kind, changed[0].origin), (ChangeKind::OwnerChanged, 2));
        }
    }
    let h2 = s.ctx(1).open("ball").unwrap();
    s.ctx(1).set(h2, Value::Vec3([2.0, 0.0, 0.0])).unwrap();
    s.run_for_keep_events(1500);
    for p in 0..3 {
        assert_eq!(read(&mut s, p, "ball"), Some(Value::Vec3([2.0, 0.0, 0.0])), "peer {}", p + 1);
    }
    // And back again; the old owner writes once more.
    s.ctx(1).transfer(h2, 1).unwrap();
    s.run_for_keep_events(1500);
    s.ctx(0).set(h1, Value::Vec3([3.0, 0.0, 0.0])).unwrap();
    s.run_for_keep_events(1500);
    for p in 0..3 {
        assert_eq!(owner(&mut s, p, "ball"), Some(1), "peer {}", p + 1);
        assert_eq!(read(&mut s, p, "ball"), Some(Value::Vec3([3.0, 0.0, 0.0])), "peer {}", p + 1);
    }
}

#[test]
fn when_the_owner_leaves_for_good_the_lowest_remaining_member_takes_over() {
    let mut s = Sim::new(3, 4, lossy(), opts());
    let h = s.ctx(1).create("door", ValueType::Bool, owned_by(2)).unwrap();
    s.ctx(1).set(h, true).unwrap();
    s.run_for_keep_events(1000);
    s.leave(1);
    s.run_for_keep_events(1500);
    for p in [0, 2, 3] {
        assert_eq!(owner(&mut s, p, "door"), Some(1), "peer {}", p + 1);
        assert_eq!(read(&mut s, p, "door"), Some(Value::Bool(true)), "peer {}", p + 1);
    }
    // The heir writes, the others read it; they still may not.
    let h1 = s.ctx(0).open("door").unwrap();
    s.ctx(0).set(h1, false).unwrap();
    let h3 = s.ctx(2).open("door").unwrap();
    assert!(matches!(s.ctx(2).set(h3, true), Err(Error::NotOwner { owner: 1, .. })));
    s.run_for_keep_events(1500);
    for p in [0, 2, 3] {
        assert_eq!(read(&mut s, p, "door"), Some(Value::Bool(false)), "peer {}", p + 1);
    }
    // Then the heir leaves as well: the next lowest.
    s.leave(0);
    s.run_for_keep_events(1500);
    for p in [2, 3] {
        assert_eq!(owner(&mut s, p, "door"), Some(3), "peer {}", p + 1);
    }
    // The first owner was only away: back in the session, it owns the value again on
    // every peer and its last write stands (the heirs' writes give way).
    s.join(1);
    s.run_for_keep_events(2000);
    for p in [1, 2, 3] {
        assert_eq!(owner(&mut s, p, "door"), Some(2), "peer {}", p + 1);
        assert_eq!(read(&mut s, p, "door"), Some(Value::Bool(true)), "peer {}", p + 1);
    }
}

/// Two heirs claim at once because their rosters differ (a member only one of them has
/// seen): the lowest claimer wins on every peer, and the other hears its writes were
/// refused.
#[test]
fn competing_claims_resolve_to_the_lowest_claimer_and_the_loser_is_told() {
    let mut s = Sim::new(4, 3, LinkConfig::default(), opts());
    let h = s.ctx(2).create("crate", ValueType::I64, owned_by(3)).unwrap();
    s.ctx(2).set(h, 7i64).unwrap();
    s.run_for_keep_events(1000);
    // Peer 2's host has dropped peer 1 (a link it gave up on) when the owner leaves:
    // peer 2 sees itself as the lowest id left, and so does peer 1.
    s.ctx(1).remove_peer(1).unwrap();
    s.leave(2);
    let h2 = s.ctx(1).open("crate").unwrap();
    assert_eq!(s.ctx(1).owner(h2).unwrap(), Some(2));
    s.ctx(1).set(h2, 22i64).unwrap();
    let h1 = s.ctx(0).open("crate").unwrap();
    assert_eq!(s.ctx(0).owner(h1).unwrap(), Some(1));
    s.ctx(0).set(h1, 11i64).unwrap();
    events(s.ctx(1));
    // Both claims travel (1 and 2 still reach each other); 2 learns of 1 again.
    s.run_for_keep_events(500);
    s.ctx(1).add_peer(1).unwrap();
    s.run_for_keep_events(1500);
    for p in [0, 1] {
        assert_eq!(s.ctx(p).owner(if p == 0 { h1 } else { h2 }).unwrap(), Some(1), "peer {}", p + 1);
        assert_eq!(read(&mut s, p, "crate"), Some(Value::I64(11)), "peer {}", p + 1);
    }
    let ev = events(s.ctx(1));
    assert!(
        ev.iter().any(|e| e.kind == ChangeKind::Rejected && e.origin == 1 && e.is_correction),
        "the losing heir is told its write was refused: {ev:?}"
    );
    assert!(matches!(s.ctx(1).set(h2, 23i64), Err(Error::NotOwner { owner: 1, .. })));
}

/// The owner comes back under its id (a restart from its save): it owns again, and the
/// heir's writes in between give way.
#[test]
fn an_owner_that_comes_back_owns_again() {
    let mut s = Sim::new(5, 3, LinkConfig::default(), opts());
    let h = s.ctx(1).create("flag", ValueType::I64, owned_by(2)).unwrap();
    s.ctx(1).set(h, 1i64).unwrap();
    s.run_for_keep_events(1000);
    let save = s.ctx(1).save();
    s.leave(1);
    s.run_for_keep_events(1000);
    assert_eq!(owner(&mut s, 0, "flag"), Some(1));
    let h1 = s.ctx(0).open("flag").unwrap();
    s.ctx(0).set(h1, 50i64).unwrap();
    s.run_for_keep_events(1000);
    s.restart(1, Context::load(2, opts(), &save).unwrap());
    s.run_for_keep_events(2000);
    for p in 0..3 {
        assert_eq!(owner(&mut s, p, "flag"), Some(2), "peer {}", p + 1);
        assert_eq!(read(&mut s, p, "flag"), Some(Value::I64(1)), "peer {}", p + 1);
    }
    let ev = events(s.ctx(0));
    assert!(ev.iter().any(|e| e.kind == ChangeKind::Rejected), "{ev:?}");
    // The owner writes, then leaves again: the heir takes over with the owner's latest
    // value; its old claim (and the write refused with it) never comes back.
    let h2 = s.ctx(1).open("flag").unwrap();
    s.ctx(1).set(h2, 2i64).unwrap();
    s.run_for_keep_events(1000);
    s.leave(1);
    s.run_for_keep_events(1000);
    for p in [0, 2] {
        assert_eq!(owner(&mut s, p, "flag"), Some(1), "peer {}", p + 1);
        assert_eq!(read(&mut s, p, "flag"), Some(Value::I64(2)), "peer {}", p + 1);
    }
}

/// A transfer staged and saved before it went out still goes out after a load.
#[test]
fn a_transfer_survives_a_save() {
    let mut s = Sim::new(6, 2, LinkConfig::default(), opts());
    let h = s.ctx(0).create("gem", ValueType::I64, owned_by(1)).unwrap();
    s.ctx(0).set(h, 3i64).unwrap();
    s.run_for_keep_events(500);
    s.ctx(0).transfer(h, 2).unwrap();
    let save = s.ctx(0).save();
    let loaded = Context::load(1, opts(), &save).unwrap();
    assert_eq!(
        loaded.owner(loaded.open("gem").unwrap()).unwrap(),
        Some(2),
        "{}",
        loaded.debug_value(loaded.open("gem").unwrap())
    );
    s.restart(0, loaded);
    s.run_for_keep_events(1500);
    assert_eq!(owner(&mut s, 1, "gem"), Some(2));
}

/// Random sessions under a bad network: owners write, transfer and leave; non-owners try
/// to write (refused here) and a peer that created the value before it heard of it
/// writes anyway. No peer ever shows a value its writer did not own when it wrote, and
/// every peer ends with the same owner and value.
#[test]
fn property_a_non_owner_write_never_shows_on_any_peer() {
    for seed in 0..16u64 {
        let n = 4;
        let mut s = Sim::new(seed, n, lossy(), opts());
        let mut rng = zen_crdt::sim::Rng::new(seed ^ 0x5eed);
        let ids = ["a", "b", "c"];
        for (k, id) in ids.iter().enumerate() {
            let first = (k % n) as u64 + 1;
            s.ctx(k % n).create(id, ValueType::I64, owned_by(first)).unwrap();
        }
        // Every value a peer writes encodes the writer and the epoch of ownership it
        // believed in: writer * 1_000_000 + counter. A refused write must never show.
        let mut written: Vec<(i64, u64)> = Vec::new();
        let mut counter = 0i64;
        for round in 0..60 {
            let p = rng.below(n as u64) as usize;
            if !s.online(p) {
                if rng.chance(0.3) {
                    s.join(p);
                }
                s.run_for_keep_events(48);
                continue;
            }
            let id = ids[rng.below(ids.len() as u64) as usize];
            let me = p as u64 + 1;
            let h = s.ctx(p).open(id).ok();
            match (h, rng.below(10)) {
                (Some(h), 0) => {
                    let to = rng.below(n as u64) + 1;
                    let owned = s.ctx(p).owner(h).unwrap() == Some(me);
                    assert_eq!(s.ctx(p).transfer(h, to).is_ok(), owned, "seed {seed}");
                }
                (Some(_), 1) if round % 20 == 7 => s.leave(p),
                (Some(h), _) => {
                    counter += 1;
                    let v = me as i64 * 1_000_000 + counter;
                    let owned = s.ctx(p).owner(h).unwrap() == Some(me);
                    let r = s.ctx(p).set(h, v);
                    assert_eq!(r.is_ok(), owned, "seed {seed}: {r:?}");
                    if owned {
                        written.push((v, me));
                    }
                }
                (None, _) => {}
            }
            for _ in 0..3 {
                s.step();
                for q in 0..n {
                    events(s.ctx(q));
                }
                for q in 0..n {
                    for id in ids {
                        if let Some(Value::I64(v)) = read(&mut s, q, id) {
                            assert!(
                                v == 0 || written.iter().any(|&(w, _)| w == v),
                                "seed {seed}: peer {} shows {v} for {id}, a write no owner made",
                                q + 1
                            );
                        }
                    }
                }
            }
        }
        for p in 0..n {
            s.join(p);
        }
        s.heal();
        s.run_for_keep_events(6000);
        for id in ids {
            let (o0, v0) = (owner(&mut s, 0, id), read(&mut s, 0, id));
            let dump: Vec<String> = (0..n)
                .map(|p| {
                    let h = s.ctx(p).open(id).unwrap();
                    s.ctx(p).debug_value(h)
                })
                .collect();
            for p in 1..n {
                assert_eq!(
                    owner(&mut s, p, id),
                    o0,
                    "seed {seed}: owner of {id} on peer {}: {dump:#?}",
                    p + 1
                );
                assert_eq!(read(&mut s, p, id), v0, "seed {seed}: {id} on peer {}", p + 1);
            }
        }
    }
}

/// The oracle for owner-only values: with one writer at a time, what every peer must read
/// at the end is exactly the last write any owner made (in the order the test made
/// them), and the owner is the target of the last transfer. Random writes, transfers and
/// refused attempts by 4 peers under loss, duplication, reordering and a partition.
#[test]
fn property_every_peer_ends_with_the_last_write_its_owners_made() {
    for seed in 0..16u64 {
        let n = 4;
        let mut s = Sim::new(100 + seed, n, lossy(), opts());
        let mut rng = zen_crdt::sim::Rng::new(seed ^ 0x0a11);
        let ids = ["x", "y"];
        let mut last: Vec<(Option<i64>, u64)> = Vec::new();
        for (k, id) in ids.iter().enumerate() {
            s.ctx(k).create(id, ValueType::I64, owned_by(k as u64 + 1)).unwrap();
            last.push((None, k as u64 + 1));
        }
        s.run_for_keep_events(500);
        let mut counter = 0i64;
        for round in 0..80 {
            if round == 30 {
                s.partition(vec![0, 0, 1, 1]);
            } else if round == 50 {
                s.heal();
            }
            let p = rng.below(n as u64) as usize;
            let me = p as u64 + 1;
            let k = rng.below(ids.len() as u64) as usize;
            let h = s.ctx(p).open(ids[k]).unwrap();
            let owns = s.ctx(p).owner(h).unwrap() == Some(me);
            if rng.chance(0.2) {
                let to = rng.below(n as u64) + 1;
                let r = s.ctx(p).transfer(h, to);
                assert_eq!(r.is_ok(), owns, "seed {seed}: {r:?}");
                if owns {
                    last[k].1 = to;
                }
            } else {
                counter += 1;
                let v = me as i64 * 1_000_000 + counter;
                let r = s.ctx(p).set(h, v);
                assert_eq!(r.is_ok(), owns, "seed {seed}: {r:?}");
                if owns {
                    last[k].0 = Some(v);
                }
            }
            s.run_for_keep_events(16 * (1 + rng.below(6)));
            for q in 0..n {
                events(s.ctx(q));
            }
        }
        s.heal();
        s.run_for_keep_events(5000);
        for (k, id) in ids.iter().enumerate() {
            for p in 0..n {
                let model = last[k].0.unwrap_or(0);
                assert_eq!(
                    read(&mut s, p, id),
                    Some(Value::I64(model)),
                    "seed {seed}: {id} on peer {}",
                    p + 1
                );
                assert_eq!(
                    owner(&mut s, p, id),
                    Some(last[k].1),
                    "seed {seed}: owner of {id} on peer {}",
                    p + 1
                );
            }
        }
    }
}

/// A peer that writes while its host never told it of the value's owner: it creates the
/// same id before the creator's record reached it, so its own writes are not refused
/// locally. Once it learns the value is owned, its writes stop showing here, never show
/// anywhere else, are counted, and it is told.
#[test]
fn a_writer_that_did_not_know_the_value_was_owned_is_ignored_everywhere() {
    let mut s = Sim::new(7, 3, LinkConfig::default(), opts());
    s.partition(vec![0, 0, 1]);
    let h = s.ctx(0).create("gate", ValueType::I64, owned_by(1)).unwrap();
    s.ctx(0).set(h, 1i64).unwrap();
    s.run_for_keep_events(300);
    // Peer 3 declares the same value, owned by 1 as well, but believes it may write
    // because... it may not: a local owner check refuses it at once.
    let h3 = s.ctx(2).create("gate", ValueType::I64, owned_by(1)).unwrap();
    assert!(matches!(s.ctx(2).set(h3, 666i64), Err(Error::NotOwner { owner: 1, .. })));
    s.heal();
    s.run_for_keep_events(1500);
    for p in 0..3 {
        assert_eq!(read(&mut s, p, "gate"), Some(Value::I64(1)), "peer {}", p + 1);
    }
}

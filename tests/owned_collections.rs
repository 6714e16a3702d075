//! Write permissions for collections (`TableOptions::owner`): an owner-only table, set or
//! sequence takes inserts, updates and removals from its owner only, on every peer, under
//! loss, duplication, reordering, partitions and departures; its owner transfers it, and
//! when the host removes the owner its heir takes over (`OwnerChanged` table events); a
//! writer that did not know the collection was owned is kept out everywhere and told
//! (`Rejected`).

// Peers are numbered: `p` indexes the session and its handles alike.
#![allow(clippy::needless_range_loop)]

use std::collections::BTreeMap;
use zen_crdt::sim::{LinkConfig, Rng, Sim};
use zen_crdt::*;

fn opts() -> Options {
    Options { tick_interval_ms: 16, ..Options::default() }
}

fn lossy() -> LinkConfig {
    LinkConfig { loss: 0.15, duplicate: 0.1, reorder: 0.1, ..LinkConfig::default() }
}

fn owned_by(peer: u64) -> TableOptions {
    TableOptions { owner: Some(peer), ..TableOptions::default() }
}

fn table_events(ctx: &mut Context) -> Vec<TableEvent> {
    std::iter::from_fn(|| ctx.poll_table_change()).collect()
}

fn not_owner<T: std::fmt::Debug>(r: Result<T, Error>, owner: u64) -> bool {
    matches!(r, Err(Error::NotOwner { owner: o, .. }) if o == owner)
}

/// The three kinds of collection, opened the same way.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Table,
    Set,
    Seq,
}

const KINDS: [Kind; 3] = [Kind::Table, Kind::Set, Kind::Seq];

fn open(s: &mut Sim, p: usize, kind: Kind, opts: TableOptions) -> TableHandle {
    let ctx = s.ctx(p);
    match kind {
        Kind::Table => ctx.open_table("c", ValueType::I64, opts),
        Kind::Set => ctx.open_set("c", ValueType::I64, opts),
        Kind::Seq => ctx.open_seq("c", ValueType::I64, opts),
    }
    .unwrap()
}

/// What a collection shows, comparable across kinds: (key or index, value).
fn shows(s: &mut Sim, p: usize, kind: Kind, h: TableHandle) -> Vec<(i64, i64)> {
    let ctx = s.ctx(p);
    let int = |v: &Value| match v {
        Value::I64(n) => *n,
        other => panic!("not an i64: {other:?}"),
    };
    match kind {
        Kind::Table => ctx
            .table_entries(h)
            .unwrap()
            .iter()
            .map(|(k, v)| (if let Key::Int(k) = k { *k } else { panic!("{k:?}") }, int(v)))
            .collect(),
        Kind::Set => ctx.set_members(h).unwrap().iter().map(|v| (0, int(v))).collect(),
        Kind::Seq => ctx.seq_items(h).unwrap().iter().enumerate().map(|(k, v)| (k as i64, int(v))).collect(),
    }
}

/// A write of `v` in the collection's own way: a table keys it by `key`, a set adds it, a
/// sequence inserts it at `key` (modulo its length).
fn write(ctx: &mut Context, kind: Kind, h: TableHandle, key: i64, v: i64) -> Result<(), Error> {
    match kind {
        Kind::Table => ctx.table_set(h, key, v),
        Kind::Set => ctx.set_add(h, v),
        Kind::Seq => {
            let len = ctx.table_len(h)?;
            ctx.seq_insert(h, key as usize % (len + 1), v)
        }
    }
}

/// A removal in the collection's own way: a table's key, a set's member shown at that
/// place, a sequence's item at it. `Ok(false)` when there was nothing there.
fn remove(ctx: &mut Context, kind: Kind, h: TableHandle, key: i64) -> Result<bool, Error> {
    match kind {
        Kind::Table => ctx.table_remove(h, key),
        Kind::Set => {
            let members = ctx.set_members(h)?;
            match members.get(key as usize % members.len().max(1)) {
                Some(m) => ctx.set_remove(h, m.clone()),
                // An empty set: a refused removal still says so.
                None => ctx.set_remove(h, 0i64).map(|_| false),
            }
        }
        Kind::Seq => {
            let len = ctx.table_len(h)?;
            if len == 0 {
                ctx.table_owner(h)?
                    .filter(|&o| o != ctx.peer_id())
                    .map_or(Ok(false), |owner| Err(Error::NotOwner { id: "c".into(), owner }))
            } else {
                ctx.seq_remove(h, key as usize % len).map(|_| true)
            }
        }
    }
}

#[test]
fn only_the_owner_may_write_and_every_peer_knows_who_that_is() {
    for kind in KINDS {
        let mut s = Sim::new(1, 3, LinkConfig::default(), opts());
        let h: Vec<TableHandle> = (0..3).map(|p| open(&mut s, p, kind, owned_by(1))).collect();
        write(s.ctx(0), kind, h[0], 5, 50).unwrap();
        write(s.ctx(0), kind, h[0], 6, 60).unwrap();
        s.run_for_keep_events(500);
        let want = shows(&mut s, 0, kind, h[0]);
        assert_eq!(want.len(), 2, "{kind:?}");
        for p in 0..3 {
            assert_eq!(shows(&mut s, p, kind, h[p]), want, "{kind:?} on peer {}", p + 1);
            assert_eq!(s.ctx(p).table_owner(h[p]).unwrap(), Some(1), "{kind:?} on peer {}", p + 1);
        }
        table_events(s.ctx(1));
        // Every write a non-owner tries fails here and changes nothing anywhere.
        assert!(not_owner(write(s.ctx(1), kind, h[1], 7, 70), 1), "{kind:?}");
        assert!(not_owner(remove(s.ctx(1), kind, h[1], 0), 1), "{kind:?}");
        assert!(not_owner(s.ctx(1).transfer_table(h[1], 2), 1), "{kind:?}");
        if let Kind::Seq = kind {
            assert!(not_owner(s.ctx(1).seq_set(h[1], 0, 1i64), 1));
            assert!(not_owner(s.ctx(1).seq_move(h[1], 0, 1), 1));
            assert!(not_owner(s.ctx(1).seq_push(h[1], 1i64), 1));
        }
        assert!(table_events(s.ctx(1)).is_empty(), "{kind:?}");
        s.run_for_keep_events(300);
        for p in 0..3 {
            assert_eq!(shows(&mut s, p, kind, h[p]), want, "{kind:?} on peer {}", p + 1);
        }
        // The owner's removal reaches everyone.
        assert!(remove(s.ctx(0), kind, h[0], 5).unwrap());
        s.run_for_keep_events(300);
        for p in 0..3 {
            assert_eq!(shows(&mut s, p, kind, h[p]).len(), 1, "{kind:?} on peer {}", p + 1);
        }
    }
    // A collection anyone may write has no owner and cannot be transferred; ids with a
    // collection head's mark are reserved.
    let mut s = Sim::new(2, 1, LinkConfig::default(), opts());
    let free = s.ctx(0).open_table("free", ValueType::I64, TableOptions::default()).unwrap();
    assert_eq!(s.ctx(0).table_owner(free).unwrap(), None);
    assert!(matches!(s.ctx(0).transfer_table(free, 2), Err(Error::NotOwnerOnly(_))));
    let mine = s.ctx(0).open_table("mine", ValueType::I64, owned_by(1)).unwrap();
    assert!(matches!(s.ctx(0).transfer_table(mine, 0), Err(Error::BadPeerId(0))));
    assert!(matches!(s.ctx(0).open_table("x", ValueType::I64, owned_by(0)), Err(Error::BadPeerId(0))));
    assert!(matches!(
        s.ctx(0).create("\u{4}mine", ValueType::I64, ValueOptions::default()),
        Err(Error::ReservedId(_))
    ));
    assert_eq!(s.ctx(0).value_count(), 0, "a collection's head is no value of the host's");
    assert_eq!(s.ctx(0).metrics().values, 0);
}

#[test]
fn a_transfer_moves_the_right_to_write_and_every_peer_hears_of_it() {
    for kind in KINDS {
        let mut s = Sim::new(3, 3, lossy(), opts());
        let h: Vec<TableHandle> = (0..3).map(|p| open(&mut s, p, kind, owned_by(1))).collect();
        write(s.ctx(0), kind, h[0], 1, 10).unwrap();
        s.run_for_keep_events(500);
        for p in 0..3 {
            table_events(s.ctx(p));
        }
        s.ctx(0).transfer_table(h[0], 2).unwrap();
        // The old owner may no longer write, at once.
        assert!(not_owner(write(s.ctx(0), kind, h[0], 2, 20), 2), "{kind:?}");
        let ev = table_events(s.ctx(0));
        assert_eq!(ev.len(), 1, "{kind:?}: {ev:?}");
        assert_eq!((ev[0].kind, ev[0].origin, ev[0].table), (EntryKind::OwnerChanged, 2, h[0]));
        s.run_for_keep_events(1000);
        for p in 1..3 {
            let ev = table_events(s.ctx(p));
            let owner_events: Vec<&TableEvent> =
                ev.iter().filter(|e| e.kind == EntryKind::OwnerChanged).collect();
            assert_eq!(owner_events.len(), 1, "{kind:?} on peer {}: {ev:?}", p + 1);
            assert_eq!(owner_events[0].origin, 2);
            assert_eq!(s.ctx(p).table_owner(h[p]).unwrap(), Some(2));
        }
        // The new owner writes; what the old owner wrote stays.
        write(s.ctx(1), kind, h[1], 2, 30).unwrap();
        s.run_for_keep_events(1000);
        let want = shows(&mut s, 1, kind, h[1]);
        assert_eq!(want.len(), 2, "{kind:?}: {want:?}");
        for p in 0..3 {
            assert_eq!(shows(&mut s, p, kind, h[p]), want, "{kind:?} on peer {}", p + 1);
        }
        // Transferred on and back: everyone's earlier writes still count.
        s.ctx(1).transfer_table(h[1], 3).unwrap();
        s.run_for_keep_events(600);
        write(s.ctx(2), kind, h[2], 3, 40).unwrap();
        s.ctx(2).transfer_table(h[2], 1).unwrap();
        s.run_for_keep_events(600);
        write(s.ctx(0), kind, h[0], 4, 50).unwrap();
        s.run_for_keep_events(1000);
        let want = shows(&mut s, 0, kind, h[0]);
        assert_eq!(want.len(), 4, "{kind:?}: {want:?}");
        for p in 0..3 {
            assert_eq!(shows(&mut s, p, kind, h[p]), want, "{kind:?} on peer {}", p + 1);
            assert_eq!(s.ctx(p).table_owner(h[p]).unwrap(), Some(1));
        }
    }
}

#[test]
fn when_the_owner_leaves_for_good_the_lowest_remaining_member_takes_over() {
    let mut s = Sim::new(4, 4, LinkConfig::default(), opts());
    let h: Vec<TableHandle> = (0..4).map(|p| open(&mut s, p, Kind::Table, owned_by(2))).collect();
    s.ctx(1).table_set(h[1], 1i64, 10i64).unwrap();
    s.run_for_keep_events(500);
    for p in 0..4 {
        table_events(s.ctx(p));
    }
    s.leave(1);
    s.run_for_keep_events(1000);
    for p in [0, 2, 3] {
        assert_eq!(s.ctx(p).table_owner(h[p]).unwrap(), Some(1), "peer {}", p + 1);
        let ev = table_events(s.ctx(p));
        assert!(ev.iter().any(|e| e.kind == EntryKind::OwnerChanged && e.origin == 1), "{ev:?}");
    }
    s.ctx(0).table_set(h[0], 2i64, 20i64).unwrap();
    assert!(not_owner(s.ctx(2).table_set(h[2], 3i64, 30i64), 1));
    s.run_for_keep_events(500);
    for p in [0, 2, 3] {
        assert_eq!(
            s.ctx(p).table_entries(h[p]).unwrap(),
            [(Key::Int(1), Value::I64(10)), (Key::Int(2), Value::I64(20))],
            "peer {}",
            p + 1
        );
    }
}

/// A peer that opened the collection as anyone's before it heard it was owned writes
/// freely; once it hears, its writes stop showing there, never show anywhere else, are
/// counted, and it is told (`Rejected`).
#[test]
fn a_writer_that_did_not_know_the_collection_was_owned_is_ignored_everywhere() {
    for kind in KINDS {
        let mut s = Sim::new(5, 3, LinkConfig::default(), opts());
        s.partition(vec![0, 0, 1]);
        let h0 = open(&mut s, 0, kind, owned_by(1));
        write(s.ctx(0), kind, h0, 1, 10).unwrap();
        let h3 = open(&mut s, 2, kind, TableOptions::default());
        write(s.ctx(2), kind, h3, 2, 666).unwrap();
        s.run_for_keep_events(300);
        let h1 = open(&mut s, 1, kind, TableOptions::default());
        assert_eq!(shows(&mut s, 2, kind, h3).len(), 1, "{kind:?}: the rogue sees its own");
        table_events(s.ctx(2));
        s.heal();
        s.run_for_keep_events(1500);
        let want = shows(&mut s, 0, kind, h0);
        assert_eq!(want.iter().map(|e| e.1).collect::<Vec<_>>(), [10], "{kind:?}");
        assert_eq!(shows(&mut s, 1, kind, h1), want, "{kind:?}");
        assert_eq!(shows(&mut s, 2, kind, h3), want, "{kind:?}");
        assert_eq!(s.ctx(2).table_owner(h3).unwrap(), Some(1));
        let ev = table_events(s.ctx(2));
        assert!(
            ev.iter()
                .any(|e| e.kind == EntryKind::Rejected && e.old == Some(Value::I64(666)) && e.origin == 1),
            "{kind:?}: {ev:?}"
        );
        assert!(s.ctx(0).metrics().unowned_writes >= 1, "{kind:?}");
        assert!(not_owner(write(s.ctx(2), kind, h3, 3, 667), 1), "{kind:?}");
    }
}

#[test]
fn ownership_survives_a_save() {
    let mut s = Sim::new(6, 2, LinkConfig::default(), opts());
    let h0 = open(&mut s, 0, Kind::Table, owned_by(1));
    s.ctx(0).table_set(h0, 1i64, 10i64).unwrap();
    s.ctx(0).transfer_table(h0, 2).unwrap();
    let bytes = s.ctx(0).save();
    let mut back = Context::load(1, opts(), &bytes).unwrap();
    let t = back.open_table("c", ValueType::I64, TableOptions::default()).unwrap();
    assert_eq!(back.table_owner(t).unwrap(), Some(2));
    assert!(not_owner(back.table_set(t, 2i64, 20i64), 2));
    s.restart(0, back);
    s.run_for_keep_events(1000);
    let h1 = open(&mut s, 1, Kind::Table, TableOptions::default());
    assert_eq!(s.ctx(1).table_owner(h1).unwrap(), Some(2));
    s.ctx(1).table_set(h1, 2i64, 20i64).unwrap();
    s.run_for_keep_events(1000);
    for p in 0..2 {
        let t = open(&mut s, p, Kind::Table, TableOptions::default());
        assert_eq!(
            s.ctx(p).table_entries(t).unwrap(),
            [(Key::Int(1), Value::I64(10)), (Key::Int(2), Value::I64(20))],
            "peer {}",
            p + 1
        );
    }
}

/// Random sessions of 4 peers under a bad network: owners write, remove, transfer and
/// leave; non-owners try (refused here); peer 4 opened every collection as anyone's
/// while cut off and wrote (a writer that did not know). No peer ever shows a value its
/// writer did not own the collection for when it wrote, and every peer ends with the
/// same owner and the same entries.
#[test]
fn property_a_non_owner_write_never_shows_on_any_peer() {
    for seed in 0..12u64 {
        let n = 4;
        let mut s = Sim::new(seed, n, lossy(), opts());
        let mut rng = Rng::new(seed ^ 0x0c0c);
        s.partition(vec![0, 0, 0, 1]);
        let mut h = vec![Vec::new(); n];
        // Writes of peer 4 while it did not know the collection was owned: it alone may
        // show them, and only until it hears.
        let mut unknowing: Vec<i64> = Vec::new();
        for (k, kind) in KINDS.iter().enumerate() {
            for p in 0..n - 1 {
                h[p].push(open(&mut s, p, *kind, owned_by(k as u64 % 3 + 1)));
            }
            h[n - 1].push(open(&mut s, n - 1, *kind, TableOptions::default()));
            write(s.ctx(n - 1), *kind, h[n - 1][k], 9, -1 - k as i64).unwrap();
            unknowing.push(-1 - k as i64);
        }
        s.run_for_keep_events(200);
        s.heal();
        // Values encode their writer: writer * 1_000_000 + counter. Only an accepted
        // write (by the collection's owner as its writer knew it) may ever show.
        let mut written: Vec<i64> = Vec::new();
        let mut counter = 0i64;
        for round in 0..70 {
            let p = rng.below(n as u64) as usize;
            if !s.online(p) {
                if rng.chance(0.3) {
                    s.join(p);
                }
                s.run_for_keep_events(48);
                continue;
            }
            let k = rng.below(3) as usize;
            let (kind, t) = (KINDS[k], h[p][k]);
            let me = p as u64 + 1;
            let owner = s.ctx(p).table_owner(t).unwrap();
            let owns = owner == Some(me);
            let may = owner.is_none_or(|o| o == me);
            match rng.below(10) {
                0 => {
                    let to = rng.below(n as u64) + 1;
                    assert_eq!(s.ctx(p).transfer_table(t, to).is_ok(), owns, "seed {seed}");
                }
                1 if round % 25 == 7 => s.leave(p),
                2 | 3 => {
                    let r = remove(s.ctx(p), kind, t, rng.below(8) as i64);
                    assert_eq!(r.is_ok(), may, "seed {seed}: {kind:?} {r:?}");
                }
                _ => {
                    counter += 1;
                    let v = me as i64 * 1_000_000 + counter;
                    let r = write(s.ctx(p), kind, t, rng.below(8) as i64, v);
                    assert_eq!(r.is_ok(), may, "seed {seed}: {kind:?} {r:?}");
                    if owns {
                        written.push(v);
                    } else if may {
                        unknowing.push(v);
                    }
                }
            }
            for _ in 0..3 {
                s.step();
                for q in 0..n {
                    table_events(s.ctx(q));
                    for k in 0..3 {
                        let t = h[q][k];
                        let knows = s.ctx(q).table_owner(t).unwrap().is_some();
                        for (_, v) in shows(&mut s, q, KINDS[k], t) {
                            assert!(
                                written.contains(&v) || (!knows && unknowing.contains(&v)),
                                "seed {seed}: peer {} shows {v} in the {:?}, a write no owner made",
                                q + 1,
                                KINDS[k]
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
        s.run_for_keep_events(8000);
        for k in 0..3 {
            let o0 = s.ctx(0).table_owner(h[0][k]).unwrap();
            let v0 = shows(&mut s, 0, KINDS[k], h[0][k]);
            assert!(v0.iter().all(|(_, v)| written.contains(v)), "seed {seed}");
            for p in 1..n {
                assert_eq!(s.ctx(p).table_owner(h[p][k]).unwrap(), o0, "seed {seed}: {:?} owner", KINDS[k]);
                assert_eq!(
                    shows(&mut s, p, KINDS[k], h[p][k]),
                    v0,
                    "seed {seed}: {:?} on peer {}",
                    KINDS[k],
                    p + 1
                );
            }
        }
    }
}

/// The oracle: with one writer at a time (each transfer made once the session is quiet,
/// as a game hands a collection over), what every peer shows at the end is exactly what
/// the owners' operations, applied in the order the test made them, give. Random
/// inserts, updates, removals, touches and transfers by 4 peers under loss, duplication
/// and reordering, with a partition while no transfer is under way.
#[test]
fn property_every_peer_ends_with_what_its_owners_made() {
    for seed in 0..12u64 {
        let n = 4;
        let mut s = Sim::new(200 + seed, n, lossy(), opts());
        let mut rng = Rng::new(seed ^ 0x0a11);
        let h: Vec<Vec<TableHandle>> =
            (0..n).map(|p| KINDS.iter().map(|&kind| open(&mut s, p, kind, owned_by(1))).collect()).collect();
        // The models: a table by key, a set of members, a sequence's items in order.
        let mut table: BTreeMap<i64, i64> = BTreeMap::new();
        let mut set: Vec<i64> = Vec::new();
        let mut seq: Vec<i64> = Vec::new();
        let mut owner = [1u64; 3];
        let mut counter = 0i64;
        for round in 0..60 {
            if round == 20 {
                s.partition(vec![0, 0, 1, 1]);
            } else if round == 35 {
                s.heal();
            }
            let k = rng.below(3) as usize;
            let p = owner[k] as usize - 1;
            let (kind, t) = (KINDS[k], h[p][k]);
            let key = rng.below(6) as i64;
            if rng.chance(0.1) && !(20..35).contains(&round) {
                let to = rng.below(n as u64) + 1;
                s.ctx(p).transfer_table(t, to).unwrap();
                owner[k] = to;
                // Quiet: the new owner holds everything before it writes.
                s.run_for_keep_events(3000);
            } else if rng.chance(0.15) {
                // A touch re-announces what is there and changes nothing the model holds.
                let ctx = s.ctx(p);
                match kind {
                    Kind::Table => {
                        if let Some(&v) = table.get(&key) {
                            ctx.table_touch(t, key, v).unwrap();
                        }
                    }
                    Kind::Set => {
                        if let Some(&m) = set.get(key as usize % set.len().max(1)) {
                            ctx.set_touch(t, m).unwrap();
                        }
                    }
                    Kind::Seq => {
                        if !seq.is_empty() {
                            ctx.seq_touch(t, key as usize % seq.len()).unwrap();
                        }
                    }
                }
            } else if rng.chance(0.3) {
                let ctx = s.ctx(p);
                match kind {
                    Kind::Table => {
                        ctx.table_remove(t, key).unwrap();
                        table.remove(&key);
                    }
                    Kind::Set => {
                        let members = ctx.set_members(t).unwrap();
                        if let Some(Value::I64(m)) = members.get(key as usize % members.len().max(1)) {
                            ctx.set_remove(t, *m).unwrap();
                            set.retain(|x| x != m);
                        }
                    }
                    Kind::Seq => {
                        if !seq.is_empty() {
                            let at = key as usize % seq.len();
                            ctx.seq_remove(t, at).unwrap();
                            seq.remove(at);
                        }
                    }
                }
            } else {
                counter += 1;
                let v = counter;
                write(s.ctx(p), kind, t, key, v).unwrap();
                match kind {
                    Kind::Table => {
                        table.insert(key, v);
                    }
                    Kind::Set => set.push(v),
                    Kind::Seq => {
                        let at = key as usize % (seq.len() + 1);
                        seq.insert(at, v);
                    }
                }
            }
            s.run_for_keep_events(16 * (1 + rng.below(4)));
            for q in 0..n {
                table_events(s.ctx(q));
            }
        }
        s.heal();
        s.run_for_keep_events(6000);
        set.sort_unstable();
        let models: [Vec<(i64, i64)>; 3] = [
            table.iter().map(|(&k, &v)| (k, v)).collect(),
            set.iter().map(|&v| (0, v)).collect(),
            seq.iter().enumerate().map(|(k, &v)| (k as i64, v)).collect(),
        ];
        for k in 0..3 {
            for p in 0..n {
                assert_eq!(
                    shows(&mut s, p, KINDS[k], h[p][k]),
                    models[k],
                    "seed {seed}: {:?} on peer {}",
                    KINDS[k],
                    p + 1
                );
                assert_eq!(s.ctx(p).table_owner(h[p][k]).unwrap(), Some(owner[k]), "seed {seed}");
            }
        }
    }
}

/// Memory stays flat under churn in an owner-only table as in any: removed entries are
/// forgotten once every member holds the removal, across transfers. After the owner
/// left and its heir claimed the table, removals the heir makes are kept (an owner
/// coming back would void them: `Owners::settled`) until then.
#[test]
fn removed_entries_of_an_owned_table_are_forgotten() {
    let mut s = Sim::new(8, 3, LinkConfig::default(), opts());
    let h: Vec<TableHandle> = (0..3).map(|p| open(&mut s, p, Kind::Table, owned_by(1))).collect();
    let churn = |s: &mut Sim, p: usize, from: i64| {
        for k in from..from + 300 {
            s.ctx(p).table_set(h[p], k, k).unwrap();
            s.step();
            s.ctx(p).table_remove(h[p], k).unwrap();
            s.step();
        }
        s.run_for(1000);
    };
    churn(&mut s, 0, 0);
    for p in 0..3 {
        let m = s.ctx(p).metrics();
        assert_eq!((m.table_entries, m.entries_forgotten), (0, 300), "peer {}", p + 1);
    }
    s.ctx(0).transfer_table(h[0], 2).unwrap();
    s.run_for(500);
    churn(&mut s, 1, 1000);
    for p in 0..3 {
        let m = s.ctx(p).metrics();
        assert_eq!((m.table_entries, m.entries_forgotten), (0, 600), "peer {}", p + 1);
    }
    // Peer 2 leaves for good: peer 1 claims the table; its removals are kept.
    s.leave(1);
    s.run_for(500);
    assert_eq!(s.ctx(0).table_owner(h[0]).unwrap(), Some(1));
    churn(&mut s, 0, 2000);
    for p in [0, 2] {
        assert_eq!(s.ctx(p).table_len(h[p]).unwrap(), 0);
        let m = s.ctx(p).metrics();
        assert_eq!((m.table_entries, m.entries_forgotten), (300, 600), "peer {}", p + 1);
    }
}

//! Tests: what a malicious member can send, and that each attempt is rejected, counted
//! and changes nothing (README, "Threat model").
//!
//! The forged messages are crafted here with the protocol's own encoder and yrs, and the
//! same bytes are committed as a C array (`tests/c/forged_messages.h`) so the C harness
//! checks them through the C API; `ZEN_BLESS=1 cargo test forgery` rewrites that file
//! after a wire change, and this test fails while it is stale.
#![cfg(test)]

use crate::context::{Context, Options, ValueOptions};
use crate::error::Error;
use crate::ids::PeerId;
use crate::protocol::{put_entry, put_header, put_varint, seal, MessageKind};
use crate::register::{encode_own, encode_record, Own};
use crate::seqwindow::SeqWindow;
use crate::value::{Value, ValueType};
use yrs::updates::decoder::Decode;
use yrs::{Any, Doc, Map, ReadTxn, StateVector, Transact};

/// Peer 3's honest slot record and update for value "hp": i64 42.
fn honest_three() -> Vec<u8> {
    let doc = Doc::with_client_id(3);
    let map = doc.get_or_insert_map("v");
    {
        let mut txn = doc.transact_mut();
        let mut meta = vec![ValueType::I64 as u8];
        crate::policy::Policy::LastWriterWins.encode(&mut meta);
        map.insert(&mut txn, "m", Any::Buffer(meta.into()));
        map.insert(&mut txn, "3", Any::Buffer(record(42).into()));
    }
    let update = doc.transact().encode_state_as_update_v1(&StateVector::default());
    update
}

fn record(v: i64) -> Vec<u8> {
    let mut r = Vec::new();
    encode_record(&[], Some(&Value::I64(v)), &mut r);
    r
}

/// A delta from peer 2 whose update is what peer 2's document, holding peer 3's
/// state, produced when `edit` changed it (its own slot written as well).
fn delta_from_two(edit: impl FnOnce(&yrs::MapRef, &mut yrs::TransactionMut)) -> Vec<u8> {
    let doc = Doc::with_client_id(2);
    let map = doc.get_or_insert_map("v");
    doc.transact_mut().apply_update(yrs::Update::decode_v1(&honest_three()).unwrap()).unwrap();
    let before = doc.transact().state_vector();
    {
        let mut txn = doc.transact_mut();
        map.insert(&mut txn, "2", Any::Buffer(record(1).into()));
        edit(&map, &mut txn);
    }
    let update = doc.transact().encode_diff_v1(&before);
    message(2, &[], Some(&update))
}

/// A sealed message from `sender`: a delta (seq 1, value "hp") carrying `update`, or an
/// ack-only message.
fn message(sender: u64, acks: &[(u64, SeqWindow)], update: Option<&[u8]>) -> Vec<u8> {
    message_seq(sender, 1, acks, update)
}

/// `message`, numbered `seq` in the sender's stream.
fn message_seq(sender: u64, seq: u64, acks: &[(u64, SeqWindow)], update: Option<&[u8]>) -> Vec<u8> {
    let sender = PeerId::new(sender);
    let acks: Vec<(PeerId, SeqWindow)> = acks.iter().map(|&(p, w)| (PeerId::new(p), w)).collect();
    let acks = &acks[..];
    let mut out = Vec::new();
    match update {
        Some(u) => {
            put_header(&mut out, MessageKind::Delta, sender, acks);
            put_varint(&mut out, seq);
            put_varint(&mut out, 1);
            put_entry(&mut out, 0, Some("hp"), u);
        }
        None => put_header(&mut out, MessageKind::Ack, sender, acks),
    }
    seal(out)
}

/// The forged messages, by name: each from peer 2, to peer 1.
fn forgeries() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        // Overwrites peer 3's slot: an item placed after peer 3's item (under its key).
        (
            "forged_slot",
            delta_from_two(|m, t| {
                m.insert(t, "3", Any::Buffer(record(-1).into()));
            }),
        ),
        // Deletes peer 3's slot.
        (
            "forged_delete",
            delta_from_two(|m, t| {
                m.remove(t, "3");
            }),
        ),
        // Acknowledges seqs of peer 1's stream that peer 1 never sent.
        ("forged_ack", message(2, &[(1, SeqWindow::raw(1000, 0))], None)),
    ]
}

/// Peer 1, with members 2 and 3, holding peer 3's "hp" = 42.
fn receiver() -> Context {
    let mut c = Context::new(1, Options::default()).unwrap();
    c.add_peer(2).unwrap();
    c.add_peer(3).unwrap();
    c.receive_from(3, &message(3, &[], Some(&honest_three()))).unwrap();
    c.tick(16);
    c
}

/// What a forgery must not change.
fn fingerprint(c: &mut Context) -> (Value, usize, u64, u64, Vec<(u64, bool)>) {
    let h = c.open("hp").unwrap();
    let m = c.metrics();
    (c.get(h).unwrap(), c.value_count(), m.updates_applied, m.messages_in, c.peers())
}

#[test]
fn forged_deltas_and_acks_are_rejected_counted_and_change_nothing() {
    let mut c = receiver();
    let before = fingerprint(&mut c);
    assert_eq!(before.0, Value::I64(42));
    for (i, (name, bytes)) in forgeries().into_iter().enumerate() {
        let e = c.receive_from(2, &bytes).unwrap_err();
        let why = match &e {
            Error::Forged(why) => why.clone(),
            other => panic!("{name}: rejected as {other:?}, not as forged"),
        };
        let expected = match name {
            "forged_slot" => "item of peer 3",
            "forged_delete" => "deletes items of peer 3",
            _ => "acknowledges seq 1000 of our stream; we sent 0",
        };
        assert!(why.contains(expected), "{name}: {why}");
        // The unauthenticated path checks the same: the message names its sender (2).
        assert!(matches!(c.receive(&bytes), Err(Error::Forged(_))), "{name}");
        let m = c.metrics();
        assert_eq!((m.messages_forged, m.messages_rejected), (2 * i as u64 + 2, 2 * i as u64 + 2));
        c.tick(32 + 16 * i as u64);
        assert_eq!(fingerprint(&mut c), before, "{name} changed something");
    }
}

#[test]
fn a_message_in_another_members_name_is_rejected_by_receive_from() {
    let mut c = receiver();
    let before = fingerprint(&mut c);
    // Peer 2 replays (or makes up) a message that says it is from peer 3.
    let as_three = message(3, &[], Some(&honest_three()));
    assert_eq!(c.receive_from(2, &as_three), Err(Error::SenderMismatch { claimed: 3, from: 2 }));
    assert_eq!(c.metrics().messages_forged, 1);
    c.tick(48);
    assert_eq!(fingerprint(&mut c), before);
    // The same bytes from peer 3 itself are fine (a duplicate here).
    c.receive_from(3, &as_three).unwrap();
}

#[test]
fn honest_writers_pass_the_ownership_checks_in_a_contested_value() {
    // Three writers of one value, each overwriting many times: nothing is refused.
    let mut s = crate::sim::Sim::new(5, 3, Default::default(), Options::default());
    let h: Vec<_> =
        (0..3).map(|i| s.ctx(i).create("hp", ValueType::I64, ValueOptions::default()).unwrap()).collect();
    for round in 0..50 {
        for (i, &h) in h.iter().enumerate() {
            s.ctx(i).set(h, (round * 10 + i) as i64).unwrap();
        }
        s.step();
    }
    s.run_for(500);
    assert_eq!(s.rejected, 0, "{:?}", s.last_error);
    assert!(s.peers.iter().all(|c| c.metrics().messages_forged == 0));
}

/// Peer 3's "hp" = 42, owner-only, owned by peer 3: its meta record and its write.
fn owned_by_three(doc: &Doc) {
    let map = doc.get_or_insert_map("v");
    let mut txn = doc.transact_mut();
    let mut meta = vec![ValueType::I64 as u8 | 0x80, 3];
    crate::policy::Policy::LastWriterWins.encode(&mut meta);
    map.insert(&mut txn, "m", Any::Buffer(meta.into()));
    map.insert(&mut txn, "3", Any::Buffer(owned_record(0, 3, 42).into()));
}

/// A record of an owner-only value, written under ownership (`epoch`, `owner`).
fn owned_record(epoch: u32, owner: u64, v: i64) -> Vec<u8> {
    let mut r = Vec::new();
    encode_own(Own { epoch, owner: PeerId::new(owner) }, &mut r);
    encode_record(&[], Some(&Value::I64(v)), &mut r);
    r
}

/// Enforced on receipt: a member that writes its own slot of a value another peer owns
/// sends nothing forged (the slot is its own), yet no record of it is ever read, however
/// it dresses the record up; each is counted. A grant by the owner makes the member's
/// later writes the ones read.
#[test]
fn writes_by_a_member_that_does_not_own_the_value_are_kept_out_and_counted() {
    let three = Doc::with_client_id(3);
    owned_by_three(&three);
    let update = three.transact().encode_state_as_update_v1(&StateVector::default());
    let mut c = Context::new(1, Options::default()).unwrap();
    c.add_peer(2).unwrap();
    c.add_peer(3).unwrap();
    c.receive_from(3, &message(3, &[], Some(&update))).unwrap();
    c.tick(16);
    let h = c.open("hp").unwrap();
    assert_eq!((c.get(h).unwrap(), c.owner(h).unwrap()), (Value::I64(42), Some(3)));
    while c.poll_change().is_some() {}
    // Peer 2 holds peer 3's state and writes its own slot, each time sending its whole
    // contribution, as an honest writer does.
    let two = Doc::with_client_id(2);
    two.transact_mut().apply_update(yrs::Update::decode_v1(&update).unwrap()).unwrap();
    let threes = two.transact().state_vector();
    let attempts = [
        ("a plain record", record(-1)),
        ("a claim to be the first owner", owned_record(0, 2, -2)),
        ("a later epoch, the owner present", owned_record(7, 2, -3)),
        ("a grant to peer 1 in its own name", owned_record(1, 1, -4)),
    ];
    for (k, (what, rec)) in attempts.into_iter().enumerate() {
        two.get_or_insert_map("v").insert(&mut two.transact_mut(), "2", Any::Buffer(rec.into()));
        let diff = two.transact().encode_diff_v1(&threes);
        c.receive_from(2, &message_seq(2, k as u64 + 1, &[], Some(&diff))).unwrap();
        c.tick(32 + 16 * k as u64);
        assert_eq!((c.get(h).unwrap(), c.owner(h).unwrap()), (Value::I64(42), Some(3)), "{what}");
        assert_eq!(c.metrics().unowned_writes, k as u64 + 1, "{what}");
        assert_eq!(c.metrics().messages_forged, 0, "{what}");
        assert_eq!(c.poll_change(), None, "{what}");
    }
    // Peer 3 gives the value to peer 2: its grant is read, then peer 2's next write.
    three.get_or_insert_map("v").insert(
        &mut three.transact_mut(),
        "3",
        Any::Buffer(owned_record(1, 2, 42).into()),
    );
    let grant = three.transact().encode_state_as_update_v1(&StateVector::default());
    c.receive_from(3, &message_seq(3, 2, &[], Some(&grant))).unwrap();
    c.tick(200);
    assert_eq!((c.get(h).unwrap(), c.owner(h).unwrap()), (Value::I64(42), Some(2)));
    let ev = c.poll_change().expect("the new owner is news");
    assert_eq!((ev.kind, ev.owner_changed, ev.origin), (crate::events::ChangeKind::OwnerChanged, true, 2));
    two.get_or_insert_map("v").insert(
        &mut two.transact_mut(),
        "2",
        Any::Buffer(owned_record(1, 2, 5).into()),
    );
    let diff = two.transact().encode_diff_v1(&threes);
    c.receive_from(2, &message_seq(2, 5, &[], Some(&diff))).unwrap();
    c.tick(216);
    assert_eq!(c.get(h).unwrap(), Value::I64(5));
}

/// A member whose library lets it write a value it does not own (a hostile or modified
/// build: its copy forgets the value is owner-only before each write). In random
/// sessions under loss, duplication and reordering, with the catch-up snapshots they
/// cause, no honest peer ever shows one of its writes (they are negative; the owner's are
/// not) or hears an event from it (its touches included), each honest peer counts them,
/// and every honest peer ends with the owner's last write.
#[test]
fn property_a_rogue_members_writes_never_show_on_an_honest_peer() {
    use crate::sim::{LinkConfig, Rng, Sim};
    let link = LinkConfig { loss: 0.2, duplicate: 0.1, reorder: 0.2, ..LinkConfig::default() };
    for seed in 0..12u64 {
        let mut s = Sim::new(seed, 4, link.clone(), Options { tick_interval_ms: 16, ..Options::default() });
        let owned = ValueOptions { owner: Some(1), ..ValueOptions::default() };
        let h = s.ctx(0).create("hp", ValueType::I64, owned).unwrap();
        s.ctx(0).set(h, 1i64).unwrap();
        s.run_for(500);
        let rogue = 3;
        let hr = s.ctx(rogue).open("hp").unwrap();
        assert!(matches!(s.ctx(rogue).set(hr, -1i64), Err(Error::NotOwner { .. })), "seed {seed}");
        let mut rng = Rng::new(seed);
        let mut last = 1i64;
        for round in 1..=120i64 {
            let i = s.peers[rogue].table.index(hr).unwrap();
            s.peers[rogue].table.get_mut(i).crdt.owner = None;
            s.ctx(rogue).set(hr, -round).unwrap();
            if round % 5 == 0 {
                s.ctx(rogue).touch(hr).unwrap();
            }
            if rng.chance(0.3) {
                last = round;
                s.ctx(0).set(h, last).unwrap();
            }
            s.step_keep_events();
            for q in 0..rogue {
                while let Some(ev) = s.ctx(q).poll_change() {
                    assert!(ev.origin != 4, "seed {seed}: peer {} heard from the rogue: {ev:?}", q + 1);
                }
                let hq = s.ctx(q).open("hp").unwrap();
                let shown = shown_i64(&s.ctx(q).get(hq).unwrap());
                assert!(shown >= 0, "seed {seed}: peer {} shows the rogue's {shown}", q + 1);
            }
        }
        s.run_for(3000);
        for q in 0..rogue {
            let hq = s.ctx(q).open("hp").unwrap();
            assert_eq!(s.ctx(q).get(hq).unwrap(), Value::I64(last), "seed {seed}: peer {}", q + 1);
            assert!(s.ctx(q).metrics().unowned_writes > 0, "seed {seed}: peer {} counted nothing", q + 1);
        }
    }
}

/// The same for an owner-only table: a member whose build forgets who owns the table
/// writes, removes and inserts anyway, its records carrying no ownership, an epoch it
/// claims to have owned from the start, or an epoch not granted yet. No honest peer ever
/// shows one of its values or loses an entry to it; each counts its records; every
/// honest peer ends with the owner's entries.
#[test]
#[allow(clippy::needless_range_loop)]
fn property_a_rogue_members_table_writes_never_show_on_an_honest_peer() {
    use crate::collection::{Key, Owners};
    use crate::context::TableOptions;
    use crate::sim::{LinkConfig, Rng, Sim};
    let link = LinkConfig { loss: 0.2, duplicate: 0.1, reorder: 0.2, ..LinkConfig::default() };
    for seed in 0..12u64 {
        let mut s = Sim::new(seed, 4, link.clone(), Options { tick_interval_ms: 16, ..Options::default() });
        let owned = TableOptions { owner: Some(1), ..TableOptions::default() };
        let h: Vec<_> =
            (0..4).map(|p| s.ctx(p).open_table("t", ValueType::I64, owned.clone()).unwrap()).collect();
        for k in 0..4i64 {
            s.ctx(0).table_set(h[0], k, k + 1).unwrap();
        }
        s.run_for(500);
        let rogue = 3;
        assert!(matches!(s.ctx(rogue).table_set(h[rogue], 9i64, -1i64), Err(Error::NotOwner { .. })));
        let mut rng = Rng::new(seed);
        let mut model: std::collections::BTreeMap<i64, i64> = (0..4).map(|k| (k, k + 1)).collect();
        let ti = h[rogue].index;
        for round in 1..=120i64 {
            let forged = match round % 3 {
                0 => None,
                1 => Some(Owners { ids: vec![4], settled: 1 }),
                _ => Some(Owners { ids: vec![1, 4], settled: 2 }),
            };
            s.peers[rogue].table.forge_owners(ti, forged);
            let key = rng.below(6) as i64;
            if rng.chance(0.3) {
                s.ctx(rogue).table_remove(h[rogue], key).unwrap();
            } else {
                s.ctx(rogue).table_set(h[rogue], key, -round).unwrap();
            }
            if rng.chance(0.3) {
                let key = rng.below(6) as i64;
                if rng.chance(0.3) {
                    s.ctx(0).table_remove(h[0], key).unwrap();
                    model.remove(&key);
                } else {
                    s.ctx(0).table_set(h[0], key, round).unwrap();
                    model.insert(key, round);
                }
            }
            s.step();
            for q in 0..rogue {
                for (k, v) in s.ctx(q).table_entries(h[q]).unwrap() {
                    let v = shown_i64(&v);
                    assert!(v > 0, "seed {seed}: peer {} shows the rogue's {v} at {k}", q + 1);
                }
            }
        }
        s.run_for(4000);
        let want: Vec<(Key, Value)> = model.iter().map(|(&k, &v)| (Key::Int(k), Value::I64(v))).collect();
        for q in 0..rogue {
            assert_eq!(s.ctx(q).table_entries(h[q]).unwrap(), want, "seed {seed}: peer {}", q + 1);
            assert!(s.ctx(q).metrics().unowned_writes > 0, "seed {seed}: peer {} counted nothing", q + 1);
        }
    }
}

fn shown_i64(v: &Value) -> i64 {
    match v {
        Value::I64(x) => *x,
        other => panic!("an i64 value reads {other:?}"),
    }
}

/// The C harness's copy of the forged messages (see the module comment).
#[test]
fn committed_c_fixtures_match() {
    let mut out = String::from(
        "/* Forged messages from peer 2 to peer 1, crafted by src/forgery.rs; regenerate with\n \
         * `ZEN_BLESS=1 cargo test forgery` (a test fails while this file is stale). */\n\
         #ifndef ZEN_FORGED_MESSAGES_H\n#define ZEN_FORGED_MESSAGES_H\n#include <stdint.h>\n",
    );
    for (name, bytes) in forgeries() {
        out.push_str(&format!("static const uint8_t {name}[{}] = {{", bytes.len()));
        for (i, b) in bytes.iter().enumerate() {
            out.push_str(if i % 16 == 0 { "\n   " } else { "" });
            out.push_str(&format!(" {b:#04x},"));
        }
        out.push_str("\n};\n");
    }
    out.push_str("#endif\n");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/forged_messages.h");
    if std::env::var_os("ZEN_BLESS").is_some() {
        std::fs::write(&path, &out).unwrap();
        return;
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap_or_default(),
        out,
        "tests/c/forged_messages.h is stale: run `ZEN_BLESS=1 cargo test forgery`"
    );
}

//! Every error path of the public API: each bad input gets its own error and changes
//! nothing.

use zen_crdt::*;

fn pair() -> (Context, Context) {
    let mut a = Context::new(1, Options::default()).unwrap();
    let mut b = Context::new(2, Options::default()).unwrap();
    a.add_peer(2).unwrap();
    b.add_peer(1).unwrap();
    (a, b)
}

/// A real delta from peer 1 carrying one write.
fn delta() -> (Context, Context, Vec<u8>) {
    let (mut a, b) = pair();
    let h = a.create("hp", ValueType::I64, ValueOptions::default()).unwrap();
    a.set(h, 42i64).unwrap();
    a.tick(16);
    let msg = a.poll_outbound().unwrap();
    assert_eq!(msg.to, None);
    (a, b, msg.bytes)
}

/// State a rejected message must leave untouched.
fn fingerprint(c: &mut Context) -> (usize, u64, u64, usize) {
    c.tick(c.now_ms() + 16);
    let m = c.metrics();
    while c.poll_outbound().is_some() {}
    (c.value_count(), m.updates_applied, m.messages_in, c.pending_changes())
}

#[test]
fn bad_peer_ids() {
    assert_eq!(Context::new(0, Options::default()).err(), Some(Error::BadPeerId(0)));
    assert_eq!(Context::new(1 << 53, Options::default()).err(), Some(Error::BadPeerId(1 << 53)));
    let (mut a, _) = pair();
    assert_eq!(a.add_peer(0), Err(Error::BadPeerId(0)));
    assert_eq!(a.add_peer(1), Err(Error::SelfPeer(1)));
    assert_eq!(a.remove_peer(9), Err(Error::UnknownPeer(9)));
    assert_eq!(a.peers(), vec![(2, true)]);
}

#[test]
fn bad_options_are_named() {
    let e = Context::new(1, Options { tick_interval_ms: 0, ..Options::default() }).err().unwrap();
    assert!(e.to_string().contains("tick_interval_ms"), "{e}");
    let e = Context::new(1, Options { max_message_bytes: 1000, ..Options::default() }).err().unwrap();
    assert!(e.to_string().contains("max_message_bytes"), "{e}");
}

#[test]
fn wrong_type_unknown_value_and_bad_ids() {
    let (mut a, _) = pair();
    let h = a.create("pos", ValueType::Vec3, ValueOptions::default()).unwrap();
    let e = a.set(h, 5i64).unwrap_err();
    assert_eq!(e, Error::WrongType { id: "pos".into(), expected: ValueType::Vec3, actual: ValueType::I64 });
    assert!(e.to_string().contains("pos"));
    assert_eq!(a.get(h).unwrap(), Value::Vec3([0.0; 3]), "failed set changed nothing");
    assert_eq!(a.pending_changes(), 0);
    assert_eq!(a.open("nope"), Err(Error::UnknownValue("nope".into())));
    assert!(matches!(
        a.create("", ValueType::I64, ValueOptions::default()),
        Err(Error::BadValueId { len: 0, .. })
    ));
    let long = "x".repeat(257);
    assert!(matches!(
        a.create(&long, ValueType::I64, ValueOptions::default()),
        Err(Error::BadValueId { len: 257, .. })
    ));
    assert!(matches!(a.create("pos", ValueType::Str, ValueOptions::default()), Err(Error::WrongType { .. })));
    let avg = ValueOptions { policy: Policy::TakeAverage, ..Default::default() };
    assert_eq!(
        a.create("name", ValueType::Str, avg),
        Err(Error::PolicyNotSupported { policy: "TakeAverage", ty: ValueType::Str })
    );
    assert_eq!(a.value_count(), 1);
}

#[test]
fn oversized_values_are_refused() {
    let (mut a, _) = pair();
    let h = a.create("blob", ValueType::Bytes, ValueOptions::default()).unwrap();
    let big = vec![0u8; (64 << 10) + 1];
    assert!(matches!(a.set(h, big), Err(Error::TooLarge { what: "value", .. })));
    a.set(h, vec![1u8; 64 << 10]).unwrap();
}

#[test]
fn stale_and_foreign_handles() {
    let (mut a, mut b) = pair();
    let ha = a.create("x", ValueType::I64, ValueOptions::default()).unwrap();
    b.create("x", ValueType::I64, ValueOptions::default()).unwrap();
    assert_eq!(b.get(ha), Err(Error::ForeignHandle(ha)), "a handle of another context");
    let (serial, index) = ha.to_raw();
    let made_up = ValueHandle::from_raw(serial, index + 5);
    assert_eq!(a.set(made_up, 1i64), Err(Error::StaleHandle(made_up)));
    assert_eq!(a.state(made_up), Err(Error::StaleHandle(made_up)));
    assert_eq!(a.set_mode(made_up, Mode::WaitForSync), Err(Error::StaleHandle(made_up)));
    assert_eq!(a.remove(made_up), Err(Error::StaleHandle(made_up)));
    // A context created after another was dropped never takes its handles.
    drop(a);
    let mut c = Context::new(1, Options::default()).unwrap();
    c.create("x", ValueType::I64, ValueOptions::default()).unwrap();
    assert_eq!(c.get(ha), Err(Error::ForeignHandle(ha)));
}

#[test]
fn valid_delta_is_accepted() {
    let (_, mut b, bytes) = delta();
    b.receive(&bytes).unwrap();
    b.tick(32);
    let h = b.open("hp").unwrap();
    assert_eq!(b.get(h).unwrap(), Value::I64(42));
}

#[test]
fn truncated_messages_are_rejected_and_change_nothing() {
    let (_, mut b, bytes) = delta();
    let before = fingerprint(&mut b);
    for cut in 0..bytes.len() {
        let e = b.receive(&bytes[..cut]).unwrap_err();
        assert!(matches!(e, Error::Decode(_)), "cut {cut}: {e}");
    }
    assert_eq!(fingerprint(&mut b), before);
    assert_eq!(b.metrics().messages_rejected, bytes.len() as u64);
}

#[test]
fn corrupt_messages_are_rejected_and_change_nothing() {
    let (_, mut b, bytes) = delta();
    let before = fingerprint(&mut b);
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] = bad[i].wrapping_add(1 + (i as u8 % 254));
        assert!(b.receive(&bad).is_err(), "corrupted byte {i} accepted");
    }
    assert!(b.receive(&[0xff; 64]).is_err());
    assert!(b.receive(&[]).is_err());
    assert_eq!(fingerprint(&mut b), before);
}

/// The checksum stops random corruption before the decoder sees it; a hostile peer
/// computes a valid one. So every byte of a real message is mutated and the message
/// re-sealed: the decoder itself must then reject it with a named error (and change
/// nothing) or accept a well-formed message, and never panic.
#[test]
fn resealed_mutations_reach_the_decoder_and_never_panic() {
    let (_, mut b, bytes) = delta();
    let body = bytes.len() - 4;
    let (mut rejected, mut accepted) = (0, 0);
    for i in 0..body {
        for x in [0x01u8, 0x80, 0xff] {
            let mut bad = bytes[..body].to_vec();
            bad[i] ^= x;
            bad.extend_from_slice(&crc32fast::hash(&bad).to_le_bytes());
            let before = fingerprint(&mut b);
            match b.receive(&bad) {
                Err(e) => {
                    rejected += 1;
                    assert!(
                        !e.to_string().contains("checksum"),
                        "byte {i}: the checksum still caught it: {e}"
                    );
                    assert_eq!(
                        fingerprint(&mut b),
                        before,
                        "byte {i} ^ {x:#x}: rejected, yet something changed"
                    );
                }
                Ok(()) => {
                    accepted += 1;
                    b.tick(b.now_ms() + 16);
                }
            }
        }
    }
    assert!(rejected > body, "{rejected} rejected, {accepted} accepted of {}", 3 * body);
}

#[test]
fn newer_protocol_version_is_named() {
    let (_, mut b, mut bytes) = delta();
    bytes[2] = PROTOCOL_VERSION + 1;
    let e = b.receive(&bytes).unwrap_err();
    assert_eq!(e, Error::ProtocolVersion { got: PROTOCOL_VERSION + 1, supported: PROTOCOL_VERSION });
    assert!(e.to_string().contains("protocol version"));
}

#[test]
fn oversized_message_is_rejected() {
    let opts = Options { max_message_bytes: 200_000, ..Options::default() };
    let mut b = Context::new(2, opts).unwrap();
    b.add_peer(1).unwrap();
    let e = b.receive(&vec![0u8; 200_001]).unwrap_err();
    assert_eq!(e, Error::TooLarge { what: "message", len: 200_001, max: 200_000 });
}

#[test]
fn messages_from_strangers_and_from_self_are_rejected() {
    let (_, _, bytes) = delta();
    let mut c = Context::new(3, Options::default()).unwrap();
    assert_eq!(c.receive(&bytes), Err(Error::UnknownPeer(1)));
    let mut same = Context::new(1, Options::default()).unwrap();
    same.add_peer(2).unwrap();
    assert_eq!(same.receive(&bytes), Err(Error::FromSelf(1)));
}

#[test]
fn duplicated_and_replayed_messages_are_harmless() {
    let (_, mut b, bytes) = delta();
    for _ in 0..5 {
        b.receive(&bytes).unwrap();
    }
    b.tick(32);
    assert_eq!(b.metrics().messages_duplicate, 4);
    assert_eq!(b.metrics().updates_applied, 1);
}

#[test]
fn a_panicking_custom_merge_falls_back_and_is_counted() {
    let mut s = zen_crdt::sim::Sim::new(1, 2, Default::default(), Options::default());
    for i in 0..2 {
        s.ctx(i).register_merge("boom", std::sync::Arc::new(|_: &[Candidate]| panic!("host bug")));
    }
    let opts = ValueOptions { policy: Policy::Custom("boom".into()), ..Default::default() };
    let ha = s.ctx(0).create("v", ValueType::I64, opts).unwrap();
    s.run_for(200);
    let hb = s.ctx(1).open("v").unwrap();
    s.ctx(0).set(ha, 1i64).unwrap();
    s.ctx(1).set(hb, 2i64).unwrap();
    s.run_for(300);
    let (va, vb) = (s.ctx(0).get(ha).unwrap(), s.ctx(1).get(hb).unwrap());
    assert_eq!(va, vb);
    assert!(s.ctx(0).metrics().merge_fallbacks + s.ctx(1).metrics().merge_fallbacks > 0);
}

/// The smallest `max_message_bytes` the options allow, and many members: deltas and
/// catch-ups split into messages that fit (the size formula once underflowed here).
#[test]
fn small_messages_with_many_members_split_and_fit() {
    let opts = Options {
        max_value_bytes: 64,
        max_id_bytes: 16,
        max_message_bytes: 2 * 64 + 4 * 16 + 1024,
        ..Options::default()
    };
    let mut a = Context::new(1, opts.clone()).unwrap();
    let mut b = Context::new(2, opts.clone()).unwrap();
    for peer in 2..=200 {
        a.add_peer(peer).unwrap();
    }
    b.add_peer(1).unwrap();
    let handles: Vec<_> = (0..40)
        .map(|i| a.create(&format!("value-{i:03}"), ValueType::Bytes, ValueOptions::default()).unwrap())
        .collect();
    for (i, h) in handles.iter().enumerate() {
        a.set(*h, Value::Bytes(vec![i as u8; 60])).unwrap();
    }
    let mut messages = 0;
    for t in 1..=40u64 {
        a.tick(t * 16);
        while let Some(o) = a.poll_outbound() {
            assert!(o.bytes.len() <= opts.max_message_bytes, "{} bytes", o.bytes.len());
            b.receive_from(1, &o.bytes).unwrap();
            messages += 1;
        }
        b.tick(t * 16);
        while let Some(o) = b.poll_outbound() {
            a.receive_from(2, &o.bytes).unwrap();
        }
    }
    assert!(messages > 2, "the writes were split");
    for i in 0..40 {
        let h = b.open(&format!("value-{i:03}")).unwrap();
        assert_eq!(b.get(h).unwrap(), Value::Bytes(vec![i as u8; 60]));
    }
}

//! Contexts on threads linked by the in-process bus, through `pump` and the `Driver`.

use std::sync::Barrier;
use std::time::Duration;
use zen_crdt::sim::Rng;
use zen_crdt::*;

const TICK: u64 = 16;

fn values_of(ctx: &mut Context) -> Vec<(String, Option<Value>)> {
    let mut ids: Vec<String> = ctx.value_ids().map(str::to_owned).collect();
    ids.sort();
    ids.into_iter()
        .map(|id| {
            let h = ctx.open(&id).unwrap();
            (id, ctx.get(h).ok())
        })
        .collect()
}

/// Four contexts on four threads, queues small enough that messages drop: random own and
/// contested writes for 2,000 ticks, then every value is equal and Converged everywhere.
/// A late joiner gets the whole state; an endpoint whose thread stops pumping stops
/// blocking WaitForSync after the peer timeout; a dropped endpoint is a leave.
#[test]
fn four_threads_on_a_lossy_bus_converge_and_membership_follows_the_bus() {
    let bus = Bus::new();
    let n = 4u64;
    let mut peers: Vec<(Context, BusEndpoint)> =
        (1..=n).map(|p| (Context::new(p, Options::default()).unwrap(), bus.join(p, 2).unwrap())).collect();
    assert!(matches!(bus.join(2, 8), Err(Error::PeerIdTaken(2))));
    assert!(matches!(bus.join(0, 8), Err(Error::BadPeerId(0))));
    let barrier = Barrier::new(n as usize);
    let ticks = 2000u64;
    std::thread::scope(|s| {
        for (i, (ctx, ep)) in peers.iter_mut().enumerate() {
            let barrier = &barrier;
            s.spawn(move || {
                let mut rng = Rng::new(100 + i as u64);
                let own: Vec<ValueHandle> = (0..20)
                    .map(|k| {
                        ctx.create(&format!("p{}/{k}", i + 1), ValueType::I64, ValueOptions::default())
                            .unwrap()
                    })
                    .collect();
                let shared: Vec<ValueHandle> = (0..5)
                    .map(|k| {
                        ctx.create(&format!("shared/{k}"), ValueType::F64, ValueOptions::default()).unwrap()
                    })
                    .collect();
                for t in 0..ticks + 600 {
                    if t < ticks {
                        for _ in 0..3 {
                            let h = own[rng.below(own.len() as u64) as usize];
                            ctx.set(h, rng.next_u64() as i64 >> 1).unwrap();
                        }
                        if rng.chance(0.05) {
                            let h = shared[rng.below(shared.len() as u64) as usize];
                            ctx.set(h, rng.unit()).unwrap();
                        }
                    }
                    pump(ctx, ep, t * TICK);
                    barrier.wait();
                }
            });
        }
    });
    let dropped: u64 = peers.iter().map(|(_, ep)| ep.stats().dropped).sum();
    assert!(dropped > 0, "queues of 2 must overflow");
    let reference = values_of(&mut peers[0].0);
    assert_eq!(reference.len(), 4 * 20 + 5);
    for (ctx, ep) in peers.iter_mut() {
        assert_eq!(values_of(ctx), reference, "peer {} differs", ctx.peer_id());
        assert!(ctx.all_in_state(SyncState::Converged), "peer {}", ctx.peer_id());
        let st = ep.stats();
        assert!(st.sent > 0 && st.received > 0 && st.bytes_received > 0);
    }

    // A late joiner, pumped with the others on this thread, gets the whole state.
    let mut late = (Context::new(9, Options::default()).unwrap(), bus.join(9, 64).unwrap());
    let mut now = (ticks + 600) * TICK;
    for _ in 0..200 {
        now += TICK;
        for (ctx, ep) in peers.iter_mut() {
            pump(ctx, ep, now);
        }
        pump(&mut late.0, &mut late.1, now);
    }
    assert_eq!(values_of(&mut late.0), reference);
    assert!(late.0.all_in_state(SyncState::Converged));

    // Peer 9's thread stops pumping (its endpoint stays): a WaitForSync write of peer 1
    // waits for it, then stops waiting once it has been silent for the peer timeout.
    let opts = ValueOptions { mode: Mode::WaitForSync, ..ValueOptions::default() };
    let w = peers[0].0.create("score", ValueType::I64, opts).unwrap();
    peers[0].0.set(w, 7i64).unwrap();
    let timeout = Options::default().peer_timeout_ms;
    let mut waited = 0;
    while peers[0].0.state(w).unwrap() != SyncState::Converged {
        now += TICK;
        waited += TICK;
        for (ctx, ep) in peers.iter_mut() {
            pump(ctx, ep, now);
        }
        assert!(waited < timeout + 1000, "still blocked after {waited} ms");
    }
    // Peer 9's last messages may have been dropped by the small queues, so its silence
    // started somewhat before it stopped: blocked for a good part of the timeout, not 0.
    assert!(waited >= timeout / 3, "converged after {waited} ms: peer 9 had not acknowledged");
    assert_eq!(peers[0].0.get(w).unwrap(), Value::I64(7));

    // Dropping an endpoint is a leave: the others remove the member.
    drop(late);
    for (ctx, ep) in peers.iter_mut() {
        pump(ctx, ep, now + TICK);
        assert!(!ctx.peers().iter().any(|&(p, _)| p == 9), "peer {} still lists 9", ctx.peer_id());
    }
    assert_eq!(bus.peers().len(), 4);
}

/// A driver ticks its context on its own thread; the game writes through `with`, and
/// `wait_converged` returns once the other driver has acknowledged.
#[test]
fn drivers_tick_contexts_on_their_own_threads() {
    let bus = Bus::new();
    let a = Driver::spawn(Context::new(1, Options::default()).unwrap(), bus.join(1, 256).unwrap(), 5);
    let b = Driver::spawn(Context::new(2, Options::default()).unwrap(), bus.join(2, 256).unwrap(), 5);
    let h = a.with(|ctx| {
        let h = ctx.create("pos", ValueType::Vec3, ValueOptions::default()).unwrap();
        ctx.set(h, [1.0f32, 2.0, 3.0]).unwrap();
        h
    });
    assert!(a.wait_converged(Duration::from_secs(10)), "{}", a.with(|c| c.debug_value(h)));
    assert!(b.wait_converged(Duration::from_secs(10)));
    let got = b.with(|ctx| ctx.open("pos").and_then(|h| ctx.get(h)));
    assert_eq!(got.unwrap(), Value::Vec3([1.0, 2.0, 3.0]));
    let a = a.stop();
    assert_eq!(a.peers(), vec![(2, true)]);
    // a's endpoint went with its driver: b sees the leave.
    std::thread::sleep(Duration::from_millis(50));
    assert!(b.with(|ctx| ctx.peers().is_empty()));
}

fn members(d: &Driver) -> Vec<u64> {
    let mut ids: Vec<u64> = d.with(|c| c.peers().into_iter().map(|(id, _)| id).collect());
    ids.sort();
    ids
}

/// Two buses (a game's main and worker threads; a network thread's contexts) joined by a
/// bridge: every context counts every other as a member and none counts the bridge, a
/// WaitForSync write converges across it, a peer id already on the other side is refused,
/// and stopping the bridge is a leave on both sides.
#[test]
fn a_bridge_joins_two_buses_and_carries_membership_and_messages() {
    let (near, far) = (Bus::new(), Bus::new());
    let spawn = |bus: &Bus, id: u64| {
        Driver::spawn(Context::new(id, Options::default()).unwrap(), bus.join(id, 256).unwrap(), 4)
    };
    let (main, worker) = (spawn(&near, 1), spawn(&near, 2));
    let (net_a, net_b) = (spawn(&far, 3), spawn(&far, 4));
    let bridge = Bridge::new(near.join_relay(1024).unwrap(), far.join_relay(1024).unwrap()).spawn(1);
    let all = [&main, &worker, &net_a, &net_b];
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while all.iter().any(|d| members(d).len() < 3) && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    for (d, me) in all.iter().zip(1u64..) {
        let others: Vec<u64> = (1..=4).filter(|&p| p != me).collect();
        assert_eq!(members(d), others, "members of {me}");
    }
    let h = main.with(|ctx| {
        let opts = ValueOptions { mode: Mode::WaitForSync, ..ValueOptions::default() };
        let h = ctx.create("door", ValueType::Bool, opts).unwrap();
        ctx.set(h, true).unwrap();
        h
    });
    net_b.with(|ctx| {
        let h = ctx.create("score", ValueType::I64, ValueOptions::default()).unwrap();
        ctx.set(h, 42i64).unwrap();
    });
    for d in all {
        assert!(d.wait_converged(Duration::from_secs(10)), "{}", main.with(|c| c.debug_value(h)));
        let door = d.with(|ctx| ctx.open("door").and_then(|h| ctx.get(h)));
        let score = d.with(|ctx| ctx.open("score").and_then(|h| ctx.get(h)));
        assert_eq!((door.unwrap(), score.unwrap()), (Value::Bool(true), Value::I64(42)));
    }
    assert_eq!(main.with(|c| c.state(h)).unwrap(), SyncState::Converged);
    let crossed = bridge.stats();
    assert_eq!((crossed.carried, crossed.refused), (4, 0), "{crossed:?}");
    assert!(crossed.forwarded > 0);

    // A third bus that has a peer 3 of its own, bridged to the near bus: 3 cannot cross
    // either way (the near bus has the far bus's 3); the others can.
    let other = Bus::new();
    let clash = other.join(3, 16).unwrap();
    let second = Bridge::new(near.join_relay(64).unwrap(), other.join_relay(64).unwrap()).spawn(1);
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while second.stats().refused < 2 && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!((second.stats().carried, second.stats().refused), (3, 2), "{:?}", second.stats());
    drop(second);
    drop(clash);

    // Without the bridge, each side is alone again.
    drop(bridge);
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while all.iter().any(|d| members(d).len() != 1) && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!((members(&main), members(&net_a)), (vec![2], vec![4]));
}

/// A relay endpoint sends only as the peers it carries; carrying a peer already on the bus
/// or an invalid id is refused.
#[test]
fn a_relay_speaks_only_for_the_peers_it_carries() {
    let bus = Bus::new();
    let mut plain = bus.join(1, 16).unwrap();
    let mut relay = bus.join_relay(16).unwrap();
    assert_eq!(relay.peer_id(), 0);
    assert_eq!(relay.poll(), Some(LinkEvent::Joined(1)));
    assert!(matches!(relay.carry(1), Err(Error::PeerIdTaken(1))));
    assert!(matches!(relay.carry(0), Err(Error::BadPeerId(0))));
    relay.send(None, vec![1]);
    relay.send_as(9, None, vec![2].into());
    assert_eq!(relay.stats().dropped, 2);
    assert_eq!(plain.poll(), None, "nothing from a relay that carries nobody");
    relay.carry(9).unwrap();
    assert!(matches!(bus.join(9, 4), Err(Error::PeerIdTaken(9))));
    relay.send_as(9, Some(1), vec![3].into());
    assert_eq!(plain.poll(), Some(LinkEvent::Joined(9)));
    assert_eq!(plain.poll(), Some(LinkEvent::Message { from: 9, to: Some(1), bytes: vec![3].into() }));
    plain.send(Some(9), vec![4]);
    plain.send(None, vec![5]);
    assert_eq!(relay.poll(), Some(LinkEvent::Message { from: 1, to: Some(9), bytes: vec![4].into() }));
    assert_eq!(relay.poll(), Some(LinkEvent::Message { from: 1, to: None, bytes: vec![5].into() }));
    relay.uncarry(9);
    assert_eq!(plain.poll(), Some(LinkEvent::Left(9)));
    assert_eq!(bus.peers(), vec![1]);
}

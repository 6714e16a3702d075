//! The y-sync baseline is tested as the library is: it must do what the benchmark says
//! it does, or every comparison against it is wrong. Without loss it never exchanges a
//! state vector; with loss, partitions and late joins every peer still ends holding
//! every writer's latest value, through sync step 1/2.

use std::sync::Arc;
use yrs::Any;
use zen_crdt_bench::baseline::{vec3_any, Layout};
use zen_crdt_bench::scenarios::{arena_link_with, YSyncNet, TICK};

const PEERS: usize = 4;
/// Each peer owns 6 values and all write the 2 shared ones.
const OWN: usize = 6;
const VALUES: usize = PEERS * OWN + 2;

fn session(layout: Layout, seed: u64, loss: f64) -> YSyncNet {
    let keys: Vec<Arc<str>> = (0..VALUES).map(|i| Arc::from(format!("v/{i}"))).collect();
    YSyncNet::new(layout, seed, PEERS, arena_link_with(loss), keys)
}

/// The tick's writes of peer `p`: its own values every tick, a shared one every 3rd.
fn write(y: &mut YSyncNet, p: usize, tick: u64, latest: &mut [Option<Any>]) {
    for i in 0..OWN {
        let v = vec3_any([tick as f32, p as f32, i as f32]);
        latest[p * OWN + i] = Some(v.clone());
        y.peers[p].write(p * OWN + i, v);
    }
    if tick.is_multiple_of(3) {
        let shared = PEERS * OWN + (tick as usize / 3 + p) % 2;
        y.peers[p].write(shared, vec3_any([tick as f32, p as f32, -1.0]));
    }
}

/// Plays `ticks` of writes on the online peers, calling `at(y, tick)` first each tick;
/// then 3 s without writes. Returns each owned value's last write.
fn play(y: &mut YSyncNet, ticks: u64, mut at: impl FnMut(&mut YSyncNet, u64)) -> Vec<Option<Any>> {
    let mut latest = vec![None; VALUES];
    for tick in 1..=ticks {
        at(y, tick);
        for p in 0..PEERS {
            if y.net.online[p] {
                write(y, p, tick, &mut latest);
            }
        }
        y.step(tick * TICK);
    }
    for t in 1..=3000 / TICK {
        y.step((ticks + t) * TICK);
    }
    latest
}

/// Every online peer reads every owned value as its writer last wrote it, and all agree
/// on the shared ones.
fn assert_holds_latest(y: &YSyncNet, latest: &[Option<Any>], what: &str) {
    for r in (0..PEERS).filter(|&r| y.net.online[r]) {
        for (v, want) in latest.iter().enumerate() {
            if want.is_some() {
                assert_eq!(&y.peers[r].replica.read_any(v), want, "{what}: peer {r} value {v}");
            }
        }
    }
    assert!(y.agree(PEERS * OWN..VALUES), "{what}: peers disagree on the shared values");
}

#[test]
fn without_loss_no_state_vector_is_ever_sent() {
    for layout in [Layout::OneMap, Layout::DocPerValue] {
        let mut y = session(layout, 7, 0.0);
        let latest = play(&mut y, 300, |_, _| {});
        assert_holds_latest(&y, &latest, &format!("{layout:?}"));
        let svs: u64 = y.peers.iter().map(|p| p.acct.state_vectors_sent).sum();
        assert_eq!(svs, 0, "{layout:?}: a lossless session must not exchange state vectors");
        // Every tick's update went out once per peer (the relay count) and to each of
        // the 3 others (the mesh count).
        let a = y.acct();
        assert!(a.bytes_mesh > 0 && a.bytes_mesh == 3 * a.bytes_relay, "{layout:?}: {a:?}");
    }
}

#[test]
fn with_loss_every_receiver_ends_with_every_writers_latest_value() {
    for layout in [Layout::OneMap, Layout::DocPerValue] {
        for seed in 1..=3 {
            let mut y = session(layout, seed, 0.1);
            let latest = play(&mut y, 300, |_, _| {});
            assert_holds_latest(&y, &latest, &format!("{layout:?} seed {seed}"));
            let svs: u64 = y.peers.iter().map(|p| p.acct.state_vectors_sent).sum();
            assert!(svs > 0, "{layout:?} seed {seed}: 10% loss must have needed a repair");
            // At most one request per sender per round trip: 300 ticks are under 5 s,
            // a round trip is at least 92 ms, so under 55 per (receiver, sender) pair.
            assert!(svs < (PEERS * (PEERS - 1)) as u64 * 55, "{layout:?} seed {seed}: {svs} requests");
        }
    }
}

#[test]
fn a_partition_heals_and_a_late_joiner_catches_up() {
    for layout in [Layout::OneMap, Layout::DocPerValue] {
        let mut y = session(layout, 3, 0.02);
        let latest = play(&mut y, 400, |y, tick| match tick {
            50 => y.net.group = vec![0, 0, 1, 1],
            250 => y.net.group = vec![0; PEERS],
            _ => {}
        });
        assert_holds_latest(&y, &latest, &format!("{layout:?} after a partition"));

        let mut y = session(layout, 4, 0.02);
        y.net.online[PEERS - 1] = false;
        let latest = play(&mut y, 300, |y, tick| {
            if tick == 200 {
                y.set_online(PEERS - 1, true, tick * TICK);
            }
        });
        assert_holds_latest(&y, &latest, &format!("{layout:?} after a late join"));
        assert!(y.peers[PEERS - 1].acct.state_vectors_sent > 0, "{layout:?}: the joiner sends sync step 1");
    }
}

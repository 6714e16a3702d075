//! A relay gateway's ENet side on 127.0.0.1: rooms behind one port stay apart, hellos
//! are admitted or refused with a reason, a client speaks only as its own peer, and two
//! gateways joined the way a relay server joins them (events of one become `carry` and
//! `send_as` on the other) make one room of their clients.

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use zen_crdt::*;

struct Player {
    ctx: Context,
    link: EnetLink,
    room: &'static str,
}

fn opts() -> Options {
    Options { target_message_bytes: DATAGRAM_BYTES, ..Options::default() }
}

fn enet(room: &str, token: &str) -> EnetOptions {
    EnetOptions {
        timeout_ms: 1000,
        room: room.into(),
        token: token.as_bytes().to_vec(),
        ..EnetOptions::default()
    }
}

/// Admits a token equal to "<room>/<peer>" (a stand-in for zen-relay's signed tokens).
fn admit() -> Admit {
    Box::new(|h: &Hello| {
        if h.token == format!("{}/{}", h.room, h.peer).into_bytes() {
            Ok(())
        } else {
            Err(format!("bad token for peer {} in room {}", h.peer, h.room))
        }
    })
}

fn gateway() -> Gateway {
    let o = EnetOptions { timeout_ms: 1000, ..EnetOptions::default() };
    Gateway::listen("127.0.0.1:0".parse().unwrap(), &o, admit()).unwrap()
}

fn player(id: u64, room: &'static str, at: SocketAddr) -> Player {
    let link = EnetLink::connect(at, id, &enet(room, &format!("{room}/{id}"))).unwrap();
    Player { ctx: Context::new(id, opts()).unwrap(), link, room }
}

/// Joins two gateways as a relay server does, in memory: each one's events become the
/// other's carries and deliveries. A room's first client here also learns the peers the
/// other gateway has in it (zen-relay reads them from the presence bucket).
fn relay(from: &mut Gateway, to: &mut Gateway, log: &mut Vec<GatewayEvent>) {
    while let Some(ev) = from.poll() {
        match &ev {
            GatewayEvent::Joined { room, peer } => {
                let _ = to.carry(room, *peer);
                for there in to.local_peers(room) {
                    let _ = from.carry(room, there);
                }
            }
            GatewayEvent::Left { room, peer } => to.uncarry(room, *peer),
            GatewayEvent::Message { room, from, to: dest, bytes } => to.send_as(room, *from, *dest, bytes),
        }
        log.push(ev);
    }
}

fn run(
    gates: &mut [Gateway],
    players: &mut [Player],
    limit: Duration,
    mut done: impl FnMut(&mut [Player]) -> bool,
) -> Vec<GatewayEvent> {
    let start = Instant::now();
    let mut log = Vec::new();
    while start.elapsed() < limit {
        let now = start.elapsed().as_millis() as u64;
        for p in players.iter_mut() {
            pump(&mut p.ctx, &mut p.link, now);
        }
        match gates {
            [a] => while a.poll().is_some() {},
            [a, b] => {
                relay(a, b, &mut log);
                relay(b, a, &mut log);
            }
            _ => unreachable!(),
        }
        if done(players) {
            return log;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("no agreement within {limit:?}");
}

fn write_own(players: &mut [Player]) {
    for p in players.iter_mut() {
        let id = p.ctx.peer_id();
        let h = p.ctx.create(&format!("{}-p{id}", p.room), ValueType::I64, ValueOptions::default()).unwrap();
        p.ctx.set(h, id as i64).unwrap();
    }
}

/// Every player holds every value of its room (and only those), converged.
fn rooms_agree(players: &mut [Player], per_room: usize) -> bool {
    players.iter_mut().all(|p| {
        p.ctx.value_count() == per_room
            && p.ctx.all_in_state(SyncState::Converged)
            && p.ctx.value_ids().all(|id| id.starts_with(p.room))
    })
}

#[test]
fn rooms_behind_one_gateway_stay_apart() {
    let mut gates = vec![gateway()];
    let at = gates[0].local_addr().unwrap();
    let mut players =
        vec![player(1, "red", at), player(2, "red", at), player(1, "blue", at), player(3, "blue", at)];
    write_own(&mut players);
    run(&mut gates, &mut players, Duration::from_secs(10), |ps| rooms_agree(ps, 2));
    // Peer 1 is in both rooms: ids are per room.
    for p in &players {
        assert_eq!(p.ctx.peers().len(), 1, "{} sees only its room", p.room);
    }
    assert_eq!(gates[0].clients(), 4);
    let mut rooms: Vec<String> = gates[0].rooms().map(|r| r.to_string()).collect();
    rooms.sort();
    assert_eq!(rooms, ["blue", "red"]);
}

#[test]
fn hellos_are_refused_with_a_reason_and_forgeries_dropped() {
    let mut gates = vec![gateway()];
    let at = gates[0].local_addr().unwrap();
    let bad_token = EnetLink::connect(at, 5, &enet("red", "red/6")).unwrap();
    let bad_room = EnetLink::connect(at, 5, &enet("a.b", "a.b/5")).unwrap();
    let mut players = vec![player(1, "red", at), player(2, "red", at)];
    let mut refused = [
        Player { ctx: Context::new(5, opts()).unwrap(), link: bad_token, room: "red" },
        Player { ctx: Context::new(5, opts()).unwrap(), link: bad_room, room: "x" },
    ];
    write_own(&mut players);
    run(&mut gates, &mut players, Duration::from_secs(10), |ps| rooms_agree(ps, 2));
    let start = Instant::now();
    while refused.iter().any(|p| p.link.refused().is_none()) && start.elapsed() < Duration::from_secs(5) {
        for p in refused.iter_mut() {
            pump(&mut p.ctx, &mut p.link, start.elapsed().as_millis() as u64);
        }
        while gates[0].poll().is_some() {}
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        refused[0].link.refused().unwrap().contains("bad token for peer 5"),
        "{:?}",
        refused[0].link.refused()
    );
    assert!(refused[1].link.refused().unwrap().contains("room id \"a.b\" is invalid"));
    assert_eq!(gates[0].stats().refused, 2);
    // The same id twice in a room is refused too.
    let mut twin = [player(2, "red", at)];
    let start = Instant::now();
    while twin[0].link.refused().is_none() && start.elapsed() < Duration::from_secs(5) {
        let t = &mut twin[0];
        pump(&mut t.ctx, &mut t.link, start.elapsed().as_millis() as u64);
        while gates[0].poll().is_some() {}
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(twin[0].link.refused().unwrap().contains("already taken"));

    // A raw ENet client admitted as peer 7 that sends frames in peer 1's name.
    let mut raw = rusty_enet::Host::new(
        std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
        rusty_enet::HostSettings { peer_limit: 1, channel_limit: 3, ..Default::default() },
    )
    .unwrap();
    let peer = raw.connect(at, 3, 0).unwrap().id();
    let mut hello = b"ZE".to_vec();
    hello.extend([2, 1, 7, 3]);
    hello.extend(b"red");
    hello.push(5);
    hello.extend(b"red/7");
    let mut forged = vec![1u8, 0];
    forged.extend(b"not a real message, only its sender matters");
    let before = gates[0].stats().forged;
    let start = Instant::now();
    let mut said_hello = false;
    while gates[0].stats().forged == before && start.elapsed() < Duration::from_secs(5) {
        while let Ok(Some(e)) = raw.service() {
            if matches!(e.no_ref(), rusty_enet::EventNoRef::Connect { .. }) && !said_hello {
                said_hello = true;
            }
        }
        if said_hello {
            let p = raw.get_peer_mut(peer).unwrap();
            if p.state() == rusty_enet::PeerState::Connected {
                let _ = p.send(0, &rusty_enet::Packet::reliable(hello.as_slice()));
                let _ = p.send(1, &rusty_enet::Packet::reliable(forged.as_slice()));
            }
        }
        raw.flush();
        let now = start.elapsed().as_millis() as u64;
        for p in players.iter_mut() {
            pump(&mut p.ctx, &mut p.link, now);
        }
        while gates[0].poll().is_some() {}
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(gates[0].stats().forged > before, "the forged frame was not noticed");
    assert!(gates[0].local_peers("red").contains(&7));
    assert_eq!(players[0].ctx.metrics().messages_rejected, 0, "nothing forged reached a player");
}

/// A player sending more than `max_messages_per_s` has the rest dropped and counted;
/// the room still converges (the protocol repairs what was dropped).
#[test]
fn a_flood_is_rate_limited_and_counted() {
    let o = EnetOptions { timeout_ms: 1000, max_messages_per_s: 20, ..EnetOptions::default() };
    let mut gates = vec![Gateway::listen("127.0.0.1:0".parse().unwrap(), &o, admit()).unwrap()];
    let at = gates[0].local_addr().unwrap();
    let mut players = vec![player(1, "red", at), player(2, "red", at)];
    write_own(&mut players);
    run(&mut gates, &mut players, Duration::from_secs(10), |ps| rooms_agree(ps, 2));
    // 2 s of a write every 2 ms: about 500 messages a second against a budget of 20.
    let start = Instant::now();
    let h = players[0].ctx.open("red-p1").unwrap();
    while start.elapsed() < Duration::from_secs(2) {
        players[0].ctx.set(h, start.elapsed().as_millis() as i64).unwrap();
        let now = start.elapsed().as_millis() as u64 + 20_000;
        for p in players.iter_mut() {
            pump(&mut p.ctx, &mut p.link, now);
        }
        while gates[0].poll().is_some() {}
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(gates[0].stats().flooded > 100, "flooded {}", gates[0].stats().flooded);
}

/// Two gateways, each with a player of room "red" and of room "blue", joined as a relay
/// server joins them: every room agrees across gateways, and no message of one room is
/// handed over under the other's name.
#[test]
fn two_gateways_make_one_room_of_their_clients() {
    let mut gates = vec![gateway(), gateway()];
    let (a, b) = (gates[0].local_addr().unwrap(), gates[1].local_addr().unwrap());
    let mut players =
        vec![player(1, "red", a), player(2, "red", b), player(3, "blue", a), player(4, "blue", b)];
    write_own(&mut players);
    let log = run(&mut gates, &mut players, Duration::from_secs(10), |ps| rooms_agree(ps, 2));
    assert!(log.iter().any(|e| matches!(e, GatewayEvent::Message { room, from: 1, .. } if &**room == "red")));
    for e in &log {
        if let GatewayEvent::Message { room, from, .. } = e {
            let expect = if [1, 2].contains(from) { "red" } else { "blue" };
            assert_eq!(&**room, expect, "peer {from}'s message under room {room}");
        }
    }
    // Player 2 leaves gateway b: player 1 on gateway a sees it go.
    players[1].link.close();
    let start = Instant::now();
    let mut gone = false;
    while !gone && start.elapsed() < Duration::from_secs(5) {
        let now = start.elapsed().as_millis() as u64;
        let p = &mut players[0];
        pump(&mut p.ctx, &mut p.link, now);
        let (x, y) = gates.split_at_mut(1);
        relay(&mut y[0], &mut x[0], &mut Vec::new());
        relay(&mut x[0], &mut y[0], &mut Vec::new());
        gone = players[0].ctx.peers().is_empty();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(gone, "player 1 still sees {:?}", players[0].ctx.peers());
}

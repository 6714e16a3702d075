//! The ENet link on 127.0.0.1: a listen host and clients converge, joins and leaves
//! follow connections, and what is not ours is refused without ending the session.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use zen_crdt::*;

struct Player {
    ctx: Context,
    link: EnetLink,
}

fn opts() -> Options {
    Options { target_message_bytes: DATAGRAM_BYTES, ..Options::default() }
}

fn enet() -> EnetOptions {
    EnetOptions { timeout_ms: 1000, ..EnetOptions::default() }
}

fn host(id: u64) -> Player {
    let link = EnetLink::listen("127.0.0.1:0".parse().unwrap(), id, &enet()).unwrap();
    Player { ctx: Context::new(id, opts()).unwrap(), link }
}

fn client(id: u64, at: SocketAddr) -> Player {
    Player { ctx: Context::new(id, opts()).unwrap(), link: EnetLink::connect(at, id, &enet()).unwrap() }
}

/// Pumps every player (real time) until `done` holds or `limit` passes; false on timeout.
fn run(
    players: &mut [Player],
    start: Instant,
    limit: Duration,
    mut done: impl FnMut(&mut [Player]) -> bool,
) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        let now = start.elapsed().as_millis() as u64;
        for p in players.iter_mut() {
            pump(&mut p.ctx, &mut p.link, now);
        }
        if done(players) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

fn agree(players: &mut [Player], n: usize) -> bool {
    players.iter_mut().all(|p| {
        p.ctx.value_count() == n
            && p.ctx.all_in_state(SyncState::Converged)
            && p.ctx.value_ids().all(|id| id.starts_with('p'))
    })
}

#[test]
fn a_host_and_clients_converge_and_membership_follows_connections() {
    let start = Instant::now();
    let mut players = vec![host(1)];
    let at = players[0].link.local_addr().unwrap();
    for id in 2..=4 {
        players.push(client(id, at));
    }
    for p in players.iter_mut() {
        let id = p.ctx.peer_id();
        let h = p.ctx.create(&format!("p{id}"), ValueType::I64, ValueOptions::default()).unwrap();
        p.ctx.set(h, id as i64 * 100).unwrap();
    }
    // A 60 KiB value travels reliably, in fragments.
    let big: Vec<u8> = (0..60 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let hb = players[2].ctx.create("pbig", ValueType::Bytes, ValueOptions::default()).unwrap();
    players[2].ctx.set(hb, big.clone()).unwrap();
    assert!(run(&mut players, start, Duration::from_secs(10), |ps| agree(ps, 5)), "no convergence");
    for p in players.iter_mut() {
        for q in 1..=4u64 {
            let h = p.ctx.open(&format!("p{q}")).unwrap();
            assert_eq!(p.ctx.get(h).unwrap(), Value::I64(q as i64 * 100));
        }
        let h = p.ctx.open("pbig").unwrap();
        assert_eq!(p.ctx.get(h).unwrap(), Value::Bytes(big.clone()));
        assert_eq!(p.ctx.peers().len(), 3, "peer {} members", p.ctx.peer_id());
        assert_eq!(p.link.stats().rejected, 0);
    }

    // A late joiner gets everything.
    players.push(client(5, at));
    let late = players.len() - 1;
    let h5 = players[late].ctx.create("p5", ValueType::I64, ValueOptions::default()).unwrap();
    players[late].ctx.set(h5, 500i64).unwrap();
    assert!(run(&mut players, start, Duration::from_secs(10), |ps| agree(ps, 6)), "late joiner");

    // A client that dies (no goodbye) leaves everyone's membership after the timeout.
    let dead = players.remove(3);
    let died = Instant::now();
    std::mem::forget(dead.link); // no disconnect is sent, as when a process is killed
    let gone = run(&mut players, start, Duration::from_secs(5), |ps| {
        ps.iter().all(|p| p.ctx.peers().iter().all(|&(id, _)| id != 4))
    });
    assert!(gone, "peer 4 still a member after {:?}", died.elapsed());

    // A client that closes leaves at once.
    let mut quitter = players.remove(1);
    quitter.link.close();
    drop(quitter);
    let gone = run(&mut players, start, Duration::from_millis(1500), |ps| {
        ps.iter().all(|p| p.ctx.peers().iter().all(|&(id, _)| id != 2))
    });
    assert!(gone, "a closed client is a leave at once");
}

/// A host (peer 1) and a client (peer 2) that agree on the client's value "p2" = `v`:
/// the players, the clock they run on, the host's address, the client's handle.
fn host_and_client_agreeing_on(v: i64) -> (Vec<Player>, Instant, SocketAddr, ValueHandle) {
    let start = Instant::now();
    let mut players = vec![host(1)];
    let at = players[0].link.local_addr().unwrap();
    players.push(client(2, at));
    let h = players[1].ctx.create("p2", ValueType::I64, ValueOptions::default()).unwrap();
    players[1].ctx.set(h, v).unwrap();
    assert!(run(&mut players, start, Duration::from_secs(10), |ps| agree(ps, 1)));
    (players, start, at, h)
}

#[test]
fn what_is_not_ours_is_refused_and_the_session_goes_on() {
    let (mut players, start, at, h) = host_and_client_agreeing_on(7);

    // Garbage datagrams at the host's port: ENet discards them.
    let junk = UdpSocket::bind("127.0.0.1:0").unwrap();
    for n in 0..200u32 {
        let bytes: Vec<u8> = (0..(n % 60 + 1)).map(|i| (i * 31 + n) as u8).collect();
        junk.send_to(&bytes, at).unwrap();
    }

    // A peer id already taken, and a peer id of the host: refused, with the reason.
    let mut dup = client(2, at);
    let mut same_as_host = client(1, at);
    let refused = run(&mut players, start, Duration::from_secs(5), |_| {
        let now = start.elapsed().as_millis() as u64;
        let mut scratch = Context::new(9, opts()).unwrap();
        pump(&mut scratch, &mut dup.link, now);
        pump(&mut scratch, &mut same_as_host.link, now);
        dup.link.refused().is_some() && same_as_host.link.refused().is_some()
    });
    assert!(refused);
    assert!(dup.link.refused().unwrap().contains("already taken"), "{:?}", dup.link.refused());
    assert!(same_as_host.link.refused().unwrap().contains("already taken"));
    assert!(players[0].link.stats().rejected >= 2);

    // The session goes on.
    players[1].ctx.set(h, 8i64).unwrap();
    assert!(run(&mut players, start, Duration::from_secs(5), |ps| {
        let h = ps[0].ctx.open("p2").unwrap();
        ps[0].ctx.get(h).unwrap() == Value::I64(8)
    }));
    assert_eq!(players[0].ctx.peers().len(), 1, "the refused did not join");
}

/// One ENet session over the simulator's lossy wire: what every player ends with, the
/// wire's counts, each link's counts.
type Outcome = (Vec<Vec<(String, Option<Value>)>>, (u64, u64), Vec<LinkStats>);

/// The simulated wire of the ENet tests: 10 % loss, duplication and reordering, jitter.
fn lossy() -> zen_crdt::sim::LinkConfig {
    zen_crdt::sim::LinkConfig {
        loss: 0.1,
        duplicate: 0.05,
        reorder: 0.05,
        jitter_ms: 10,
        ..Default::default()
    }
}

fn sim_session(seed: u64) -> Outcome {
    let mut wire = EnetSim::new(seed, 4, lossy());
    let o = EnetOptions::default();
    let mut links = vec![wire.host(1, &o).unwrap()];
    for id in 2..=4 {
        links.push(wire.client(0, id, &o).unwrap());
    }
    let mut ctxs: Vec<Context> = (1..=4).map(|id| Context::new(id, opts()).unwrap()).collect();
    let own: Vec<ValueHandle> = ctxs
        .iter_mut()
        .map(|c| {
            let id = c.peer_id();
            c.create(&format!("p{id}"), ValueType::I64, ValueOptions::default()).unwrap()
        })
        .collect();
    let big: Vec<u8> = (0..60 * 1024).map(|i| (i * 13 % 241) as u8).collect();
    let hb = ctxs[2].create("pbig", ValueType::Bytes, ValueOptions::default()).unwrap();
    ctxs[2].set(hb, big.clone()).unwrap();
    for tick in 1..=1500u64 {
        let now = tick * 16;
        // Everyone writes its own value for the first 10 s.
        if tick % 10 == 0 && tick <= 600 {
            for (c, h) in ctxs.iter_mut().zip(&own) {
                c.set(*h, (tick * c.peer_id()) as i64).unwrap();
            }
        }
        for (c, l) in ctxs.iter_mut().zip(links.iter_mut()) {
            pump(c, l, now);
        }
        let mut refs: Vec<&mut EnetLink<EnetSimSocket>> = links.iter_mut().collect();
        wire.step(now, &mut refs);
    }
    for c in ctxs.iter_mut() {
        assert!(c.all_in_state(SyncState::Converged), "peer {} not converged (seed {seed})", c.peer_id());
        let h = c.open("pbig").unwrap();
        assert_eq!(c.get(h).unwrap(), Value::Bytes(big.clone()), "seed {seed}");
    }
    let values = ctxs
        .iter_mut()
        .map(|c| {
            let mut ids: Vec<String> = c.value_ids().map(str::to_owned).collect();
            ids.sort();
            ids.into_iter()
                .map(|id| {
                    let h = c.open(&id).unwrap();
                    (id, c.get(h).ok())
                })
                .collect()
        })
        .collect();
    (values, wire.stats(), links.iter().map(|l| l.stats()).collect())
}

/// ENet over the simulator at 10 % loss with duplication and reordering: every player
/// converges on the same values (a 60 KiB value crossing in fragments), and the same seed
/// replays the same session datagram for datagram.
#[test]
fn enet_over_a_lossy_simulated_wire_converges_and_replays() {
    let first = sim_session(5);
    let (values, (delivered, dropped), _) = &first;
    assert!(values.iter().all(|v| v == &values[0]), "players disagree");
    assert_eq!(values[0].len(), 5);
    assert!(*dropped > 0 && *delivered > 0);
    assert_eq!(sim_session(5), first, "the same seed replays the same session");
    assert_ne!(sim_session(6).1, first.1, "another seed is another session");
}

/// A raw ENet client (no zen-crdt link) to speak out of turn to a host.
struct Raw {
    host: rusty_enet::Host<UdpSocket>,
    peer: rusty_enet::PeerID,
}

impl Raw {
    fn connect(at: SocketAddr, players: &mut [Player], start: Instant) -> Raw {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let settings = rusty_enet::HostSettings { peer_limit: 1, channel_limit: 3, ..Default::default() };
        let mut host = rusty_enet::Host::new(socket, settings).unwrap();
        let peer = host.connect(at, 3, 0).unwrap().id();
        let mut raw = Raw { host, peer };
        let until = Instant::now() + Duration::from_secs(5);
        while !raw.host.peer(raw.peer).connected() && Instant::now() < until {
            raw.drain();
            for p in players.iter_mut() {
                pump(&mut p.ctx, &mut p.link, start.elapsed().as_millis() as u64);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(raw.host.peer(raw.peer).connected());
        raw
    }

    /// Control messages received (channel 0).
    fn drain(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Ok(Some(e)) = self.host.service() {
            if let rusty_enet::Event::Receive { channel_id: 0, packet, .. } = e {
                out.push(packet.data().to_vec());
            }
        }
        out
    }

    fn send(&mut self, channel: u8, bytes: &[u8]) {
        let packet = if channel == 1 {
            rusty_enet::Packet::unreliable_unsequenced(bytes)
        } else {
            rusty_enet::Packet::reliable(bytes)
        };
        self.host.peer_mut(self.peer).send(channel, &packet).unwrap();
        self.host.flush();
    }
}

fn hello(version: u8, id: u8) -> Vec<u8> {
    vec![b'Z', b'E', version, 1, id]
}

/// A hello with another link version is refused with the reason; data before a hello is
/// refused; a client flooding data frames is cut to its rate, counted, and the session
/// goes on.
#[test]
fn wrong_versions_early_data_and_floods_are_refused_and_counted() {
    let (mut players, start, at, h) = host_and_client_agreeing_on(1);

    // Data before any hello, then a hello of link version 9.
    let mut raw = Raw::connect(at, &mut players, start);
    raw.send(1, &[0, 1, 2, 3]);
    raw.send(0, &hello(9, 7));
    let mut refusal = None;
    let until = Instant::now() + Duration::from_secs(5);
    while refusal.is_none() && Instant::now() < until {
        for p in players.iter_mut() {
            pump(&mut p.ctx, &mut p.link, start.elapsed().as_millis() as u64);
        }
        refusal = raw.drain().into_iter().find(|m| m.first() == Some(&3));
        std::thread::sleep(Duration::from_millis(2));
    }
    let refusal = String::from_utf8_lossy(&refusal.expect("a refusal")[1..]).into_owned();
    assert!(refusal.contains("link version 9"), "{refusal}");
    assert!(players[0].link.stats().rejected >= 2, "{:?}", players[0].link.stats());

    // A client that said hello properly, then floods: 5,000 frames in one burst (sent
    // reliably, so ENet's own throttle does not thin them out before the host sees them).
    let mut flood = Raw::connect(at, &mut players, start);
    flood.send(0, &hello(2, 7));
    let before = players[0].link.stats().rejected;
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        for p in players.iter_mut() {
            pump(&mut p.ctx, &mut p.link, start.elapsed().as_millis() as u64);
        }
        flood.drain();
        std::thread::sleep(Duration::from_millis(2));
    }
    for n in 0..5000u32 {
        flood.send(2, &[7, 0, (n % 251) as u8, 9, 9]);
    }
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        for p in players.iter_mut() {
            pump(&mut p.ctx, &mut p.link, start.elapsed().as_millis() as u64);
        }
        flood.drain();
        std::thread::sleep(Duration::from_millis(2));
    }
    let cut = players[0].link.stats().rejected - before;
    assert!(cut >= 2000, "the host cut {cut} of 5000 flooded frames");
    assert!(players[0].ctx.metrics().messages_rejected > 0, "what passed the rate was still garbage");

    // The session goes on.
    players[1].ctx.set(h, 2i64).unwrap();
    assert!(run(&mut players, start, Duration::from_secs(5), |ps| {
        let h = ps[0].ctx.open("p2").unwrap();
        ps[0].ctx.get(h).unwrap() == Value::I64(2)
    }));
}

fn members_of(d: &Driver) -> Vec<u64> {
    let mut ids: Vec<u64> = d.with(|c| c.peers().into_iter().map(|(id, _)| id).collect());
    ids.sort();
    ids
}

/// Enu's shape and a server's, over ENet on 127.0.0.1: a server's two room contexts on a
/// bus behind a relay host; a game's main and worker contexts on a bus behind a relay
/// client; a plain client. Every context counts the other four as members (no relay is
/// one), a WaitForSync write converges everywhere, and closing the game's bridge is a
/// leave of both its contexts.
#[test]
fn bridges_put_contexts_on_threads_behind_one_enet_socket() {
    let (server, game) = (Bus::new(), Bus::new());
    let spawn = |bus: &Bus, id: u64| {
        let ctx = Context::new(id, opts()).unwrap();
        Driver::spawn(ctx, bus.join(id, 256).unwrap(), 4)
    };
    let rooms = [spawn(&server, 1), spawn(&server, 2)];
    let relay_host = EnetLink::listen_relay("127.0.0.1:0".parse().unwrap(), &enet()).unwrap();
    assert_eq!(relay_host.peer_id(), 0);
    let at = relay_host.local_addr().unwrap();
    let server_bridge = Bridge::new(server.join_relay(1024).unwrap(), relay_host).spawn(1);
    let threads = [spawn(&game, 3), spawn(&game, 4)];
    let game_bridge =
        Bridge::new(game.join_relay(1024).unwrap(), EnetLink::connect_relay(at, &enet()).unwrap()).spawn(1);
    let plain =
        Driver::spawn(Context::new(5, opts()).unwrap(), EnetLink::connect(at, 5, &enet()).unwrap(), 4);
    let all: Vec<&Driver> = rooms.iter().chain(&threads).chain([&plain]).collect();
    let until = Instant::now() + Duration::from_secs(10);
    while all.iter().any(|d| members_of(d).len() < 4) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    for (d, me) in all.iter().zip(1u64..) {
        let others: Vec<u64> = (1..=5).filter(|&p| p != me).collect();
        assert_eq!(members_of(d), others, "members of {me}");
    }
    threads[1].with(|ctx| {
        let opts = ValueOptions { mode: Mode::WaitForSync, ..ValueOptions::default() };
        let h = ctx.create("chest", ValueType::Str, opts).unwrap();
        ctx.set(h, "open").unwrap();
    });
    plain.with(|ctx| {
        let h = ctx.create("hp", ValueType::I64, ValueOptions::default()).unwrap();
        ctx.set(h, 7i64).unwrap();
    });
    for (d, me) in all.iter().zip(1u64..) {
        assert!(d.wait_converged(Duration::from_secs(10)), "peer {me} did not converge");
        let chest = d.with(|ctx| ctx.open("chest").and_then(|h| ctx.get(h)));
        let hp = d.with(|ctx| ctx.open("hp").and_then(|h| ctx.get(h)));
        assert_eq!((chest.unwrap(), hp.unwrap()), (Value::Str("open".into()), Value::I64(7)));
    }
    assert!(server_bridge.stats().forwarded > 0 && game_bridge.stats().forwarded > 0);
    assert_eq!((server_bridge.stats().refused, game_bridge.stats().refused), (0, 0));

    // A relay that tries to carry a peer id the session has: the host denies it, with
    // the reason, and the session goes on.
    let mut stray = EnetLink::connect_relay(at, &enet()).unwrap();
    stray.carry(1).unwrap(); // announced once the host welcomes it
    let until = Instant::now() + Duration::from_secs(5);
    while stray.refused().is_none() && Instant::now() < until {
        while stray.poll().is_some() {}
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(stray.refused(), Some("peer id 1 is already taken"));
    stray.send_as(1, None, vec![1, 2, 3].into());
    assert_eq!(stray.stats().dropped, 1, "no longer carried: nothing sent as peer 1");
    drop(stray);

    // The game quits: its relay client disconnects, and both its contexts leave.
    drop(game_bridge);
    let until = Instant::now() + Duration::from_secs(5);
    let gone = |d: &&Driver| members_of(d).iter().all(|&p| p != 3 && p != 4);
    while !(rooms.iter().all(|d| gone(&d)) && gone(&&plain)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(members_of(&plain), vec![1, 2]);
    assert_eq!(members_of(&rooms[0]), vec![2, 5]);
}

fn mesh_peer(id: u64) -> Player {
    let link = EnetLink::mesh("127.0.0.1:0".parse().unwrap(), id, &enet()).unwrap();
    Player { ctx: Context::new(id, opts()).unwrap(), link }
}

fn members_now(p: &Player) -> Vec<u64> {
    let mut ids: Vec<u64> = p.ctx.peers().into_iter().map(|(id, _)| id).collect();
    ids.sort();
    ids
}

/// Four peers of a mesh on 127.0.0.1, every one dialing every other (so each pair has
/// two connections to settle): each keeps one connection per peer, counts the other
/// three as members, and converges with no relay; a peer that closes leaves at once.
#[test]
fn a_mesh_of_four_dialing_each_other_settles_and_converges() {
    let start = Instant::now();
    let mut players: Vec<Player> = (1..=4).map(mesh_peer).collect();
    let addrs: Vec<SocketAddr> = players.iter().map(|p| p.link.local_addr().unwrap()).collect();
    for (i, p) in players.iter_mut().enumerate() {
        for (j, &a) in addrs.iter().enumerate() {
            if i != j {
                p.link.dial(a).unwrap();
            }
        }
        let id = p.ctx.peer_id();
        let h = p.ctx.create(&format!("p{id}"), ValueType::I64, ValueOptions::default()).unwrap();
        p.ctx.set(h, id as i64 * 7).unwrap();
    }
    let settled = |ps: &mut [Player]| ps.iter().all(|p| p.link.peers().len() == 3) && agree(ps, 4);
    assert!(run(&mut players, start, Duration::from_secs(10), settled), "no convergence");
    // A little longer: the losing connections close without a leave.
    run(&mut players, start, Duration::from_millis(300), |_| false);
    for p in &players {
        let me = p.ctx.peer_id();
        let others: Vec<u64> = (1..=4).filter(|&q| q != me).collect();
        assert_eq!(members_now(p), others, "members of {me}");
        let mut linked = p.link.peers();
        linked.sort();
        assert_eq!(linked, others, "one live connection per peer at {me}");
        assert_eq!(p.link.stats().rejected, 0, "at {me}");
    }
    // Dialing is for meshes; carrying is for hosts and clients.
    let mut plain = client(9, addrs[0]);
    assert!(matches!(plain.link.dial(addrs[1]), Err(Error::Transport(_))));
    assert!(matches!(players[0].link.carry(9), Err(Error::Transport(_))));
    drop(plain);

    let mut quitter = players.remove(1);
    quitter.link.close();
    drop(quitter);
    let gone = run(&mut players, start, Duration::from_millis(1500), |ps| {
        ps.iter().all(|p| p.ctx.peers().iter().all(|&(id, _)| id != 2))
    });
    assert!(gone, "a closed mesh peer is a leave at once");
}

/// A mesh over the simulator at 10 % loss: the same seed replays the same session.
fn sim_mesh(seed: u64) -> (Vec<Vec<u64>>, (u64, u64)) {
    let mut wire = EnetSim::new(seed, 3, lossy());
    let o = EnetOptions::default();
    let mut links: Vec<EnetLink<EnetSimSocket>> = (1..=3).map(|id| wire.mesh(id, &o).unwrap()).collect();
    links[1].dial(EnetSimAddr(0)).unwrap();
    links[2].dial(EnetSimAddr(0)).unwrap();
    links[2].dial(EnetSimAddr(1)).unwrap();
    links[0].dial(EnetSimAddr(2)).unwrap(); // and back: two connections to settle
    let mut ctxs: Vec<Context> = (1..=3).map(|id| Context::new(id, opts()).unwrap()).collect();
    for c in ctxs.iter_mut() {
        let id = c.peer_id();
        let h = c.create(&format!("p{id}"), ValueType::I64, ValueOptions::default()).unwrap();
        c.set(h, id as i64).unwrap();
    }
    for tick in 1..=600u64 {
        let now = tick * 16;
        for (c, l) in ctxs.iter_mut().zip(links.iter_mut()) {
            pump(c, l, now);
        }
        let mut refs: Vec<&mut EnetLink<EnetSimSocket>> = links.iter_mut().collect();
        wire.step(now, &mut refs);
    }
    for c in &ctxs {
        assert!(
            c.all_in_state(SyncState::Converged) && c.value_count() == 3,
            "peer {} (seed {seed})",
            c.peer_id()
        );
    }
    let members = ctxs
        .iter()
        .map(|c| {
            let mut m: Vec<u64> = c.peers().into_iter().map(|(id, _)| id).collect();
            m.sort();
            m
        })
        .collect();
    (members, wire.stats())
}

#[test]
fn a_mesh_over_a_lossy_simulated_wire_converges_and_replays() {
    let first = sim_mesh(11);
    assert_eq!(first.0, vec![vec![2, 3], vec![1, 3], vec![1, 2]]);
    assert!(first.1 .1 > 0, "the wire dropped nothing");
    assert_eq!(sim_mesh(11), first, "the same seed replays the same session");
}

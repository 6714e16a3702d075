//! The relay end to end, bounded to 60 s: a real nats-server (127.0.0.1, a free port,
//! JetStream in a temporary directory, killed by its pid when the test ends, also on
//! failure), two gateways and a keeper as `zen-relay` processes, players as contexts on
//! ENet links in this process.
//!
//! Every room converges; no message of one room reaches the other's players; a room
//! whose players all left is served to a newcomer by its keeper; a gateway killed with
//! SIGKILL loses its players, who connect again through the other and converge; the
//! keeper killed and restarted reloads its checkpoint and serves a newcomer; a client
//! whose hello names another peer than its token is refused.
//! (`zen_relay::harness` finds nats-server.)

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};
use zen_crdt::*;
use zen_relay::auth::sign;
use zen_relay::harness::{free_udp_addr, Proc, Relay};

const SECRET: &str = "test-secret";
const EXE: &str = env!("CARGO_BIN_EXE_zen-relay");

fn start() -> Relay {
    let common = [
        "--metrics-every-s",
        "1",
        "--heartbeat-ms",
        "250",
        "--presence-ttl-ms",
        "1200",
        "--lease-ms",
        "1500",
    ];
    Relay::start("test", &common)
}

fn gateway(relay: &Relay, id: &str, at: SocketAddr) -> Proc {
    relay.gateway(EXE, id, at, SECRET)
}

fn keeper(relay: &Relay, id: &str) -> Proc {
    relay.keeper(EXE, id, &["--checkpoint-ms", "200"])
}

/// A connect token, from `zen-relay token` (as a matchmaker's script would get one).
fn token(room: &str, peer: u64) -> Vec<u8> {
    let out = Command::new(EXE)
        .args(["token", "--secret", SECRET, "--room", room, "--peer", &peer.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let t = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(t, sign(SECRET.as_bytes(), room, peer));
    t.into_bytes()
}

struct Player {
    ctx: Context,
    link: EnetLink,
    room: &'static str,
}

fn link(at: SocketAddr, room: &str, peer: u64, token: Vec<u8>) -> EnetLink {
    let opts = EnetOptions { timeout_ms: 1000, room: room.into(), token, ..EnetOptions::default() };
    EnetLink::connect(at, peer, &opts).unwrap()
}

fn player(at: SocketAddr, room: &'static str, peer: u64) -> Player {
    let ctx =
        Context::new(peer, Options { target_message_bytes: DATAGRAM_BYTES, ..Options::default() }).unwrap();
    Player { ctx, link: link(at, room, peer, token(room, peer)), room }
}

impl Player {
    fn write(&mut self, tag: &str) {
        let id = format!("{}/p{}/{tag}", self.room, self.ctx.peer_id());
        let h = self.ctx.create(&id, ValueType::I64, ValueOptions::default()).unwrap();
        self.ctx.set(h, self.ctx.peer_id() as i64).unwrap();
    }

    /// Its room's values it holds, sorted.
    fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.ctx.value_ids().map(str::to_owned).collect();
        ids.sort();
        ids
    }
}

/// Pumps the players (real time since `t0`) until `done`; panics after `limit`.
fn run(
    t0: Instant,
    players: &mut [&mut Player],
    limit: Duration,
    what: &str,
    mut done: impl FnMut(&[&mut Player]) -> bool,
) {
    let until = Instant::now() + limit;
    loop {
        let now = t0.elapsed().as_millis() as u64;
        for p in players.iter_mut() {
            pump(&mut p.ctx, &mut p.link, now);
        }
        if done(players) {
            return;
        }
        if Instant::now() > until {
            let state: Vec<String> = players
                .iter()
                .map(|p| {
                    format!(
                        "peer {} ({}): peers {:?}, values {:?}, refused {:?}",
                        p.ctx.peer_id(),
                        p.room,
                        p.ctx.peers(),
                        p.ids(),
                        p.link.refused()
                    )
                })
                .collect();
            panic!("{what}: not within {limit:?}\n{}", state.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

const KEEPER: u64 = (1 << 53) - 1;

/// The keeper acknowledged everything this player wrote. (Converged alone does not say
/// so: a value converged before the keeper joined stays Converged while the keeper
/// catches up.)
fn keeper_has_mine(p: &Player) -> bool {
    p.ctx.metrics().peers.iter().any(|l| l.peer == KEEPER && l.active && l.unacked_messages == 0)
}

/// Every player holds exactly `ids` of its room, converged.
fn holds(players: &[&mut Player], room: &str, ids: &[&str]) -> bool {
    let want: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    players
        .iter()
        .filter(|p| p.room == room)
        .all(|p| p.ids() == want && p.ctx.all_in_state(SyncState::Converged))
}

#[test]
fn rooms_gateways_and_a_keeper_on_nats() {
    let t0 = Instant::now();
    let relay = start();
    let (a1, a2) = (free_udp_addr(), free_udp_addr());
    let mut gw1 = gateway(&relay, "gw1", a1);
    let _gw2 = gateway(&relay, "gw2", a2);
    let mut k1 = keeper(&relay, "k1");

    // Two rooms, each with a player on each gateway.
    let (mut p1, mut p2) = (player(a1, "alpha", 1), player(a2, "alpha", 2));
    let (mut p3, mut p4) = (player(a1, "beta", 3), player(a2, "beta", 4));
    for p in [&mut p1, &mut p2, &mut p3, &mut p4] {
        p.write("a");
    }
    let alpha = ["alpha/p1/a", "alpha/p2/a"];
    let beta = ["beta/p3/a", "beta/p4/a"];
    run(t0, &mut [&mut p1, &mut p2, &mut p3, &mut p4], Duration::from_secs(15), "two rooms converge", |ps| {
        holds(ps, "alpha", &alpha)
            && holds(ps, "beta", &beta)
            && ps.iter().all(|p| p.ctx.peers().len() == 2 && keeper_has_mine(p))
    });
    // Isolation: each sees its room's other player and the keeper only, and nothing of
    // the other room arrived (a stray message would be refused and counted).
    for p in [&p1, &p2, &p3, &p4] {
        let mut peers: Vec<u64> = p.ctx.peers().iter().map(|x| x.0).collect();
        peers.sort();
        let other = match p.ctx.peer_id() {
            1 => 2,
            2 => 1,
            3 => 4,
            _ => 3,
        };
        assert_eq!(peers, vec![other, KEEPER], "peer {}", p.ctx.peer_id());
        assert_eq!(
            p.ctx.metrics().messages_rejected,
            0,
            "peer {} got something not of its room",
            p.ctx.peer_id()
        );
    }

    // Every player of alpha leaves; a newcomer on gw1 gets the room from the keeper.
    drop(p1);
    drop(p2);
    std::thread::sleep(Duration::from_millis(500));
    let mut p5 = player(a1, "alpha", 5);
    p5.write("a");
    let alpha5 = ["alpha/p1/a", "alpha/p2/a", "alpha/p5/a"];
    run(
        t0,
        &mut [&mut p5, &mut p3, &mut p4],
        Duration::from_secs(10),
        "a newcomer catches up from the keeper",
        |ps| holds(ps, "alpha", &alpha5),
    );

    // gw1 dies: its players (p5 in alpha, p3 in beta) connect again through gw2.
    gw1.kill();
    run(t0, &mut [&mut p5, &mut p3, &mut p4], Duration::from_secs(5), "gw1's players notice", |ps| {
        ps.iter().filter(|p| p.ctx.peer_id() != 4).all(|p| p.ctx.peers().is_empty())
    });
    p5.link = link(a2, "alpha", 5, token("alpha", 5));
    p3.link = link(a2, "beta", 3, token("beta", 3));
    p3.write("b");
    let beta3 = ["beta/p3/a", "beta/p3/b", "beta/p4/a"];
    run(
        t0,
        &mut [&mut p5, &mut p3, &mut p4],
        Duration::from_secs(10),
        "gw1's players converge through gw2",
        |ps| {
            // p5 is alone in alpha with the keeper; p3 and p4 have each other and the keeper.
            let peers = |i: usize| ps[i].ctx.peers().len();
            holds(ps, "alpha", &alpha5)
                && holds(ps, "beta", &beta3)
                && (peers(0), peers(1), peers(2)) == (1, 2, 2)
        },
    );

    // alpha empties again, the keeper is killed and restarted: it reloads its checkpoint
    // and a newcomer gets all of alpha from it (no player holds alpha meanwhile).
    run(t0, &mut [&mut p5], Duration::from_secs(5), "the keeper has p5's write", |ps| keeper_has_mine(ps[0]));
    std::thread::sleep(Duration::from_millis(600)); // a checkpoint since (every 200 ms)
    drop(p5);
    std::thread::sleep(Duration::from_millis(600));
    k1.kill();
    let k2 = keeper(&relay, "k2");
    // The newcomer's presence makes alpha wanted; k2 claims it once k1's lease ran out.
    let mut p6 = player(a2, "alpha", 6);
    run(
        t0,
        &mut [&mut p6, &mut p3, &mut p4],
        Duration::from_secs(10),
        "a newcomer catches up from the restarted keeper",
        |ps| holds(ps, "alpha", &alpha5),
    );
    assert!(k2.log().contains("room=alpha: loaded its checkpoint"), "{}", k2.log());

    // A client whose token is peer 7's says hello as peer 8: refused with the reason.
    let mut forger = Player {
        ctx: Context::new(8, Options::default()).unwrap(),
        link: link(a2, "alpha", 8, token("alpha", 7)),
        room: "alpha",
    };
    run(t0, &mut [&mut forger], Duration::from_secs(5), "the forger is refused", |ps| {
        ps[0].link.refused().is_some()
    });
    assert!(forger.link.refused().unwrap().contains("does not admit peer 8"), "{:?}", forger.link.refused());
    assert!(t0.elapsed() < Duration::from_secs(60), "took {:?}", t0.elapsed());
}

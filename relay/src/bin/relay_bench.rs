//! The relay's cost: N rooms × P players at 60 Hz through two gateways on NATS (and a
//! keeper per room), beside the same rooms through direct ENet listen hosts (a player
//! hosting its room), in the same run, on 127.0.0.1.
//!
//! `cargo run --release -p zen-relay --bin relay-bench [-- --rooms 2 --players 16 --secs 30]`
//!
//! Every player writes its unit's position and a send time every tick. Printed: messages
//! and bytes per second per player (sent and received, as its ENet link counts them),
//! one-way latency from `set` on one player to the change event on another (p50 / p99,
//! ms; it includes up to two 16.7 ms frames of waiting, the writer's and the reader's),
//! and CPU: each gateway's, the keeper's and nats-server's processes (user + system over
//! the window), and the players' threads. From the gateways' CPU: how many players one
//! gateway core would carry at this load, extrapolated linearly. One thread per room
//! pumps its players; this machine has 2 cores, shared by everything.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use zen_crdt::*;
use zen_crdt_bench::{arg, quantile_sorted as quantile, thread_cpu_ns};
use zen_relay::auth::sign;
use zen_relay::harness::{free_udp_addr, Relay};

const SECRET: &str = "bench-secret";

/// What one session measured over its window.
#[derive(Default)]
struct Figures {
    sent: u64,
    bytes_sent: u64,
    received: u64,
    bytes_received: u64,
    /// The most bytes one player sent (a direct room's host forwards for everyone).
    max_bytes_sent: u64,
    latencies_ms: Vec<f64>,
    /// Thread CPU of the players' threads, seconds.
    player_cpu_s: f64,
    /// Players that saw every other player of their room (and the keeper) at the end.
    complete: usize,
    players: usize,
}

fn thread_cpu_s() -> f64 {
    thread_cpu_ns() as f64 / 1e9
}

/// Plays `rooms` (each a list of (peer id, link)), one thread per room, for `warm` then
/// `secs` seconds of measurement; `members` is how many members each player must end
/// with. `window` is called when the measuring starts and ends (for process CPU).
fn session(
    rooms: Vec<Vec<(u64, EnetLink)>>,
    warm: Duration,
    secs: u64,
    members: usize,
    mut window: impl FnMut(),
) -> Figures {
    let n = rooms.len();
    let go = Arc::new(Barrier::new(n + 1));
    let threads: Vec<_> = rooms
        .into_iter()
        .map(|room| {
            let go = go.clone();
            std::thread::spawn(move || {
                let opts = Options { target_message_bytes: DATAGRAM_BYTES, ..Options::default() };
                let mut players: Vec<(Context, EnetLink, ValueHandle, ValueHandle)> = room
                    .into_iter()
                    .map(|(id, link)| {
                        let mut ctx = Context::new(id, opts.clone()).unwrap();
                        let t =
                            ctx.create(&format!("p{id}/t"), ValueType::I64, ValueOptions::default()).unwrap();
                        let pos = ctx
                            .create(&format!("p{id}/pos"), ValueType::Vec3, ValueOptions::default())
                            .unwrap();
                        (ctx, link, t, pos)
                    })
                    .collect();
                let start = Instant::now();
                let mut f = Figures { players: players.len(), ..Figures::default() };
                let tick = Duration::from_micros(16_667);
                let mut next = Instant::now();
                let mut base: Vec<LinkStats> = Vec::new();
                let mut cpu0 = 0.0;
                let mut measuring = false;
                go.wait(); // everyone starts together
                let end = warm + Duration::from_secs(secs);
                while start.elapsed() < end {
                    let now = start.elapsed();
                    if !measuring && now >= warm {
                        measuring = true;
                        go.wait(); // the window opens for everyone at once
                        cpu0 = thread_cpu_s();
                        base = players.iter().map(|p| p.1.stats()).collect();
                    }
                    let us = start.elapsed().as_micros() as i64;
                    for (ctx, link, t, pos) in players.iter_mut() {
                        ctx.set(*t, us).unwrap();
                        let x = us as f32 / 1e6;
                        ctx.set(*pos, [x.sin(), x.cos(), ctx.peer_id() as f32]).unwrap();
                        pump(ctx, link, start.elapsed().as_millis() as u64);
                        let me = ctx.peer_id();
                        while let Some(ev) = ctx.poll_change() {
                            if ev.origin == me || !measuring {
                                continue;
                            }
                            if let Some(Value::I64(sent)) = ev.new {
                                f.latencies_ms
                                    .push((start.elapsed().as_micros() as i64 - sent) as f64 / 1000.0);
                            }
                        }
                    }
                    next += tick;
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    } else {
                        next = now;
                    }
                }
                f.player_cpu_s = thread_cpu_s() - cpu0;
                for (p, b) in players.iter().zip(&base) {
                    let s = p.1.stats();
                    f.sent += s.sent - b.sent;
                    f.bytes_sent += s.bytes_sent - b.bytes_sent;
                    f.max_bytes_sent = f.max_bytes_sent.max(s.bytes_sent - b.bytes_sent);
                    f.received += s.received - b.received;
                    f.bytes_received += s.bytes_received - b.bytes_received;
                    f.complete += (p.0.peers().len() == members) as usize;
                }
                go.wait(); // the window closes; stay connected until everyone measured
                f
            })
        })
        .collect();
    go.wait();
    go.wait();
    window();
    go.wait();
    window();
    let mut all = Figures::default();
    for t in threads {
        let f = t.join().unwrap();
        all.sent += f.sent;
        all.bytes_sent += f.bytes_sent;
        all.max_bytes_sent = all.max_bytes_sent.max(f.max_bytes_sent);
        all.received += f.received;
        all.bytes_received += f.bytes_received;
        all.latencies_ms.extend(f.latencies_ms);
        all.player_cpu_s += f.player_cpu_s;
        all.complete += f.complete;
        all.players += f.players;
    }
    all.latencies_ms.sort_by(f64::total_cmp);
    all
}

fn main() {
    let (rooms, players, secs) = (arg("--rooms", 2) as usize, arg("--players", 16).max(2), arg("--secs", 30));
    let warm = Duration::from_secs(4);
    let exe = std::env::current_exe().unwrap().with_file_name("zen-relay");
    if !exe.exists() {
        eprintln!("relay-bench: {} is not built: cargo build --release -p zen-relay", exe.display());
        std::process::exit(2);
    }
    let exe = exe.to_str().unwrap();
    let relay = Relay::start("bench", &["--metrics-every-s", "0"]);
    let (a1, a2) = (free_udp_addr(), free_udp_addr());
    let gw = [relay.gateway(exe, "gw1", a1, SECRET), relay.gateway(exe, "gw2", a2, SECRET)];
    let keeper = relay.keeper(exe, "k1", &["--checkpoint-ms", "5000"]);

    // Through the relay: player i of each room on gateway i % 2.
    let enet = |room: &str, id: u64| EnetOptions {
        room: room.into(),
        token: sign(SECRET.as_bytes(), room, id).into_bytes(),
        ..EnetOptions::default()
    };
    let relayed: Vec<Vec<(u64, EnetLink)>> = (0..rooms)
        .map(|r| {
            let room = format!("room{r}");
            (1..=players)
                .map(|id| {
                    (id, EnetLink::connect(if id % 2 == 0 { a1 } else { a2 }, id, &enet(&room, id)).unwrap())
                })
                .collect()
        })
        .collect();
    // Process CPU sampled when the window opens and when it closes.
    let procs = [&gw[0], &gw[1], &keeper, &relay.nats];
    let mut samples: Vec<Vec<f64>> = Vec::new();
    let r = session(relayed, warm, secs, players as usize, || {
        samples.push(procs.iter().map(|p| p.cpu_secs()).collect());
    });
    let used: Vec<f64> = (0..procs.len()).map(|i| samples[1][i] - samples[0][i]).collect();

    // Direct: each room hosted by its player 1 (a listen host forwarding between clients).
    let direct: Vec<Vec<(u64, EnetLink)>> = (0..rooms)
        .map(|_| {
            let host = EnetLink::listen("127.0.0.1:0".parse().unwrap(), 1, &EnetOptions::default()).unwrap();
            let at = host.local_addr().unwrap();
            let mut links = vec![(1, host)];
            links.extend(
                (2..=players).map(|id| (id, EnetLink::connect(at, id, &EnetOptions::default()).unwrap())),
            );
            links
        })
        .collect();
    let d = session(direct, warm, secs, players as usize - 1, || {});
    report(rooms, players, secs, &r, &d, &used);
    // A smoke run in scripts/test fails here if the relay lost a player or carried nothing.
    if r.complete < r.players || d.complete < d.players || r.latencies_ms.is_empty() {
        eprintln!("relay-bench: a player missed part of its room, or no change arrived");
        std::process::exit(1);
    }
}

fn report(rooms: usize, players: u64, secs: u64, r: &Figures, d: &Figures, used: &[f64]) {
    let n = (rooms as u64 * players) as f64;
    let per = |v: u64| v as f64 / secs as f64 / n;
    println!(
        "\n{rooms} rooms x {players} players at 60 Hz for {secs} s, through two zen-relay gateways on NATS"
    );
    println!("(and a keeper per room), beside the same rooms through direct ENet listen hosts\n");
    println!("| {:<58} | {:>12} | {:>12} | {:>8} |", "figure", "relay", "direct ENet", "ratio");
    println!("|{:-<60}|{:->14}|{:->14}|{:->10}|", "", "", "", "");
    let row = |what: &str, a: f64, b: f64, digits: usize| {
        println!("| {what:<58} | {a:>12.digits$} | {b:>12.digits$} | {:>8.2} |", a / b);
    };
    row("messages sent per second, per player (mean)", per(r.sent), per(d.sent), 0);
    row("bytes sent per second, per player (mean)", per(r.bytes_sent), per(d.bytes_sent), 0);
    let busiest = |f: &Figures| f.max_bytes_sent as f64 / secs as f64;
    row("bytes sent per second by the busiest player (a host)", busiest(r), busiest(d), 0);
    row("messages received per second, per player", per(r.received), per(d.received), 0);
    row("bytes received per second, per player", per(r.bytes_received), per(d.bytes_received), 0);
    row(
        "one-way set -> change event, p50 (ms)",
        quantile(&r.latencies_ms, 0.5),
        quantile(&d.latencies_ms, 0.5),
        1,
    );
    row(
        "one-way set -> change event, p99 (ms)",
        quantile(&r.latencies_ms, 0.99),
        quantile(&d.latencies_ms, 0.99),
        1,
    );
    row(
        "players' threads CPU, per player (% of a core)",
        r.player_cpu_s / secs as f64 / n * 100.0,
        d.player_cpu_s / secs as f64 / n * 100.0,
        2,
    );
    println!(
        "| {:<58} | {:>12} | {:>12} | {:>8} |",
        "latency samples",
        r.latencies_ms.len(),
        d.latencies_ms.len(),
        ""
    );
    println!(
        "| {:<58} | {:>12} | {:>12} | {:>8} |",
        "players that saw their whole room at the end", r.complete, d.complete, ""
    );
    let pct = |s: f64| s / secs as f64 * 100.0;
    println!("\nRelay processes' CPU over the window (user + system, % of one core):\n");
    println!("| {:<14} | {:>8} |", "process", "CPU %");
    println!("|{:-<16}|{:->10}|", "", "");
    for (name, s) in ["gateway gw1", "gateway gw2", "keeper", "nats-server"].iter().zip(used) {
        println!("| {name:<14} | {:>8.1} |", pct(*s));
    }
    let per_gateway = n / 2.0;
    let gw_core = (pct(used[0]) + pct(used[1])) / 2.0 / 100.0;
    println!(
        "\nEach gateway carried {per_gateway:.0} players at {:.1} % of a core: about {:.0} players per gateway core at",
        gw_core * 100.0,
        per_gateway / gw_core.max(1e-9)
    );
    println!("this load, extrapolated linearly (ENet service and NATS fan-out grow with room size too).");
}

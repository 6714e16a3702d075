//! ENet on loopback: N players at 60 Hz, each moving its unit every tick, for a while,
//! twice in the same run: through a listen host that forwards between its clients, and as
//! a mesh (every pair connected directly). Beside them, the raw UDP round trip on this
//! machine (the floor any transport sits on).
//!
//! `cargo run --release -p zen-crdt-bench --bin enet-bench [-- --players 16 --secs 10]`
//!
//! Prints a table: messages and bytes per second (per player, sent), one-way latency from
//! `set` on one player to the change event on another (p50 / p99, ms: it includes the
//! writer's wait for its next tick and the reader's, up to two 16.7 ms frames), the raw
//! UDP round trip (p50 / p99, ms) and thread CPU per player. Every player runs on its own
//! thread; this machine has 2 cores, so 16 players share them.

use std::net::UdpSocket;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};
use zen_crdt::*;
use zen_crdt_bench::{arg, quantile_sorted as quantile, thread_cpu_ns};

/// Raw UDP ping-pong between two sockets of this process on 127.0.0.1, in ms.
fn udp_round_trips(n: usize) -> Vec<f64> {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        for _ in 0..n {
            let (len, from) = b.recv_from(&mut buf).unwrap();
            b.send_to(&buf[..len], from).unwrap();
        }
    });
    let mut buf = [0u8; 64];
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        a.send_to(&(i as u64).to_le_bytes(), ba).unwrap();
        a.recv_from(&mut buf).unwrap();
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    echo.join().unwrap();
    let _ = aa;
    out.sort_by(f64::total_cmp);
    out
}

struct PlayerResult {
    id: u64,
    stats: LinkStats,
    cpu_ns: u64,
    latencies_ms: Vec<f64>,
    members: usize,
}

/// One session's figures.
struct Summary {
    /// Mean per player other than player 1 (a client, or a mesh peer).
    sent_per_s: f64,
    bytes_per_s: f64,
    /// Player 1: the host, or one more mesh peer.
    first_sent_per_s: f64,
    first_bytes_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_pct: f64,
    first_cpu_pct: f64,
    samples: usize,
    dropped: u64,
    rejected: u64,
    full: bool,
}

/// Links for `players` players: a listen host (player 1) and clients, or mesh peers
/// each dialing the ones before it.
fn links(players: u64, mesh: bool) -> Vec<EnetLink> {
    let any = "127.0.0.1:0".parse().unwrap();
    let o = EnetOptions::default();
    if mesh {
        let mut links: Vec<EnetLink> = (1..=players).map(|id| EnetLink::mesh(any, id, &o).unwrap()).collect();
        let addrs: Vec<_> = links.iter().map(|l| l.local_addr().unwrap()).collect();
        for (i, l) in links.iter_mut().enumerate() {
            for &a in &addrs[..i] {
                l.dial(a).unwrap();
            }
        }
        return links;
    }
    let host = EnetLink::listen(any, 1, &o).unwrap();
    let at = host.local_addr().unwrap();
    let mut links = vec![host];
    links.extend((2..=players).map(|id| EnetLink::connect(at, id, &o).unwrap()));
    links
}

fn session(players: usize, secs: u64, mesh: bool) -> Summary {
    let start = Instant::now();
    let go = Arc::new(Barrier::new(players));
    let results = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = links(players as u64, mesh)
        .into_iter()
        .zip(1u64..)
        .map(|(link, id)| {
            let (go, results) = (go.clone(), results.clone());
            std::thread::spawn(move || {
                let mut link = link;
                let opts = Options { target_message_bytes: DATAGRAM_BYTES, ..Options::default() };
                let mut ctx = Context::new(id, opts).unwrap();
                let sent_at =
                    ctx.create(&format!("p{id}/t"), ValueType::I64, ValueOptions::default()).unwrap();
                let pos =
                    ctx.create(&format!("p{id}/pos"), ValueType::Vec3, ValueOptions::default()).unwrap();
                // Connect and warm up for 2 s before measuring.
                let warm = Duration::from_secs(2);
                go.wait();
                let mut latencies = Vec::new();
                let mut cpu0 = 0;
                let mut stats0 = LinkStats::default();
                let tick = Duration::from_micros(16_667);
                let mut next = Instant::now();
                let end = start.elapsed() + warm + Duration::from_secs(secs);
                let mut measuring = false;
                while start.elapsed() < end {
                    let now = start.elapsed();
                    if !measuring && now >= warm {
                        measuring = true;
                        cpu0 = thread_cpu_ns();
                        stats0 = link.stats();
                    }
                    let us = now.as_micros() as i64;
                    ctx.set(sent_at, us).unwrap();
                    let f = us as f32 / 1e6;
                    ctx.set(pos, [f.sin(), f.cos(), id as f32]).unwrap();
                    pump(&mut ctx, &mut link, now.as_millis() as u64);
                    while let Some(ev) = ctx.poll_change() {
                        if ev.origin == id || !measuring {
                            continue;
                        }
                        if let Some(Value::I64(t)) = ev.new {
                            let seen = start.elapsed().as_micros() as i64;
                            latencies.push((seen - t) as f64 / 1000.0);
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
                let cpu_ns = thread_cpu_ns() - cpu0;
                let s = link.stats();
                let stats = LinkStats {
                    sent: s.sent - stats0.sent,
                    bytes_sent: s.bytes_sent - stats0.bytes_sent,
                    received: s.received - stats0.received,
                    bytes_received: s.bytes_received - stats0.bytes_received,
                    dropped: s.dropped - stats0.dropped,
                    rejected: s.rejected - stats0.rejected,
                };
                let members = ctx.peers().len();
                results.lock().unwrap().push(PlayerResult {
                    id,
                    stats,
                    cpu_ns,
                    latencies_ms: latencies,
                    members,
                });
                // Stay connected until everyone has measured.
                go.wait();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let results = results.lock().unwrap();
    let per_s = |v: u64| v as f64 / secs as f64;
    let clients: Vec<&PlayerResult> = results.iter().filter(|r| r.id != 1).collect();
    let first = results.iter().find(|r| r.id == 1).expect("player 1's result");
    let nc = clients.len() as f64;
    let mut lat: Vec<f64> = results.iter().flat_map(|r| r.latencies_ms.iter().copied()).collect();
    lat.sort_by(f64::total_cmp);
    let pct = |r: &PlayerResult| r.cpu_ns as f64 / (secs as f64 * 1e9) * 100.0;
    Summary {
        sent_per_s: per_s(clients.iter().map(|r| r.stats.sent).sum::<u64>()) / nc,
        bytes_per_s: per_s(clients.iter().map(|r| r.stats.bytes_sent).sum::<u64>()) / nc,
        first_sent_per_s: per_s(first.stats.sent),
        first_bytes_per_s: per_s(first.stats.bytes_sent),
        p50_ms: quantile(&lat, 0.5),
        p99_ms: quantile(&lat, 0.99),
        cpu_pct: clients.iter().map(|r| pct(r)).sum::<f64>() / nc,
        first_cpu_pct: pct(first),
        samples: lat.len(),
        dropped: results.iter().map(|r| r.stats.dropped).sum(),
        rejected: results.iter().map(|r| r.stats.rejected).sum(),
        full: results.iter().all(|r| r.members == players - 1),
    }
}

fn main() {
    let players = arg("--players", 16).max(2) as usize;
    let secs = arg("--secs", 10);
    let udp = udp_round_trips(2000);
    let host = session(players, secs, false);
    let mesh = session(players, secs, true);

    println!("\nENet on 127.0.0.1: {players} players at 60 Hz for {secs} s after a 2 s warm-up, through a listen host");
    println!(
        "and as a mesh, one after the other (release; each player writes its unit's position and a send time"
    );
    println!("every tick; target_message_bytes = {DATAGRAM_BYTES})\n");
    println!("| {:<56} | {:>12} | {:>12} | {:>9} |", "figure", "listen host", "mesh", "mesh/host");
    println!("|{:-<58}|{:->14}|{:->14}|{:->11}|", "", "", "", "");
    let row = |what: &str, h: f64, m: f64, digits: usize| {
        println!("| {what:<56} | {h:>12.digits$} | {m:>12.digits$} | {:>9.2} |", m / h);
    };
    row("messages sent per second, per player but player 1", host.sent_per_s, mesh.sent_per_s, 0);
    row("bytes sent per second, per player but player 1", host.bytes_per_s, mesh.bytes_per_s, 0);
    row(
        "messages sent per second by player 1 (the host forwards)",
        host.first_sent_per_s,
        mesh.first_sent_per_s,
        0,
    );
    row("bytes sent per second by player 1", host.first_bytes_per_s, mesh.first_bytes_per_s, 0);
    row("one-way set -> change event on another player, p50 (ms)", host.p50_ms, mesh.p50_ms, 1);
    row("one-way set -> change event on another player, p99 (ms)", host.p99_ms, mesh.p99_ms, 1);
    row("thread CPU per player but player 1 (% of one core)", host.cpu_pct, mesh.cpu_pct, 1);
    row("thread CPU of player 1 (% of one core)", host.first_cpu_pct, mesh.first_cpu_pct, 1);
    println!("| {:<56} | {:>12} | {:>12} | {:>9} |", "latency samples", host.samples, mesh.samples, "");
    println!(
        "| {:<56} | {:>12} | {:>12} | {:>9} |",
        "messages dropped / input rejected (all links)",
        format!("{} / {}", host.dropped, host.rejected),
        format!("{} / {}", mesh.dropped, mesh.rejected),
        ""
    );
    println!(
        "\nraw UDP round trip on this machine: p50 {:.3} ms, p99 {:.3} ms (the wire's floor)",
        quantile(&udp, 0.5),
        quantile(&udp, 0.99)
    );
    println!(
        "The one-way figure is a game's staleness: up to one frame until the writer's tick, the \
         loopback hop\n(and the host's forward), up to one frame until the reader's tick.\n{}",
        if host.full && mesh.full {
            "Every player had every other as a member at the end, in both sessions."
        } else {
            "NOT every player had every other as a member at the end."
        }
    );
    if !(host.full && mesh.full) || host.samples == 0 || mesh.samples == 0 {
        std::process::exit(1);
    }
}

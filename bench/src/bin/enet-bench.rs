//! ENet on loopback: N players (one host, the rest clients) at 60 Hz, each moving its
//! unit every tick, for a while; beside it, in the same run, the raw UDP round trip on
//! this machine (the floor any transport sits on).
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
use zen_crdt_bench::{arg, thread_cpu_ns};

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

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

fn main() {
    let players = arg("--players", 16).max(2) as usize;
    let secs = arg("--secs", 10);
    let udp = udp_round_trips(2000);

    let host = EnetLink::listen("127.0.0.1:0".parse().unwrap(), 1, &EnetOptions::default()).unwrap();
    let at = host.local_addr().unwrap();
    let start = Instant::now();
    let go = Arc::new(Barrier::new(players));
    let results = Arc::new(Mutex::new(Vec::new()));
    let mut host = Some(host);
    let threads: Vec<_> = (1..=players as u64)
        .map(|id| {
            let link = match id {
                1 => host.take().expect("one host"),
                _ => EnetLink::connect(at, id, &EnetOptions::default()).unwrap(),
            };
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
    let host = results.iter().find(|r| r.id == 1).expect("the host's result");
    let nc = clients.len() as f64;
    let client_sent = clients.iter().map(|r| r.stats.sent).sum::<u64>() as f64 / nc;
    let client_bytes = clients.iter().map(|r| r.stats.bytes_sent).sum::<u64>() as f64 / nc;
    let mut lat: Vec<f64> = results.iter().flat_map(|r| r.latencies_ms.iter().copied()).collect();
    lat.sort_by(f64::total_cmp);
    let pct = |r: &PlayerResult| r.cpu_ns as f64 / (secs as f64 * 1e9) * 100.0;
    let cpu_client = clients.iter().map(|r| pct(r)).sum::<f64>() / nc;
    let cpu_host = pct(host);
    let full = results.iter().all(|r| r.members == players - 1);
    let dropped: u64 = results.iter().map(|r| r.stats.dropped).sum();
    let rejected: u64 = results.iter().map(|r| r.stats.rejected).sum();

    println!("\nENet on 127.0.0.1: {players} players at 60 Hz for {secs} s after a 2 s warm-up (release; each player");
    println!(
        "writes its unit's position and a send time every tick; target_message_bytes = {DATAGRAM_BYTES})\n"
    );
    println!("| {:<58} | {:>12} |", "figure", "value");
    println!("|{:-<60}|{:->14}|", "", "");
    println!(
        "| {:<58} | {:>12.0} |",
        "messages sent per second, per client (mean)",
        client_sent / secs as f64
    );
    println!(
        "| {:<58} | {:>12.0} |",
        "bytes sent per second, per client (mean, ENet payload)",
        client_bytes / secs as f64
    );
    println!(
        "| {:<58} | {:>12.0} |",
        "messages sent per second by the host (it forwards)",
        per_s(host.stats.sent)
    );
    println!("| {:<58} | {:>12.0} |", "bytes sent per second by the host", per_s(host.stats.bytes_sent));
    println!(
        "| {:<58} | {:>12.1} |",
        "one-way set -> change event on another player, p50 (ms)",
        quantile(&lat, 0.5)
    );
    println!(
        "| {:<58} | {:>12.1} |",
        "one-way set -> change event on another player, p99 (ms)",
        quantile(&lat, 0.99)
    );
    println!("| {:<58} | {:>12.3} |", "raw UDP round trip on this machine, p50 (ms)", quantile(&udp, 0.5));
    println!("| {:<58} | {:>12.3} |", "raw UDP round trip on this machine, p99 (ms)", quantile(&udp, 0.99));
    println!("| {:<58} | {:>12.1} |", "thread CPU per client, mean (% of one core)", cpu_client);
    println!("| {:<58} | {:>12.1} |", "thread CPU of the host (% of one core)", cpu_host);
    println!("| {:<58} | {:>12} |", "latency samples", lat.len());
    println!(
        "| {:<58} | {:>12} |",
        "messages dropped / input rejected (all links)",
        format!("{dropped} / {rejected}")
    );
    println!(
        "\nThe one-way figure is a game's staleness: up to one frame until the writer's tick, the \
         loopback hop,\nthe host's forward, up to one frame until the reader's tick. The raw UDP round \
         trip is the wire's floor.\n{}",
        if full {
            "Every player had every other as a member at the end."
        } else {
            "NOT every player had every other as a member at the end."
        }
    );
    if !full || lat.is_empty() {
        std::process::exit(1);
    }
}

//! A simulated multiplayer session: four players on a lossy network, each moving its own
//! unit (FastLocal positions), all fighting over one flag (FastLocal, LastWriterWins:
//! corrections happen), a shared score (WaitForSync) and a late joiner.
//!
//! `cargo run --release --example session [-- --seed N]`

use zen_crdt::sim::{LinkConfig, Sim};
use zen_crdt::*;

/// The number after `name` on the command line, or `default`.
fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == name);
    at.and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(default)
}

fn main() -> Result<(), Error> {
    let seed = arg("--seed", 1);
    let link = LinkConfig {
        latency_ms: 25,
        jitter_ms: 10,
        loss: arg("--loss-pct", 5) as f64 / 100.0,
        duplicate: 0.01,
        reorder: 0.02,
        bandwidth_bytes_per_s: 0,
    };
    let mut sim = Sim::new(seed, 5, link, Options::default());
    sim.leave(4); // player 5 joins later
    sim.drain_events = false;

    let mut units = Vec::new();
    for p in 0..4 {
        let h =
            sim.ctx(p).create(&format!("unit/{}/pos", p + 1), ValueType::Vec3, ValueOptions::default())?;
        units.push(h);
    }
    let flag = ValueOptions {
        mode: Mode::FastLocal,
        policy: Policy::LastWriterWins,
        local_only: false,
        owner: None,
    };
    let score = ValueOptions { mode: Mode::WaitForSync, policy: Policy::Max, local_only: false, owner: None };
    let flags: Vec<_> = (0..4)
        .map(|p| sim.ctx(p).create("flag/holder", ValueType::I64, flag.clone()))
        .collect::<Result<_, _>>()?;
    let scores: Vec<_> = (0..4)
        .map(|p| sim.ctx(p).create("score/red", ValueType::I64, score.clone()))
        .collect::<Result<_, _>>()?;

    println!("zen-crdt session demo: 4 players, 25+-10 ms, 5% loss (seed {seed})\n");
    let mut corrections = 0;
    let mut converged_scores = 0;
    for tick in 0..600u64 {
        for (p, &unit) in units.iter().enumerate() {
            let angle = tick as f32 / 60.0 + p as f32;
            sim.ctx(p).set(unit, [angle.cos() * 10.0, 0.0, angle.sin() * 10.0])?;
        }
        // Every two seconds, two players grab the flag in the same frame.
        if tick % 120 == 60 {
            let (a, b) = ((tick / 120) as usize % 4, (tick / 120 + 1) as usize % 4);
            sim.ctx(a).set(flags[a], a as i64 + 1)?;
            sim.ctx(b).set(flags[b], b as i64 + 1)?;
        }
        if tick % 90 == 30 {
            let p = (tick / 90) as usize % 4;
            let h = scores[p];
            let next = match sim.ctx(p).get(h)? {
                Value::I64(v) => v + 1,
                _ => 1,
            };
            sim.ctx(p).set(h, next)?;
        }
        if tick == 300 {
            sim.join(4);
            println!("t={:>5} ms  player 5 joins", sim.now);
        }
        sim.step_keep_events();
        for p in 0..sim.peers.len() {
            while let Some(ev) = sim.ctx(p).poll_change() {
                let id = sim.ctx(p).id(ev.value)?.to_owned();
                if ev.is_correction {
                    corrections += 1;
                    println!(
                        "t={:>5} ms  player {} {id}: showed {:?}, corrected to {:?} (peer {} won)",
                        ev.time_ms,
                        p + 1,
                        ev.old,
                        ev.new,
                        ev.origin
                    );
                }
                if id.starts_with("score/")
                    && ev.state == SyncState::Converged
                    && ev.kind == ChangeKind::Modified
                {
                    converged_scores += 1;
                    if p == 0 {
                        println!("t={:>5} ms  score/red acknowledged by everyone: {:?}", ev.time_ms, ev.new);
                    }
                }
            }
        }
    }
    sim.run_for(1000);

    println!("\n| player | values | flag/holder | score/red | corrections | msgs out | KB out | rejected | WaitForSync p50/p99 ms |");
    println!("|--------|--------|-------------|-----------|-------------|----------|--------|----------|------------------------|");
    for p in 0..sim.peers.len() {
        let c = sim.ctx(p);
        let flag =
            c.open("flag/holder").and_then(|h| c.get(h)).map(|v| format!("{v:?}")).unwrap_or("-".into());
        let score =
            c.open("score/red").and_then(|h| c.get(h)).map(|v| format!("{v:?}")).unwrap_or("-".into());
        let m = c.metrics();
        println!(
            "| {:>6} | {:>6} | {:>11} | {:>9} | {:>11} | {:>8} | {:>6} | {:>8} | {:>22} |",
            p + 1,
            m.values,
            flag,
            score,
            m.corrections,
            m.messages_out,
            m.bytes_out / 1024,
            m.messages_rejected,
            format!("{:?}/{:?}", m.converge_ms_p50.unwrap_or(0), m.converge_ms_p99.unwrap_or(0)),
        );
    }
    println!("\n{corrections} corrections shown to players, {converged_scores} acknowledged score changes.");
    let reads: Vec<String> = (0..sim.peers.len())
        .map(|p| {
            let c = sim.ctx(p);
            format!("{:?}", c.open("flag/holder").and_then(|h| c.get(h)))
        })
        .collect();
    let agree = reads.windows(2).all(|w| w[0] == w[1]);
    println!("all five players agree on every value: {}", if agree { "yes" } else { "NO" });
    if !agree {
        std::process::exit(1);
    }
    Ok(())
}

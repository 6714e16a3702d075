//! zen-bench: multiplayer scenarios on the simulated network, with the same game done
//! with plain yrs (one Doc, one Map, a state-vector diff per tick to each peer) in the
//! same run. Prints tables; `--json` prints one JSON object instead.
//!
//! `cargo run --release -p zen-crdt-bench --bin zen-bench [-- --json] [--secs 60] [--baseline-secs 10] [--seed 1]`
//! (`--secs` also bounds the other scenarios: contention runs min(10, secs) s, the late
//! joiner arrives after min(30, secs/2) s, the partition lasts min(5, secs/2) s.)

use std::time::Instant;
use zen_crdt::*;
use zen_crdt_bench::alloc_count::{live_bytes, Counting};
use zen_crdt_bench::arg;
use zen_crdt_bench::scenarios::*;

#[global_allocator]
static ALLOC: Counting = Counting;

// ---- the core figures, small versions of bench/benches/core.rs ---------------------------

fn core_figures(ticks: u64) -> (f64, f64, f64, f64) {
    let mut a = Context::new(1, Options::default()).unwrap();
    let mut b = Context::new(2, Options::default()).unwrap();
    a.add_peer(2).unwrap();
    b.add_peer(1).unwrap();
    let hs: Vec<_> = (0..1000)
        .map(|i| a.create(&format!("u/{i}"), ValueType::Vec3, ValueOptions::default()).unwrap())
        .collect();
    let (mut set, mut pipe, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
    let heap0 = live_bytes();
    let mut start_mem = 0;
    for s in 1..=ticks.max(20) {
        let t = Instant::now();
        for (i, &h) in hs.iter().enumerate() {
            a.set(h, [i as f32, s as f32, 0.0]).unwrap();
        }
        let st = t.elapsed().as_nanos() as u64;
        let t = Instant::now();
        a.tick(s * TICK);
        let mut n = 0;
        while let Some(m) = a.poll_outbound() {
            n += m.bytes.len();
            b.receive(&m.bytes).unwrap();
        }
        b.tick(s * TICK);
        let pt = t.elapsed().as_nanos() as u64;
        while let Some(m) = b.poll_outbound() {
            a.receive(&m.bytes).unwrap();
        }
        while a.poll_change().is_some() {}
        while b.poll_change().is_some() {}
        set.push(st);
        pipe.push(pt);
        bytes.push(n as u64);
        if s == ticks.max(20) / 3 {
            start_mem = live_bytes() - heap0;
        }
    }
    let end_mem = live_bytes() - heap0;
    (
        quantile(&mut set, 0.5) / 1000.0,
        quantile(&mut pipe, 0.5) / 1000.0,
        quantile(&mut bytes, 0.5) / 1000.0,
        end_mem as f64 / start_mem.max(1) as f64,
    )
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let seed = arg("--seed", 1);
    let secs = arg("--secs", 60);
    let baseline_secs = arg("--baseline-secs", 10);
    // `--only arena` (or baseline, contention, late, partition, core): run just that one,
    // e.g. under a profiler; the others print as empty.
    let only = std::env::args().skip_while(|a| a != "--only").nth(1);
    let want = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let log = |s: &str| {
        if !json {
            eprintln!("{s}");
        }
    };
    let clock = Instant::now();
    let lap = |what: &str| log(&format!("[{:>5.1}s] {what}", clock.elapsed().as_secs_f64()));
    let none = |s| Outcome::new(s);
    lap("core figures");
    let (set_ns, pipe_ns, bytes_per, soak_ratio) =
        if want("core") { core_figures(arg("--core-ticks", 3000)) } else { (0.0, 0.0, 0.0, 0.0) };
    lap(&format!("arena: {PEERS} peers x {ENTITIES} entities, {secs} s of virtual time"));
    let z = if want("arena") {
        run(&mut ZenArena::new(seed, PEERS, arena_link()), secs, |_, _, _, _| {})
    } else {
        none(secs)
    };
    lap(&format!("arena with plain yrs, {baseline_secs} s (its memory grows ~400 B per write)"));
    let y = if want("baseline") {
        run(&mut YArena::new(seed, PEERS, arena_link()), baseline_secs, |_, _, _, _| {})
    } else {
        none(baseline_secs)
    };
    let cont_secs = 10.min(secs);
    let ycont_secs = cont_secs.min(baseline_secs);
    lap("contention (zen-crdt, then plain yrs)");
    let cont: Vec<(usize, Outcome, Outcome)> = [2usize, 4, 8]
        .iter()
        .filter(|_| want("contention"))
        .map(|&n| (n, contention(seed, n, cont_secs), baseline_contention(seed, n, ycont_secs)))
        .collect();
    let join_after = 30.min(secs / 2).max(1);
    let yjoin_after = join_after.min(baseline_secs);
    lap("late join");
    let (late, ylate) = if want("late") {
        (late_join(seed, join_after), baseline_late_join(seed, yjoin_after))
    } else {
        (none(0), none(0))
    };
    let split_secs = 5.min(secs / 2).max(1);
    let ysplit_secs = split_secs.min(baseline_secs);
    lap("partition");
    let (split, ysplit) = if want("partition") {
        (partition(seed, split_secs), baseline_partition(seed, ysplit_secs))
    } else {
        (none(0), none(0))
    };
    lap("done");

    let ms = |o: &Outcome| o.catch_up_ms.map_or(-1, |v| v as i64);
    if json {
        println!(
            "{{\"set_ns_p50\": {set_ns:.1}, \"flush_apply_ns_per_value\": {pipe_ns:.1}, \"bytes_per_vec3_update\": {bytes_per:.2}, \
\"soak_mem_ratio\": {soak_ratio:.3}, \"arena_visibility_ms_p50\": {}, \"arena_visibility_ms_p99\": {}, \
\"arena_converge_ms_p50\": {}, \"arena_converge_ms_p99\": {}, \"arena_cpu_pct_per_peer\": {:.3}, \
\"arena_bytes_per_s_per_peer\": {:.0}, \"arena_mem_ratio\": {:.3}, \"arena_corrections_per_min\": {:.1}, \
\"arena_correction_ms_p50\": {}, \"baseline_arena_visibility_ms_p50\": {}, \"baseline_arena_visibility_ms_p99\": {}, \
\"baseline_arena_converge_ms_p50\": {}, \"baseline_arena_converge_ms_p99\": {}, \
\"baseline_arena_cpu_pct_per_peer\": {:.3}, \"baseline_arena_bytes_per_s_per_peer\": {:.0}, \"baseline_arena_mem_ratio\": {:.3}, \
\"late_join_catch_up_ms\": {}, \"baseline_late_join_catch_up_ms\": {}, \"partition_heal_ms\": {}, \"baseline_partition_heal_ms\": {}}}",
            hq(&z.visibility_ms, 0.5),
            hq(&z.visibility_ms, 0.99),
            hq(&z.converge_ms, 0.5),
            hq(&z.converge_ms, 0.99),
            z.cpu_pct_per_peer(PEERS),
            z.bytes_per_s_per_peer(PEERS),
            z.mem_ratio(),
            z.corrections_per_min(),
            hq(&z.correction_ms, 0.5),
            hq(&y.visibility_ms, 0.5),
            hq(&y.visibility_ms, 0.99),
            hq(&y.converge_ms, 0.5),
            hq(&y.converge_ms, 0.99),
            y.cpu_pct_per_peer(PEERS),
            y.bytes_per_s_per_peer(PEERS),
            y.mem_ratio(),
            ms(&late),
            ms(&ylate),
            ms(&split),
            ms(&ysplit),
        );
        return;
    }
    let pair = |h: &Histogram| format!("{:>5} / {:<5}", hq(h, 0.5), hq(h, 0.99));
    println!("\nzen-bench (seed {seed}; arena: 8 peers x 125 entities, vec3 60 Hz FastLocal, hp TakeAverage, score WaitForSync;");
    println!("25 +- 5 ms one way, 2% loss; plain yrs: one Doc + Map per peer, a state-vector diff per tick to each peer)\n");
    println!("| arena                                      |      zen-crdt |     plain yrs |");
    println!("|--------------------------------------------|---------------|---------------|");
    println!("| virtual seconds                            | {secs:>13} | {baseline_secs:>13} |");
    println!(
        "| FastLocal visibility p50 / p99 (ms)        | {} | {} |",
        pair(&z.visibility_ms),
        pair(&y.visibility_ms)
    );
    println!(
        "| WaitForSync converge p50 / p99 (ms) [1]    | {} | {} |",
        pair(&z.converge_ms),
        pair(&y.converge_ms)
    );
    println!(
        "| corrections per minute [2]                 | {:>13.1} | {:>13.1} |",
        z.corrections_per_min(),
        y.corrections_per_min()
    );
    println!(
        "| correction after the write p50 / p99 (ms)  | {} | {} |",
        pair(&z.correction_ms),
        pair(&y.correction_ms)
    );
    println!(
        "| bytes per second per peer                  | {:>13.0} | {:>13.0} |",
        z.bytes_per_s_per_peer(PEERS),
        y.bytes_per_s_per_peer(PEERS)
    );
    println!(
        "| CPU % of one core per peer                 | {:>13.2} | {:>13.2} |",
        z.cpu_pct_per_peer(PEERS),
        y.cpu_pct_per_peer(PEERS)
    );
    println!(
        "| memory per peer, start -> end (MB)         | {:>5.2} -> {:<5.2}| {:>5.1} -> {:<5.1}|",
        z.mem_start as f64 / 1e6 / PEERS as f64,
        z.mem_end as f64 / 1e6 / PEERS as f64,
        y.mem_start as f64 / 1e6 / PEERS as f64,
        y.mem_end as f64 / 1e6 / PEERS as f64
    );
    println!(
        "| memory end / start                         | {:>13.2} | {:>13.2} |",
        z.mem_ratio(),
        y.mem_ratio()
    );
    println!("[1] plain yrs has no WaitForSync: a score write until every other peer reads it.");
    println!("[2] plain yrs: a peer's health write silently replaced by a concurrent one.");
    println!(
        "\n| contention: 100 shared vec3, every peer writes every tick | corrections/min zen / yrs | agree after stop ms zen / yrs | KB/s per peer zen / yrs |"
    );
    println!("|-----------------------------------------------------------|---------------------------|-------------------------------|-------------------------|");
    for (n, o, b) in &cont {
        println!(
            "| {n} peers ({cont_secs} s zen, {ycont_secs} s yrs){:w$} | {:>12.0} / {:<12.0}| {:>14} / {:<14}| {:>11.1} / {:<11.1}|",
            "",
            o.corrections_per_min(),
            b.corrections_per_min(),
            ms(o),
            ms(b),
            o.bytes_per_s_per_peer(*n) / 1000.0,
            b.bytes_per_s_per_peer(*n) / 1000.0,
            w = 57 - format!("{n} peers ({cont_secs} s zen, {ycont_secs} s yrs)").len()
        );
    }
    let or_not = |v: i64| if v < 0 { "(not within 5 s)".to_string() } else { format!("{v} ms") };
    println!(
        "\nlate join: the newcomer agrees on every value {} after joining at {join_after} s (plain yrs, joining at {yjoin_after} s: {})",
        or_not(ms(&late)),
        or_not(ms(&ylate))
    );
    println!(
        "partition 4/4 for {split_secs} s: everyone agrees {} after healing (plain yrs, split {ysplit_secs} s: {})",
        or_not(ms(&split)),
        or_not(ms(&ysplit))
    );
    println!(
        "\ncore: set p50 {set_ns:.1} ns, set+flush+apply {pipe_ns:.0} ns/value, {bytes_per:.1} B per vec3 update, memory end/start over the core run x{soak_ratio:.2}"
    );
}

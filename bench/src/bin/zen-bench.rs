//! zen-bench: the multiplayer scenarios on the simulated network, played with zen-crdt
//! and, in the same run with the same seed and windows, with plain yrs over the y-sync
//! protocol in two layouts (one Doc with one Map; one Doc per value). Prints tables;
//! `--json` prints one JSON object instead.
//!
//! `cargo run --release -p zen-crdt-bench --bin zen-bench [-- --json] [--secs 10] [--seed 1]
//!  [--only core|arena|lossless|contention|late|partition] [--sides zen,map,perdoc] [--jobs 1]`
//!
//! `--jobs 2` runs the sides at once, each on its own thread (the test command's smoke
//! run): CPU is thread CPU time, memory the side's thread's heap, time simulated, so the
//! figures match a one-at-a-time run but for cache noise in CPU.
//!
//! `--secs` is the arena's length for every side (the first second is warm-up); it also
//! bounds the others: contention runs min(10, secs) s, the late joiner arrives after
//! min(30, secs/2) s, the partition lasts min(5, secs/2) s.

use std::time::Instant;
use zen_crdt::*;
use zen_crdt_bench::alloc_count::{live_bytes, Counting};
use zen_crdt_bench::arg;
use zen_crdt_bench::baseline::Layout;
use zen_crdt_bench::scenarios::*;
use zen_crdt_bench::ysync::{Work, WORK};

#[global_allocator]
static ALLOC: Counting = Counting;

// ---- the core figures, small versions of bench/benches/core.rs ---------------------------

fn core_figures(ticks: u64) -> [(&'static str, f64); 4] {
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
    [
        ("set_ns_p50", quantile(&mut set, 0.5) / 1000.0),
        ("flush_apply_ns_per_value", quantile(&mut pipe, 0.5) / 1000.0),
        ("bytes_per_vec3_update", quantile(&mut bytes, 0.5) / 1000.0),
        ("soak_mem_ratio", end_mem as f64 / start_mem.max(1) as f64),
    ]
}

/// The figures of every side, as JSON keys (without the side's prefix) and values.
#[derive(Default)]
struct Figures(Vec<(String, f64)>);

impl Figures {
    fn put(&mut self, key: impl Into<String>, v: f64) {
        self.0.push((key.into(), v));
    }
    fn get(&self, key: &str) -> Option<f64> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

fn arena_figures(f: &mut Figures, name: &str, o: &Outcome) {
    let q = |h: &Histogram, q| hq(h, q) as f64;
    for (k, p) in [("p50", 0.5), ("p99", 0.99), ("max", 1.0)] {
        f.put(format!("{name}_staleness_ms_{k}"), q(&o.staleness_ms, p));
    }
    let a = &o.acct;
    for (k, b) in [
        ("mesh", a.bytes_mesh),
        ("relay", a.bytes_relay),
        ("mesh_lz4", a.bytes_mesh_lz4),
        ("relay_lz4", a.bytes_relay_lz4),
    ] {
        f.put(format!("{name}_bytes_per_s_per_peer_{k}"), o.per_s_per_peer(b, PEERS));
    }
    f.put(format!("{name}_cpu_pct_per_peer"), o.cpu_pct_per_peer(PEERS));
    for (w, k) in [Work::Write, Work::Encode, Work::Receive, Work::Apply, Work::CatchUp].iter().zip(WORK) {
        f.put(format!("{name}_cpu_pct_{k}"), o.cpu_pct_of(*w, PEERS));
    }
    let (cpu, bytes) = o.growth();
    f.put(format!("{name}_cpu_growth"), cpu);
    f.put(format!("{name}_bytes_growth"), bytes);
    f.put(format!("{name}_state_vectors_per_s"), a.state_vectors_sent as f64 / o.window_secs);
    f.put(format!("{name}_mem_ratio"), o.mem_ratio());
    f.put(format!("{name}_mem_end_mb_per_peer"), o.mem_end as f64 / 1e6 / PEERS as f64);
    f.put(format!("{name}_converge_ms_p50"), q(&o.converge_ms, 0.5));
    f.put(format!("{name}_converge_ms_p99"), q(&o.converge_ms, 0.99));
    f.put(format!("{name}_corrections_per_min"), o.corrections_per_min());
    f.put(format!("{name}_settled_ms"), o.settled_ms.map_or(-1.0, |v| v as f64));
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let seed = arg("--seed", 1);
    let secs = arg("--secs", 10).max(2);
    let only = std::env::args().skip_while(|a| a != "--only").nth(1);
    let want = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let sides_arg = std::env::args().skip_while(|a| a != "--sides").nth(1);
    let sides: Vec<Side> = Side::ALL
        .into_iter()
        .filter(|s| {
            let short = match s {
                Side::Zen => "zen",
                Side::YSync(Layout::OneMap) => "map",
                Side::YSync(Layout::DocPerValue) => "perdoc",
            };
            sides_arg.as_deref().is_none_or(|a| a.split(',').any(|x| x == short))
        })
        .collect();
    let clock = Instant::now();
    let lap = |what: &str| {
        if !json {
            eprintln!("[{:>6.1}s] {what}", clock.elapsed().as_secs_f64())
        }
    };
    let mut core = Vec::new();
    if want("core") {
        lap("core figures");
        core.extend(core_figures(arg("--core-ticks", 3000)));
    }
    let cont_secs = 10.min(secs);
    let join_after = 30.min(secs / 2).max(1);
    let split_secs = 5.min(secs / 2).max(1);
    let plan = Plan { seed, secs, cont_secs, join_after, split_secs };
    // --jobs 2 runs the sides on threads of their own (CI's smoke run): every figure is
    // thread CPU time or simulated time, so a side's figures do not depend on its neighbours
    // beyond cache noise. The published tables use the default, one side at a time.
    let figs: Vec<(Side, Figures)> = if arg("--jobs", 1) > 1 {
        std::thread::scope(|scope| {
            let runs: Vec<_> = sides
                .iter()
                .map(|&side| scope.spawn(move || (side, side_figures(side, &plan, &want, &lap))))
                .collect();
            runs.into_iter().map(|r| r.join().expect("a benchmark side panicked")).collect()
        })
    } else {
        sides.iter().map(|&side| (side, side_figures(side, &plan, &want, &lap))).collect()
    };
    lap("done");

    if json {
        let mut items: Vec<String> = core.iter().map(|(k, v)| format!("\"{k}\": {v:.3}")).collect();
        for (side, f) in &figs {
            items.extend(f.0.iter().map(|(k, v)| format!("\"{}{k}\": {v:.3}", side.prefix())));
        }
        println!("{{{}}}", items.join(", "));
        return;
    }
    print_tables(seed, secs, &figs, &core, (cont_secs, join_after, split_secs));
}

/// What every side runs: the run length and the scenarios' timings (seconds).
#[derive(Clone, Copy)]
struct Plan {
    seed: u64,
    secs: u64,
    cont_secs: u64,
    join_after: u64,
    split_secs: u64,
}

/// One side's figures over the scenarios `want` selects; `lap` reports progress.
fn side_figures(
    side: Side,
    plan: &Plan,
    want: &(dyn Fn(&str) -> bool + Sync),
    lap: &(dyn Fn(&str) + Sync),
) -> Figures {
    let Plan { seed, secs, cont_secs, join_after, split_secs } = *plan;
    let mut f = Figures::default();
    if want("arena") {
        lap(&format!("{}: arena, {PEERS} peers x {ENTITIES} entities, 2% loss, {secs} s", side.name()));
        let o = run(arena(side, seed, arena_link()).as_mut(), secs, |_, _, _, _| {});
        arena_figures(&mut f, "arena", &o);
    }
    if want("lossless") {
        lap(&format!("{}: arena, 0% loss, {secs} s", side.name()));
        let o = run(arena(side, seed, arena_link_with(0.0)).as_mut(), secs, |_, _, _, _| {});
        arena_figures(&mut f, "arena_lossless", &o);
    }
    if want("contention") {
        for n in [2usize, 4, 8] {
            lap(&format!("{}: contention, {n} peers, {cont_secs} s", side.name()));
            let o = contention(side, seed, n, cont_secs);
            f.put(format!("contention_{n}_corrections_per_min"), o.corrections_per_min());
            f.put(format!("contention_{n}_agree_ms"), o.catch_up_ms.map_or(-1.0, |v| v as f64));
            f.put(
                format!("contention_{n}_bytes_per_s_per_peer_mesh"),
                o.per_s_per_peer(o.acct.bytes_mesh, n),
            );
            f.put(
                format!("contention_{n}_bytes_per_s_per_peer_relay"),
                o.per_s_per_peer(o.acct.bytes_relay, n),
            );
            f.put(format!("contention_{n}_cpu_pct_per_peer"), o.cpu_pct_per_peer(n));
        }
    }
    if want("late") {
        lap(&format!("{}: late join after {join_after} s", side.name()));
        let o = late_join(side, seed, join_after);
        f.put("late_join_catch_up_ms", o.catch_up_ms.map_or(-1.0, |v| v as f64));
    }
    if want("partition") {
        lap(&format!("{}: partition 4/4 for {split_secs} s", side.name()));
        let o = partition(side, seed, split_secs);
        f.put("partition_heal_ms", o.catch_up_ms.map_or(-1.0, |v| v as f64));
    }
    f
}

fn print_tables(
    seed: u64,
    secs: u64,
    figs: &[(Side, Figures)],
    core: &[(&str, f64)],
    (cont_secs, join_after, split_secs): (u64, u64, u64),
) {
    println!("\nzen-bench (seed {seed}). Arena: {PEERS} peers x {ENTITIES} entities, vec3 positions written every tick");
    println!("(60 Hz, FastLocal), health TakeAverage with concurrent writes, scores WaitForSync; 25 +- 5 ms one way.");
    println!("Baselines: plain yrs over y-sync, one transaction per tick whose update is broadcast once, a per-sender");
    println!("sequence number, sync step 1/2 on a gap (at most once per round trip), on join and after a partition;");
    println!(
        "one Doc with one Map, or one Doc per value. Every side {secs} s, measured after the first second;"
    );
    println!("CPU is thread CPU time (all peers on one thread, divided by {PEERS}); bytes per recipient (mesh) and");
    println!("per message (relay); ratios are baseline / zen-crdt.\n");
    let head: Vec<&str> = figs.iter().map(|(s, _)| s.name()).collect();
    print!("| {:<52} |", "");
    for h in &head {
        print!(" {h:>16} |");
    }
    for (s, _) in figs.iter().skip(1) {
        print!(" {:>9} |", format!("{}/zen", if s.prefix().contains("map") { "map" } else { "doc" }));
    }
    println!();
    print!("|{:-<54}|", "");
    for _ in &head {
        print!("{:-<18}|", "");
    }
    for _ in figs.iter().skip(1) {
        print!("{:-<11}|", "");
    }
    println!();
    let zen_first = figs.first().is_some_and(|(s, _)| *s == Side::Zen);
    let row = |label: &str, key: &str, digits: usize| {
        // Rows about bytes per second show KB/s.
        let scale = if key.contains("bytes_per_s") { 1e-3 } else { 1.0 };
        if figs.iter().all(|(_, f)| f.get(key).is_none()) {
            return;
        }
        print!("| {label:<52} |");
        for (_, f) in figs {
            match f.get(key) {
                Some(v) if v < 0.0 => print!(" {:>16} |", "never"),
                Some(v) => print!(" {:>16.digits$} |", v * scale),
                None => print!(" {:>16} |", "-"),
            }
        }
        let z = figs[0].1.get(key).unwrap_or(0.0);
        for (_, f) in figs.iter().skip(1) {
            match f.get(key) {
                Some(v) if zen_first && z > 0.0 && v >= 0.0 => print!(" {:>9.2} |", v / z),
                _ => print!(" {:>9} |", "-"),
            }
        }
        println!();
    };
    for (name, title) in [("arena", "2% loss"), ("arena_lossless", "0% loss")] {
        row(&format!("arena, {title}: staleness per write p50 (ms)"), &format!("{name}_staleness_ms_p50"), 0);
        row("  staleness p99 (ms)", &format!("{name}_staleness_ms_p99"), 0);
        row("  staleness max (ms)", &format!("{name}_staleness_ms_max"), 0);
        row("  KB/s per peer, mesh (per recipient), raw", &format!("{name}_bytes_per_s_per_peer_mesh"), 1);
        row("  KB/s per peer, mesh, LZ4", &format!("{name}_bytes_per_s_per_peer_mesh_lz4"), 1);
        row("  KB/s per peer, relay (per message), raw", &format!("{name}_bytes_per_s_per_peer_relay"), 1);
        row("  KB/s per peer, relay, LZ4", &format!("{name}_bytes_per_s_per_peer_relay_lz4"), 1);
        row("  thread CPU % of a core per peer", &format!("{name}_cpu_pct_per_peer"), 2);
        for k in WORK {
            row(&format!("    {k}"), &format!("{name}_cpu_pct_{k}"), 2);
        }
        row("  CPU last 5 s / first 5 s", &format!("{name}_cpu_growth"), 2);
        row("  bytes last 5 s / first 5 s", &format!("{name}_bytes_growth"), 2);
        row("  state-vector messages per s (all peers)", &format!("{name}_state_vectors_per_s"), 1);
        row("  memory per peer at the end (MB)", &format!("{name}_mem_end_mb_per_peer"), 2);
        row("  memory end / start", &format!("{name}_mem_ratio"), 2);
        row("  WaitForSync score converge p50 (ms) [1]", &format!("{name}_converge_ms_p50"), 0);
        row("  WaitForSync score converge p99 (ms) [1]", &format!("{name}_converge_ms_p99"), 0);
        row("  corrections per minute [2]", &format!("{name}_corrections_per_min"), 0);
        row("  writes stopped: all peers agree after (ms)", &format!("{name}_settled_ms"), 0);
    }
    for n in [2, 4, 8] {
        row(
            &format!("contention, {n} peers, {cont_secs} s: corrections/min [2]"),
            &format!("contention_{n}_corrections_per_min"),
            0,
        );
        row("  agree after the writes stop (ms)", &format!("contention_{n}_agree_ms"), 0);
        row("  KB/s per peer, mesh", &format!("contention_{n}_bytes_per_s_per_peer_mesh"), 1);
        row("  KB/s per peer, relay", &format!("contention_{n}_bytes_per_s_per_peer_relay"), 1);
        row("  thread CPU % of a core per peer", &format!("contention_{n}_cpu_pct_per_peer"), 2);
    }
    row(&format!("late join after {join_after} s: newcomer agrees after (ms)"), "late_join_catch_up_ms", 0);
    row(&format!("partition 4/4 for {split_secs} s: agree after healing (ms)"), "partition_heal_ms", 0);
    println!("\n[1] plain yrs has no WaitForSync: a score write until every other peer reads it.");
    println!(
        "[2] zen-crdt: correction events; plain yrs: a peer's write silently replaced by a concurrent one."
    );
    println!("zen-crdt's receive decodes and applies in one call (its 'receive' is under 'apply'), and its resends and");
    println!(
        "acknowledgements happen in its tick (under 'encode'); 'apply' includes polling the change events."
    );
    if !core.is_empty() {
        let c = |k: &str| core.iter().find(|(n, _)| *n == k).map_or(0.0, |(_, v)| *v);
        println!(
            "\ncore: set p50 {:.1} ns, set+flush+apply {:.0} ns/value, {:.1} B per vec3 update, memory end/start x{:.2}",
            c("set_ns_p50"),
            c("flush_apply_ns_per_value"),
            c("bytes_per_vec3_update"),
            c("soak_mem_ratio")
        );
    }
}

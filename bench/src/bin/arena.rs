//! The demo: the arena (8 players x 125 entities; positions FastLocal at 60 Hz, health
//! FastLocal with TakeAverage, scores WaitForSync; 25 +- 5 ms one way, 2 % loss) played
//! with zen-crdt, then the same game with plain yrs synced the way yrs users sync (the
//! y-sync protocol, one Doc with one Map: see `ysync.rs`), on the same simulated network.
//! A live terminal table shows what each costs while it runs; at the end an SVG plot
//! shows the latency distributions and the corrections over time side by side.
//!
//! `cargo run --release -p zen-crdt-bench --bin arena [-- --secs 30] [--baseline-secs 10] [--seed 1] [--out target/arena.svg]`
//!
//! Plain yrs is run for fewer virtual seconds by default: one Map keeps every overwritten
//! entry (design.md: ~400 B per write), so a long run needs gigabytes. zen-bench compares
//! all sides over equal windows.

use plotters::prelude::*;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};
use zen_crdt::Histogram;
use zen_crdt_bench::alloc_count::Counting;
use zen_crdt_bench::arg;
use zen_crdt_bench::baseline::Layout;
use zen_crdt_bench::scenarios::*;
use zen_crdt_bench::ysync::Acct;

#[global_allocator]
static ALLOC: Counting = Counting;

/// One column of the live table: a run's figures so far.
#[derive(Clone, Default)]
struct Column {
    secs_done: f64,
    secs_total: u64,
    staleness: (i64, i64),
    converge: (i64, i64),
    corrections_per_min: f64,
    correction_ms: (i64, i64),
    bytes_per_s_per_peer: f64,
    cpu_pct_per_peer: f64,
    mem_start_mb: f64,
    mem_now_mb: f64,
}

impl Column {
    fn of(
        out: &Outcome,
        acct: &Acct,
        converge: &Histogram,
        secs_done: f64,
        secs_total: u64,
        mem_now: i64,
    ) -> Column {
        // CPU and bytes are counted after the first second of warm-up.
        let secs = (secs_done - (WARMUP_TICKS * TICK) as f64 / 1000.0).max(1e-3);
        let per_peer = |x: f64| x / PEERS as f64;
        Column {
            secs_done,
            secs_total,
            staleness: (hq(&out.staleness_ms, 0.5), hq(&out.staleness_ms, 0.99)),
            converge: (hq(converge, 0.5), hq(converge, 0.99)),
            corrections_per_min: out.corrections as f64 * 60.0 / secs,
            correction_ms: (hq(&out.correction_ms, 0.5), hq(&out.correction_ms, 0.99)),
            bytes_per_s_per_peer: per_peer(acct.bytes_relay_lz4 as f64 / secs),
            cpu_pct_per_peer: per_peer(100.0 * acct.cpu_total_ns() as f64 / 1e9 / secs),
            mem_start_mb: per_peer(out.mem_start as f64 / 1e6),
            mem_now_mb: per_peer(mem_now as f64 / 1e6),
        }
    }
}

/// The live table: redrawn in place on a terminal, printed once otherwise.
struct View {
    tty: bool,
    drawn_lines: usize,
    last: Instant,
    zen: Option<Column>,
    yrs: Option<Column>,
}

impl View {
    fn lines(&self) -> Vec<String> {
        let cell = |c: &Option<Column>, f: &dyn Fn(&Column) -> String| c.as_ref().map_or("-".into(), f);
        let pair = |(a, b): (i64, i64)| if a < 0 { "-".into() } else { format!("{a} / {b}") };
        let row = |name: &str, f: &dyn Fn(&Column) -> String| {
            format!("  {name:<40} {:>16} {:>16}", cell(&self.zen, f), cell(&self.yrs, f))
        };
        let bar = |c: &Column| {
            let frac = (c.secs_done / c.secs_total.max(1) as f64).min(1.0);
            let full = (frac * 10.0).round() as usize;
            format!("[{}{}] {:>3.0}s", "#".repeat(full), ".".repeat(10 - full), c.secs_done)
        };
        vec![
            format!("  {:<40} {:>16} {:>16}", "arena, 8 peers x 125 entities", "zen-crdt", "y-sync 1 Map"),
            row("virtual time", &bar),
            row("staleness per write p50 / p99 (ms)", &|c| pair(c.staleness)),
            row("WaitForSync converge p50 / p99 (ms)*", &|c| pair(c.converge)),
            row("corrections per minute**", &|c| format!("{:.0}", c.corrections_per_min)),
            row("correction after write p50 / p99 (ms)", &|c| pair(c.correction_ms)),
            row("KB/s per peer (relay, LZ4)", &|c| format!("{:.1}", c.bytes_per_s_per_peer / 1e3)),
            row("thread CPU % of a core per peer", &|c| format!("{:.1}", c.cpu_pct_per_peer)),
            row("memory per peer, start -> now (MB)", &|c| {
                format!("{:.1} -> {:.1}", c.mem_start_mb, c.mem_now_mb)
            }),
        ]
    }

    /// Redraws in place (at most every 200 ms unless `force`); does nothing when stdout
    /// is not a terminal.
    fn draw(&mut self, force: bool) {
        if !self.tty || (!force && self.last.elapsed() < Duration::from_millis(200)) {
            return;
        }
        self.last = Instant::now();
        let lines = self.lines();
        let mut o = std::io::stdout().lock();
        if self.drawn_lines > 0 {
            let _ = write!(o, "\x1b[{}A", self.drawn_lines);
        }
        for l in &lines {
            let _ = writeln!(o, "\x1b[2K{l}");
        }
        let _ = o.flush();
        self.drawn_lines = lines.len();
    }
}

/// Plays one arena for `secs`, feeding the view column picked by `col` as it goes.
fn play<A: Arena + ?Sized>(
    a: &mut A,
    secs: u64,
    view: &mut View,
    col: fn(&mut View) -> &mut Option<Column>,
    converge: impl Fn(&A, &Outcome) -> Histogram,
) -> Outcome {
    let ticks = secs * 1000 / TICK;
    let mut start = a.acct();
    let out = run(a, secs, |a, tick, out, mem_now| {
        if tick == WARMUP_TICKS {
            start = a.acct();
        }
        if view.tty && (view.last.elapsed() >= Duration::from_millis(200) || tick == ticks) {
            let done = (tick * TICK) as f64 / 1000.0;
            let acct = a.acct().minus(&start);
            *col(view) = Some(Column::of(out, &acct, &converge(a, out), done, secs, mem_now));
            view.draw(tick == ticks);
        }
    });
    *col(view) = Some(Column::of(&out, &out.acct, &out.converge_ms, secs as f64, secs, out.mem_end));
    out
}

/// `(ms, fraction of samples at or below)` for a CDF line.
fn cdf(h: &Histogram) -> Vec<(f64, f64)> {
    let total = h.count().max(1) as f64;
    let mut seen = 0u64;
    let mut pts = vec![(0.0, 0.0)];
    for (ms, n) in h.iter() {
        pts.push((ms as f64, seen as f64 / total));
        seen += n as u64;
        pts.push((ms as f64, seen as f64 / total));
    }
    pts
}

type Plot = Result<(), Box<dyn std::error::Error>>;

fn plot(path: &str, z: &Outcome, y: &Outcome) -> Plot {
    let root = SVGBackend::new(path, (1400, 1000)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        "zen-crdt arena: 8 peers x 125 entities, 25 +- 5 ms one way, 2% loss (plain yrs: y-sync, one Doc + Map)",
        ("sans-serif", 22),
    )?;
    let panels = root.split_evenly((2, 2));
    let zen = RGBColor(33, 102, 172);
    let zen2 = RGBColor(103, 169, 207);
    let yrs = RGBColor(214, 96, 77);

    let max_ms = |hs: &[&Histogram]| {
        hs.iter().filter_map(|h| h.quantile(0.999)).max().unwrap_or(100).max(50) as f64 * 1.1
    };
    let cdf_panel = |area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
                     title: &str,
                     lines: &[(&str, &Histogram, RGBColor)]|
     -> Plot {
        let x_max = max_ms(&lines.iter().map(|l| l.1).collect::<Vec<_>>());
        let mut c = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..x_max, 0f64..1.0)?;
        c.configure_mesh().x_desc("latency (ms)").y_desc("fraction of samples <= x").draw()?;
        for &(name, h, color) in lines {
            c.draw_series(LineSeries::new(cdf(h), color.stroke_width(2)))?
                .label(format!("{name} (p50 {} ms, p99 {} ms)", hq(h, 0.5), hq(h, 0.99)))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        c.configure_series_labels().position(SeriesLabelPosition::LowerRight).border_style(BLACK).draw()?;
        Ok(())
    };
    cdf_panel(
        &panels[0],
        "Staleness: a remote position write until it (or a newer one) is read",
        &[("zen-crdt FastLocal", &z.staleness_ms, zen), ("y-sync, one Map", &y.staleness_ms, yrs)],
    )?;
    cdf_panel(
        &panels[1],
        "WaitForSync: a score write until every peer has it",
        &[
            ("zen-crdt WaitForSync (acknowledged)", &z.converge_ms, zen),
            ("y-sync (seen by all, no acknowledgement)", &y.converge_ms, yrs),
        ],
    )?;

    // Corrections per second over time.
    let secs = z.series.len().max(y.series.len()).max(1) as f64;
    let per_s_max = z
        .series
        .iter()
        .chain(&y.series)
        .map(|s| s.corrections_fast.max(s.corrections_wait))
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.2;
    let mut c = ChartBuilder::on(&panels[2])
        .caption("Corrections per second (a shown write replaced by a concurrent one)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..secs, 0f64..per_s_max)?;
    c.configure_mesh().x_desc("virtual time (s)").y_desc("corrections / s, all peers").draw()?;
    let series = |o: &Outcome, f: fn(&Second) -> u32| -> Vec<(f64, f64)> {
        o.series.iter().enumerate().map(|(i, s)| (i as f64 + 0.5, f(s) as f64)).collect()
    };
    let lines = [
        ("zen-crdt FastLocal (health, TakeAverage)", series(z, |s| s.corrections_fast), zen),
        ("zen-crdt WaitForSync (score): never shows a losing write", series(z, |s| s.corrections_wait), zen2),
        ("y-sync (health; silent, no event)", series(y, |s| s.corrections_fast), yrs),
    ];
    for (name, pts, color) in lines {
        c.draw_series(LineSeries::new(pts, color.stroke_width(2)).point_size(3))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    c.configure_series_labels().position(SeriesLabelPosition::UpperRight).border_style(BLACK).draw()?;

    // Bytes per second per peer over time (log scale: they differ a hundredfold).
    let bytes = |o: &Outcome| -> Vec<(f64, f64)> {
        o.series
            .iter()
            .enumerate()
            .map(|(i, s)| (i as f64 + 0.5, (s.bytes_out as f64 / PEERS as f64).max(1.0)))
            .collect()
    };
    let top =
        z.series.iter().chain(&y.series).map(|s| s.bytes_out).max().unwrap_or(1) as f64 / PEERS as f64 * 3.0;
    let mut c = ChartBuilder::on(&panels[3])
        .caption(
            "Bytes sent per second per peer (each message counted once, as via a relay)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..secs, (1e3f64..top.max(1e4)).log_scale())?;
    c.configure_mesh()
        .x_desc("virtual time (s)")
        .y_desc("bytes / s")
        .y_label_formatter(&|v| match *v {
            v if v >= 1e6 => format!("{:.0} MB", v / 1e6),
            v if v >= 1e3 => format!("{:.0} KB", v / 1e3),
            v => format!("{v:.0} B"),
        })
        .draw()?;
    for (name, pts, color) in [("zen-crdt", bytes(z), zen), ("y-sync, one Map", bytes(y), yrs)] {
        c.draw_series(LineSeries::new(pts, color.stroke_width(2)).point_size(3))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    c.configure_series_labels().position(SeriesLabelPosition::LowerRight).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

fn main() {
    let seed = arg("--seed", 1);
    let secs = arg("--secs", 30).max(1);
    let baseline_secs = arg("--baseline-secs", 10).max(2);
    let out_path = std::env::args()
        .skip_while(|a| a != "--out")
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/arena.svg").to_string());
    let tty = std::io::stdout().is_terminal();
    println!("zen-crdt arena demo (seed {seed}): zen-crdt for {secs} s of virtual time, then plain yrs (y-sync, one Doc + Map) for {baseline_secs} s\n");
    let mut view =
        View { tty, drawn_lines: 0, last: Instant::now() - Duration::from_secs(1), zen: None, yrs: None };
    view.draw(true);

    let t = Instant::now();
    let z = play(
        &mut ZenArena::new(seed, PEERS, arena_link()),
        secs,
        &mut view,
        |v| &mut v.zen,
        |a, _| a.converge_histogram(),
    );
    let zen_wall = t.elapsed();
    let t = Instant::now();
    let y = play(
        &mut YSyncArena::new(Layout::OneMap, seed, PEERS, arena_link()),
        baseline_secs,
        &mut view,
        |v| &mut v.yrs,
        |_, o| o.converge_ms.clone(),
    );
    let yrs_wall = t.elapsed();
    if tty {
        view.draw(true);
    } else {
        // A log or a pipe gets the final table once, without terminal escapes.
        view.lines().iter().for_each(|l| println!("{l}"));
    }
    println!(
        "  *  plain yrs has no WaitForSync: a score write until every other peer reads it, unacknowledged"
    );
    println!("  ** plain yrs: a health write silently replaced by a concurrent one (the game is never told)");
    println!(
        "\n  wall time: zen-crdt {:.1} s for {secs} virtual s, plain yrs {:.1} s for {baseline_secs} virtual s (all 8 peers on one thread)",
        zen_wall.as_secs_f64(),
        yrs_wall.as_secs_f64()
    );
    if let Some(dir) = std::path::Path::new(&out_path).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match plot(&out_path, &z, &y) {
        Ok(()) => println!("  plot: {out_path}"),
        Err(e) => {
            eprintln!("could not write the plot {out_path}: {e}");
            std::process::exit(1);
        }
    }
}

//! Soak: does memory stay flat through hours of 60 Hz writes? Beside each run, the same
//! workload on the y-sync baselines (plain yrs as a competent user syncs it: one
//! transaction per tick, its update broadcast once; one Doc one Map, and one Doc per
//! value) in the same process.
//!
//! `cargo bench -p zen-crdt-bench --bench soak` runs the sizes (100,000 ticks of 1000 vec3 values;
//! 100,000 alternating writes of one value by two peers). `--ticks N` and
//! `--baseline-ticks N` shrink them. Memory is the live heap of both peers, counted by
//! the allocator. Prints a table; asserts nothing.

use std::time::Instant;
use yrs::updates::decoder::Decode;
use yrs::{Any, Doc, Map, Transact, Update};
use zen_crdt::*;
use zen_crdt_bench::baseline::{arg, heap, mb, pair, Layout, YSync};

#[global_allocator]
static ALLOC: zen_crdt_bench::alloc_count::Counting = zen_crdt_bench::alloc_count::Counting;

const WARMUP: u64 = 1000;

/// Ticks both, moves every message both ways, drains events. Returns A's bytes sent.
fn round(a: &mut Context, b: &mut Context, now: u64) -> usize {
    a.tick(now);
    b.tick(now);
    let mut bytes = 0;
    while let Some(m) = a.poll_outbound() {
        bytes += m.bytes.len();
        b.receive(&m.bytes).unwrap();
    }
    while let Some(m) = b.poll_outbound() {
        a.receive(&m.bytes).unwrap();
    }
    while a.poll_change().is_some() {}
    while b.poll_change().is_some() {}
    bytes
}

struct Run {
    name: String,
    start: i64,
    end: i64,
    ticks: u64,
    secs: f64,
    note: String,
}

fn many_values(ticks: u64) -> Run {
    let base = heap();
    let (mut a, mut b) = pair();
    let hs: Vec<ValueHandle> = (0..1000)
        .map(|i| a.create(&format!("unit/{i}/pos"), ValueType::Vec3, ValueOptions::default()).unwrap())
        .collect();
    let t = Instant::now();
    let (mut start, mut first_bytes, mut last_bytes) = (0, 0usize, 0usize);
    for tick in 1..=ticks {
        for (i, &h) in hs.iter().enumerate() {
            let x = (tick as f32 * 0.01 + i as f32).sin();
            a.set(h, [x, tick as f32 * 0.001, i as f32]).unwrap();
        }
        let bytes = round(&mut a, &mut b, tick * 16);
        if tick <= WARMUP {
            first_bytes += bytes;
        }
        if tick > ticks.saturating_sub(WARMUP) {
            last_bytes += bytes;
        }
        if tick == WARMUP {
            start = heap() - base;
        }
        if tick % 20_000 == 0 {
            eprintln!("  zen 1000 values: tick {tick}: {}", mb(heap() - base));
        }
    }
    let end = heap() - base;
    // Messages of the last tick are applied at the next one.
    round(&mut a, &mut b, (ticks + 1) * 16);
    let per = |b: usize| b as f64 / (WARMUP.min(ticks) * 1000) as f64;
    let h = b.open("unit/999/pos").unwrap();
    assert!(b.get(h).unwrap().same_bits(&a.get(hs[999]).unwrap()), "peers disagree");
    Run {
        name: "zen-crdt: 1000 vec3, one writer".into(),
        start,
        end,
        ticks,
        secs: t.elapsed().as_secs_f64(),
        note: format!(
            "wire {:.1} B/update in the first 1000 ticks, {:.1} B in the last 1000",
            per(first_bytes),
            per(last_bytes)
        ),
    }
}

fn baseline_many(layout: Layout, ticks: u64) -> Run {
    let base = heap();
    let mut yrs = YSync::new(layout, 1000);
    let t = Instant::now();
    let mut start = 0;
    for tick in 1..=ticks {
        for i in 0..1000 {
            let x = (tick as f32 * 0.01 + i as f32).sin();
            yrs.stage(i, [x, tick as f32 * 0.001, i as f32]);
        }
        yrs.tick();
        if tick == WARMUP {
            start = heap() - base;
        }
    }
    let end = heap() - base;
    let per_tick = (end - start) as f64 / (ticks - WARMUP.min(ticks)).max(1) as f64;
    Run {
        name: format!("{}: 1000 vec3, one writer", layout.name()),
        start,
        end,
        ticks,
        secs: t.elapsed().as_secs_f64(),
        note: format!("grows {:.0} B per tick ({:.0} B per write)", per_tick, per_tick / 1000.0),
    }
}

fn alternating(writes: u64) -> Run {
    let base = heap();
    let (mut a, mut b) = pair();
    let ha = a.create("flag/owner", ValueType::I64, ValueOptions::default()).unwrap();
    round(&mut a, &mut b, 1);
    round(&mut a, &mut b, 2);
    let hb = b.open("flag/owner").unwrap();
    let t = Instant::now();
    let mut start = 0;
    for n in 1..=writes {
        if n % 2 == 0 {
            a.set(ha, n as i64).unwrap();
        } else {
            b.set(hb, n as i64).unwrap();
        }
        round(&mut a, &mut b, 16 + n * 16);
        if n == WARMUP {
            start = heap() - base;
        }
    }
    let end = heap() - base;
    round(&mut a, &mut b, 32 + writes * 16);
    assert_eq!(a.get(ha).unwrap(), b.get(hb).unwrap());
    Run {
        name: "zen-crdt: 1 value, 2 writers alternating".into(),
        start,
        end,
        ticks: writes,
        secs: t.elapsed().as_secs_f64(),
        note: String::new(),
    }
}

/// Two peers write one value in turn, y-sync style: each write is one transaction whose
/// update goes to the other peer. (One value: both layouts are one Doc with one key.)
fn baseline_alternating(writes: u64) -> Run {
    let base = heap();
    let a = Doc::with_client_id(1);
    let b = Doc::with_client_id(2);
    let (ma, mb_) = (a.get_or_insert_map("m"), b.get_or_insert_map("m"));
    let t = Instant::now();
    let mut start = 0;
    let write = |from: &Doc, map: &yrs::MapRef, to: &Doc, n: u64| {
        let update = {
            let mut txn = from.transact_mut();
            map.insert(&mut txn, "flag/owner", Any::from(n as f64));
            txn.encode_update_v1()
        };
        to.transact_mut().apply_update(Update::decode_v1(&update).unwrap()).unwrap();
    };
    for n in 1..=writes {
        if n % 2 == 0 {
            write(&a, &ma, &b, n);
        } else {
            write(&b, &mb_, &a, n);
        }
        if n == WARMUP {
            start = heap() - base;
        }
    }
    let end = heap() - base;
    Run {
        name: "y-sync: 1 value, 2 writers alternating".into(),
        start,
        end,
        ticks: writes,
        secs: t.elapsed().as_secs_f64(),
        note: format!(
            "grows {:.0} B per write",
            (end - start) as f64 / (writes - WARMUP.min(writes)).max(1) as f64
        ),
    }
}

/// Four contexts on four threads linked by the in-process bus (queues of 2 messages: a
/// third of the deltas drop every tick and are repaired by catch-ups), each writing 50 of its 250 values every tick: the bus
/// and the contexts together must stay flat too.
fn bus_four_threads(ticks: u64) -> Run {
    use std::sync::{Barrier, Mutex};
    let base = heap();
    let bus = Bus::new();
    let barrier = Barrier::new(4);
    // Heap after the warm-up and at the last tick (contexts alive).
    let marks = Mutex::new(Vec::<i64>::new());
    let t = Instant::now();
    let dropped: u64 = std::thread::scope(|s| {
        let workers: Vec<_> = (1..=4u64)
            .map(|peer| {
                let (bus, barrier, marks) = (&bus, &barrier, &marks);
                s.spawn(move || {
                    let mut ctx = Context::new(peer, Options::default()).unwrap();
                    let mut ep = bus.join(peer, 2).unwrap();
                    let hs: Vec<ValueHandle> = (0..250)
                        .map(|i| {
                            ctx.create(&format!("p{peer}/{i}"), ValueType::Vec3, ValueOptions::default())
                                .unwrap()
                        })
                        .collect();
                    for tick in 1..=ticks {
                        for k in 0..50 {
                            let i = (tick as usize * 7 + k * 5) % hs.len();
                            ctx.set(hs[i], [tick as f32, peer as f32, k as f32]).unwrap();
                        }
                        pump(&mut ctx, &mut ep, tick * 16);
                        while ctx.poll_change().is_some() {}
                        barrier.wait();
                        if peer == 1 && (tick == WARMUP || tick == ticks) {
                            marks.lock().unwrap().push(heap() - base);
                        }
                        barrier.wait();
                    }
                    assert_eq!(ctx.value_count(), 1000, "peer {peer} sees every value");
                    ep.stats().dropped
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    let marks = marks.into_inner().unwrap();
    let (start, end) = (marks[0], marks[marks.len() - 1]);
    Run {
        name: "zen-crdt: 4 threads on the bus, 1000 vec3".into(),
        start,
        end,
        ticks,
        secs: t.elapsed().as_secs_f64(),
        note: format!("{dropped} messages dropped on full queues (queues of 2) and repaired"),
    }
}

fn main() {
    let ticks = arg("--ticks", 100_000);
    let baseline_ticks = arg("--baseline-ticks", 2_000);
    eprintln!(
        "soak: {ticks} ticks (one-Map baseline: {baseline_ticks} ticks for 1000 values; per-value Docs: {ticks}; \
         {ticks} writes for one value)"
    );
    let runs = [
        many_values(ticks),
        baseline_many(Layout::OneMap, baseline_ticks),
        baseline_many(Layout::DocPerValue, ticks),
        alternating(ticks),
        baseline_alternating(ticks),
        bus_four_threads(ticks),
    ];
    println!("\nzen-crdt soak (release; memory = live heap of both peers; 'start' = after {WARMUP} ticks/writes)\n");
    println!(
        "| {:<50} | {:>8} | {:>10} | {:>10} | {:>7} | {:>7} |",
        "run", "ticks", "start", "end", "end/start", "secs"
    );
    println!("|{:-<52}|{:->10}|{:->12}|{:->12}|{:->11}|{:->9}|", "", "", "", "", "", "");
    for r in &runs {
        let ratio = r.end as f64 / r.start.max(1) as f64;
        println!(
            "| {:<50} | {:>8} | {:>10} | {:>10} | {:>8.2}x | {:>7.1} |",
            r.name,
            r.ticks,
            mb(r.start),
            mb(r.end),
            ratio,
            r.secs
        );
    }
    println!();
    for r in &runs {
        if !r.note.is_empty() {
            println!("- {}: {}", r.name, r.note);
        }
    }
    println!("- target: zen-crdt end within 1.5x of start for every zen-crdt run");
}

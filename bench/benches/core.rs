//! Core cost figures beside plain yrs (one Doc, one Map), measured in the same run:
//! `cargo bench -p zen-crdt-bench --bench core`. Prints a table; asserts nothing.

use std::time::Instant;
use zen_crdt::sim::Rng;
use zen_crdt::*;
use zen_crdt_bench::baseline::{arg, heap, median, pair, Baseline};

#[global_allocator]
static ALLOC: zen_crdt_bench::alloc_count::Counting = zen_crdt_bench::alloc_count::Counting;

fn deliver(from: &mut Context, to: &mut Context) -> usize {
    let mut bytes = 0;
    while let Some(m) = from.poll_outbound() {
        bytes += m.bytes.len();
        to.receive(&m.bytes).unwrap();
    }
    bytes
}

fn drain(c: &mut Context) {
    while c.poll_change().is_some() {}
}

fn values(c: &mut Context, n: usize, prefix: &str) -> Vec<ValueHandle> {
    (0..n)
        .map(|i| c.create(&format!("{prefix}/{i}/pos"), ValueType::Vec3, ValueOptions::default()).unwrap())
        .collect()
}

/// One synced tick of the pair at time `now`; returns A's outbound bytes.
fn round(a: &mut Context, b: &mut Context, now: u64) -> usize {
    a.tick(now);
    let bytes = deliver(a, b);
    b.tick(now);
    deliver(b, a);
    drain(a);
    drain(b);
    bytes
}

/// Set 1000 vec3 values, tick A, deliver, tick B, `samples` times. B's messages (its
/// acks) reach A `ack_delay` ticks late: 0 is a LAN, 3 about a 50 ms round trip, where
/// more of A's values wait unconverged between ticks.
/// Returns per-value set ns, set+flush+encode+apply ns, and wire bytes, per sample.
fn pipeline(samples: usize, ack_delay: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mut a, mut b) = pair();
    let hs = values(&mut a, 1000, "unit");
    let mut now = 0;
    for _ in 0..10 {
        now += 16;
        round(&mut a, &mut b, now);
    }
    let mut late: std::collections::VecDeque<Vec<Vec<u8>>> = std::collections::VecDeque::new();
    let (mut set_ns, mut pipe_ns, mut bytes_per) = (Vec::new(), Vec::new(), Vec::new());
    for s in 0..samples {
        let t = Instant::now();
        for (i, &h) in hs.iter().enumerate() {
            a.set(h, [i as f32, s as f32, 0.5]).unwrap();
        }
        let set = t.elapsed().as_nanos() as f64 / hs.len() as f64;
        now += 16;
        let t = Instant::now();
        a.tick(now);
        let bytes = deliver(&mut a, &mut b);
        b.tick(now);
        let flush_apply = t.elapsed().as_nanos() as f64 / hs.len() as f64;
        late.push_back(std::iter::from_fn(|| b.poll_outbound().map(|m| m.bytes)).collect());
        while late.len() > ack_delay {
            for m in late.pop_front().unwrap_or_default() {
                a.receive(&m).unwrap();
            }
        }
        drain(&mut a);
        drain(&mut b);
        set_ns.push(set);
        pipe_ns.push(set + flush_apply);
        bytes_per.push(bytes as f64 / hs.len() as f64);
    }
    (set_ns, pipe_ns, bytes_per)
}

struct Row {
    name: &'static str,
    zen: f64,
    base: Option<f64>,
    unit: &'static str,
    target: &'static str,
}

fn main() {
    let samples = arg("--samples", 200) as usize;
    let mut rows = Vec::new();

    // 1. FastLocal set, and the full per-value pipeline at 1000 changed values per tick.
    let (mut set_ns, mut pipe_ns, mut bytes_per) = pipeline(samples, 0);
    // Acks 3 ticks late: about a 50 ms round trip at 60 Hz.
    let (_, mut pipe_far, mut bytes_far) = pipeline(samples, 3);
    // design.md measured plain yrs after 600 ticks; its cost keeps growing with the
    // delete set, so it is measured from the same age here (zen-crdt's does not grow).
    let mut base = Baseline::new(1000);
    base.sync();
    for t in 0..600 {
        for i in 0..1000 {
            base.write(i, [i as f32, t as f32, 0.5]);
        }
        base.sync();
    }
    let (mut bset, mut bpipe, mut bbytes) = (Vec::new(), Vec::new(), Vec::new());
    for s in 0..samples {
        let t = Instant::now();
        for i in 0..1000 {
            base.write(i, [i as f32, s as f32, 0.5]);
        }
        let w = t.elapsed().as_nanos() as f64 / 1000.0;
        let t = Instant::now();
        let bytes = base.sync();
        let sync = t.elapsed().as_nanos() as f64 / 1000.0;
        bset.push(w);
        bpipe.push(w + sync);
        bbytes.push(bytes as f64 / 1000.0);
    }
    rows.push(Row {
        name: "FastLocal set (median)",
        zen: median(&mut set_ns),
        base: Some(median(&mut bset)),
        unit: "ns",
        target: "<= 100 ns",
    });
    rows.push(Row {
        name: "set+flush+encode+apply per value, 1000/tick",
        zen: median(&mut pipe_ns),
        base: Some(median(&mut bpipe)),
        unit: "ns",
        target: "<= 3000 ns",
    });
    rows.push(Row {
        name: "  same, acks 3 ticks late (50 ms round trip)",
        zen: median(&mut pipe_far),
        base: Some(median(&mut bpipe)),
        unit: "ns",
        target: "<= 3000 ns",
    });
    rows.push(Row {
        name: "wire bytes per vec3 update, 1000/tick",
        zen: median(&mut bytes_per),
        base: Some(median(&mut bbytes)),
        unit: "B",
        target: "<= 32 B",
    });
    rows.push(Row {
        name: "  same, acks 3 ticks late (50 ms round trip)",
        zen: median(&mut bytes_far),
        base: Some(median(&mut bbytes)),
        unit: "B",
        target: "<= 32 B",
    });
    drop(base);

    // 2. Memory of 10,000 idle values (one context, no peers), and the baseline's per key.
    let before = heap();
    let mut a = Context::new(1, Options::default()).unwrap();
    let hs = values(&mut a, 10_000, "idle");
    for (i, &h) in hs.iter().enumerate() {
        a.set(h, [i as f32, 1.0, 2.0]).unwrap();
    }
    a.tick(16);
    drain(&mut a);
    let live = (heap() - before) as f64 / 10_000.0;
    let mut t = 16;
    while a.metrics().live_docs > 0 && t < 10_000 {
        t += 16;
        a.tick(t);
    }
    let idle = (heap() - before) as f64 / 10_000.0;
    let before = heap();
    let base = Baseline::new(10_000);
    for i in 0..10_000 {
        base.write(i, [i as f32, 1.0, 2.0]);
    }
    let base_per = (heap() - before) as f64 / 10_000.0;
    rows.push(Row {
        name: "memory per idle value, 10,000 values",
        zen: idle,
        base: Some(base_per),
        unit: "B",
        target: "<= 2048 B",
    });
    rows.push(Row {
        name: "memory per value while live (not hibernated)",
        zen: live,
        base: Some(base_per),
        unit: "B",
        target: "",
    });
    drop((a, base));

    // 3. A tick's cost follows what changed: 100 changed among 10,000 vs among 100.
    let tick_cost = |total: usize, hibernate_after_ms: u64, same_hundred: bool| -> f64 {
        let opts = Options { hibernate_after_ms, ..Options::default() };
        let mut a = Context::new(1, opts.clone()).unwrap();
        let mut b = Context::new(2, opts).unwrap();
        a.add_peer(2).unwrap();
        b.add_peer(1).unwrap();
        let hs = values(&mut a, total, "scale");
        let mut now = 0;
        for (i, &h) in hs.iter().enumerate() {
            a.set(h, [i as f32, 0.0, 0.0]).unwrap();
        }
        for _ in 0..200 {
            now += 16;
            round(&mut a, &mut b, now);
        }
        let mut rng = Rng::new(42);
        let mut cost = Vec::new();
        for s in 0..samples.max(100) {
            for k in 0..100 {
                let i = if total == 100 || same_hundred { k } else { rng.below(total as u64) as usize };
                a.set(hs[i], [s as f32, k as f32, 1.0]).unwrap();
            }
            now += 16;
            let t = Instant::now();
            a.tick(now);
            deliver(&mut a, &mut b);
            b.tick(now);
            deliver(&mut b, &mut a);
            cost.push(t.elapsed().as_nanos() as f64);
            drain(&mut a);
            drain(&mut b);
        }
        median(&mut cost)
    };
    // The same 100 values each tick: what the tick itself costs. Random 100 of the
    // 10,000: the same work, plus cache misses on documents not touched for a while,
    // plus (default options) reviving hibernated documents.
    let small = tick_cost(100, 2000, true);
    let hot = tick_cost(10_000, 2000, true);
    let cold = tick_cost(10_000, u64::MAX / 4, false);
    let hibernated = tick_cost(10_000, 2000, false);
    let row = |name, zen: f64| Row {
        name,
        zen: zen / 1000.0,
        base: Some(small / 1000.0),
        unit: "us",
        target: "<= 1.5x",
    };
    rows.push(row("tick, 100 of 10,000 changed (vs 100 of 100)", hot));
    rows.push(row("  same, a random 100 each tick", cold));
    rows.push(row("  same, random, most hibernated (defaults)", hibernated));

    // 4. What the C boundary adds to a set: the exported function, called through a
    // function pointer as a C caller calls it (no inlining), beside `Context::set`, in
    // the same loop over the same 1000 values, interleaved sample by sample.
    let (core_set, c_set) = c_boundary(samples);

    println!("\nzen-crdt core benchmark (release, {samples} samples, medians; 'baseline' = plain yrs one Doc one Map");
    println!("measured after 600 ticks, except the tick rows, whose baseline is a tick of 100 changed among 100)\n");
    println!(
        "| {:<46} | {:>12} | {:>12} | {:>8} | {:<10} |",
        "figure", "zen-crdt", "baseline", "ratio", "target"
    );
    println!("|{:-<48}|{:->14}|{:->14}|{:->10}|{:-<12}|", "", "", "", "", "");
    for r in &rows {
        let base = r.base.map_or("-".into(), |b| format!("{b:.1} {}", r.unit));
        let ratio = r.base.map_or("-".into(), |b| format!("{:.2}x", r.zen / b));
        println!(
            "| {:<46} | {:>12} | {:>12} | {:>8} | {:<10} |",
            r.name,
            format!("{:.1} {}", r.zen, r.unit),
            base,
            ratio,
            r.target
        );
    }
    println!("\nThe C boundary (median ns per FastLocal vec3 set, {samples} x 1000 writes, interleaved)\n");
    println!("| {:<46} | {:>12} | {:>12} | {:>8} |", "figure", "ns", "Context::set", "ratio");
    println!("|{:-<48}|{:->14}|{:->14}|{:->10}|", "", "", "", "");
    println!(
        "| {:<46} | {:>12.1} | {:>12.1} | {:>7.2}x |",
        "zen_value_set_vec3 through the C ABI",
        c_set,
        core_set,
        c_set / core_set
    );
}

/// Median ns per set: `Context::set`, and `zen_value_set_vec3` through the C ABI.
fn c_boundary(samples: usize) -> (f64, f64) {
    use zen_crdt::ffi::*;
    type SetVec3 = extern "C" fn(zen_context_t, zen_value_t, zen_vec3_t) -> zen_status_t;
    let set_vec3: SetVec3 = std::hint::black_box(zen_value_set_vec3);
    let mut core = Context::new(1, Options::default()).unwrap();
    let core_values = values(&mut core, 1000, "bench");
    let mut ctx = zen_context_t::default();
    assert_eq!(unsafe { zen_context_new(1, std::ptr::null(), &mut ctx) }, zen_status_t::ZEN_OK);
    let c_values: Vec<zen_value_t> = (0..1000)
        .map(|i| {
            let id = format!("bench/{i}/pos");
            let mut v = zen_value_t::default();
            let st = unsafe {
                zen_value_create(
                    ctx,
                    id.as_ptr().cast(),
                    id.len(),
                    zen_value_type_t::ZEN_TYPE_VEC3 as u32,
                    std::ptr::null(),
                    &mut v,
                )
            };
            assert_eq!(st, zen_status_t::ZEN_OK);
            v
        })
        .collect();
    let (mut core_ns, mut c_ns) = (Vec::new(), Vec::new());
    let mut change = std::mem::MaybeUninit::<zen_change_t>::uninit();
    for s in 0..samples {
        let t = Instant::now();
        for (i, &h) in core_values.iter().enumerate() {
            core.set(h, [i as f32, s as f32, 0.5]).unwrap();
        }
        core_ns.push(t.elapsed().as_nanos() as f64 / 1000.0);
        let t = Instant::now();
        for (i, &v) in c_values.iter().enumerate() {
            let st = set_vec3(ctx, v, zen_vec3_t { x: i as f32, y: s as f32, z: 0.5 });
            debug_assert_eq!(st, zen_status_t::ZEN_OK);
        }
        c_ns.push(t.elapsed().as_nanos() as f64 / 1000.0);
        let now = 16 * (s as u64 + 1);
        core.tick(now);
        drain(&mut core);
        assert_eq!(zen_context_tick(ctx, now), zen_status_t::ZEN_OK);
        let mut has = true;
        while has {
            assert_eq!(
                unsafe { zen_context_poll_change(ctx, change.as_mut_ptr(), &mut has) },
                zen_status_t::ZEN_OK
            );
        }
    }
    zen_context_free(ctx);
    (median(&mut core_ns), median(&mut c_ns))
}

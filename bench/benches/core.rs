//! Core cost figures beside two y-sync baselines (plain yrs as a competent user syncs
//! it, one Doc one Map and one Doc per value; see `zen_crdt_bench::baseline`), measured
//! in the same run: `cargo bench -p zen-crdt-bench --bench core`. Prints tables;
//! asserts nothing.

use std::time::Instant;
use yrs::Any;
use zen_crdt::sim::Rng;
use zen_crdt::*;
use zen_crdt_bench::baseline::{
    arg, heap, lz4_len, median, pair, vec3_any, zen_raw_len, Layout, Replica, YSync,
};
use zen_crdt_bench::thread_cpu_ns;

#[global_allocator]
static ALLOC: zen_crdt_bench::alloc_count::Counting = zen_crdt_bench::alloc_count::Counting;

/// Moves every message of `from` to `to`; returns the bytes as sent (LZ4 where it
/// helps) and before compression.
fn deliver(from: &mut Context, to: &mut Context) -> (usize, usize) {
    let (mut sent, mut raw) = (0, 0);
    while let Some(m) = from.poll_outbound() {
        sent += m.bytes.len();
        raw += zen_raw_len(&m.bytes);
        to.receive_from(from.peer_id(), &m.bytes).unwrap();
    }
    (sent, raw)
}

fn drain(c: &mut Context) {
    while c.poll_change().is_some() {}
}

fn values(c: &mut Context, n: usize, prefix: &str) -> Vec<ValueHandle> {
    (0..n)
        .map(|i| c.create(&format!("{prefix}/{i}/pos"), ValueType::Vec3, ValueOptions::default()).unwrap())
        .collect()
}

/// One synced tick of the pair at time `now`.
fn round(a: &mut Context, b: &mut Context, now: u64) {
    a.tick(now);
    deliver(a, b);
    b.tick(now);
    deliver(b, a);
    drain(a);
    drain(b);
}

/// Per-value samples of one pipeline: write ns, write-to-read ns (thread CPU time),
/// bytes sent (LZ4 where it helps), bytes before compression.
#[derive(Default)]
struct Samples {
    write: Vec<f64>,
    pipe: Vec<f64>,
    lz4: Vec<f64>,
    raw: Vec<f64>,
}

/// One of the compared pipelines: 1000 vec3 values written on A, then everything it
/// takes until B reads them, one sample (a tick) at a time, so the pipelines can be
/// interleaved sample by sample and share the machine's noise.
trait Pipeline {
    fn sample(&mut self, s: usize, out: &mut Samples);
}

/// zen-crdt: set 1000 values, tick A, deliver, tick B (which drains its events). B's
/// messages (its acks) reach A `ack_delay` ticks late: 0 is a LAN, 3 about a 50 ms
/// round trip, where more of A's values wait unconverged between ticks.
struct Zen {
    a: Context,
    b: Context,
    hs: Vec<ValueHandle>,
    now: u64,
    late: std::collections::VecDeque<Vec<Vec<u8>>>,
    ack_delay: usize,
}

impl Zen {
    fn new(ack_delay: usize) -> Zen {
        let (mut a, mut b) = pair();
        let hs = values(&mut a, 1000, "unit");
        let mut now = 0;
        for _ in 0..10 {
            now += 16;
            round(&mut a, &mut b, now);
        }
        Zen { a, b, hs, now, late: Default::default(), ack_delay }
    }
}

impl Pipeline for Zen {
    fn sample(&mut self, s: usize, out: &mut Samples) {
        let n = self.hs.len() as f64;
        let t = thread_cpu_ns();
        for (i, &h) in self.hs.iter().enumerate() {
            self.a.set(h, [i as f32, s as f32, 0.5]).unwrap();
        }
        let set = (thread_cpu_ns() - t) as f64 / n;
        self.now += 16;
        let t = thread_cpu_ns();
        self.a.tick(self.now);
        let (sent, raw) = deliver(&mut self.a, &mut self.b);
        self.b.tick(self.now);
        drain(&mut self.b);
        let rest = (thread_cpu_ns() - t) as f64 / n;
        self.late.push_back(std::iter::from_fn(|| self.b.poll_outbound().map(|m| m.bytes)).collect());
        while self.late.len() > self.ack_delay {
            for m in self.late.pop_front().unwrap_or_default() {
                self.a.receive_from(2, &m).unwrap();
            }
        }
        drain(&mut self.a);
        out.write.push(set);
        out.pipe.push(set + rest);
        out.lz4.push(sent as f64 / n);
        out.raw.push(raw as f64 / n);
    }
}

/// The C workload, every call through the exported C functions (called as a C
/// caller calls them: no inlining across the boundary, statuses checked): 1000 vec3
/// values set on A, A ticks, its messages carried to B (`zen_context_poll_outbound`
/// into a buffer, `zen_context_receive_from`), B ticks and drains its events
/// (`zen_context_poll_change`, reading each new value), B's acks carried back, A drains
/// its events. All of it timed, in one sample.
struct ZenC {
    a: zen_crdt::ffi::zen_context_t,
    b: zen_crdt::ffi::zen_context_t,
    values: Vec<zen_crdt::ffi::zen_value_t>,
    buf: Vec<u8>,
    now: u64,
    /// Sum of what B read, so the reads cannot be optimised away.
    seen: f64,
}

impl ZenC {
    fn new() -> ZenC {
        use zen_crdt::ffi::*;
        let ok = zen_status_t::ZEN_OK;
        let (mut a, mut b) = (zen_context_t::default(), zen_context_t::default());
        assert_eq!(unsafe { zen_context_new(1, std::ptr::null(), &mut a) }, ok);
        assert_eq!(unsafe { zen_context_new(2, std::ptr::null(), &mut b) }, ok);
        assert_eq!(zen_context_add_peer(a, 2), ok);
        assert_eq!(zen_context_add_peer(b, 1), ok);
        let values = (0..1000)
            .map(|i| {
                let id = format!("unit/{i}/pos");
                let mut v = zen_value_t::default();
                let ty = zen_value_type_t::ZEN_TYPE_VEC3 as u32;
                let st = unsafe {
                    zen_value_create(a, id.as_ptr().cast(), id.len(), ty, std::ptr::null(), &mut v)
                };
                assert_eq!(st, ok);
                v
            })
            .collect();
        let mut z = ZenC { a, b, values, buf: vec![0; 1 << 16], now: 0, seen: 0.0 };
        for s in 0..10 {
            z.tick(s);
        }
        z
    }

    /// Moves every message `from` has to `to` through the caller's buffer.
    fn carry(&mut self, from: zen_crdt::ffi::zen_context_t, to: zen_crdt::ffi::zen_context_t, from_id: u64) {
        use zen_crdt::ffi::*;
        loop {
            let (mut len, mut dest, mut has) = (0usize, 0u64, false);
            let st = unsafe {
                zen_context_poll_outbound(
                    from,
                    self.buf.as_mut_ptr(),
                    self.buf.len(),
                    &mut len,
                    &mut dest,
                    &mut has,
                )
            };
            if st == zen_status_t::ZEN_ERR_BUFFER_TOO_SMALL {
                self.buf.resize(len, 0);
                continue;
            }
            assert_eq!(st, zen_status_t::ZEN_OK);
            if !has {
                return;
            }
            let st = unsafe { zen_context_receive_from(to, from_id, self.buf.as_ptr(), len) };
            assert_eq!(st, zen_status_t::ZEN_OK);
        }
    }

    /// Drains `ctx`'s change events, reading each new vec3.
    fn drain(&mut self, ctx: zen_crdt::ffi::zen_context_t) {
        use zen_crdt::ffi::*;
        let mut change = std::mem::MaybeUninit::<zen_change_t>::uninit();
        loop {
            let mut has = false;
            assert_eq!(
                unsafe { zen_context_poll_change(ctx, change.as_mut_ptr(), &mut has) },
                zen_status_t::ZEN_OK
            );
            if !has {
                return;
            }
            let c = unsafe { change.assume_init_ref() };
            if c.new_value.value_type == zen_value_type_t::ZEN_TYPE_VEC3 as u32 {
                self.seen += unsafe { c.new_value.data.vec[0] } as f64;
            }
        }
    }

    /// One tick of the whole workload; sample `s` is written.
    fn tick(&mut self, s: usize) {
        use zen_crdt::ffi::*;
        for (i, &v) in self.values.iter().enumerate() {
            let st = zen_value_set_vec3(self.a, v, zen_vec3_t { x: i as f32, y: s as f32, z: 0.5 });
            debug_assert_eq!(st, zen_status_t::ZEN_OK);
        }
        self.now += 16;
        assert_eq!(zen_context_tick(self.a, self.now), zen_status_t::ZEN_OK);
        self.carry(self.a, self.b, 1);
        assert_eq!(zen_context_tick(self.b, self.now), zen_status_t::ZEN_OK);
        self.drain(self.b);
        self.carry(self.b, self.a, 2);
        self.drain(self.a);
    }
}

impl Drop for ZenC {
    fn drop(&mut self) {
        zen_crdt::ffi::zen_context_free(self.a);
        zen_crdt::ffi::zen_context_free(self.b);
    }
}

impl Pipeline for ZenC {
    fn sample(&mut self, s: usize, out: &mut Samples) {
        let t = thread_cpu_ns();
        self.tick(s);
        out.pipe.push((thread_cpu_ns() - t) as f64 / self.values.len() as f64);
        std::hint::black_box(self.seen);
    }
}

/// A y-sync baseline: stage 1000 writes, one transaction, its update broadcast, applied
/// and observed on B. Aged 600 ticks first (the one-Map layout slows and grows with its
/// history; design.md measured at 600).
struct Y(YSync);

impl Y {
    fn new(layout: Layout) -> Y {
        let mut y = YSync::new(layout, 1000);
        for t in 0..600 {
            for i in 0..1000 {
                y.stage(i, [i as f32, t as f32, 0.5]);
            }
            y.tick();
        }
        Y(y)
    }
}

impl Pipeline for Y {
    fn sample(&mut self, s: usize, out: &mut Samples) {
        let t = thread_cpu_ns();
        for i in 0..1000 {
            self.0.stage(i, [i as f32, s as f32, 0.5]);
        }
        let w = (thread_cpu_ns() - t) as f64 / 1000.0;
        let t = thread_cpu_ns();
        let msg = self.0.tick();
        let sync = (thread_cpu_ns() - t) as f64 / 1000.0;
        out.write.push(w);
        out.pipe.push(w + sync);
        out.raw.push(msg.len() as f64 / 1000.0);
        out.lz4.push(lz4_len(&msg) as f64 / 1000.0);
    }
}

struct Row {
    name: &'static str,
    zen: f64,
    /// y-sync one Doc one Map, y-sync one Doc per value.
    map: f64,
    perdoc: f64,
    unit: &'static str,
}

fn main() {
    let samples = arg("--samples", 200) as usize;
    let mut rows = Vec::new();

    // 1. Writes, and the per-value pipeline at 1000 changed values per tick; the four
    // pipelines interleaved sample by sample.
    let mut pipes: Vec<Box<dyn Pipeline>> = vec![
        Box::new(Zen::new(0)),
        Box::new(Zen::new(3)), // acks 3 ticks late: about a 50 ms round trip at 60 Hz
        Box::new(Y::new(Layout::OneMap)),
        Box::new(Y::new(Layout::DocPerValue)),
        Box::new(ZenC::new()),
    ];
    let mut got: Vec<Samples> = (0..pipes.len()).map(|_| Samples::default()).collect();
    for s in 0..samples {
        for (p, out) in pipes.iter_mut().zip(got.iter_mut()) {
            p.sample(s, out);
        }
    }
    drop(pipes);
    let [mut zen, mut far, mut map, mut perdoc, mut c_abi]: [Samples; 5] = got.try_into().ok().expect("five");
    let c_workload = (median(&mut c_abi.pipe), median(&mut perdoc.pipe.clone()));
    let mut row = |name, z: &mut Vec<f64>, m: &mut Vec<f64>, p: &mut Vec<f64>, unit| {
        rows.push(Row { name, zen: median(z), map: median(m), perdoc: median(p), unit });
    };
    row("write (set / staging write)", &mut zen.write, &mut map.write, &mut perdoc.write, "ns");
    row(
        "write + tick + encode + receive + apply + event",
        &mut zen.pipe,
        &mut map.pipe,
        &mut perdoc.pipe,
        "ns",
    );
    row("  same, acks 3 ticks late (50 ms round trip)", &mut far.pipe, &mut map.pipe, &mut perdoc.pipe, "ns");
    row("wire bytes per vec3 update, before LZ4", &mut zen.raw, &mut map.raw, &mut perdoc.raw, "B");
    row("wire bytes per vec3 update, LZ4 when smaller", &mut zen.lz4, &mut map.lz4, &mut perdoc.lz4, "B");

    // 2. Memory of 10,000 idle values (one context, no peers), and the baselines' (each
    // document observed, as a game would).
    let before = heap();
    let mut a = Context::new(1, Options::default()).unwrap();
    let hs = values(&mut a, 10_000, "idle");
    for (i, &h) in hs.iter().enumerate() {
        a.set(h, [i as f32, 1.0, 2.0]).unwrap();
    }
    a.tick(16);
    drain(&mut a);
    let live = (heap() - before) as f64 / 10_000.0;
    // Each written twice more, a tick each: a value one peer keeps writing.
    let mut t = 16;
    for k in 0..2 {
        for (i, &h) in hs.iter().enumerate() {
            a.set(h, [i as f32, k as f32, 2.0]).unwrap();
        }
        t += 16;
        a.tick(t);
        drain(&mut a);
    }
    let steady = (heap() - before) as f64 / 10_000.0;
    while a.metrics().live_docs > 0 && t < 10_000 {
        t += 16;
        a.tick(t);
    }
    let idle = (heap() - before) as f64 / 10_000.0;
    drop(a);
    // One replica of each baseline holding 10,000 written values, observed.
    let per_value = |layout| {
        let before = heap();
        let replica = Replica::new(layout, 1, 10_000);
        let mut writes: Vec<(usize, Any)> =
            (0..10_000).map(|i| (i, vec3_any([i as f32, 1.0, 2.0]))).collect();
        drop(replica.commit(&mut writes));
        let per = (heap() - before) as f64 / 10_000.0;
        drop(replica);
        per
    };
    let (m, p) = (per_value(Layout::OneMap), per_value(Layout::DocPerValue));
    rows.push(Row { name: "memory per idle value, 10,000 values", zen: idle, map: m, perdoc: p, unit: "B" });
    rows.push(Row {
        name: "memory per value after its first write",
        zen: live,
        map: m,
        perdoc: p,
        unit: "B",
    });
    rows.push(Row {
        name: "memory per value its writer keeps writing",
        zen: steady,
        map: m,
        perdoc: p,
        unit: "B",
    });

    println!("\nzen-crdt core benchmark (release, {samples} samples interleaved, medians of thread CPU time per value;");
    println!(
        "1000 vec3 values written per tick on A, read on B; baselines: y-sync, one transaction per tick, its"
    );
    println!("update broadcast once, applied and observed on B, aged 600 ticks, in the same run)\n");
    println!(
        "| {:<48} | {:>10} | {:>12} | {:>12} | {:>13} |",
        "figure", "zen-crdt", "y-sync map", "y-sync doc/v", "zen / better"
    );
    println!("|{:-<50}|{:->12}|{:->14}|{:->14}|{:->15}|", "", "", "", "", "");
    for r in &rows {
        let better = r.map.min(r.perdoc);
        println!(
            "| {:<48} | {:>10} | {:>12} | {:>12} | {:>12.2}x |",
            r.name,
            format!("{:.1} {}", r.zen, r.unit),
            format!("{:.1} {}", r.map, r.unit),
            format!("{:.1} {}", r.perdoc, r.unit),
            r.zen / better
        );
    }

    // The C workload: everything through the C ABI beside yrs used directly, one
    // Doc per entity (the y-sync one-Doc-per-value pipeline above), same run.
    ratio_table(
        &format!(
            "The C workload (median ns of thread CPU per entity-update, {samples} ticks of 1000 vec3 values,\n\
             interleaved with the pipelines above; target 600 ns)"
        ),
        ("ns", "yrs doc/v"),
        &[("set, ticks, carry, receive, events, acks: C ABI", c_workload.0, c_workload.1)],
    );

    // 3. A tick's cost follows what changed: 100 changed among 10,000 vs among 100.
    // The same 100 values each tick: what the tick itself costs. Random 100 of the
    // 10,000: the same work, plus cache misses on values not touched for a while, plus
    // (default options) hibernated documents. The four run in turns of 50 ticks, so a
    // busy spell of the shared machine falls on all of them, each turn long enough for
    // its own cache state.
    let mut cases = [
        TickCase::new(100, 2000, true),
        TickCase::new(10_000, 2000, true),
        TickCase::new(10_000, u64::MAX / 4, false),
        TickCase::new(10_000, 2000, false),
    ];
    // The steady state: 1000 unmeasured ticks first, so a random value has been written
    // ~10 times (its first overwrites drop the live documents the setup left, a one-time
    // cost per value) and hibernated ones have gone cold again.
    for c in cases.iter_mut() {
        c.run(1000, false);
    }
    for _ in 0..samples.max(100).div_ceil(50) {
        for c in cases.iter_mut() {
            c.run(50, true);
        }
    }
    let [small, hot, cold, hibernated] = cases.map(|mut c| median(&mut c.cost));
    ratio_table(
        "A tick's cost follows what changed (median us of thread CPU per synced tick; baseline: the same 100 values\n\
         changed among 100)",
        ("us", "100 of 100"),
        &[
            ("tick, 100 of 10,000 changed", hot / 1000.0, small / 1000.0),
            ("  same, a random 100 each tick", cold / 1000.0, small / 1000.0),
            ("  same, random, most hibernated (defaults)", hibernated / 1000.0, small / 1000.0),
        ],
    );

    // 4. What the C boundary adds to a set: the exported function, called through a
    // function pointer as a C caller calls it (no inlining), beside `Context::set`, in
    // the same loop over the same 1000 values, interleaved sample by sample.
    let (core_set, c_set) = c_boundary(samples);

    ratio_table(
        &format!("The C boundary (median ns per FastLocal vec3 set, {samples} x 1000 writes, interleaved)"),
        ("ns", "Context::set"),
        &[("zen_value_set_vec3 through the C ABI", c_set, core_set)],
    );
}

/// Two peers, `total` values, 100 of them written per tick (the first 100, or a random
/// 100), for the tick-cost rows: the thread CPU ns of each measured synced tick.
struct TickCase {
    a: Context,
    b: Context,
    hs: Vec<ValueHandle>,
    now: u64,
    tick: u64,
    rng: Rng,
    same_hundred: bool,
    cost: Vec<f64>,
}

impl TickCase {
    fn new(total: usize, hibernate_after_ms: u64, same_hundred: bool) -> TickCase {
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
        let same_hundred = same_hundred || total == 100;
        TickCase { a, b, hs, now, tick: 0, rng: Rng::new(42), same_hundred, cost: Vec::new() }
    }

    fn run(&mut self, ticks: usize, measure: bool) {
        for _ in 0..ticks {
            self.tick += 1;
            for k in 0..100 {
                let i = if self.same_hundred { k } else { self.rng.below(self.hs.len() as u64) as usize };
                self.a.set(self.hs[i], [self.tick as f32, k as f32, 1.0]).unwrap();
            }
            self.now += 16;
            let t = thread_cpu_ns();
            self.a.tick(self.now);
            deliver(&mut self.a, &mut self.b);
            self.b.tick(self.now);
            deliver(&mut self.b, &mut self.a);
            if measure {
                self.cost.push((thread_cpu_ns() - t) as f64);
            }
            drain(&mut self.a);
            drain(&mut self.b);
        }
    }
}

/// Prints a table of figures beside their baselines: `heading`, then a row per
/// (name, figure, baseline) with the ratio; `columns` names the figure's unit and the
/// baseline.
fn ratio_table(heading: &str, columns: (&str, &str), rows: &[(&str, f64, f64)]) {
    println!("\n{heading}\n");
    println!("| {:<48} | {:>10} | {:>12} | {:>8} |", "figure", columns.0, columns.1, "ratio");
    println!("|{:-<50}|{:->12}|{:->14}|{:->10}|", "", "", "", "");
    for (name, figure, base) in rows {
        println!("| {:<48} | {:>10.1} | {:>12.1} | {:>7.2}x |", name, figure, base, figure / base);
    }
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

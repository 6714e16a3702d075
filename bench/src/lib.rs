//! What zen-crdt is measured with, kept out of the library so the production crate
//! carries no bench code: a counting allocator, command-line helpers, the plain-yrs
//! baselines (`baseline`: yrs replicas in two layouts; `ysync`: the y-sync protocol over
//! the simulated network), and the multiplayer scenarios that zen-bench measures and the
//! arena demo shows, played by zen-crdt (`zen_arena`) and by the baselines (`ysync_arena`).
//!
//! `cargo run --release -p zen-crdt-bench --bin zen-bench` (scenarios),
//! `cargo run --release -p zen-crdt-bench --bin arena` (the demo),
//! `cargo bench -p zen-crdt-bench --bench core` / `--bench soak`.

pub mod alloc_count;
pub mod baseline;
pub mod scenarios;
pub mod ysync;
pub mod ysync_arena;
pub mod zen_arena;

/// The value of a `--name N` command-line argument, or `default`.
pub fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `q` quantile (0..=1) of ascending `sorted` samples; NaN when there are none.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

/// CPU time this thread has used, in ns (`CLOCK_THREAD_CPUTIME_ID`): unlike the wall
/// clock, it does not count time the shared machine gave to other work.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to write; the clock id is a constant Linux has.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

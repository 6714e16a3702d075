//! What zen-crdt is measured with, kept out of the library so the production crate
//! carries no bench code: a counting allocator, command-line helpers, the plain-yrs
//! baseline of the core and soak benches, and the multiplayer scenarios that zen-bench
//! measures and the arena demo shows.
//!
//! `cargo run --release -p zen-crdt-bench --bin zen-bench` (scenarios),
//! `cargo run --release -p zen-crdt-bench --bin arena` (the demo),
//! `cargo bench -p zen-crdt-bench --bench core` / `--bench soak`.

pub mod alloc_count;
pub mod baseline;
pub mod scenarios;

/// The value of a `--name N` command-line argument, or `default`.
pub fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

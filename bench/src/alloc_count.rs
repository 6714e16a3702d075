//! A counting global allocator for benchmarks: exact live heap bytes, independent of
//! the system allocator's caching. Install it in a benchmark binary with
//! `#[global_allocator] static A: zen_crdt::alloc_count::Counting = zen_crdt::alloc_count::Counting;`
//! and read `live_bytes()`. Not for games: it adds an atomic add to every allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// The allocator; forwards to the system allocator and counts.
pub struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

/// Live heap bytes of the process (0 unless `Counting` is the global allocator).
pub fn live_bytes() -> i64 {
    LIVE.load(Ordering::Relaxed) as i64
}

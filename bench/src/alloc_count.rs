//! A counting global allocator for benchmarks: exact live heap bytes, independent of
//! the system allocator's caching. Install it in a benchmark binary with
//! `#[global_allocator] static A: zen_crdt::alloc_count::Counting = zen_crdt::alloc_count::Counting;`
//! and read `live_bytes()` (the process) or `thread_live_bytes()` (what this thread
//! allocated minus what it freed: a simulated session runs on one thread, so this is its
//! footprint even while other sessions run beside it). Not for games: it adds an atomic
//! add to every allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

/// The allocator; forwards to the system allocator and counts.
pub struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    // Const-initialised and without a destructor: touching it never allocates, so the
    // allocator may use it.
    static THREAD_LIVE: Cell<i64> = const { Cell::new(0) };
}

fn count(delta: isize) {
    LIVE.fetch_add(delta, Ordering::Relaxed);
    let _ = THREAD_LIVE.try_with(|c| c.set(c.get() + delta as i64));
}

// SAFETY: forwards every call to `System` unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count(l.size() as isize);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        count(-(l.size() as isize));
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count(n as isize - l.size() as isize);
        unsafe { System.realloc(p, l, n) }
    }
}

/// Live heap bytes of the process (0 unless `Counting` is the global allocator).
pub fn live_bytes() -> i64 {
    LIVE.load(Ordering::Relaxed) as i64
}

/// Heap bytes this thread allocated minus those it freed (0 unless `Counting` is the
/// global allocator). Memory freed on another thread than allocated it is counted on
/// each side: read it as a difference over work done on one thread.
pub fn thread_live_bytes() -> i64 {
    THREAD_LIVE.with(|c| c.get())
}

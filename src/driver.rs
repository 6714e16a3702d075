//! A thread that runs a context on a link at a set rate, for hosts that do not pump from
//! a loop of their own (a server, a worker thread, tests): the context lives behind a
//! lock, the game reads and writes it with [`Driver::with`], and
//! [`Driver::wait_converged`] waits until every value is converged.

use crate::context::{Context, SyncState};
use crate::link::{pump, Link};
use crate::pacer::{halt, spawn_paced};
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

struct Shared {
    ctx: Mutex<Context>,
    /// Signalled after every pump.
    ticked: Condvar,
    stop: Arc<AtomicBool>,
}

/// A context ticked on its own thread. Dropping it stops the thread (the link is
/// dropped with it: on a bus, the others see the peer leave).
pub struct Driver {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Driver {
    /// Starts a thread that pumps `ctx` on `link` every `tick_ms` (at least 1) ms. The
    /// context's clock continues from its `now_ms`, advanced by the thread's monotonic
    /// clock.
    pub fn spawn<L: Link + Send + 'static>(ctx: Context, mut link: L, tick_ms: u64) -> Driver {
        let start_ms = ctx.now_ms();
        let shared = Arc::new(Shared {
            ctx: Mutex::new(ctx),
            ticked: Condvar::new(),
            stop: Arc::new(AtomicBool::new(false)),
        });
        let mine = shared.clone();
        let period = Duration::from_millis(tick_ms.max(1));
        let thread = spawn_paced("zen-crdt driver", period, shared.stop.clone(), move |elapsed| {
            pump(&mut mine.ctx.lock(), &mut link, start_ms + elapsed.as_millis() as u64);
            mine.ticked.notify_all();
            true
        });
        Driver { shared, thread: Some(thread) }
    }

    /// Runs `f` on the context between two ticks (the game's reads and writes).
    pub fn with<R>(&self, f: impl FnOnce(&mut Context) -> R) -> R {
        f(&mut self.shared.ctx.lock())
    }

    /// Waits up to `timeout` until the context holds at least one value and every value
    /// is `Converged` here. False on timeout. (With no member, values stay `LocalOnly`.)
    pub fn wait_converged(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut ctx = self.shared.ctx.lock();
        loop {
            if ctx.value_count() > 0 && ctx.all_in_state(SyncState::Converged) {
                return true;
            }
            if self.shared.ticked.wait_until(&mut ctx, deadline).timed_out() {
                return ctx.value_count() > 0 && ctx.all_in_state(SyncState::Converged);
            }
        }
    }

    /// Stops the thread and returns the context.
    pub fn stop(mut self) -> Context {
        self.halt();
        let shared = self.shared.clone();
        drop(self);
        // The thread has ended and `self` is gone: this is the only reference left.
        match Arc::try_unwrap(shared) {
            Ok(s) => s.ctx.into_inner(),
            Err(_) => unreachable!("the driver thread's reference outlived the thread"),
        }
    }

    fn halt(&mut self) {
        halt(&self.shared.stop, &mut self.thread);
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.halt();
    }
}

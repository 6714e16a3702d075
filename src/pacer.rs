//! A thread that runs a frame at a fixed rate: the loop under the driver, the bridge
//! thread and the C driver. A frame that runs late is not made up for with a burst (a
//! game that stalled wants the next frame, not ten at once).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Starts thread `name` calling `frame(elapsed since start)` every `period` until `stop`
/// is set or `frame` returns false.
pub(crate) fn spawn_paced(
    name: &str,
    period: Duration,
    stop: Arc<AtomicBool>,
    mut frame: impl FnMut(Duration) -> bool + Send + 'static,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let started = Instant::now();
            let mut next = started;
            while !stop.load(Ordering::Acquire) {
                if !frame(started.elapsed()) {
                    return;
                }
                next += period;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    next = now;
                }
            }
        })
        .unwrap_or_else(|e| panic!("spawning the {name} thread: {e}"))
}

/// Sets `stop` and waits for the thread. A panic on it (a bug) is not re-raised in the
/// caller's thread.
pub(crate) fn halt(stop: &AtomicBool, thread: &mut Option<JoinHandle<()>>) {
    stop.store(true, Ordering::Release);
    if let Some(t) = thread.take() {
        let _ = t.join();
    }
}

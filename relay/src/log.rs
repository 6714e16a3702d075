//! One line per event on stderr: time, process, room and peer where there are ones.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, to the millisecond.
pub fn stamp() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

#[macro_export]
macro_rules! log {
    ($who:expr, $($arg:tt)*) => {
        eprintln!("{} {}: {}", $crate::log::stamp(), $who, format!($($arg)*))
    };
}

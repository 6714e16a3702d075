//! A context's limits and timings, and the message type it hands the host. Definitions
//! only, below the sync engine and the context that both read them.

use crate::error::Error;

/// Context limits and timings. All durations are milliseconds of host time.
#[derive(Clone, Debug)]
pub struct Options {
    /// Interval at which the host calls `tick`; used to size timeouts.
    pub tick_interval_ms: u64,
    /// A member silent this long stops blocking convergence until heard again.
    pub peer_timeout_ms: u64,
    /// Longest silence before an ack-only message is sent anyway (keeps members alive).
    pub heartbeat_ms: u64,
    /// Largest message `receive` accepts and `poll_outbound` produces.
    pub max_message_bytes: usize,
    /// The size each message aims at, 0 for `max_message_bytes`. Deltas and catch-up
    /// snapshots are split so each fits (a message with one entry larger than this
    /// still goes, up to `max_message_bytes`). Set it to the datagram budget of an
    /// unreliable transport (about 1200 bytes for ENet or WebRTC): a message larger than
    /// one datagram is fragmented and lost whole if any fragment is, while messages that
    /// fit lose only the values they carry. At least 256 when set.
    pub target_message_bytes: usize,
    /// Largest string or bytes value.
    pub max_value_bytes: usize,
    /// Longest value id, in bytes of UTF-8.
    pub max_id_bytes: usize,
    /// Change events kept when the host does not poll (see `events`).
    pub event_capacity: usize,
    /// A value untouched this long has its yrs document hibernated.
    pub hibernate_after_ms: u64,
    /// Most values a context holds (remote creations past it are ignored and counted).
    pub max_values: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            tick_interval_ms: 16,
            peer_timeout_ms: 3000,
            heartbeat_ms: 250,
            max_message_bytes: 1 << 20,
            target_message_bytes: 0,
            max_value_bytes: 64 << 10,
            max_id_bytes: 256,
            event_capacity: 1 << 16,
            hibernate_after_ms: 2000,
            max_values: 1 << 20,
        }
    }
}

impl Options {
    pub(crate) fn check(&self) -> Result<(), Error> {
        let bad = |name, value: u64, why| Err(Error::BadOption { name, value, why });
        if self.tick_interval_ms == 0 {
            return bad("tick_interval_ms", 0, "must be at least 1");
        }
        if self.peer_timeout_ms <= 2 * self.tick_interval_ms {
            return bad("peer_timeout_ms", self.peer_timeout_ms, "must exceed two ticks");
        }
        if self.max_message_bytes < 2 * self.max_value_bytes + 4 * self.max_id_bytes + 1024 {
            return bad(
                "max_message_bytes",
                self.max_message_bytes as u64,
                "must hold two values of max_value_bytes plus their ids",
            );
        }
        let target = self.target_message_bytes;
        if target != 0 && !(256..=self.max_message_bytes).contains(&target) {
            return bad(
                "target_message_bytes",
                target as u64,
                "must be 0 (off) or between 256 and max_message_bytes",
            );
        }
        if self.max_id_bytes == 0 || self.event_capacity == 0 {
            return bad("max_id_bytes/event_capacity", 0, "must be at least 1");
        }
        Ok(())
    }
}

/// A message for the host to deliver. `to: None` is a broadcast: the same bytes go to
/// every member (or through a relay); `Some(peer)` is for that member only.
#[derive(Clone, Debug, PartialEq)]
pub struct Outbound {
    pub to: Option<u64>,
    pub bytes: Vec<u8>,
}

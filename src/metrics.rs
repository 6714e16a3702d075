//! Counters and latency distributions a context keeps about itself.
//!
//! Owns the metrics snapshot type and a fixed-size latency histogram (constant memory
//! for hours of play). It never changes behaviour: it only counts.

/// Latency histogram with 1 ms buckets up to 10 s (longer samples land in the last one):
/// constant memory however many samples it takes.
#[derive(Clone, Debug)]
pub struct Histogram {
    buckets: Box<[u32]>,
    count: u64,
}

const BUCKETS: usize = 10_001;

impl Histogram {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Histogram {
        Histogram { buckets: vec![0; BUCKETS].into_boxed_slice(), count: 0 }
    }

    pub fn record(&mut self, ms: u64) {
        let b = (ms as usize).min(BUCKETS - 1);
        self.buckets[b] = self.buckets[b].saturating_add(1);
        self.count += 1;
    }

    /// Samples recorded so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds every sample of `other` (for example one histogram per peer into a total).
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *a = a.saturating_add(*b);
        }
        self.count += other.count;
    }

    /// `(ms, samples)` for every non-empty 1 ms bucket, in ascending ms.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.buckets.iter().enumerate().filter(|(_, &n)| n > 0).map(|(ms, &n)| (ms as u64, n))
    }

    /// The `q` quantile (0.0..=1.0) in ms, `None` before any sample.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (ms, &n) in self.buckets.iter().enumerate() {
            seen += n as u64;
            if seen >= rank {
                return Some(ms as u64);
            }
        }
        Some((BUCKETS - 1) as u64)
    }
}

/// How far one member is behind on this context's own stream.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerLag {
    pub peer: u64,
    /// Whether the peer was heard from within the peer timeout.
    pub active: bool,
    /// Messages of this context's stream the peer has not acknowledged.
    pub unacked_messages: u64,
    /// Age in ms of the oldest message the peer has not acknowledged (0 when caught up).
    pub ack_lag_ms: u64,
    /// Smoothed round-trip time in ms, from acknowledgements.
    pub rtt_ms: u64,
}

/// A snapshot of a context's metrics (see `Context::metrics`). Counters only grow.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    pub messages_out: u64,
    pub bytes_out: u64,
    pub messages_in: u64,
    pub bytes_in: u64,
    /// Messages rejected by `receive` (corrupt, truncated, hostile, unknown sender, ...).
    pub messages_rejected: u64,
    /// Of `messages_rejected`, those that named another sender than the transport's
    /// (`receive_from`) or would have changed state their sender does not own (another
    /// writer's slot or items, acknowledgements of messages never sent).
    pub messages_forged: u64,
    /// Messages already applied, or too far ahead to buffer, dropped on arrival.
    pub messages_duplicate: u64,
    /// Local writes flushed to the CRDT (after coalescing within a tick).
    pub writes_flushed: u64,
    /// Local `set` calls that were coalesced into a later write of the same tick.
    pub writes_coalesced: u64,
    /// Remote value updates taken in and shown (each is integrated into the value's yrs
    /// document lazily, when the document is next needed).
    pub updates_applied: u64,
    /// Times a value showed a local write and then a concurrent remote write replaced it.
    pub corrections: u64,
    /// Times concurrent writes to one value were merged by its policy.
    pub conflicts: u64,
    /// New records of owner-only values from peers that did not own them when they
    /// arrived: kept but not read (they are read only if a transfer still on its way
    /// makes their writer the owner).
    pub unowned_writes: u64,
    /// Catch-up snapshots sent to members that were behind (loss, late join, rejoin).
    pub catchups_sent: u64,
    /// Concurrent writes the policy could not merge, so last-writer-wins decided: a
    /// custom merge missing, failing or returning another type, a rotation average of
    /// quaternions with no direction, Max/Min stored for a quaternion.
    pub merge_fallbacks: u64,
    /// Remote yrs updates dropped because yrs refused them or panicked integrating them
    /// (a crafted or corrupt update from a member, or a yrs bug). After a panic the
    /// value's document was rebuilt from its last good state; the value is re-read, and
    /// its writer's next write or a catch-up brings what was lost. A panic never reaches
    /// the caller.
    pub rejected_updates: u64,
    pub events_coalesced: u64,
    pub events_dropped: u64,
    /// Values this context holds (removed ones included; table entries not).
    pub values: u64,
    /// Table entries held: those showing plus removed ones not yet forgotten.
    pub table_entries: u64,
    /// Removed table entries forgotten once every member held their removal.
    pub entries_forgotten: u64,
    /// Values and table entries whose yrs document is currently live (the rest are
    /// hibernated).
    pub live_docs: u64,
    /// WaitForSync write-to-converged latency in ms (`None` before the first sample):
    /// from the last tick before the write (the context sees no clock between ticks) to
    /// the tick that found every member holding it. A game that writes and then ticks
    /// in the same frame saw one tick less.
    pub converge_ms_p50: Option<u64>,
    pub converge_ms_p99: Option<u64>,
    pub peers: Vec<PeerLag>,
}

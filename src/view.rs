//! What a value looks like from this peer: its mode (how writes show) and its sync
//! state. Definitions only, shared by the context, its events and the C layer.

/// How a value shows writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// A write shows at once; a concurrent remote write may correct it later.
    #[default]
    FastLocal,
    /// Reads return the value every current peer has acknowledged.
    WaitForSync,
}

/// Replication state of a value, as seen by this context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncState {
    /// No peer has the latest local write yet, or there are no peers.
    LocalOnly,
    /// Sent, not yet acknowledged by every current peer.
    Syncing,
    /// Every current peer has acknowledged the value's latest state.
    Converged,
    /// A concurrent write was resolved against this replica's write (until converged).
    Conflicted,
}

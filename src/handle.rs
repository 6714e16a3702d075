//! The handle a context gives out for each of its values. Its own module (below error,
//! events and context) because every layer names values by it.

/// A value of one context: cheap to copy, checked on every use. It names the context
/// that issued it by that context's serial (unique for the life of the process, never
/// reused), so a handle of another context, of a freed one, or a made-up one is an
/// error, never another value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ValueHandle {
    pub(crate) context: u64,
    pub(crate) index: u32,
}

impl ValueHandle {
    /// The handle's raw parts: the issuing context's serial and the value's index (for
    /// layers that carry handles across a boundary, such as the C API).
    pub fn to_raw(self) -> (u64, u32) {
        (self.context, self.index)
    }

    /// A handle from raw parts. Any pair is safe to use: one the context did not issue
    /// is `Error::StaleHandle`.
    pub fn from_raw(context: u64, index: u32) -> ValueHandle {
        ValueHandle { context, index }
    }
}

impl std::fmt::Display for ValueHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.context, self.index)
    }
}

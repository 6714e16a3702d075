//! Status codes of the C API and the thread-local last-error message.
//!
//! Owns `zen_status_t`, the mapping from core errors to it, and the per-thread message a
//! host reads with `zen_last_error_message` after a failed call.

use crate::error::Error;
use std::cell::RefCell;

/// Result of every C call. `ZEN_OK` is 0; anything else is a failure that changed
/// nothing, with a message available from `zen_last_error_message` on the same thread.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum zen_status_t {
    ZEN_OK = 0,
    /// A required pointer argument was NULL.
    ZEN_ERR_NULL_ARGUMENT = 1,
    /// A handle was never issued, already freed, or of the wrong kind.
    ZEN_ERR_INVALID_HANDLE = 2,
    /// The value holds another type than the call reads or writes.
    ZEN_ERR_WRONG_TYPE = 3,
    /// A string argument was not valid UTF-8.
    ZEN_ERR_INVALID_UTF8 = 4,
    /// The caller's buffer is too small; the needed size was written to the length out-param.
    ZEN_ERR_BUFFER_TOO_SMALL = 5,
    /// A received message was corrupt, truncated or hostile; it changed nothing.
    ZEN_ERR_DECODE = 6,
    /// A received message speaks a newer protocol version.
    ZEN_ERR_PROTOCOL_VERSION = 7,
    /// An argument exceeds a configured limit (message, value or id size, value count).
    ZEN_ERR_TOO_LARGE = 8,
    /// The peer is not a member of the context (or a message came from a stranger).
    ZEN_ERR_UNKNOWN_PEER = 9,
    /// No value has that id.
    ZEN_ERR_UNKNOWN_VALUE = 10,
    /// The value was removed.
    ZEN_ERR_REMOVED = 11,
    /// An argument is out of range (peer id, enum value, option, policy for the type).
    ZEN_ERR_INVALID_ARGUMENT = 12,
    /// A panic inside the library was caught; the context it happened in is poisoned.
    ZEN_ERR_PANIC = 13,
    /// The context was poisoned by an earlier panic; only `zen_context_free` works on it.
    ZEN_ERR_POISONED = 14,
    /// Called from inside a callback of the same context (which holds its lock).
    ZEN_ERR_REENTRANT = 15,
    /// A wait ended before the condition held.
    ZEN_ERR_TIMEOUT = 16,
}

/// A failed call: its status and its message.
#[derive(Debug)]
pub(crate) struct FfiError {
    pub status: zen_status_t,
    pub message: String,
}

impl FfiError {
    pub fn new(status: zen_status_t, message: impl Into<String>) -> FfiError {
        FfiError { status, message: message.into() }
    }
}

impl From<Error> for FfiError {
    fn from(e: Error) -> FfiError {
        use zen_status_t::*;
        let status = match &e {
            Error::BadPeerId(_) | Error::SelfPeer(_) | Error::BadValueId { .. } => ZEN_ERR_INVALID_ARGUMENT,
            Error::BadOption { .. } | Error::PolicyNotSupported { .. } | Error::UnknownMerge(_) => {
                ZEN_ERR_INVALID_ARGUMENT
            }
            Error::UnknownPeer(_) => ZEN_ERR_UNKNOWN_PEER,
            Error::UnknownValue(_) => ZEN_ERR_UNKNOWN_VALUE,
            Error::Removed(_) => ZEN_ERR_REMOVED,
            Error::StaleHandle(_) => ZEN_ERR_INVALID_HANDLE,
            Error::WrongType { .. } => ZEN_ERR_WRONG_TYPE,
            Error::TooLarge { .. } | Error::TooManyValues(_) => ZEN_ERR_TOO_LARGE,
            Error::Decode(_) | Error::FromSelf(_) => ZEN_ERR_DECODE,
            Error::ProtocolVersion { .. } => ZEN_ERR_PROTOCOL_VERSION,
        };
        FfiError { status, message: e.to_string() }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

pub(crate) fn set_last_error(msg: &str) {
    LAST_ERROR.with(|e| {
        let mut e = e.borrow_mut();
        e.clear();
        e.push_str(msg);
    });
}

pub(crate) fn with_last_error<R>(f: impl FnOnce(&str) -> R) -> R {
    LAST_ERROR.with(|e| f(&e.borrow()))
}

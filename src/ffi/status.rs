//! Status codes of the C API and the thread-local last-error message.
//!
//! Owns `zen_status_t`, the mapping from core errors to it, and the per-thread message a
//! host reads with `zen_last_error` / `zen_last_error_message` after a failed call.

use crate::error::Error;
use std::cell::RefCell;

/// Result of every fallible C call. `ZEN_OK` is 0; anything else is a failure that
/// changed nothing, with a message available from `zen_last_error` on the same thread.
/// Later 1.x releases may add codes: treat an unknown one as a failure.
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
    /// A received message (or a save given to `zen_context_load`) was corrupt, truncated
    /// or hostile; it changed nothing.
    ZEN_ERR_DECODE = 6,
    /// A received message speaks a newer protocol version.
    ZEN_ERR_PROTOCOL_VERSION = 7,
    /// An argument exceeds a configured limit (message, value or id size, value count).
    ZEN_ERR_TOO_LARGE = 8,
    /// The peer is not a member of the context (or a message came from one that is not).
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
    /// `zen_context_receive_from`: the message names another sender than the transport
    /// received it from; rejected and counted in `messages_forged`.
    ZEN_ERR_SENDER_MISMATCH = 17,
    /// A message would change state its sender does not own (another writer's slot or
    /// items, acknowledgements of messages never sent); rejected, counted in
    /// `messages_forged`.
    ZEN_ERR_FORGED = 18,
    /// The transport failed: an address could not be bound or parsed, or the host refused
    /// this peer (a peer id already taken, another link version); the message says why.
    /// Since 1.1.
    ZEN_ERR_TRANSPORT = 19,
    /// A file could not be read or written (`zen_context_save_file`,
    /// `zen_context_load_file`); the message names the file and the step. Since 1.2.
    ZEN_ERR_IO = 20,
    /// The value is owner-only and this context does not own it: only its owner may
    /// write, touch, remove or transfer it (`zen_value_owner` says who does). Nothing
    /// changed. Since 1.4.
    ZEN_ERR_NOT_OWNER = 21,
}

impl zen_status_t {
    /// Every status, for the tests and for `zen_status_name`.
    pub(crate) const ALL: [zen_status_t; 22] = {
        use zen_status_t::*;
        [
            ZEN_OK,
            ZEN_ERR_NULL_ARGUMENT,
            ZEN_ERR_INVALID_HANDLE,
            ZEN_ERR_WRONG_TYPE,
            ZEN_ERR_INVALID_UTF8,
            ZEN_ERR_BUFFER_TOO_SMALL,
            ZEN_ERR_DECODE,
            ZEN_ERR_PROTOCOL_VERSION,
            ZEN_ERR_TOO_LARGE,
            ZEN_ERR_UNKNOWN_PEER,
            ZEN_ERR_UNKNOWN_VALUE,
            ZEN_ERR_REMOVED,
            ZEN_ERR_INVALID_ARGUMENT,
            ZEN_ERR_PANIC,
            ZEN_ERR_POISONED,
            ZEN_ERR_REENTRANT,
            ZEN_ERR_TIMEOUT,
            ZEN_ERR_SENDER_MISMATCH,
            ZEN_ERR_FORGED,
            ZEN_ERR_TRANSPORT,
            ZEN_ERR_IO,
            ZEN_ERR_NOT_OWNER,
        ]
    };

    /// The status's C name, NUL-terminated.
    pub(crate) fn name(self) -> &'static std::ffi::CStr {
        use zen_status_t::*;
        match self {
            ZEN_OK => c"ZEN_OK",
            ZEN_ERR_NULL_ARGUMENT => c"ZEN_ERR_NULL_ARGUMENT",
            ZEN_ERR_INVALID_HANDLE => c"ZEN_ERR_INVALID_HANDLE",
            ZEN_ERR_WRONG_TYPE => c"ZEN_ERR_WRONG_TYPE",
            ZEN_ERR_INVALID_UTF8 => c"ZEN_ERR_INVALID_UTF8",
            ZEN_ERR_BUFFER_TOO_SMALL => c"ZEN_ERR_BUFFER_TOO_SMALL",
            ZEN_ERR_DECODE => c"ZEN_ERR_DECODE",
            ZEN_ERR_PROTOCOL_VERSION => c"ZEN_ERR_PROTOCOL_VERSION",
            ZEN_ERR_TOO_LARGE => c"ZEN_ERR_TOO_LARGE",
            ZEN_ERR_UNKNOWN_PEER => c"ZEN_ERR_UNKNOWN_PEER",
            ZEN_ERR_UNKNOWN_VALUE => c"ZEN_ERR_UNKNOWN_VALUE",
            ZEN_ERR_REMOVED => c"ZEN_ERR_REMOVED",
            ZEN_ERR_INVALID_ARGUMENT => c"ZEN_ERR_INVALID_ARGUMENT",
            ZEN_ERR_PANIC => c"ZEN_ERR_PANIC",
            ZEN_ERR_POISONED => c"ZEN_ERR_POISONED",
            ZEN_ERR_REENTRANT => c"ZEN_ERR_REENTRANT",
            ZEN_ERR_TIMEOUT => c"ZEN_ERR_TIMEOUT",
            ZEN_ERR_SENDER_MISMATCH => c"ZEN_ERR_SENDER_MISMATCH",
            ZEN_ERR_FORGED => c"ZEN_ERR_FORGED",
            ZEN_ERR_TRANSPORT => c"ZEN_ERR_TRANSPORT",
            ZEN_ERR_IO => c"ZEN_ERR_IO",
            ZEN_ERR_NOT_OWNER => c"ZEN_ERR_NOT_OWNER",
        }
    }
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
            Error::BadPeerId(_) | Error::SelfPeer(_) | Error::BadValueId { .. } | Error::PeerIdTaken(_) => {
                ZEN_ERR_INVALID_ARGUMENT
            }
            Error::ReservedId(_) | Error::IndexOutOfRange { .. } => ZEN_ERR_INVALID_ARGUMENT,
            Error::BadOption { .. } | Error::PolicyNotSupported { .. } | Error::UnknownMerge(_) => {
                ZEN_ERR_INVALID_ARGUMENT
            }
            Error::UnknownPeer(_) => ZEN_ERR_UNKNOWN_PEER,
            Error::UnknownValue(_) => ZEN_ERR_UNKNOWN_VALUE,
            Error::Removed(_) => ZEN_ERR_REMOVED,
            Error::StaleHandle(_) | Error::ForeignHandle(_) => ZEN_ERR_INVALID_HANDLE,
            Error::WrongType { .. } | Error::WrongKind { .. } => ZEN_ERR_WRONG_TYPE,
            Error::TooLarge { .. } | Error::TooManyValues(_) => ZEN_ERR_TOO_LARGE,
            Error::Decode(_) | Error::FromSelf(_) => ZEN_ERR_DECODE,
            Error::ProtocolVersion { .. } => ZEN_ERR_PROTOCOL_VERSION,
            Error::SenderMismatch { .. } => ZEN_ERR_SENDER_MISMATCH,
            Error::Forged(_) => ZEN_ERR_FORGED,
            Error::Transport(_) => ZEN_ERR_TRANSPORT,
            Error::BadSave(_) => ZEN_ERR_DECODE,
            Error::SavedPeerTaken { .. } => ZEN_ERR_INVALID_ARGUMENT,
            Error::Io(_) => ZEN_ERR_IO,
            Error::NeverWritten(_) | Error::LocalOnlyMismatch { .. } | Error::NotOwnerOnly(_) => {
                ZEN_ERR_INVALID_ARGUMENT
            }
            Error::NotOwner { .. } => ZEN_ERR_NOT_OWNER,
        };
        FfiError { status, message: e.to_string() }
    }
}

thread_local! {
    /// The message of the last failed call on this thread, NUL-terminated (so
    /// `zen_last_error` can hand out a pointer to it); empty before any failure.
    static LAST_ERROR: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

pub(crate) fn set_last_error(msg: &str) {
    LAST_ERROR.with(|e| {
        let mut e = e.borrow_mut();
        e.clear();
        // A NUL inside (a value id may hold one) would cut the C string short.
        e.extend(msg.bytes().map(|b| if b == 0 { b'?' } else { b }));
        e.push(0);
    });
}

/// The last message, without its NUL.
pub(crate) fn with_last_error<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    LAST_ERROR.with(|e| {
        let e = e.borrow();
        f(e.strip_suffix(&[0]).unwrap_or(&e))
    })
}

/// The last message as a C string that lives until the next failure on this thread.
pub(crate) fn last_error_ptr() -> *const std::ffi::c_char {
    LAST_ERROR.with(|e| {
        let mut e = e.borrow_mut();
        if e.is_empty() {
            e.push(0);
        }
        e.as_ptr().cast()
    })
}

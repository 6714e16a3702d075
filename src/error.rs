//! Every way a call into the core can fail, with a message that names the bad input.
//!
//! Owns the error enum only. A failed call changes nothing: callers rely on that, and
//! the C layer maps each variant to one status code.

use crate::handle::ValueHandle;
use crate::value::ValueType;

/// An error from the core. Every variant's message says what was wrong and with what.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("peer id {0} is invalid: peer ids must be in 1..=2^53-1 (they double as yrs client ids)")]
    BadPeerId(u64),
    #[error("peer {0} is this context's own peer id")]
    SelfPeer(u64),
    #[error("peer {0} is not a member of this context")]
    UnknownPeer(u64),
    #[error("value id must be 1..={max} bytes of UTF-8, got {len} bytes")]
    BadValueId { len: usize, max: usize },
    #[error("id {0:?} starts with byte 0x01, 0x02, 0x03 or 0x04, which name table entries, sets, sequences and collection heads: ids may not")]
    ReservedId(String),
    #[error("index {index} is out of range for sequence {id:?} of {len} items")]
    IndexOutOfRange { id: String, index: usize, len: usize },
    #[error("{id:?} is a {is}, not a {wanted}: open it as a {is} (a table, a set and a sequence may share a name)")]
    WrongKind { id: String, is: &'static str, wanted: &'static str },
    #[error("no value with id {0:?}")]
    UnknownValue(String),
    #[error("value {0:?} was removed")]
    Removed(String),
    #[error("value handle {0} was never issued by this context")]
    StaleHandle(ValueHandle),
    #[error("value handle {0} belongs to another context (or to one that was freed)")]
    ForeignHandle(ValueHandle),
    #[error("value {id:?} holds {actual:?}, not {expected:?}")]
    WrongType { id: String, expected: ValueType, actual: ValueType },
    #[error("policy {policy} cannot combine values of type {ty:?}")]
    PolicyNotSupported { policy: &'static str, ty: ValueType },
    #[error("custom merge function {0:?} is not registered in this context")]
    UnknownMerge(String),
    #[error("{what} is {len} bytes, the limit is {max}")]
    TooLarge { what: &'static str, len: usize, max: usize },
    #[error("message rejected: {0}")]
    Decode(String),
    #[error("message has protocol version {got}, this library speaks {supported}")]
    ProtocolVersion { got: u8, supported: u8 },
    #[error("message was sent by this context's own peer id {0}")]
    FromSelf(u64),
    #[error("message names peer {claimed} as its sender, but the transport received it from peer {from}")]
    SenderMismatch { claimed: u64, from: u64 },
    #[error("message rejected as forged: {0}")]
    Forged(String),
    #[error("option {name} = {value} is out of range: {why}")]
    BadOption { name: &'static str, value: u64, why: &'static str },
    #[error("context already holds {0} values, the configured maximum")]
    TooManyValues(usize),
    #[error("peer id {0} is already taken on this link")]
    PeerIdTaken(u64),
    #[error("transport: {0}")]
    Transport(String),
    #[error("save rejected: {0}")]
    BadSave(String),
    #[error("peer {peer} wrote in this save of peer {saver}'s, so it cannot continue from it: load as peer {saver} (its latest save only) or as an id that never wrote")]
    SavedPeerTaken { peer: u64, saver: u64 },
    #[error("file: {0}")]
    Io(String),
    #[error("value {0:?} was never written: there is nothing to touch")]
    NeverWritten(String),
    #[error("value {id:?} exists here as {}, and is opened as {}: whether a value is local-only is chosen when it is first created here", if *.local_only { "local-only" } else { "shared" }, if *.local_only { "shared" } else { "local-only" })]
    LocalOnlyMismatch { id: String, local_only: bool },
    #[error("value {id:?} is owned by peer {owner}: only its owner may write, touch, remove or transfer it")]
    NotOwner { id: String, owner: u64 },
    #[error("value {0:?} may be written by anyone: only an owner-only value (created with an owner) can be transferred")]
    NotOwnerOnly(String),
}

impl Error {
    pub(crate) fn decode(msg: impl Into<String>) -> Error {
        Error::Decode(msg.into())
    }
}

//! zen-crdt: dual-mode CRDT values for games, on yrs, with a sans-IO sync protocol.
//!
//! A [`Context`] is one replica (one game client). Values are typed registers named by
//! string ids; the same id in two contexts is the same value. Each value is
//! [`Mode::FastLocal`] (a write shows at once, a concurrent write that wins corrects it
//! later) or [`Mode::WaitForSync`] (reads show what every member acknowledged), and can
//! switch at run time.
//!
//! The host drives everything and owns the transport:
//! ```
//! use zen_crdt::{Context, Options, ValueOptions, ValueType};
//! let mut a = Context::new(1, Options::default()).unwrap();
//! let mut b = Context::new(2, Options::default()).unwrap();
//! a.add_peer(2).unwrap();
//! b.add_peer(1).unwrap();
//! let pos = a.create("player/pos", ValueType::Vec3, ValueOptions::default()).unwrap();
//! a.set(pos, [1.0f32, 2.0, 3.0]).unwrap();
//! for now in (0..200).step_by(16) {
//!     a.tick(now);
//!     b.tick(now);
//!     while let Some(m) = a.poll_outbound() { b.receive(&m.bytes).unwrap(); }
//!     while let Some(m) = b.poll_outbound() { a.receive(&m.bytes).unwrap(); }
//! }
//! let on_b = b.open("player/pos").unwrap();
//! assert_eq!(b.get(on_b).unwrap(), zen_crdt::Value::Vec3([1.0, 2.0, 3.0]));
//! assert_eq!(a.state(pos).unwrap(), zen_crdt::SyncState::Converged);
//! ```
//!
//! The map of the modules, the life of a write and of a tick, and the boundaries (the
//! sans-IO core, the yrs boundary, the C boundary) are in ARCHITECTURE.md.

// The C layer is the only place that may hold `unsafe` code: by construction, not by
// convention (README: "the only unsafe lives in the C layer").
#![deny(unsafe_code)]

mod bridge;
mod bus;
mod codec;
mod collection;
mod context;
mod driver;
mod enet;
mod error;
mod events;
#[allow(unsafe_code)]
pub mod ffi;
mod forgery;
mod gateway;
mod handle;
mod ids;
mod link;
mod membership;
mod metrics;
mod options;
mod pacer;
mod policy;
mod position;
mod protocol;
mod register;
mod save;
mod seqwindow;
pub mod sim;
mod storage;
mod sync;
mod table;
mod update_scan;
mod value;
mod view;

pub use bridge::{Bridge, BridgeStats, BridgeThread};
pub use bus::{Bus, BusEndpoint};
pub use collection::{CollectionKind, EntryKind, Key, TableEvent, TableHandle};
pub use context::{Context, Mode, Options, Outbound, SyncState, TableOptions, ValueHandle, ValueOptions};
pub use driver::Driver;
pub use enet::{
    EnetLink, EnetOptions, EnetSim, EnetSimAddr, EnetSimSocket, Hello, DATAGRAM_BYTES, MAX_ROOM_BYTES,
    MAX_TOKEN_BYTES,
};
pub use error::Error;
pub use events::{ChangeEvent, ChangeKind};
pub use gateway::{check_room, Admit, Gateway, GatewayEvent, GatewayStats};
pub use link::{pump, Link, LinkEvent, LinkStats, Pumped, Relay};
pub use metrics::{Histogram, Metrics, PeerLag};
pub use policy::{Candidate, MergeFn, Policy};
pub use protocol::PROTOCOL_VERSION;
pub use save::SAVE_VERSION;
pub use value::{Value, ValueType};

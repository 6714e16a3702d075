//! zen-crdt for Godot 4 (GDExtension, built with gdext): the `ZenCrdtContext` node.
//!
//! `session` is the engine-free core (one player's context, what to send and which
//! signals to emit each frame), `convert` maps Godot values to zen-crdt values, `node` is
//! the Godot class. Depends on the `zen_crdt` crate directly: no C hop.

use godot::prelude::*;

pub mod convert;
pub mod node;
pub mod session;

struct ZenCrdtExtension;

#[gdextension]
unsafe impl ExtensionLibrary for ZenCrdtExtension {}

//! zen-relay's parts, shared by the `zen-relay` binary, its tests and its benchmark.
//! See `main.rs` for the commands and `nats` for what lives in NATS.

pub mod auth;
pub mod config;
pub mod gateway;
pub mod harness;
pub mod keeper;
pub mod log;
pub mod nats;

//! libFuzzer target: hostile input from a member, through receive, tick and every
//! integration path (see `zen_crdt_fuzz::run`).
#![no_main]

libfuzzer_sys::fuzz_target!(init: zen_crdt_fuzz::report_panics_once(), |data: &[u8]| zen_crdt_fuzz::run(data));

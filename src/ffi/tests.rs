//! Rust-side tests of the C layer: the boundary, poisoning, handle checks and growable
//! structs (what C cannot provoke on purpose), a round trip through the exported
//! functions, and a check that no export bypasses the boundary.

use super::boundary::{guard, sized_in, sized_out, wait_on_context, with_context};
use super::*;
use std::ffi::CStr;
use std::ptr::{null, null_mut};
use std::time::{Duration, Instant};

fn last_error() -> String {
    unsafe { CStr::from_ptr(zen_last_error()) }.to_string_lossy().into_owned()
}

fn new_ctx(peer: u64) -> zen_context_t {
    let mut ctx = zen_context_t::default();
    assert_eq!(unsafe { zen_context_new(peer, null(), &mut ctx) }, zen_status_t::ZEN_OK);
    ctx
}

fn create(ctx: zen_context_t, id: &str, ty: zen_value_type_t) -> zen_value_t {
    let mut v = zen_value_t::default();
    let st = unsafe { zen_value_create(ctx, id.as_ptr().cast(), id.len(), ty as u32, null(), &mut v) };
    assert_eq!(st, zen_status_t::ZEN_OK, "{}", last_error());
    v
}

#[test]
fn a_panic_becomes_a_status_and_poisons_only_its_context() {
    let status = guard(|| panic!("boom"));
    assert_eq!(status, zen_status_t::ZEN_ERR_PANIC);
    assert!(last_error().contains("boom"));

    let (a, b) = (new_ctx(1), new_ctx(2));
    let status = guard(|| with_context(a.id, |_| -> Result<(), status::FfiError> { panic!("inside") }));
    assert_eq!(status, zen_status_t::ZEN_ERR_PANIC);
    assert_eq!(zen_context_tick(a, 16), zen_status_t::ZEN_ERR_POISONED);
    assert!(last_error().contains("poisoned") && last_error().contains("inside"), "{}", last_error());
    assert_eq!(zen_context_tick(b, 16), zen_status_t::ZEN_OK, "other contexts are untouched");
    zen_context_free(a);
    zen_context_free(b);
}

#[test]
fn a_panic_in_a_wait_poisons_the_context_waited_on() {
    let (a, b) = (new_ctx(1), new_ctx(2));
    let v = create(a, "x", zen_value_type_t::ZEN_TYPE_I64);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut tries = 0;
    let status = guard(|| {
        wait_on_context(
            a.id,
            deadline,
            |_| -> Result<Option<()>, status::FfiError> {
                tries += 1;
                panic!("while waiting")
            },
            || unreachable!(),
        )
    });
    assert_eq!((status, tries), (zen_status_t::ZEN_ERR_PANIC, 1));
    assert_eq!(zen_value_wait_converged(a, v, 10), zen_status_t::ZEN_ERR_POISONED);
    assert_eq!(zen_value_set_i64(a, v, 1), zen_status_t::ZEN_ERR_POISONED);
    assert_eq!(zen_context_tick(b, 16), zen_status_t::ZEN_OK);
    zen_context_free(a);
    zen_context_free(b);
}

#[test]
fn handles_are_checked_by_kind_owner_and_life() {
    let ctx = new_ctx(1);
    let v = create(ctx, "hp", zen_value_type_t::ZEN_TYPE_I64);
    assert_eq!(zen_context_tick(zen_context_t::default(), 1), zen_status_t::ZEN_ERR_INVALID_HANDLE);
    // A value's owner number passed as a context id (a cast a binding could make).
    assert_eq!(zen_context_tick(zen_context_t { id: v.owner }, 1), zen_status_t::ZEN_ERR_INVALID_HANDLE);
    assert_eq!(zen_value_set_i64(ctx, zen_value_t::default(), 5), zen_status_t::ZEN_ERR_INVALID_HANDLE);
    let made_up = zen_value_t { index: v.index + 1, ..v };
    assert_eq!(zen_value_set_i64(ctx, made_up, 5), zen_status_t::ZEN_ERR_INVALID_HANDLE);
    let huge = zen_value_t { index: u64::MAX, ..v };
    assert_eq!(zen_value_set_i64(ctx, huge, 5), zen_status_t::ZEN_ERR_INVALID_HANDLE);
    let other = new_ctx(2);
    assert_eq!(zen_value_set_i64(other, v, 5), zen_status_t::ZEN_ERR_INVALID_HANDLE, "foreign value");
    assert!(last_error().contains("another context"), "{}", last_error());
    zen_context_free(ctx);
    zen_context_free(ctx);
    assert_eq!(zen_value_set_i64(ctx, v, 5), zen_status_t::ZEN_ERR_INVALID_HANDLE);
    assert!(last_error().contains("freed"), "{}", last_error());
    let reused = new_ctx(3);
    assert_eq!(
        zen_context_tick(ctx, 1),
        zen_status_t::ZEN_ERR_INVALID_HANDLE,
        "old generation stays invalid"
    );
    assert_eq!(zen_value_set_i64(reused, v, 5), zen_status_t::ZEN_ERR_INVALID_HANDLE);
    zen_context_free(reused);
    zen_context_free(other);
}

#[test]
fn two_contexts_sync_through_the_c_api() {
    let (a, b) = (new_ctx(1), new_ctx(2));
    assert_eq!(zen_context_add_peer(a, 2), zen_status_t::ZEN_OK);
    assert_eq!(zen_context_add_peer(b, 1), zen_status_t::ZEN_OK);
    let va = create(a, "unit/1/pos", zen_value_type_t::ZEN_TYPE_VEC3);
    assert_eq!(zen_value_set_vec3(a, va, zen_vec3_t { x: 1.0, y: 2.0, z: 3.0 }), zen_status_t::ZEN_OK);
    for t in 1..20u64 {
        for (from, to, peer) in [(a, b, 1), (b, a, 2)] {
            assert_eq!(zen_context_tick(from, t * 16), zen_status_t::ZEN_OK);
            loop {
                let mut msg = zen_bytes_t { ptr: null_mut(), len: 0 };
                let (mut dest, mut has) = (0u64, false);
                let st = unsafe { zen_context_poll_outbound_alloc(from, &mut msg, &mut dest, &mut has) };
                assert_eq!(st, zen_status_t::ZEN_OK);
                if !has {
                    break;
                }
                let st = unsafe { zen_context_receive_from(to, peer, msg.ptr, msg.len) };
                assert_eq!(st, zen_status_t::ZEN_OK, "{}", last_error());
                unsafe { zen_bytes_free(&mut msg) };
                unsafe { zen_bytes_free(&mut msg) };
            }
        }
    }
    let id = "unit/1/pos";
    let mut vb = zen_value_t::default();
    assert_eq!(unsafe { zen_value_open(b, id.as_ptr().cast(), id.len(), &mut vb) }, zen_status_t::ZEN_OK);
    let mut got = zen_vec3_t::default();
    assert_eq!(unsafe { zen_value_get_vec3(b, vb, &mut got) }, zen_status_t::ZEN_OK);
    assert_eq!(got, zen_vec3_t { x: 1.0, y: 2.0, z: 3.0 });
    let mut state = zen_sync_state_t::ZEN_STATE_LOCAL_ONLY;
    assert_eq!(
        unsafe { zen_value_info(a, va, null_mut(), null_mut(), null_mut(), &mut state) },
        zen_status_t::ZEN_OK
    );
    assert_eq!(state, zen_sync_state_t::ZEN_STATE_CONVERGED);
    let mut i = 0i64;
    assert_eq!(unsafe { zen_value_get_i64(b, vb, &mut i) }, zen_status_t::ZEN_ERR_WRONG_TYPE);
    assert!(last_error().contains("Vec3"));
    zen_context_free(a);
    zen_context_free(b);
}

#[test]
fn growable_structs_take_older_and_refuse_unknown_fields() {
    #[derive(Clone, Copy, Debug, PartialEq)]
    #[repr(C)]
    struct V2 {
        struct_size: usize,
        a: u64,
        b: u64,
    }
    impl super::boundary::Growable for V2 {}
    let defaults = V2 { struct_size: 24, a: 1, b: 2 };
    // The 1.0 struct (all of V2) is read whole.
    let mine = V2 { struct_size: 24, a: 7, b: 8 };
    assert_eq!(unsafe { sized_in(&mine, defaults, "opts") }.unwrap(), mine);
    // Too small: an uninitialised struct_size, or a struct older than 1.0.
    let small = V2 { struct_size: 16, a: 7, b: 8 };
    let e = unsafe { sized_in(&small, defaults, "opts") }.unwrap_err();
    assert_eq!(e.status, zen_status_t::ZEN_ERR_INVALID_ARGUMENT);
    assert!(e.message.contains("struct_size is 16"), "{}", e.message);
    // A newer header's struct: unknown fields left zero are fine, set ones are refused.
    let newer: [u64; 4] = [32, 7, 8, 0];
    let read = unsafe { sized_in(newer.as_ptr().cast::<V2>(), defaults, "opts") }.unwrap();
    assert_eq!(read, V2 { struct_size: 24, a: 7, b: 8 });
    let newer_set: [u64; 4] = [32, 7, 8, 5];
    let e = unsafe { sized_in(newer_set.as_ptr().cast::<V2>(), defaults, "opts") }.unwrap_err();
    assert!(e.message.contains("does not know"), "{}", e.message);
    // Out: a larger caller struct gets our part only and learns how much was written.
    let mut room: [u64; 4] = [32, 0, 0, 99];
    unsafe { sized_out(room.as_mut_ptr().cast::<V2>(), mine, "out") }.unwrap();
    assert_eq!(room, [24, 7, 8, 99]);
    let mut bad = V2 { struct_size: 0, a: 0, b: 0 };
    assert!(unsafe { sized_out(&mut bad, mine, "out") }.is_err());
    assert_eq!(bad.a, 0, "nothing written on failure");
}

#[test]
fn metrics_need_their_struct_size() {
    let ctx = new_ctx(1);
    let mut m = zen_metrics_t::default();
    assert_eq!(unsafe { zen_context_metrics(ctx, &mut m) }, zen_status_t::ZEN_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("struct_size"), "{}", last_error());
    m.struct_size = std::mem::size_of::<zen_metrics_t>();
    assert_eq!(unsafe { zen_context_metrics(ctx, &mut m) }, zen_status_t::ZEN_OK);
    assert_eq!(m.struct_size, std::mem::size_of::<zen_metrics_t>());
    assert_eq!(m.converge_ms_p50, u64::MAX);
    zen_context_free(ctx);
}

#[test]
fn status_names_and_the_last_error_string() {
    for s in zen_status_t::ALL {
        let name = unsafe { CStr::from_ptr(zen_status_name(s as i32)) }.to_str().unwrap();
        assert!(name.starts_with("ZEN_") && format!("{s:?}") == name, "{name}");
    }
    let unknown = unsafe { CStr::from_ptr(zen_status_name(999)) };
    assert_eq!(unknown.to_str().unwrap(), "ZEN_ERR_UNKNOWN");
    // Ids may hold a NUL: messages quote them escaped, and a raw NUL could not cut the
    // C string short anyway.
    let ctx = new_ctx(1);
    let id = "a\0b";
    let mut v = zen_value_t::default();
    let st = unsafe { zen_value_open(ctx, id.as_ptr().cast(), id.len(), &mut v) };
    assert_eq!(st, zen_status_t::ZEN_ERR_UNKNOWN_VALUE);
    assert!(last_error().ends_with("\"a\\0b\""), "{}", last_error());
    status::set_last_error("x\0y");
    assert_eq!(last_error(), "x?y");
    zen_context_free(ctx);
}

#[test]
fn version_constants_match_the_crate() {
    assert_eq!(ZEN_PROTOCOL_VERSION, crate::protocol::PROTOCOL_VERSION as u32);
    let v = env!("CARGO_PKG_VERSION");
    assert_eq!(v, format!("{ZEN_VERSION_MAJOR}.{ZEN_VERSION_MINOR}.{ZEN_VERSION_PATCH}"));
    assert_eq!(zen_version(), ZEN_VERSION_MAJOR << 16 | ZEN_VERSION_MINOR << 8 | ZEN_VERSION_PATCH);
}

/// rustls-ffi#286: one export without the panic guard is one too many. Every `extern
/// "C"` function's body must begin with one of the boundary's guards.
#[test]
fn every_export_goes_through_the_boundary() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi");
    let mut exports = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let src = std::fs::read_to_string(&path).unwrap();
        for (at, _) in src.match_indices("extern \"C\" fn ") {
            let line_start = src[..at].rfind('\n').map_or(0, |i| i + 1);
            if !src[line_start..at].trim_start().starts_with("pub") {
                continue; // a callback type, not an export
            }
            exports += 1;
            let body = &src[at + src[at..].find('{').unwrap() + 1..];
            let first = body.trim_start();
            let name = &src[at + 14..at + src[at..].find('(').unwrap()];
            assert!(
                ["guard(", "guard_keeping_message(", "guard_infallible("]
                    .iter()
                    .any(|g| first.starts_with(g)),
                "{} in {} does not start with a boundary guard",
                name,
                path.display()
            );
        }
    }
    assert!(exports > 50, "found only {exports} exports");
}

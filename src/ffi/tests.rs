//! Rust-side tests of the C layer: the guard, poisoning and handle checks (what C cannot
//! provoke on purpose), plus a round trip through the exported functions.

use super::guard::{guard, with_context};
use super::*;
use std::ptr::null_mut;

fn last_error() -> String {
    let mut buf = [0u8; 512];
    let mut len = 0usize;
    unsafe { zen_last_error_message(buf.as_mut_ptr().cast(), buf.len(), &mut len) };
    String::from_utf8_lossy(&buf[..len.min(512)]).into_owned()
}

fn new_ctx(peer: u64) -> zen_context_t {
    let mut ctx = 0;
    assert_eq!(unsafe { zen_context_new(peer, std::ptr::null(), &mut ctx) }, zen_status_t::ZEN_OK);
    ctx
}

#[test]
fn a_panic_becomes_a_status_and_poisons_only_its_context() {
    let status = guard(|| panic!("boom"));
    assert_eq!(status, zen_status_t::ZEN_ERR_PANIC);
    assert!(last_error().contains("boom"));

    let (a, b) = (new_ctx(1), new_ctx(2));
    let status = guard(|| with_context(a, |_| -> Result<(), status::FfiError> { panic!("inside") }));
    assert_eq!(status, zen_status_t::ZEN_ERR_PANIC);
    assert_eq!(zen_context_tick(a, 16), zen_status_t::ZEN_ERR_POISONED);
    assert!(last_error().contains("poisoned"));
    assert_eq!(zen_context_tick(b, 16), zen_status_t::ZEN_OK, "other contexts are untouched");
    assert_eq!(zen_context_free(a), zen_status_t::ZEN_OK);
    assert_eq!(zen_context_free(b), zen_status_t::ZEN_OK);
}

#[test]
fn stale_zero_and_wrong_kind_handles_are_errors() {
    let ctx = new_ctx(1);
    let mut v = 0;
    let id = "hp";
    assert_eq!(
        unsafe { zen_value_create(ctx, id.as_ptr().cast(), id.len(), 2, 0, 0, std::ptr::null(), 0, &mut v) },
        zen_status_t::ZEN_OK
    );
    assert_eq!(zen_context_tick(0, 1), zen_status_t::ZEN_ERR_INVALID_HANDLE);
    assert_eq!(zen_context_tick(v, 1), zen_status_t::ZEN_ERR_INVALID_HANDLE, "value handle as context");
    assert!(last_error().contains("value handle"));
    assert_eq!(
        zen_value_set_i64(ctx, ctx, 5),
        zen_status_t::ZEN_ERR_INVALID_HANDLE,
        "context handle as value"
    );
    let other = new_ctx(2);
    assert_eq!(zen_value_set_i64(other, v, 5), zen_status_t::ZEN_ERR_INVALID_HANDLE, "foreign value");
    assert_eq!(zen_context_free(ctx), zen_status_t::ZEN_OK);
    assert_eq!(zen_context_free(ctx), zen_status_t::ZEN_OK, "second free is harmless");
    assert_eq!(zen_value_set_i64(ctx, v, 5), zen_status_t::ZEN_ERR_INVALID_HANDLE);
    assert!(last_error().contains("freed"));
    let reused = new_ctx(3);
    assert_eq!(
        zen_context_tick(ctx, 1),
        zen_status_t::ZEN_ERR_INVALID_HANDLE,
        "old generation stays invalid"
    );
    zen_context_free(reused);
    zen_context_free(other);
}

#[test]
fn two_contexts_sync_through_the_c_api() {
    let (a, b) = (new_ctx(1), new_ctx(2));
    assert_eq!(zen_context_add_peer(a, 2), zen_status_t::ZEN_OK);
    assert_eq!(zen_context_add_peer(b, 1), zen_status_t::ZEN_OK);
    let mut va = 0;
    let id = "unit/1/pos";
    unsafe { zen_value_create(a, id.as_ptr().cast(), id.len(), 7, 0, 0, std::ptr::null(), 0, &mut va) };
    assert_eq!(zen_value_set_vec3(a, va, zen_vec3_t { x: 1.0, y: 2.0, z: 3.0 }), zen_status_t::ZEN_OK);
    for t in 1..20u64 {
        for (from, to) in [(a, b), (b, a)] {
            zen_context_tick(from, t * 16);
            loop {
                let mut msg = zen_bytes_t { ptr: null_mut(), len: 0 };
                let (mut dest, mut has) = (0u64, false);
                unsafe { zen_context_poll_outbound_alloc(from, &mut msg, &mut dest, &mut has) };
                if !has {
                    break;
                }
                assert_eq!(unsafe { zen_context_receive(to, msg.ptr, msg.len) }, zen_status_t::ZEN_OK);
                unsafe { zen_bytes_free(&mut msg) };
                unsafe { zen_bytes_free(&mut msg) };
            }
        }
    }
    let mut vb = 0;
    assert_eq!(unsafe { zen_value_open(b, id.as_ptr().cast(), id.len(), &mut vb) }, zen_status_t::ZEN_OK);
    let mut got = zen_vec3_t::default();
    assert_eq!(unsafe { zen_value_get_vec3(b, vb, &mut got) }, zen_status_t::ZEN_OK);
    assert_eq!(got, zen_vec3_t { x: 1.0, y: 2.0, z: 3.0 });
    let mut state = zen_sync_state_t::ZEN_STATE_LOCAL_ONLY;
    unsafe { zen_value_info(a, va, null_mut(), null_mut(), null_mut(), &mut state) };
    assert_eq!(state, zen_sync_state_t::ZEN_STATE_CONVERGED);
    let mut i = 0i64;
    assert_eq!(unsafe { zen_value_get_i64(b, vb, &mut i) }, zen_status_t::ZEN_ERR_WRONG_TYPE);
    assert!(last_error().contains("Vec3"));
    zen_context_free(a);
    zen_context_free(b);
}

#[test]
fn small_buffers_keep_the_message_queued() {
    let (a, b) = (new_ctx(1), new_ctx(2));
    zen_context_add_peer(a, 2);
    let mut v = 0;
    let id = "name";
    unsafe { zen_value_create(a, id.as_ptr().cast(), id.len(), 4, 0, 0, std::ptr::null(), 0, &mut v) };
    let s = "hello";
    assert_eq!(unsafe { zen_value_set_string(a, v, s.as_ptr().cast(), s.len()) }, zen_status_t::ZEN_OK);
    let mut small = [0u8; 2];
    let mut len = 0;
    assert_eq!(
        unsafe { zen_value_get_string(a, v, small.as_mut_ptr().cast(), 2, &mut len) },
        zen_status_t::ZEN_ERR_BUFFER_TOO_SMALL
    );
    assert_eq!(len, 5);
    zen_context_tick(a, 16);
    let (mut to, mut has) = (0, false);
    assert_eq!(
        unsafe { zen_context_poll_outbound(a, small.as_mut_ptr(), 2, &mut len, &mut to, &mut has) },
        zen_status_t::ZEN_ERR_BUFFER_TOO_SMALL
    );
    let mut big = vec![0u8; len];
    assert_eq!(
        unsafe { zen_context_poll_outbound(a, big.as_mut_ptr(), big.len(), &mut len, &mut to, &mut has) },
        zen_status_t::ZEN_OK
    );
    assert!(has && to == 0 && len == big.len());
    zen_context_free(a);
    zen_context_free(b);
}

#[test]
fn version_constants_match_the_crate() {
    assert_eq!(ZEN_PROTOCOL_VERSION, crate::protocol::PROTOCOL_VERSION as u32);
    let v = env!("CARGO_PKG_VERSION");
    assert_eq!(v, format!("{ZEN_VERSION_MAJOR}.{ZEN_VERSION_MINOR}.{ZEN_VERSION_PATCH}"));
    assert_eq!(zen_version(), ZEN_VERSION_MAJOR << 16 | ZEN_VERSION_MINOR << 8 | ZEN_VERSION_PATCH);
}

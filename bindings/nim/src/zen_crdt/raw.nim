## The C API of zen-crdt (`include/zen_crdt.h`, `include/zen_crdt_sim.h`) as Nim sees
## it, one to one: every function, struct and constant, imported with
## `{.importc, header.}` so the C compiler checks each call against the committed
## headers. The typed API is `zen_crdt`; use this module for what it does not wrap.
##
## Linking: the static library by default (`libzen_crdt.a` from `-d:zenCrdtLibDir=DIR`,
## default the repository's `target/release`, with the system libraries it needs);
## `-d:zenCrdtShared` links `libzen_crdt.so` instead. `-d:zenCrdtIncludeDir=DIR` finds
## the headers (default the repository's `include`).

import std/os

const
  zenRepo = currentSourcePath().parentDir / ".." / ".." / ".." / ".."
  zenCrdtIncludeDir* {.strdefine.} = zenRepo / "include"
  zenCrdtLibDir* {.strdefine.} = zenRepo / "target" / "release"
  zenHeader* = zenCrdtIncludeDir / "zen_crdt.h"
  zenSimHeader* = zenCrdtIncludeDir / "zen_crdt_sim.h"

{.passC: "-I" & zenCrdtIncludeDir.}
when defined(zenCrdtShared):
  {.passL: "-L" & zenCrdtLibDir & " -lzen_crdt -Wl,-rpath," & zenCrdtLibDir.}
else:
  # Libs.private of zen_crdt.pc: what a Rust static library needs from the system.
  {.passL: zenCrdtLibDir / "libzen_crdt.a".}
  {.passL: "-lpthread -ldl -lm -lrt -lutil".}

type
  zen_status_t* = int32 ## `ZEN_OK` (0) or a `ZEN_ERR_*` code.
  zen_value_type_t* = uint32
  zen_mode_t* = uint32
  zen_policy_t* = uint32
  zen_sync_state_t* = uint32
  zen_change_kind_t* = uint32
  zen_key_kind_t* = uint32 ## 1.5
  zen_table_change_kind_t* = uint32 ## 1.5

const
  ZEN_OK* = 0'i32
  ZEN_ERR_NULL_ARGUMENT* = 1'i32
  ZEN_ERR_INVALID_HANDLE* = 2'i32
  ZEN_ERR_WRONG_TYPE* = 3'i32
  ZEN_ERR_INVALID_UTF8* = 4'i32
  ZEN_ERR_BUFFER_TOO_SMALL* = 5'i32
  ZEN_ERR_DECODE* = 6'i32
  ZEN_ERR_PROTOCOL_VERSION* = 7'i32
  ZEN_ERR_TOO_LARGE* = 8'i32
  ZEN_ERR_UNKNOWN_PEER* = 9'i32
  ZEN_ERR_UNKNOWN_VALUE* = 10'i32
  ZEN_ERR_REMOVED* = 11'i32
  ZEN_ERR_INVALID_ARGUMENT* = 12'i32
  ZEN_ERR_PANIC* = 13'i32
  ZEN_ERR_POISONED* = 14'i32
  ZEN_ERR_REENTRANT* = 15'i32
  ZEN_ERR_TIMEOUT* = 16'i32
  ZEN_ERR_SENDER_MISMATCH* = 17'i32
  ZEN_ERR_FORGED* = 18'i32
  ZEN_ERR_TRANSPORT* = 19'i32
  ZEN_ERR_IO* = 20'i32
  ZEN_ERR_NOT_OWNER* = 21'i32 ## 1.4

  ZEN_TYPE_NONE* = 0'u32
  ZEN_TYPE_BOOL* = 1'u32
  ZEN_TYPE_I64* = 2'u32
  ZEN_TYPE_F64* = 3'u32
  ZEN_TYPE_STRING* = 4'u32
  ZEN_TYPE_BYTES* = 5'u32
  ZEN_TYPE_VEC2* = 6'u32
  ZEN_TYPE_VEC3* = 7'u32
  ZEN_TYPE_VEC4* = 8'u32
  ZEN_TYPE_COLOR* = 9'u32
  ZEN_TYPE_QUAT* = 10'u32

  ZEN_MODE_FAST_LOCAL* = 0'u32
  ZEN_MODE_WAIT_FOR_SYNC* = 1'u32

  ZEN_POLICY_LAST_WRITER_WINS* = 0'u32
  ZEN_POLICY_MAX* = 1'u32
  ZEN_POLICY_MIN* = 2'u32
  ZEN_POLICY_TAKE_AVERAGE* = 3'u32
  ZEN_POLICY_CUSTOM* = 4'u32

  ZEN_STATE_LOCAL_ONLY* = 0'u32
  ZEN_STATE_SYNCING* = 1'u32
  ZEN_STATE_CONVERGED* = 2'u32
  ZEN_STATE_CONFLICTED* = 3'u32

  ZEN_CHANGE_CREATED* = 0'u32
  ZEN_CHANGE_MODIFIED* = 1'u32
  ZEN_CHANGE_STATE_CHANGED* = 2'u32
  ZEN_CHANGE_REMOVED* = 3'u32
  ZEN_CHANGE_TOUCHED* = 4'u32 ## 1.3
  ZEN_CHANGE_OWNER_CHANGED* = 5'u32 ## 1.4
  ZEN_CHANGE_REJECTED* = 6'u32 ## 1.4
  ZEN_KEY_INT* = 0'u32 ## 1.5
  ZEN_KEY_STRING* = 1'u32 ## 1.5
  ZEN_TABLE_ADDED* = 1'u32 ## 1.5
  ZEN_TABLE_REMOVED* = 2'u32 ## 1.5
  ZEN_TABLE_MODIFIED* = 3'u32 ## 1.5
  ZEN_TABLE_REJECTED* = 4'u32 ## 1.5
  ZEN_TABLE_OWNER_CHANGED* = 5'u32 ## 1.5
  ZEN_TABLE_TOUCHED* = 6'u32 ## 1.5
  ZEN_COLLECTION_TABLE* = 0'u32 ## 1.5
  ZEN_COLLECTION_SET* = 1'u32 ## 1.5
  ZEN_COLLECTION_SEQUENCE* = 2'u32 ## 1.5

var
  ZEN_VERSION_MAJOR* {.importc, header: zenHeader.}: cint
  ZEN_VERSION_MINOR* {.importc, header: zenHeader.}: cint
  ZEN_VERSION_PATCH* {.importc, header: zenHeader.}: cint
  ZEN_PROTOCOL_VERSION* {.importc, header: zenHeader.}: cint
  ZEN_NO_DEADLINE* {.importc, header: zenHeader.}: uint64

type
  zen_options_t* {.importc, header: zenHeader, bycopy.} = object
    struct_size*: csize_t
    tick_interval_ms*, peer_timeout_ms*, heartbeat_ms*, max_message_bytes*: uint64
    max_value_bytes*, max_id_bytes*, event_capacity*, hibernate_after_ms*, max_values*: uint64
    target_message_bytes*: uint64 ## 1.1: the size messages aim at (0 = max_message_bytes)
  zen_value_options_t* {.importc, header: zenHeader, bycopy.} = object
    struct_size*: csize_t
    mode*, policy*: uint32
    custom_name*: cstring
    custom_name_len*: csize_t
    local_only*: uint32 ## 1.3: 1 = never sent, never taken from peers
    owner*: uint64 ## 1.4: 0 = anyone may write, else owner-only with this first owner
  zen_context_t* {.importc, header: zenHeader, bycopy.} = object
    id*: uint64
  zen_bytes_t* {.importc, header: zenHeader, bycopy.} = object
    `ptr`* {.importc: "ptr".}: ptr uint8
    len*: csize_t
  zen_value_t* {.importc, header: zenHeader, bycopy.} = object
    owner*, index*: uint64
  zen_vec2_t* {.importc, header: zenHeader, bycopy.} = object
    x*, y*: cfloat
  zen_vec3_t* {.importc, header: zenHeader, bycopy.} = object
    x*, y*, z*: cfloat
  zen_vec4_t* {.importc, header: zenHeader, bycopy.} = object
    x*, y*, z*, w*: cfloat
  zen_quat_t* {.importc, header: zenHeader, bycopy.} = object
    x*, y*, z*, w*: cfloat
  zen_color_t* {.importc, header: zenHeader, bycopy.} = object
    r*, g*, b*, a*: cfloat
  zen_bytes_view_t* {.importc, header: zenHeader, bycopy.} = object
    `ptr`* {.importc: "ptr".}: ptr uint8
    len*: csize_t
  zen_value_payload_t* {.importc, header: zenHeader, union, bycopy.} = object
    b*: bool
    i*: int64
    f*: cdouble
    vec*: array[4, cfloat]
    bytes*: zen_bytes_view_t
  zen_value_data_t* {.importc, header: zenHeader, bycopy.} = object
    value_type*: uint32
    data*: zen_value_payload_t
  zen_change_t* {.importc, header: zenHeader, bycopy.} = object
    value*: zen_value_t
    kind*: zen_change_kind_t
    state*: zen_sync_state_t
    is_correction*: bool
    is_initial*: bool ## 1.3: this context had never shown the value's content before
    owner_changed*: bool ## 1.4: the value's owner changed with this event
    origin*, time_ms*: uint64
    old_value*, new_value*: zen_value_data_t
  zen_metrics_t* {.importc, header: zenHeader, bycopy.} = object
    struct_size*: csize_t
    messages_out*, bytes_out*, messages_in*, bytes_in*, messages_rejected*, messages_forged*: uint64
    messages_duplicate*, writes_flushed*, writes_coalesced*, updates_applied*, corrections*: uint64
    conflicts*, catchups_sent*, merge_fallbacks*, events_coalesced*, events_dropped*, values*: uint64
    live_docs*, converge_ms_p50*, converge_ms_p99*, peers*, rejected_updates*: uint64
    unowned_writes*: uint64 ## 1.4
    table_entries*, entries_forgotten*: uint64 ## 1.5
  zen_table_t* {.importc, header: zenHeader, bycopy.} = object ## 1.5
    owner*, index*: uint64
  zen_key_t* {.importc, header: zenHeader, bycopy.} = object ## 1.5
    kind*: uint32
    int_key*: int64
    str*: cstring
    str_len*: csize_t
  zen_table_options_t* {.importc, header: zenHeader, bycopy.} = object ## 1.5
    struct_size*: csize_t
    mode*, policy*: uint32
    custom_name*: cstring
    custom_name_len*: csize_t
    owner*: uint64 ## 0: anyone may write
  zen_table_change_t* {.importc, header: zenHeader, bycopy.} = object ## 1.5
    table*: zen_table_t
    kind*: zen_table_change_kind_t
    state*: zen_sync_state_t
    is_correction*, is_initial*: bool
    origin*, time_ms*: uint64
    index*: int64 ## a sequence item's index, -1 for tables and sets
    key*: zen_key_t
    old_value*, new_value*: zen_value_data_t
  zen_peer_lag_t* {.importc, header: zenHeader, bycopy.} = object
    peer*: uint64
    active*: bool
    unacked_messages*, ack_lag_ms*, rtt_ms*: uint64
  zen_candidate_t* {.importc, header: zenHeader, bycopy.} = object
    writer*, clock*: uint64
    value*: zen_value_data_t
  zen_merge_fn* = proc (user_data: pointer, candidates: ptr zen_candidate_t, count: csize_t,
                        `out`: ptr zen_value_data_t): int32 {.cdecl.}
  zen_free_fn* = proc (user_data: pointer) {.cdecl.}
  zen_link_t* {.importc, header: zenSimHeader, bycopy.} = object
    struct_size*: csize_t
    latency_ms*, jitter_ms*: uint64
    loss*, duplicate*, reorder*: cdouble
    bandwidth_bytes_per_s*: uint64
  zen_net_t* {.importc, header: zenSimHeader, bycopy.} = object
    id*: uint64
  zen_bus_t* {.importc, header: zenHeader, bycopy.} = object
    id*: uint64
  zen_endpoint_t* {.importc, header: zenHeader, bycopy.} = object
    id*: uint64
  zen_enet_options_t* {.importc, header: zenHeader, bycopy.} = object
    struct_size*: csize_t
    max_clients*, timeout_ms*, max_messages_per_s*: uint32
    room*: cstring          ## 1.2: the room a client asks for (room_len bytes)
    room_len*: csize_t
    token*: ptr uint8       ## 1.2: the token a client shows (token_len bytes)
    token_len*: csize_t
  zen_endpoint_stats_t* {.importc, header: zenHeader, bycopy.} = object
    struct_size*: csize_t
    sent*, bytes_sent*, received*, bytes_received*, dropped*, rejected*: uint64
  zen_bridge_t* {.importc, header: zenHeader, bycopy.} = object
    id*: uint64
  zen_bridge_stats_t* {.importc, header: zenHeader, bycopy.} = object
    struct_size*: csize_t
    forwarded*, bytes_forwarded*, carried*, refused*: uint64
  zen_driver_t* {.importc, header: zenHeader, bycopy.} = object
    id*: uint64

proc zen_version*(): uint32 {.importc, header: zenHeader.}
proc zen_status_name*(status: int32): cstring {.importc, header: zenHeader.}
proc zen_last_error*(): cstring {.importc, header: zenHeader.}
proc zen_last_error_message*(buf: cstring, cap: csize_t, out_len: ptr csize_t): zen_status_t {.importc, header: zenHeader.}
proc zen_options_default*(out_opts: ptr zen_options_t): zen_status_t {.importc, header: zenHeader.}
proc zen_value_options_default*(out_opts: ptr zen_value_options_t): zen_status_t {.importc, header: zenHeader.}
proc zen_context_new*(peer_id: uint64, opts: ptr zen_options_t, out_ctx: ptr zen_context_t): zen_status_t {.importc, header: zenHeader.}
proc zen_context_free*(ctx: zen_context_t) {.importc, header: zenHeader.}
proc zen_context_save*(ctx: zen_context_t, out_bytes: ptr zen_bytes_t): zen_status_t {.importc, header: zenHeader.}
proc zen_context_load*(peer_id: uint64, opts: ptr zen_options_t, saved: ptr uint8, len: csize_t, out_ctx: ptr zen_context_t): zen_status_t {.importc, header: zenHeader.}
proc zen_context_save_file*(ctx: zen_context_t, path: cstring, path_len: csize_t): zen_status_t {.importc, header: zenHeader.}
proc zen_context_load_file*(peer_id: uint64, opts: ptr zen_options_t, path: cstring, path_len: csize_t, out_ctx: ptr zen_context_t): zen_status_t {.importc, header: zenHeader.}
proc zen_context_peer_id*(ctx: zen_context_t, out_id: ptr uint64): zen_status_t {.importc, header: zenHeader.}
proc zen_context_tick*(ctx: zen_context_t, now_ms: uint64): zen_status_t {.importc, header: zenHeader.}
proc zen_context_next_deadline_ms*(ctx: zen_context_t, out_ms: ptr uint64): zen_status_t {.importc, header: zenHeader.}
proc zen_context_add_peer*(ctx: zen_context_t, peer_id: uint64): zen_status_t {.importc, header: zenHeader.}
proc zen_context_remove_peer*(ctx: zen_context_t, peer_id: uint64): zen_status_t {.importc, header: zenHeader.}
proc zen_context_receive*(ctx: zen_context_t, data: ptr uint8, length: csize_t): zen_status_t {.importc, header: zenHeader.}
proc zen_context_receive_from*(ctx: zen_context_t, from_peer: uint64, data: ptr uint8, length: csize_t): zen_status_t {.importc, header: zenHeader.}
proc zen_context_poll_outbound*(ctx: zen_context_t, buf: ptr uint8, cap: csize_t, out_len: ptr csize_t, out_to: ptr uint64, out_has: ptr bool): zen_status_t {.importc, header: zenHeader.}
proc zen_context_poll_outbound_alloc*(ctx: zen_context_t, out_msg: ptr zen_bytes_t, out_to: ptr uint64, out_has: ptr bool): zen_status_t {.importc, header: zenHeader.}
proc zen_bytes_free*(bytes: ptr zen_bytes_t) {.importc, header: zenHeader.}
proc zen_value_create*(ctx: zen_context_t, id: cstring, id_len: csize_t, value_type: uint32, opts: ptr zen_value_options_t, out_value: ptr zen_value_t): zen_status_t {.importc, header: zenHeader.}
proc zen_value_open*(ctx: zen_context_t, id: cstring, id_len: csize_t, out_value: ptr zen_value_t): zen_status_t {.importc, header: zenHeader.}
proc zen_value_set_bool*(ctx: zen_context_t, value: zen_value_t, v: bool): zen_status_t {.importc, header: zenHeader.}
proc zen_value_get_bool*(ctx: zen_context_t, value: zen_value_t, out_v: ptr bool): zen_status_t {.importc, header: zenHeader.}
proc zen_value_set_i64*(ctx: zen_context_t, value: zen_value_t, v: int64): zen_status_t {.importc, header: zenHeader.}
proc zen_value_get_i64*(ctx: zen_context_t, value: zen_value_t, out_v: ptr int64): zen_status_t {.importc, header: zenHeader.}
proc zen_value_set_f64*(ctx: zen_context_t, value: zen_value_t, v: cdouble): zen_status_t {.importc, header: zenHeader.}
proc zen_value_get_f64*(ctx: zen_context_t, value: zen_value_t, out_v: ptr cdouble): zen_status_t {.importc, header: zenHeader.}
proc zen_value_set_string*(ctx: zen_context_t, value: zen_value_t, s: cstring, length: csize_t): zen_status_t {.importc, header: zenHeader.}
proc zen_value_get_string*(ctx: zen_context_t, value: zen_value_t, buf: cstring, cap: csize_t, out_len: ptr csize_t): zen_status_t {.importc, header: zenHeader.}
proc zen_value_set_bytes*(ctx: zen_context_t, value: zen_value_t, data: ptr uint8, length: csize_t): zen_status_t {.importc, header: zenHeader.}
proc zen_value_get_bytes*(ctx: zen_context_t, value: zen_value_t, buf: ptr uint8, cap: csize_t, out_len: ptr csize_t): zen_status_t {.importc, header: zenHeader.}
proc zen_value_set_vec2*(ctx: zen_context_t, value: zen_value_t, v: zen_vec2_t): zen_status_t {.importc, header: zenHeader.}
proc zen_value_get_vec2*(ctx: zen_context_t, value: zen_value_t, out_v: ptr zen_vec2_t): zen_status_t {.importc, header: zenHeader.}
proc zen_value_set_vec3*(ctx: zen_context_t, value: zen_value_t, v: zen_vec3_t): zen_status_t {.importc, header: zenHeader.}
proc zen_value_get_vec3*(ctx: zen_context_t, value: zen_value_t, out_v: ptr zen_vec3_t): zen_status_t {.importc, header: zenHeader.}
proc zen_value_set_vec4*(ctx: zen_context_t, value: zen_value_t, v: zen_vec4_t): zen_status_t {.importc, header: zenHeader.}
proc zen_value_get_vec4*(ctx: zen_context_t, value: zen_value_t, out_v: ptr zen_vec4_t): zen_status_t {.importc, header: zenHeader.}
proc zen_value_set_quat*(ctx: zen_context_t, value: zen_value_t, v: zen_quat_t): zen_status_t {.importc, header: zenHeader.}
proc zen_value_get_quat*(ctx: zen_context_t, value: zen_value_t, out_v: ptr zen_quat_t): zen_status_t {.importc, header: zenHeader.}
proc zen_value_set_color*(ctx: zen_context_t, value: zen_value_t, v: zen_color_t): zen_status_t {.importc, header: zenHeader.}
proc zen_value_get_color*(ctx: zen_context_t, value: zen_value_t, out_v: ptr zen_color_t): zen_status_t {.importc, header: zenHeader.}
proc zen_value_set_data*(ctx: zen_context_t, value: zen_value_t, data: ptr zen_value_data_t): zen_status_t {.importc, header: zenHeader.}
proc zen_value_remove*(ctx: zen_context_t, value: zen_value_t): zen_status_t {.importc, header: zenHeader.}
proc zen_value_touch*(ctx: zen_context_t, value: zen_value_t): zen_status_t {.importc, header: zenHeader.}
proc zen_value_is_local_only*(ctx: zen_context_t, value: zen_value_t, out_local_only: ptr bool): zen_status_t {.importc, header: zenHeader.}
proc zen_value_owner*(ctx: zen_context_t, value: zen_value_t, out_owner: ptr uint64): zen_status_t {.importc, header: zenHeader.}
proc zen_value_transfer*(ctx: zen_context_t, value: zen_value_t, to: uint64): zen_status_t {.importc, header: zenHeader.}
proc zen_value_set_mode*(ctx: zen_context_t, value: zen_value_t, mode: uint32): zen_status_t {.importc, header: zenHeader.}
proc zen_value_info*(ctx: zen_context_t, value: zen_value_t, out_type: ptr zen_value_type_t, out_mode: ptr zen_mode_t, out_policy: ptr zen_policy_t, out_state: ptr zen_sync_state_t): zen_status_t {.importc, header: zenHeader.}
proc zen_value_id*(ctx: zen_context_t, value: zen_value_t, buf: cstring, cap: csize_t, out_len: ptr csize_t): zen_status_t {.importc, header: zenHeader.}
proc zen_value_wait_converged*(ctx: zen_context_t, value: zen_value_t, timeout_ms: uint64): zen_status_t {.importc, header: zenHeader.}
proc zen_context_poll_change*(ctx: zen_context_t, out_change: ptr zen_change_t, out_has: ptr bool): zen_status_t {.importc, header: zenHeader.}
proc zen_table_options_default*(out_opts: ptr zen_table_options_t): zen_status_t {.importc, header: zenHeader.}
proc zen_table_open*(ctx: zen_context_t, id: cstring, id_len: csize_t, value_type: uint32, opts: ptr zen_table_options_t, out_table: ptr zen_table_t): zen_status_t {.importc, header: zenHeader.}
proc zen_table_owner*(ctx: zen_context_t, table: zen_table_t, out_owner: ptr uint64): zen_status_t {.importc, header: zenHeader.}
proc zen_table_transfer*(ctx: zen_context_t, table: zen_table_t, to: uint64): zen_status_t {.importc, header: zenHeader.}
proc zen_table_set*(ctx: zen_context_t, table: zen_table_t, key: ptr zen_key_t, data: ptr zen_value_data_t): zen_status_t {.importc, header: zenHeader.}
proc zen_table_touch*(ctx: zen_context_t, table: zen_table_t, key: ptr zen_key_t, data: ptr zen_value_data_t): zen_status_t {.importc, header: zenHeader.}
proc zen_table_remove*(ctx: zen_context_t, table: zen_table_t, key: ptr zen_key_t, out_removed: ptr bool): zen_status_t {.importc, header: zenHeader.}
proc zen_table_get*(ctx: zen_context_t, table: zen_table_t, key: ptr zen_key_t, out_data: ptr zen_value_data_t, out_has: ptr bool): zen_status_t {.importc, header: zenHeader.}
proc zen_table_len*(ctx: zen_context_t, table: zen_table_t, out_len: ptr csize_t): zen_status_t {.importc, header: zenHeader.}
proc zen_table_entries*(ctx: zen_context_t, table: zen_table_t, out_count: ptr csize_t): zen_status_t {.importc, header: zenHeader.}
proc zen_table_entry_at*(ctx: zen_context_t, index: csize_t, out_key: ptr zen_key_t, out_data: ptr zen_value_data_t): zen_status_t {.importc, header: zenHeader.}
proc zen_table_set_mode*(ctx: zen_context_t, table: zen_table_t, mode: uint32): zen_status_t {.importc, header: zenHeader.}
proc zen_set_open*(ctx: zen_context_t, id: cstring, id_len: csize_t, value_type: uint32, opts: ptr zen_table_options_t, out_set: ptr zen_table_t): zen_status_t {.importc, header: zenHeader.}
proc zen_set_add*(ctx: zen_context_t, set: zen_table_t, member: ptr zen_value_data_t): zen_status_t {.importc, header: zenHeader.}
proc zen_set_touch*(ctx: zen_context_t, set: zen_table_t, member: ptr zen_value_data_t): zen_status_t {.importc, header: zenHeader.}
proc zen_set_remove*(ctx: zen_context_t, set: zen_table_t, member: ptr zen_value_data_t, out_removed: ptr bool): zen_status_t {.importc, header: zenHeader.}
proc zen_set_contains*(ctx: zen_context_t, set: zen_table_t, member: ptr zen_value_data_t, out_contains: ptr bool): zen_status_t {.importc, header: zenHeader.}
proc zen_table_state*(ctx: zen_context_t, table: zen_table_t, out_state: ptr uint32): zen_status_t {.importc, header: zenHeader.}
proc zen_table_kind*(ctx: zen_context_t, table: zen_table_t, out_kind: ptr uint32): zen_status_t {.importc, header: zenHeader.}
proc zen_seq_open*(ctx: zen_context_t, id: cstring, id_len: csize_t, value_type: uint32, opts: ptr zen_table_options_t, out_seq: ptr zen_table_t): zen_status_t {.importc, header: zenHeader.}
proc zen_seq_insert*(ctx: zen_context_t, seq: zen_table_t, index: csize_t, item: ptr zen_value_data_t): zen_status_t {.importc, header: zenHeader.}
proc zen_seq_push*(ctx: zen_context_t, seq: zen_table_t, item: ptr zen_value_data_t): zen_status_t {.importc, header: zenHeader.}
proc zen_seq_set*(ctx: zen_context_t, seq: zen_table_t, index: csize_t, item: ptr zen_value_data_t): zen_status_t {.importc, header: zenHeader.}
proc zen_seq_remove*(ctx: zen_context_t, seq: zen_table_t, index: csize_t): zen_status_t {.importc, header: zenHeader.}
proc zen_seq_touch*(ctx: zen_context_t, seq: zen_table_t, index: csize_t): zen_status_t {.importc, header: zenHeader.}
proc zen_seq_move*(ctx: zen_context_t, seq: zen_table_t, `from`: csize_t, to: csize_t): zen_status_t {.importc, header: zenHeader.}
proc zen_seq_get*(ctx: zen_context_t, seq: zen_table_t, index: csize_t, out_item: ptr zen_value_data_t): zen_status_t {.importc, header: zenHeader.}
proc zen_context_poll_table_change*(ctx: zen_context_t, out_change: ptr zen_table_change_t, out_has: ptr bool): zen_status_t {.importc, header: zenHeader.}
proc zen_context_metrics*(ctx: zen_context_t, out_metrics: ptr zen_metrics_t): zen_status_t {.importc, header: zenHeader.}
proc zen_context_peer_lag*(ctx: zen_context_t, index: uint64, out_lag: ptr zen_peer_lag_t): zen_status_t {.importc, header: zenHeader.}
proc zen_context_register_merge*(ctx: zen_context_t, name: cstring, name_len: csize_t, merge: zen_merge_fn, user_data: pointer, cleanup: zen_free_fn): zen_status_t {.importc, header: zenHeader.}
proc zen_link_default*(out_link: ptr zen_link_t): zen_status_t {.importc, header: zenSimHeader.}
proc zen_bus_new*(out_bus: ptr zen_bus_t): zen_status_t {.importc, header: zenHeader.}
proc zen_bus_free*(bus: zen_bus_t) {.importc, header: zenHeader.}
proc zen_bus_join*(bus: zen_bus_t, peer_id: uint64, capacity: csize_t, out_endpoint: ptr zen_endpoint_t): zen_status_t {.importc, header: zenHeader.}
proc zen_endpoint_pump*(ctx: zen_context_t, endpoint: zen_endpoint_t, now_ms: uint64): zen_status_t {.importc, header: zenHeader.}
proc zen_endpoint_stats*(endpoint: zen_endpoint_t, out_stats: ptr zen_endpoint_stats_t): zen_status_t {.importc, header: zenHeader.}
proc zen_endpoint_free*(endpoint: zen_endpoint_t) {.importc, header: zenHeader.}
proc zen_enet_options_default*(out_opts: ptr zen_enet_options_t): zen_status_t {.importc, header: zenHeader.}
proc zen_enet_listen*(address: cstring, address_len: csize_t, peer_id: uint64, opts: ptr zen_enet_options_t, out_endpoint: ptr zen_endpoint_t): zen_status_t {.importc, header: zenHeader.}
proc zen_enet_connect*(host_addr: cstring, host_addr_len: csize_t, peer_id: uint64, opts: ptr zen_enet_options_t, out_endpoint: ptr zen_endpoint_t): zen_status_t {.importc, header: zenHeader.}
proc zen_endpoint_local_port*(endpoint: zen_endpoint_t, out_port: ptr uint16): zen_status_t {.importc, header: zenHeader.}
proc zen_enet_mesh*(address: cstring, address_len: csize_t, peer_id: uint64, opts: ptr zen_enet_options_t, out_endpoint: ptr zen_endpoint_t): zen_status_t {.importc, header: zenHeader.}
proc zen_endpoint_dial*(endpoint: zen_endpoint_t, address: cstring, address_len: csize_t): zen_status_t {.importc, header: zenHeader.}
proc zen_bus_join_relay*(bus: zen_bus_t, capacity: csize_t, out_endpoint: ptr zen_endpoint_t): zen_status_t {.importc, header: zenHeader.}
proc zen_enet_listen_relay*(address: cstring, address_len: csize_t, opts: ptr zen_enet_options_t, out_endpoint: ptr zen_endpoint_t): zen_status_t {.importc, header: zenHeader.}
proc zen_enet_connect_relay*(host_addr: cstring, host_addr_len: csize_t, opts: ptr zen_enet_options_t, out_endpoint: ptr zen_endpoint_t): zen_status_t {.importc, header: zenHeader.}
proc zen_bridge_start*(a: zen_endpoint_t, b: zen_endpoint_t, period_ms: uint32, out_bridge: ptr zen_bridge_t): zen_status_t {.importc, header: zenHeader.}
proc zen_bridge_stats*(bridge: zen_bridge_t, out_stats: ptr zen_bridge_stats_t): zen_status_t {.importc, header: zenHeader.}
proc zen_bridge_free*(bridge: zen_bridge_t) {.importc, header: zenHeader.}
proc zen_driver_start*(ctx: zen_context_t, endpoint: zen_endpoint_t, tick_ms: uint32, out_driver: ptr zen_driver_t): zen_status_t {.importc, header: zenHeader.}
proc zen_driver_check*(driver: zen_driver_t): zen_status_t {.importc, header: zenHeader.}
proc zen_driver_free*(driver: zen_driver_t) {.importc, header: zenHeader.}
proc zen_net_new*(seed: uint64, link: ptr zen_link_t, out_net: ptr zen_net_t): zen_status_t {.importc, header: zenSimHeader.}
proc zen_net_free*(net: zen_net_t) {.importc, header: zenSimHeader.}
proc zen_net_attach*(net: zen_net_t, ctx: zen_context_t, out_host: ptr uint32): zen_status_t {.importc, header: zenSimHeader.}
proc zen_net_set_online*(net: zen_net_t, host: uint32, online: bool): zen_status_t {.importc, header: zenSimHeader.}
proc zen_net_set_partition*(net: zen_net_t, groups: ptr uint32, count: csize_t): zen_status_t {.importc, header: zenSimHeader.}
proc zen_net_step*(net: zen_net_t, now_ms: uint64): zen_status_t {.importc, header: zenSimHeader.}
proc zen_net_stats*(net: zen_net_t, out_delivered: ptr uint64, out_dropped: ptr uint64): zen_status_t {.importc, header: zenSimHeader.}

/* C harness tests of the zen-crdt C API: contexts, handles, options, every value type,
 * sessions of contexts in one process, every mode, state, policy and correction, custom
 * merges, events, metrics and threads, with their error paths. Plain C99, also compiled
 * as C++17 (test_api_cpp.cpp) and against the static library, run by ctest one test per
 * process, under ASan+UBSan and valgrind in CI. The wire, the simulator and the handle
 * stress test have their own files. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "session.h"

/* ---- library ----------------------------------------------------------------------- */

static void test_version_matches_header(void) {
  CHECK(zen_version() == ((ZEN_VERSION_MAJOR << 16) | (ZEN_VERSION_MINOR << 8) | ZEN_VERSION_PATCH));
  CHECK(ZEN_VERSION_MAJOR == 1 && ZEN_PROTOCOL_VERSION >= 1);
}

static void test_status_names_and_last_error(void) {
  CHECK(strcmp(zen_status_name(ZEN_OK), "ZEN_OK") == 0);
  CHECK(strcmp(zen_status_name(ZEN_ERR_SENDER_MISMATCH), "ZEN_ERR_SENDER_MISMATCH") == 0);
  CHECK(strcmp(zen_status_name(ZEN_ERR_FORGED), "ZEN_ERR_FORGED") == 0);
  CHECK(strcmp(zen_status_name(-5), "ZEN_ERR_UNKNOWN") == 0);
  zen_context_t none = {0};
  CHECK_STATUS(zen_context_tick(none, 1), ZEN_ERR_INVALID_HANDLE);
  const char *msg = zen_last_error();
  CHECK(msg != NULL && strstr(msg, "context handle is 0") != NULL);
  CHECK(strchr(msg, '\n') == NULL);
  /* The buffer form gives the same message, without the NUL. */
  char buf[256];
  size_t n = 0;
  CHECK_OK(zen_last_error_message(buf, sizeof buf, &n));
  CHECK(n == strlen(msg) && memcmp(buf, msg, n) == 0);
  char small[2];
  CHECK_STATUS(zen_last_error_message(small, sizeof small, &n), ZEN_ERR_BUFFER_TOO_SMALL);
  CHECK(n == strlen(zen_last_error()) && strstr(zen_last_error(), "context handle is 0") != NULL);
}

static void *fail_on_other_thread(void *p) {
  (void)p;
  zen_context_t none = {0};
  if (zen_context_tick(none, 1) != ZEN_ERR_INVALID_HANDLE) abort();
  zen_value_options_t o;
  o.struct_size = 1;
  zen_value_t v;
  if (zen_value_create(none, "x", 1, ZEN_TYPE_I64, &o, &v) != ZEN_ERR_INVALID_ARGUMENT) abort();
  return NULL;
}

static void test_last_error_is_per_thread(void) {
  zen_context_t none = {0};
  CHECK_STATUS(zen_context_tick(none, 1), ZEN_ERR_INVALID_HANDLE);
  CHECK(strstr(last_error(), "context handle is 0") != NULL);
  zen_options_t o;
  CHECK_OK(zen_options_default(&o)); /* success leaves the message alone */
  CHECK(strstr(last_error(), "context handle is 0") != NULL);
  pthread_t th;
  CHECK(pthread_create(&th, NULL, fail_on_other_thread, NULL) == 0);
  CHECK(pthread_join(th, NULL) == 0);
  CHECK(strstr(last_error(), "context handle is 0") != NULL);
}

/* ---- options ------------------------------------------------------------------------ */

static void test_options_default_and_custom(void) {
  zen_options_t o;
  CHECK_OK(zen_options_default(&o));
  CHECK(o.struct_size == sizeof o && o.tick_interval_ms == 16 && o.max_message_bytes > 0);
  o.peer_timeout_ms = 5000;
  zen_context_t c = {0};
  CHECK_OK(zen_context_new(9, &o, &c));
  uint64_t id = 0;
  CHECK_OK(zen_context_peer_id(c, &id));
  CHECK(id == 9);
  o.tick_interval_ms = 0;
  zen_context_t bad = {0};
  CHECK_STATUS(zen_context_new(9, &o, &bad), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(bad.id == 0);
  CHECK(strstr(last_error(), "tick_interval_ms") != NULL);
  zen_context_free(c);
}

/* A struct_size below the 1.0 size (say, never set) is refused; a larger struct from a
 * newer header is accepted when the fields this library does not know are zero. */
static void test_option_struct_sizes(void) {
  zen_options_t o;
  CHECK_OK(zen_options_default(&o));
  zen_context_t c = {0};
  o.struct_size = 0;
  CHECK_STATUS(zen_context_new(1, &o, &c), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "struct_size") != NULL);
  o.struct_size = offsetof(zen_options_t, target_message_bytes) - 8;
  CHECK_STATUS(zen_context_new(1, &o, &c), ZEN_ERR_INVALID_ARGUMENT);
  /* A 1.0 caller's struct (without the 1.1 field) works; the field keeps its default. */
  o.struct_size = offsetof(zen_options_t, target_message_bytes);
  o.target_message_bytes = 99; /* beyond the caller's struct: never read */
  CHECK_OK(zen_context_new(1, &o, &c));
  zen_context_free(c);
  o.struct_size = sizeof o;
  struct {
    zen_options_t v1;
    uint64_t future_field;
  } newer;
  CHECK_OK(zen_options_default(&newer.v1));
  newer.v1.struct_size = sizeof newer;
  newer.future_field = 0;
  CHECK_OK(zen_context_new(1, &newer.v1, &c));
  zen_context_free(c);
  newer.future_field = 7;
  CHECK_STATUS(zen_context_new(1, &newer.v1, &c), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "does not know") != NULL);

  zen_context_t ctx = new_ctx(1);
  zen_value_options_t vo;
  CHECK_OK(zen_value_options_default(&vo));
  CHECK(vo.struct_size == sizeof vo && vo.mode == ZEN_MODE_FAST_LOCAL && vo.policy == ZEN_POLICY_LAST_WRITER_WINS);
  zen_value_t v = {0, 0};
  vo.struct_size = 3;
  CHECK_STATUS(zen_value_create(ctx, ID("x"), ZEN_TYPE_I64, &vo, &v), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(v.owner == 0);
  CHECK_OK(zen_value_create(ctx, ID("x"), ZEN_TYPE_I64, NULL, &v));
  zen_mode_t mode = ZEN_MODE_WAIT_FOR_SYNC;
  zen_policy_t policy = ZEN_POLICY_MAX;
  CHECK_OK(zen_value_info(ctx, v, NULL, &mode, &policy, NULL));
  CHECK(mode == ZEN_MODE_FAST_LOCAL && policy == ZEN_POLICY_LAST_WRITER_WINS);

  zen_metrics_t m;
  memset(&m, 0, sizeof m);
  CHECK_STATUS(zen_context_metrics(ctx, &m), ZEN_ERR_INVALID_ARGUMENT);
  m.struct_size = sizeof m;
  CHECK_OK(zen_context_metrics(ctx, &m));
  CHECK(m.struct_size == sizeof m && m.values == 1);
  zen_context_free(ctx);
}

static void test_bad_peer_ids(void) {
  zen_context_t c = {0};
  CHECK_STATUS(zen_context_new(0, NULL, &c), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_context_new((uint64_t)1 << 53, NULL, &c), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "peer id") != NULL);
  c = new_ctx(1);
  CHECK_STATUS(zen_context_add_peer(c, 0), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_context_add_peer(c, 1), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_context_remove_peer(c, 77), ZEN_ERR_UNKNOWN_PEER);
  zen_context_free(c);
}

static void test_null_arguments(void) {
  CHECK_STATUS(zen_context_new(1, NULL, NULL), ZEN_ERR_NULL_ARGUMENT);
  zen_context_t c = new_ctx(1);
  zen_value_t v = create(c, "x", ZEN_TYPE_VEC3, 0, 0);
  CHECK_STATUS(zen_value_get_vec3(c, v, NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_value_create(c, ID("y"), ZEN_TYPE_I64, NULL, NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_value_create(c, NULL, 3, ZEN_TYPE_I64, NULL, &v), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_context_receive(c, NULL, 10), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_context_receive_from(c, 2, NULL, 10), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_options_default(NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_value_options_default(NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_context_metrics(c, NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK(strstr(last_error(), "NULL") != NULL);
  zen_context_free(c);
}

/* ---- handles ----------------------------------------------------------------------- */

static void test_free_is_safe_on_zero_and_twice(void) {
  zen_context_t zero = {0};
  zen_context_free(zero);
  zen_context_t c = new_ctx(1);
  zen_context_free(c);
  zen_context_free(c);
  zen_bytes_free(NULL);
  zen_bytes_t empty = {NULL, 0};
  zen_bytes_free(&empty);
}

static void test_stale_context_handle(void) {
  zen_context_t c = new_ctx(1);
  zen_value_t v = create(c, "x", ZEN_TYPE_I64, 0, 0);
  zen_context_free(c);
  CHECK_STATUS(zen_context_tick(c, 16), ZEN_ERR_INVALID_HANDLE);
  CHECK(strstr(last_error(), "freed") != NULL);
  CHECK_STATUS(zen_value_set_i64(c, v, 1), ZEN_ERR_INVALID_HANDLE);
  zen_context_t again = new_ctx(2); /* may reuse the slot: the old handle stays dead */
  CHECK(again.id != c.id);
  CHECK_STATUS(zen_context_tick(c, 16), ZEN_ERR_INVALID_HANDLE);
  CHECK_STATUS(zen_value_set_i64(again, v, 1), ZEN_ERR_INVALID_HANDLE);
  zen_context_t made_up = {12345};
  CHECK_STATUS(zen_context_tick(made_up, 16), ZEN_ERR_INVALID_HANDLE);
  zen_context_free(again);
}

static void test_foreign_and_forged_value_handles(void) {
  zen_context_t a = new_ctx(1), b = new_ctx(2);
  zen_value_t va = create(a, "x", ZEN_TYPE_I64, 0, 0);
  zen_value_t vb = create(b, "x", ZEN_TYPE_I64, 0, 0);
  CHECK(!same_value(va, vb));
  CHECK_STATUS(zen_value_set_i64(b, va, 1), ZEN_ERR_INVALID_HANDLE);
  CHECK(strstr(last_error(), "another context") != NULL);
  zen_value_t zero = {0, 0};
  CHECK_STATUS(zen_value_set_i64(a, zero, 1), ZEN_ERR_INVALID_HANDLE);
  zen_value_t past_end = va;
  past_end.index += 1;
  CHECK_STATUS(zen_value_set_i64(a, past_end, 1), ZEN_ERR_INVALID_HANDLE);
  /* A value's owner number is not a context handle. */
  zen_context_t cast = {va.owner};
  CHECK_STATUS(zen_context_tick(cast, 16), ZEN_ERR_INVALID_HANDLE);
  zen_context_free(a);
  zen_context_free(b);
}

/* ---- values ------------------------------------------------------------------------ */

static void test_every_type_roundtrips(void) {
  zen_context_t c = new_ctx(1);
  zen_value_t b = create(c, "b", ZEN_TYPE_BOOL, 0, 0), i = create(c, "i", ZEN_TYPE_I64, 0, 0);
  zen_value_t f = create(c, "f", ZEN_TYPE_F64, 0, 0), s = create(c, "s", ZEN_TYPE_STRING, 0, 0);
  zen_value_t y = create(c, "y", ZEN_TYPE_BYTES, 0, 0), v2 = create(c, "v2", ZEN_TYPE_VEC2, 0, 0);
  zen_value_t v3 = create(c, "v3", ZEN_TYPE_VEC3, 0, 0), v4 = create(c, "v4", ZEN_TYPE_VEC4, 0, 0);
  zen_value_t q = create(c, "q", ZEN_TYPE_QUAT, 0, 0), col = create(c, "c", ZEN_TYPE_COLOR, 0, 0);
  zen_quat_t oq;
  CHECK_OK(zen_value_get_quat(c, q, &oq));
  CHECK(oq.x == 0 && oq.y == 0 && oq.z == 0 && oq.w == 1); /* never written: the identity */
  zen_vec2_t a2 = {1, 2};
  zen_vec3_t a3 = {1, 2, 3};
  zen_vec4_t a4 = {1, 2, 3, 4};
  zen_quat_t aq = {0, 0, 0.70710677f, 0.70710677f};
  zen_color_t ac = {0.1f, 0.2f, 0.3f, 1};
  const uint8_t raw[3] = {0, 255, 7};
  CHECK_OK(zen_value_set_bool(c, b, true));
  CHECK_OK(zen_value_set_i64(c, i, -7));
  CHECK_OK(zen_value_set_f64(c, f, 2.5));
  CHECK_OK(zen_value_set_string(c, s, ID("héllo")));
  CHECK_OK(zen_value_set_bytes(c, y, raw, 3));
  CHECK_OK(zen_value_set_vec2(c, v2, a2));
  CHECK_OK(zen_value_set_vec3(c, v3, a3));
  CHECK_OK(zen_value_set_vec4(c, v4, a4));
  CHECK_OK(zen_value_set_quat(c, q, aq));
  CHECK_OK(zen_value_set_color(c, col, ac));
  bool ob = false;
  int64_t oi = 0;
  double of = 0;
  char os[16];
  uint8_t oy[8];
  size_t n = 0;
  zen_vec2_t o2;
  zen_vec3_t o3;
  zen_vec4_t o4;
  zen_color_t oc;
  CHECK_OK(zen_value_get_bool(c, b, &ob));
  CHECK_OK(zen_value_get_i64(c, i, &oi));
  CHECK_OK(zen_value_get_f64(c, f, &of));
  CHECK(ob && oi == -7 && of == 2.5);
  CHECK_OK(zen_value_get_string(c, s, os, sizeof os, &n));
  CHECK(n == strlen("héllo") && memcmp(os, "héllo", n) == 0);
  CHECK_OK(zen_value_get_bytes(c, y, oy, sizeof oy, &n));
  CHECK(n == 3 && memcmp(oy, raw, 3) == 0);
  CHECK_OK(zen_value_get_vec2(c, v2, &o2));
  CHECK_OK(zen_value_get_vec3(c, v3, &o3));
  CHECK_OK(zen_value_get_vec4(c, v4, &o4));
  CHECK_OK(zen_value_get_quat(c, q, &oq));
  CHECK_OK(zen_value_get_color(c, col, &oc));
  CHECK(o2.y == 2 && o3.z == 3 && o4.w == 4 && oq.z == aq.z && oc.g == 0.2f);
  zen_value_type_t t = ZEN_TYPE_NONE;
  CHECK_OK(zen_value_info(c, col, &t, NULL, NULL, NULL));
  CHECK(t == ZEN_TYPE_COLOR);
  CHECK_OK(zen_value_info(c, q, &t, NULL, NULL, NULL));
  CHECK(t == ZEN_TYPE_QUAT);
  /* A quaternion is not a vec4: each reads and writes only its own type. */
  CHECK_STATUS(zen_value_get_vec4(c, q, &o4), ZEN_ERR_WRONG_TYPE);
  CHECK_STATUS(zen_value_set_quat(c, v4, aq), ZEN_ERR_WRONG_TYPE);
  /* The tagged form writes any type. */
  zen_value_data_t d;
  memset(&d, 0, sizeof d);
  d.value_type = ZEN_TYPE_QUAT;
  d.data.vec[3] = -1;
  CHECK_OK(zen_value_set_data(c, q, &d));
  CHECK_OK(zen_value_get_quat(c, q, &oq));
  CHECK(oq.w == -1);
  d.value_type = ZEN_TYPE_VEC4;
  CHECK_STATUS(zen_value_set_data(c, q, &d), ZEN_ERR_WRONG_TYPE);
  zen_context_free(c);
}

static void test_wrong_type_changes_nothing(void) {
  zen_context_t c = new_ctx(1);
  zen_value_t v = create(c, "pos", ZEN_TYPE_VEC3, 0, 0);
  CHECK_STATUS(zen_value_set_i64(c, v, 5), ZEN_ERR_WRONG_TYPE);
  CHECK(strstr(last_error(), "pos") != NULL);
  int64_t i = 0;
  CHECK_STATUS(zen_value_get_i64(c, v, &i), ZEN_ERR_WRONG_TYPE);
  zen_vec3_t o = {9, 9, 9};
  CHECK_OK(zen_value_get_vec3(c, v, &o));
  CHECK(o.x == 0 && o.y == 0 && o.z == 0);
  zen_value_t other = {0, 0};
  CHECK_STATUS(zen_value_create(c, ID("pos"), ZEN_TYPE_STRING, NULL, &other), ZEN_ERR_WRONG_TYPE);
  CHECK(other.owner == 0);
  zen_change_t ch;
  bool has = true;
  CHECK_OK(zen_context_poll_change(c, &ch, &has));
  CHECK(!has);
  zen_context_free(c);
}

static void test_invalid_utf8_is_refused(void) {
  zen_context_t c = new_ctx(1);
  const char bad[] = {'a', (char)0xff, 'b'};
  zen_value_t v = {0, 0};
  CHECK_STATUS(zen_value_create(c, bad, 3, ZEN_TYPE_I64, NULL, &v), ZEN_ERR_INVALID_UTF8);
  v = create(c, "s", ZEN_TYPE_STRING, 0, 0);
  CHECK_STATUS(zen_value_set_string(c, v, bad, 3), ZEN_ERR_INVALID_UTF8);
  CHECK(strstr(last_error(), "UTF-8") != NULL);
  zen_context_free(c);
}

static void test_invalid_enums_policies_and_ids(void) {
  zen_context_t c = new_ctx(1);
  zen_value_t v = {0, 0};
  zen_value_options_t o = value_opts(0, 0);
  CHECK_STATUS(zen_value_create(c, ID("x"), 42, &o, &v), ZEN_ERR_INVALID_ARGUMENT);
  o.mode = 7;
  CHECK_STATUS(zen_value_create(c, ID("x"), ZEN_TYPE_I64, &o, &v), ZEN_ERR_INVALID_ARGUMENT);
  o = value_opts(0, 99);
  CHECK_STATUS(zen_value_create(c, ID("x"), ZEN_TYPE_I64, &o, &v), ZEN_ERR_INVALID_ARGUMENT);
  o = value_opts(0, ZEN_POLICY_CUSTOM); /* without a name */
  CHECK_STATUS(zen_value_create(c, ID("x"), ZEN_TYPE_I64, &o, &v), ZEN_ERR_INVALID_ARGUMENT);
  o = value_opts(0, ZEN_POLICY_TAKE_AVERAGE);
  CHECK_STATUS(zen_value_create(c, ID("x"), ZEN_TYPE_STRING, &o, &v), ZEN_ERR_INVALID_ARGUMENT);
  /* Max and Min of rotations are not rotations: refused for quaternions, with a reason. */
  o = value_opts(0, ZEN_POLICY_MAX);
  CHECK_STATUS(zen_value_create(c, ID("rot"), ZEN_TYPE_QUAT, &o, &v), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "Max") != NULL && strstr(last_error(), "Quat") != NULL);
  o = value_opts(0, ZEN_POLICY_MIN);
  CHECK_STATUS(zen_value_create(c, ID("rot"), ZEN_TYPE_QUAT, &o, &v), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_value_create(c, "", 0, ZEN_TYPE_I64, NULL, &v), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(v.owner == 0);
  v = create(c, "x", ZEN_TYPE_I64, 0, 0);
  CHECK_STATUS(zen_value_set_mode(c, v, 5), ZEN_ERR_INVALID_ARGUMENT);
  zen_value_t missing = {0, 0};
  CHECK_STATUS(zen_value_open(c, ID("nope"), &missing), ZEN_ERR_UNKNOWN_VALUE);
  CHECK(missing.owner == 0);
  zen_metrics_t m = metrics_of(c);
  CHECK(m.values == 1);
  zen_context_free(c);
}

static void test_small_buffers_report_needed_size(void) {
  zen_context_t c = new_ctx(1);
  zen_value_t v = create(c, "greeting", ZEN_TYPE_STRING, 0, 0);
  CHECK_OK(zen_value_set_string(c, v, ID("hello world")));
  char small[4];
  size_t n = 0;
  CHECK_STATUS(zen_value_get_string(c, v, small, sizeof small, &n), ZEN_ERR_BUFFER_TOO_SMALL);
  CHECK(n == 11);
  CHECK_STATUS(zen_value_id(c, v, small, sizeof small, &n), ZEN_ERR_BUFFER_TOO_SMALL);
  CHECK(n == 8);
  char id[16];
  CHECK_OK(zen_value_id(c, v, id, sizeof id, &n));
  CHECK(n == 8 && memcmp(id, "greeting", 8) == 0);
  zen_context_free(c);
}

static void test_empty_bytes_with_null_pointer(void) {
  zen_context_t c = new_ctx(1);
  zen_value_t v = create(c, "blob", ZEN_TYPE_BYTES, 0, 0);
  CHECK_OK(zen_value_set_bytes(c, v, NULL, 0));
  CHECK_STATUS(zen_value_set_bytes(c, v, NULL, 4), ZEN_ERR_NULL_ARGUMENT);
  size_t n = 99;
  CHECK_OK(zen_value_get_bytes(c, v, NULL, 0, &n));
  CHECK(n == 0);
  zen_context_free(c);
}

static void test_oversized_value_is_refused(void) {
  zen_options_t o;
  CHECK_OK(zen_options_default(&o));
  zen_context_t c = {0};
  CHECK_OK(zen_context_new(1, &o, &c));
  zen_value_t v = create(c, "blob", ZEN_TYPE_BYTES, 0, 0);
  size_t big = (size_t)o.max_value_bytes + 1;
  uint8_t *data = (uint8_t *)calloc(big, 1);
  CHECK_STATUS(zen_value_set_bytes(c, v, data, big), ZEN_ERR_TOO_LARGE);
  free(data);
  zen_context_free(c);
}

/* ---- sync ---------------------------------------------------------------------------- */

static void test_two_contexts_converge(void) {
  session s;
  session_open(&s, 2);
  zen_value_t a = create(s.ctx[0], "unit/1/pos", ZEN_TYPE_VEC3, 0, 0);
  zen_vec3_t p = {1, 2, 3};
  CHECK_OK(zen_value_set_vec3(s.ctx[0], a, p));
  CHECK(state_of(s.ctx[0], a) == ZEN_STATE_LOCAL_ONLY);
  session_run(&s, 10);
  zen_value_t b = open_value(s.ctx[1], "unit/1/pos");
  zen_vec3_t got;
  CHECK_OK(zen_value_get_vec3(s.ctx[1], b, &got));
  CHECK(got.x == 1 && got.y == 2 && got.z == 3);
  CHECK(state_of(s.ctx[0], a) == ZEN_STATE_CONVERGED);
  CHECK(state_of(s.ctx[1], b) == ZEN_STATE_CONVERGED);
  session_close(&s);
}

static void test_eight_contexts_converge(void) {
  session s;
  session_open(&s, 8);
  for (size_t i = 0; i < 8; i++) {
    zen_value_t v = create(s.ctx[i], "score", ZEN_TYPE_I64, 0, ZEN_POLICY_MAX);
    CHECK_OK(zen_value_set_i64(s.ctx[i], v, (int64_t)(i * 10)));
  }
  session_run(&s, 20);
  for (size_t i = 0; i < 8; i++) {
    int64_t v = -1;
    zen_value_t h = open_value(s.ctx[i], "score");
    CHECK_OK(zen_value_get_i64(s.ctx[i], h, &v));
    CHECK(v == 70);
    CHECK(state_of(s.ctx[i], h) == ZEN_STATE_CONVERGED);
  }
  session_close(&s);
}

static void test_local_write_event_at_once(void) {
  zen_context_t c = new_ctx(1);
  zen_value_t v = create(c, "pos", ZEN_TYPE_VEC3, 0, 0);
  zen_vec3_t p = {4, 5, 6};
  CHECK_OK(zen_value_set_vec3(c, v, p));
  zen_change_t ch;
  bool has = false;
  CHECK_OK(zen_context_poll_change(c, &ch, &has));
  CHECK(has && same_value(ch.value, v) && ch.kind == ZEN_CHANGE_MODIFIED && ch.origin == 1);
  CHECK(ch.state == ZEN_STATE_LOCAL_ONLY && !ch.is_correction);
  CHECK(ch.new_value.value_type == ZEN_TYPE_VEC3 && ch.new_value.data.vec[2] == 6);
  CHECK(ch.old_value.value_type == ZEN_TYPE_NONE); /* never written before */
  zen_context_free(c);
}

static void test_remote_creation_event_borrows_string(void) {
  session s;
  session_open(&s, 2);
  zen_value_t v = create(s.ctx[0], "player/name", ZEN_TYPE_STRING, 0, 0);
  CHECK_OK(zen_value_set_string(s.ctx[0], v, ID("zen")));
  session_run(&s, 4);
  zen_change_t ch;
  bool has = false;
  CHECK_OK(zen_context_poll_change(s.ctx[1], &ch, &has));
  CHECK(has && ch.kind == ZEN_CHANGE_CREATED && ch.origin == 1);
  CHECK(ch.new_value.value_type == ZEN_TYPE_STRING);
  CHECK(ch.new_value.data.bytes.len == 3 && memcmp(ch.new_value.data.bytes.ptr, "zen", 3) == 0);
  char id[32];
  size_t n = 0;
  CHECK_OK(zen_value_id(s.ctx[1], ch.value, id, sizeof id, &n));
  CHECK(n == 11 && memcmp(id, "player/name", 11) == 0);
  session_close(&s);
}

/* A peer that first sees a rotation through a remote creation gets a quaternion. */
static void test_remote_quaternion_is_a_quaternion(void) {
  session s;
  session_open(&s, 2);
  zen_value_t v = create(s.ctx[0], "unit/1/rot", ZEN_TYPE_QUAT, 0, 0);
  zen_quat_t q = {0, 0.6f, 0, 0.8f};
  CHECK_OK(zen_value_set_quat(s.ctx[0], v, q));
  session_run(&s, 4);
  zen_change_t ch;
  bool has = false;
  CHECK_OK(zen_context_poll_change(s.ctx[1], &ch, &has));
  CHECK(has && ch.kind == ZEN_CHANGE_CREATED && ch.new_value.value_type == ZEN_TYPE_QUAT);
  CHECK(ch.new_value.data.vec[1] == 0.6f && ch.new_value.data.vec[3] == 0.8f);
  zen_value_type_t t = ZEN_TYPE_NONE;
  CHECK_OK(zen_value_info(s.ctx[1], ch.value, &t, NULL, NULL, NULL));
  CHECK(t == ZEN_TYPE_QUAT);
  session_close(&s);
}

static void test_wait_for_sync_reads_acknowledged_value(void) {
  session s;
  session_open(&s, 3);
  zen_value_t v = create(s.ctx[0], "score", ZEN_TYPE_I64, ZEN_MODE_WAIT_FOR_SYNC, 0);
  session_run(&s, 5);
  CHECK_OK(zen_value_set_i64(s.ctx[0], v, 10));
  int64_t got = -1;
  CHECK_OK(zen_value_get_i64(s.ctx[0], v, &got));
  CHECK(got == 0);
  session_run(&s, 1);
  CHECK_OK(zen_value_get_i64(s.ctx[0], v, &got));
  CHECK(got == 0);
  session_run(&s, 5);
  CHECK_OK(zen_value_get_i64(s.ctx[0], v, &got));
  CHECK(got == 10);
  CHECK(state_of(s.ctx[0], v) == ZEN_STATE_CONVERGED);
  zen_metrics_t m = metrics_of(s.ctx[0]);
  CHECK(m.converge_ms_p50 != UINT64_MAX);
  session_close(&s);
}

static void test_mode_switch(void) {
  session s;
  session_open(&s, 2);
  zen_value_t v = create(s.ctx[0], "x", ZEN_TYPE_F64, 0, 0);
  CHECK_OK(zen_value_set_f64(s.ctx[0], v, 1.0));
  session_run(&s, 6);
  CHECK_OK(zen_value_set_f64(s.ctx[0], v, 2.0));
  CHECK_OK(zen_value_set_mode(s.ctx[0], v, ZEN_MODE_WAIT_FOR_SYNC));
  double got = 0;
  CHECK_OK(zen_value_get_f64(s.ctx[0], v, &got));
  CHECK(got == 1.0);
  zen_mode_t mode = ZEN_MODE_FAST_LOCAL;
  CHECK_OK(zen_value_info(s.ctx[0], v, NULL, &mode, NULL, NULL));
  CHECK(mode == ZEN_MODE_WAIT_FOR_SYNC);
  CHECK_OK(zen_value_set_mode(s.ctx[0], v, ZEN_MODE_FAST_LOCAL));
  CHECK_OK(zen_value_get_f64(s.ctx[0], v, &got));
  CHECK(got == 2.0);
  session_close(&s);
}

/* Both peers write in the same tick; returns peer 1's final i64 (INT64_MIN if the peers
 * disagree) and counts corrections. */
static int64_t concurrent(uint32_t policy, int64_t a, int64_t b, int *corrections) {
  session s;
  session_open(&s, 2);
  zen_value_t va = create(s.ctx[0], "v", ZEN_TYPE_I64, 0, policy);
  session_run(&s, 6);
  zen_value_t vb = open_value(s.ctx[1], "v");
  drain_changes(s.ctx[0]);
  MUST(zen_value_set_i64(s.ctx[0], va, a));
  MUST(zen_value_set_i64(s.ctx[1], vb, b));
  *corrections = 0;
  for (int t = 0; t < 10; t++) {
    session_run(&s, 1);
    for (size_t i = 0; i < 2; i++) {
      zen_change_t ch;
      bool has = true;
      for (;;) {
        MUST(zen_context_poll_change(s.ctx[i], &ch, &has));
        if (!has) break;
        if (ch.is_correction && ch.state == ZEN_STATE_CONFLICTED) (*corrections)++;
      }
    }
  }
  int64_t x = 0, y = 1;
  MUST(zen_value_get_i64(s.ctx[0], va, &x));
  MUST(zen_value_get_i64(s.ctx[1], vb, &y));
  session_close(&s);
  return x == y ? x : INT64_MIN;
}

static void test_policies_resolve_concurrent_writes(void) {
  int corr = 0;
  CHECK(concurrent(ZEN_POLICY_MAX, 9, 2, &corr) == 9);
  CHECK(concurrent(ZEN_POLICY_MIN, 9, 2, &corr) == 2);
  CHECK(concurrent(ZEN_POLICY_TAKE_AVERAGE, 10, 20, &corr) == 15);
  CHECK(corr == 2);
}

static void test_lww_correction_event(void) {
  int corr = 0;
  int64_t v = concurrent(ZEN_POLICY_LAST_WRITER_WINS, 1, 2, &corr);
  CHECK(v == 1 || v == 2);
  CHECK(corr == 1);
}

/* Identity and 90 degrees about Z, written concurrently, average to 45 degrees about Z
 * on both peers: a rotation, not the component-wise mean of two 4-vectors. */
static void test_quaternion_average_is_a_rotation(void) {
  session s;
  session_open(&s, 2);
  zen_value_t qa = create(s.ctx[0], "rot", ZEN_TYPE_QUAT, 0, ZEN_POLICY_TAKE_AVERAGE);
  session_run(&s, 6);
  zen_value_t qb = open_value(s.ctx[1], "rot");
  zen_quat_t identity = {0, 0, 0, 1};
  zen_quat_t z90 = {0, 0, -0.70710677f, -0.70710677f}; /* written as -q: the same rotation */
  CHECK_OK(zen_value_set_quat(s.ctx[0], qa, identity));
  CHECK_OK(zen_value_set_quat(s.ctx[1], qb, z90));
  session_run(&s, 10);
  zen_quat_t a, b;
  CHECK_OK(zen_value_get_quat(s.ctx[0], qa, &a));
  CHECK_OK(zen_value_get_quat(s.ctx[1], qb, &b));
  CHECK(memcmp(&a, &b, sizeof a) == 0);
  double half = 22.5 * 3.14159265358979 / 180.0;
  CHECK(fabs(a.x) < 1e-6 && fabs(a.y) < 1e-6);
  CHECK(fabs(fabs(a.z) - sin(half)) < 1e-5 && fabs(fabs(a.w) - cos(half)) < 1e-5);
  CHECK(fabs(a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w - 1.0) < 1e-5);
  session_close(&s);
}

/* ---- custom merges -------------------------------------------------------------------- */

static int merges_called = 0;
static int cleanups_called = 0;
static int32_t merge_result = 0;
static zen_status_t reentry_status = ZEN_OK;
static zen_context_t reentry_ctx = {0};

static int32_t sum_merge(void *user, const zen_candidate_t *c, size_t n, zen_value_data_t *out) {
  int64_t total = *(int64_t *)user;
  for (size_t i = 0; i < n; i++) total += c[i].value.data.i;
  merges_called++;
  if (reentry_ctx.id) {
    reentry_status = zen_context_tick(reentry_ctx, 1);
    zen_context_free(reentry_ctx); /* refused: the context is in use (no deadlock) */
  }
  out->value_type = ZEN_TYPE_I64;
  out->data.i = total;
  return merge_result;
}

static void count_cleanup(void *user) {
  (void)user;
  cleanups_called++;
}

/* Creates value "v" (i64) on `c` under the custom merge "sum". */
static zen_value_t create_summed(zen_context_t c) {
  zen_value_options_t o = value_opts(0, ZEN_POLICY_CUSTOM);
  o.custom_name = "sum";
  o.custom_name_len = 3;
  zen_value_t v = {0, 0};
  MUST(zen_value_create(c, ID("v"), ZEN_TYPE_I64, &o, &v));
  return v;
}

/* Two peers with `sum_merge` under "sum" write 3 and 4 concurrently; returns what peer 1
 * reads (INT64_MIN if the peers disagree) and the fallbacks counted. */
static int64_t custom_merge_session(int64_t bonus_value, uint64_t *fallbacks) {
  static int64_t bonus;
  bonus = bonus_value;
  session s;
  session_open(&s, 2);
  for (size_t i = 0; i < 2; i++) MUST(zen_context_register_merge(s.ctx[i], ID("sum"), sum_merge, &bonus, count_cleanup));
  zen_value_t va = create_summed(s.ctx[0]);
  session_run(&s, 6);
  zen_value_t vb = open_value(s.ctx[1], "v");
  MUST(zen_value_set_i64(s.ctx[0], va, 3));
  MUST(zen_value_set_i64(s.ctx[1], vb, 4));
  session_run(&s, 10);
  int64_t x = 0, y = 0;
  MUST(zen_value_get_i64(s.ctx[0], va, &x));
  MUST(zen_value_get_i64(s.ctx[1], vb, &y));
  *fallbacks = metrics_of(s.ctx[0]).merge_fallbacks + metrics_of(s.ctx[1]).merge_fallbacks;
  session_close(&s);
  return x == y ? x : INT64_MIN;
}

/* A merge returns 0 when it merged; any other value (42, -1) is a failure and
 * last-writer-wins decides, on every peer alike, counted in merge_fallbacks. */
static void test_custom_merge_results(void) {
  uint64_t fallbacks = 0;
  merge_result = 0;
  merges_called = 0;
  cleanups_called = 0;
  CHECK(custom_merge_session(100, &fallbacks) == 107);
  CHECK(merges_called > 0 && fallbacks == 0);
  CHECK(cleanups_called == 2);
  int32_t failures[2] = {42, -1};
  for (int k = 0; k < 2; k++) {
    merge_result = failures[k];
    merges_called = 0;
    int64_t v = custom_merge_session(100, &fallbacks);
    CHECK(v == 3 || v == 4); /* one of the writes, the same on both peers */
    CHECK(merges_called > 0 && fallbacks > 0);
  }
  merge_result = 0;
}

static void test_custom_merge_errors_and_cleanup(void) {
  static int64_t bonus = 0;
  zen_context_t c = new_ctx(1);
  cleanups_called = 0;
  CHECK_STATUS(zen_context_register_merge(c, ID("sum"), NULL, NULL, NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_context_register_merge(c, "", 0, sum_merge, &bonus, count_cleanup), ZEN_ERR_INVALID_ARGUMENT);
  zen_context_t none = {0};
  CHECK_STATUS(zen_context_register_merge(none, ID("sum"), sum_merge, &bonus, count_cleanup), ZEN_ERR_INVALID_HANDLE);
  CHECK(cleanups_called == 0); /* a failed call takes nothing over */
  CHECK_OK(zen_context_register_merge(c, ID("sum"), sum_merge, &bonus, count_cleanup));
  CHECK_OK(zen_context_register_merge(c, ID("sum"), sum_merge, &bonus, count_cleanup));
  CHECK(cleanups_called == 1); /* replaced */
  zen_value_t v = create_summed(c);
  zen_policy_t p = ZEN_POLICY_MAX;
  CHECK_OK(zen_value_info(c, v, NULL, NULL, &p, NULL));
  CHECK(p == ZEN_POLICY_CUSTOM);
  zen_context_free(c);
  CHECK(cleanups_called == 2);
}

static void test_callbacks_cannot_reenter(void) {
  static int64_t zero = 0;
  session s;
  session_open(&s, 2);
  for (size_t i = 0; i < 2; i++) CHECK_OK(zen_context_register_merge(s.ctx[i], ID("sum"), sum_merge, &zero, NULL));
  zen_value_t va = create_summed(s.ctx[0]);
  session_run(&s, 6);
  zen_value_t vb = open_value(s.ctx[1], "v");
  reentry_ctx = s.ctx[0];
  merges_called = 0;
  merge_result = 0;
  CHECK_OK(zen_value_set_i64(s.ctx[0], va, 1));
  CHECK_OK(zen_value_set_i64(s.ctx[1], vb, 2));
  session_run(&s, 10);
  reentry_ctx.id = 0;
  CHECK(merges_called > 0);
  CHECK(reentry_status == ZEN_ERR_REENTRANT);
  CHECK(strstr(last_error(), "callback") != NULL);
  CHECK_OK(zen_context_tick(s.ctx[0], s.now + 16)); /* the free inside was refused */
  session_close(&s);
}

static void test_removal_replicates(void) {
  session s;
  session_open(&s, 2);
  zen_value_t v = create(s.ctx[0], "door", ZEN_TYPE_BOOL, 0, 0);
  CHECK_OK(zen_value_set_bool(s.ctx[0], v, true));
  session_run(&s, 6);
  CHECK_OK(zen_value_remove(s.ctx[0], v));
  bool b = false;
  CHECK_STATUS(zen_value_get_bool(s.ctx[0], v, &b), ZEN_ERR_REMOVED);
  session_run(&s, 6);
  CHECK_STATUS(zen_value_get_bool(s.ctx[1], open_value(s.ctx[1], "door"), &b), ZEN_ERR_REMOVED);
  session_close(&s);
}

static void test_late_joiner_catches_up(void) {
  session s;
  session_open(&s, 2);
  zen_value_t v = create(s.ctx[0], "level/seed", ZEN_TYPE_I64, 0, 0);
  CHECK_OK(zen_value_set_i64(s.ctx[0], v, 1234));
  session_run(&s, 6);
  zen_context_t late = new_ctx(3);
  CHECK_OK(zen_context_add_peer(late, 1));
  CHECK_OK(zen_context_add_peer(late, 2));
  CHECK_OK(zen_context_add_peer(s.ctx[0], 3));
  CHECK_OK(zen_context_add_peer(s.ctx[1], 3));
  s.ctx[2] = late;
  s.n = 3;
  session_run(&s, 10);
  int64_t got = 0;
  CHECK_OK(zen_value_get_i64(late, open_value(late, "level/seed"), &got));
  CHECK(got == 1234);
  session_close(&s);
}

static void test_outbound_small_buffer_keeps_message(void) {
  zen_context_t a = new_ctx(1);
  CHECK_OK(zen_context_add_peer(a, 2));
  zen_value_t v = create(a, "x", ZEN_TYPE_I64, 0, 0);
  CHECK_OK(zen_value_set_i64(a, v, 1));
  CHECK_OK(zen_context_tick(a, 16));
  uint8_t tiny[4];
  size_t len = 0;
  uint64_t to = 7;
  bool has = false;
  CHECK_STATUS(zen_context_poll_outbound(a, tiny, sizeof tiny, &len, &to, &has), ZEN_ERR_BUFFER_TOO_SMALL);
  CHECK(len > sizeof tiny);
  uint8_t *buf = (uint8_t *)malloc(len);
  size_t need = len;
  CHECK_OK(zen_context_poll_outbound(a, buf, need, &len, &to, &has));
  CHECK(has && to == 0 && len == need);
  free(buf);
  CHECK_OK(zen_context_poll_outbound(a, tiny, sizeof tiny, &len, &to, &has));
  CHECK(!has);
  zen_context_free(a);
}

static void test_outbound_alloc_and_double_free(void) {
  zen_context_t a = new_ctx(1);
  CHECK_OK(zen_context_add_peer(a, 2));
  zen_value_t v = create(a, "x", ZEN_TYPE_I64, 0, 0);
  CHECK_OK(zen_value_set_i64(a, v, 1));
  CHECK_OK(zen_context_tick(a, 16));
  zen_bytes_t msg;
  uint64_t to = 9;
  bool has = false;
  CHECK_OK(zen_context_poll_outbound_alloc(a, &msg, &to, &has));
  CHECK(has && msg.ptr != NULL && msg.len > 0 && to == 0);
  zen_bytes_free(&msg);
  CHECK(msg.ptr == NULL && msg.len == 0);
  zen_bytes_free(&msg);
  CHECK_OK(zen_context_poll_outbound_alloc(a, &msg, &to, &has));
  CHECK(!has && msg.ptr == NULL);
  zen_context_free(a);
}

static void test_metrics_and_peer_lag(void) {
  session s;
  session_open(&s, 3);
  zen_value_t v = create(s.ctx[0], "x", ZEN_TYPE_I64, 0, 0);
  CHECK_OK(zen_value_set_i64(s.ctx[0], v, 1));
  session_run(&s, 8);
  zen_metrics_t m = metrics_of(s.ctx[0]);
  CHECK(m.messages_out > 0 && m.bytes_out > 0 && m.messages_in > 0 && m.writes_flushed == 1);
  CHECK(m.peers == 2 && m.values == 1 && m.messages_rejected == 0 && m.messages_forged == 0);
  zen_peer_lag_t lag;
  CHECK_OK(zen_context_peer_lag(s.ctx[0], 0, &lag));
  CHECK(lag.peer == 2 && lag.active && lag.unacked_messages == 0);
  CHECK_STATUS(zen_context_peer_lag(s.ctx[0], 2, &lag), ZEN_ERR_INVALID_ARGUMENT);
  m = metrics_of(s.ctx[1]);
  CHECK(m.updates_applied >= 1);
  session_close(&s);
}

/* A 1.0 caller's zen_metrics_t (without the 1.1 counter) is filled as far as it goes. */
/* target_message_bytes: 0 or 256..=max_message_bytes; when set, a tick's 300 writes
 * leave as several messages, each within the target. */
static void test_target_message_bytes(void) {
  zen_options_t o;
  CHECK_OK(zen_options_default(&o));
  CHECK(o.target_message_bytes == 0);
  zen_context_t c = {0};
  o.target_message_bytes = 100;
  CHECK_STATUS(zen_context_new(1, &o, &c), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "target_message_bytes") != NULL);
  o.target_message_bytes = o.max_message_bytes + 1;
  CHECK_STATUS(zen_context_new(1, &o, &c), ZEN_ERR_INVALID_ARGUMENT);
  o.target_message_bytes = 1200;
  CHECK_OK(zen_context_new(1, &o, &c));
  CHECK_OK(zen_context_add_peer(c, 2));
  for (int k = 0; k < 300; k++) {
    char id[32];
    int n = snprintf(id, sizeof id, "entity/%d", k);
    zen_value_t v;
    CHECK_OK(zen_value_create(c, id, (size_t)n, ZEN_TYPE_VEC3, NULL, &v));
    zen_vec3_t pos = {(float)k, 1.0f, 2.0f};
    CHECK_OK(zen_value_set_vec3(c, v, pos));
  }
  CHECK_OK(zen_context_tick(c, 16));
  int messages = 0;
  for (;;) {
    uint8_t buf[4096];
    size_t len = 0;
    uint64_t to = 0;
    bool has = false;
    CHECK_OK(zen_context_poll_outbound(c, buf, sizeof buf, &len, &to, &has));
    if (!has) break;
    CHECK(len <= 1200);
    messages++;
  }
  CHECK(messages >= 5);
  zen_context_free(c);
}

static void test_metrics_older_struct_size(void) {
  zen_context_t c = new_ctx(1);
  zen_metrics_t m;
  memset(&m, 0xAB, sizeof m);
  m.struct_size = offsetof(zen_metrics_t, rejected_updates);
  CHECK_OK(zen_context_metrics(c, &m));
  CHECK(m.struct_size == offsetof(zen_metrics_t, rejected_updates) && m.peers == 0);
  uint64_t untouched;
  memset(&untouched, 0xAB, sizeof untouched);
  CHECK(m.rejected_updates == untouched);
  m = metrics_of(c);
  CHECK(m.struct_size == sizeof m && m.rejected_updates == 0);
  zen_context_free(c);
}

static void test_next_deadline_errors_and_idle(void) {
  uint64_t at = 0;
  zen_context_t none = {0};
  CHECK_STATUS(zen_context_next_deadline_ms(none, &at), ZEN_ERR_INVALID_HANDLE);
  zen_context_t c = new_ctx(1);
  CHECK_STATUS(zen_context_next_deadline_ms(c, NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_OK(zen_context_next_deadline_ms(c, &at));
  CHECK(at == ZEN_NO_DEADLINE);
  zen_value_t v = create(c, "x", ZEN_TYPE_I64, ZEN_MODE_FAST_LOCAL, ZEN_POLICY_LAST_WRITER_WINS);
  CHECK_OK(zen_value_set_i64(c, v, 1));
  CHECK_OK(zen_context_tick(c, 100));
  CHECK_OK(zen_value_set_i64(c, v, 2));
  CHECK_OK(zen_context_next_deadline_ms(c, &at));
  CHECK(at == 100); /* a pending write: tick now */
  CHECK_OK(zen_context_tick(c, 116));
  CHECK_OK(zen_context_next_deadline_ms(c, &at));
  CHECK(at > 116 && at != ZEN_NO_DEADLINE); /* the idle value hibernates later */
  CHECK_OK(zen_context_add_peer(c, 2));
  uint64_t with_peer = 0;
  CHECK_OK(zen_context_next_deadline_ms(c, &with_peer));
  CHECK(with_peer == 116); /* a new member: tick now */
  zen_context_free(c);
  CHECK_STATUS(zen_context_next_deadline_ms(c, &at), ZEN_ERR_INVALID_HANDLE);
}

/* Two hosts that tick only when a deadline is due or a message arrived, 1 ms resolution:
 * they converge as hosts ticking every frame do, with far fewer ticks. */
static void test_ticking_only_at_deadlines_converges(void) {
  static uint8_t buf[1 << 16];
  zen_context_t c[2] = {new_ctx(1), new_ctx(2)};
  MUST(zen_context_add_peer(c[0], 2));
  MUST(zen_context_add_peer(c[1], 1));
  zen_value_t v = create(c[0], "hp", ZEN_TYPE_I64, ZEN_MODE_WAIT_FOR_SYNC, ZEN_POLICY_LAST_WRITER_WINS);
  int ticks = 0;
  bool got[2] = {false, false};
  for (uint64_t now = 1; now <= 5000; now++) {
    if (now % 500 == 0 && now <= 3000) CHECK_OK(zen_value_set_i64(c[0], v, (int64_t)now));
    for (int i = 0; i < 2; i++) {
      uint64_t at = 0;
      CHECK_OK(zen_context_next_deadline_ms(c[i], &at));
      if (!got[i] && at > now) continue;
      got[i] = false;
      ticks++;
      CHECK_OK(zen_context_tick(c[i], now));
      for (;;) {
        size_t len = 0;
        uint64_t to = 0;
        bool has = false;
        CHECK_OK(zen_context_poll_outbound(c[i], buf, sizeof buf, &len, &to, &has));
        if (!has) break;
        CHECK_OK(zen_context_receive_from(c[1 - i], (uint64_t)i + 1, buf, len));
        got[1 - i] = true;
      }
    }
  }
  zen_value_t w = open_value(c[1], "hp");
  int64_t x = 0;
  CHECK_OK(zen_value_get_i64(c[1], w, &x));
  CHECK(x == 3000);
  CHECK(state_of(c[0], v) == ZEN_STATE_CONVERGED && state_of(c[1], w) == ZEN_STATE_CONVERGED);
  CHECK(ticks < 2 * 5000 / 10); /* every frame at 1 ms would be 10000 ticks */
  zen_context_free(c[0]);
  zen_context_free(c[1]);
}

/* ---- threads --------------------------------------------------------------------------- */

typedef struct {
  zen_context_t game, peer;
  volatile int stop;
  int received;
  int failures;
} net_args;

/* The "network thread": moves messages both ways while the game thread writes/ticks. */
static void *network_thread(void *p) {
  net_args *a = (net_args *)p;
  uint8_t *buf = (uint8_t *)malloc(1 << 20);
  while (!a->stop) {
    zen_context_t pairs[2][2] = {{a->game, a->peer}, {a->peer, a->game}};
    uint64_t senders[2] = {1, 2};
    int moved = 0;
    for (int k = 0; k < 2; k++) {
      for (;;) {
        size_t len = 0;
        uint64_t to = 0;
        bool has = false;
        if (zen_context_poll_outbound(pairs[k][0], buf, 1 << 20, &len, &to, &has) != ZEN_OK) a->failures++;
        if (!has) break;
        if (zen_context_receive_from(pairs[k][1], senders[k], buf, len) == ZEN_OK) {
          a->received++;
        } else {
          a->failures++;
        }
        moved++;
      }
    }
    /* Nothing to move: let the game thread run (valgrind runs one thread at a time). */
    if (!moved) sched_yield();
  }
  free(buf);
  return NULL;
}

static void test_game_and_network_threads(void) {
  net_args args;
  args.game = new_ctx(1);
  args.peer = new_ctx(2);
  args.stop = 0;
  args.received = 0;
  args.failures = 0;
  CHECK_OK(zen_context_add_peer(args.game, 2));
  CHECK_OK(zen_context_add_peer(args.peer, 1));
  zen_value_t pos[50];
  for (int i = 0; i < 50; i++) {
    char id[32];
    snprintf(id, sizeof id, "unit/%d/pos", i);
    pos[i] = create(args.game, id, ZEN_TYPE_VEC3, 0, 0);
  }
  pthread_t net;
  CHECK(pthread_create(&net, NULL, network_thread, &args) == 0);
  for (uint64_t t = 1; t <= 300; t++) {
    for (int i = 0; i < 50; i++) {
      zen_vec3_t p = {(float)t, (float)i, 0};
      if (zen_value_set_vec3(args.game, pos[i], p) != ZEN_OK) zen_test_failures++;
    }
    if (zen_context_tick(args.game, t * 16) != ZEN_OK || zen_context_tick(args.peer, t * 16) != ZEN_OK)
      zen_test_failures++;
  }
  for (uint64_t t = 301; t <= 340; t++) {
    if (zen_context_tick(args.game, t * 16) != ZEN_OK || zen_context_tick(args.peer, t * 16) != ZEN_OK)
      zen_test_failures++;
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  args.stop = 1;
  CHECK(pthread_join(net, NULL) == 0);
  CHECK(args.received > 0 && args.failures == 0);
  zen_vec3_t got;
  CHECK_OK(zen_value_get_vec3(args.peer, open_value(args.peer, "unit/49/pos"), &got));
  CHECK(got.x == 300.0f && got.y == 49.0f);
  zen_context_free(args.game);
  zen_context_free(args.peer);
}

typedef struct {
  zen_context_t a, b;
  volatile int stop;
} ticker_args;

static void *ticker_thread(void *p) {
  ticker_args *t = (ticker_args *)p;
  session s;
  s.ctx[0] = t->a;
  s.ctx[1] = t->b;
  s.n = 2;
  s.now = 0;
  while (!t->stop) {
    session_run(&s, 1);
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
  }
  return NULL;
}

static void test_wait_converged_from_another_thread(void) {
  ticker_args t;
  t.a = new_ctx(1);
  t.b = new_ctx(2);
  t.stop = 0;
  CHECK_OK(zen_context_add_peer(t.a, 2));
  CHECK_OK(zen_context_add_peer(t.b, 1));
  zen_value_t v = create(t.a, "score", ZEN_TYPE_I64, ZEN_MODE_WAIT_FOR_SYNC, 0);
  CHECK_STATUS(zen_value_wait_converged(t.a, v, 20), ZEN_ERR_TIMEOUT);
  pthread_t th;
  CHECK(pthread_create(&th, NULL, ticker_thread, &t) == 0);
  CHECK_OK(zen_value_set_i64(t.a, v, 5));
  zen_status_t st = zen_value_wait_converged(t.a, v, 5000);
  t.stop = 1;
  CHECK(pthread_join(th, NULL) == 0);
  CHECK(st == ZEN_OK);
  int64_t got = 0;
  CHECK_OK(zen_value_get_i64(t.a, v, &got));
  CHECK(got == 5);
  zen_context_free(t.a);
  zen_context_free(t.b);
}

typedef struct {
  zen_context_t ctx;
  zen_value_t value;
  zen_status_t result;
} waiter_args;

static void *waiter_thread(void *p) {
  waiter_args *w = (waiter_args *)p;
  w->result = zen_value_wait_converged(w->ctx, w->value, 10000);
  return NULL;
}

static void test_free_wakes_a_waiting_thread(void) {
  waiter_args w;
  w.ctx = new_ctx(1);
  CHECK_OK(zen_context_add_peer(w.ctx, 2));
  w.value = create(w.ctx, "score", ZEN_TYPE_I64, ZEN_MODE_WAIT_FOR_SYNC, 0);
  CHECK_OK(zen_value_set_i64(w.ctx, w.value, 1));
  w.result = ZEN_OK;
  pthread_t th;
  CHECK(pthread_create(&th, NULL, waiter_thread, &w) == 0);
  struct timespec ts = {0, 50000000};
  nanosleep(&ts, NULL);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  zen_context_free(w.ctx);
  CHECK(pthread_join(th, NULL) == 0);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  CHECK(w.result == ZEN_ERR_INVALID_HANDLE);
  CHECK(t1.tv_sec - t0.tv_sec < 5);
}

static const zen_test_case CASES[] = {
    {"version_matches_header", test_version_matches_header},
    {"status_names_and_last_error", test_status_names_and_last_error},
    {"last_error_is_per_thread", test_last_error_is_per_thread},
    {"options_default_and_custom", test_options_default_and_custom},
    {"option_struct_sizes", test_option_struct_sizes},
    {"bad_peer_ids", test_bad_peer_ids},
    {"null_arguments", test_null_arguments},
    {"free_is_safe_on_zero_and_twice", test_free_is_safe_on_zero_and_twice},
    {"stale_context_handle", test_stale_context_handle},
    {"foreign_and_forged_value_handles", test_foreign_and_forged_value_handles},
    {"every_type_roundtrips", test_every_type_roundtrips},
    {"wrong_type_changes_nothing", test_wrong_type_changes_nothing},
    {"invalid_utf8_is_refused", test_invalid_utf8_is_refused},
    {"invalid_enums_policies_and_ids", test_invalid_enums_policies_and_ids},
    {"small_buffers_report_needed_size", test_small_buffers_report_needed_size},
    {"empty_bytes_with_null_pointer", test_empty_bytes_with_null_pointer},
    {"oversized_value_is_refused", test_oversized_value_is_refused},
    {"two_contexts_converge", test_two_contexts_converge},
    {"eight_contexts_converge", test_eight_contexts_converge},
    {"local_write_event_at_once", test_local_write_event_at_once},
    {"remote_creation_event_borrows_string", test_remote_creation_event_borrows_string},
    {"remote_quaternion_is_a_quaternion", test_remote_quaternion_is_a_quaternion},
    {"wait_for_sync_reads_acknowledged_value", test_wait_for_sync_reads_acknowledged_value},
    {"mode_switch", test_mode_switch},
    {"policies_resolve_concurrent_writes", test_policies_resolve_concurrent_writes},
    {"lww_correction_event", test_lww_correction_event},
    {"quaternion_average_is_a_rotation", test_quaternion_average_is_a_rotation},
    {"custom_merge_results", test_custom_merge_results},
    {"custom_merge_errors_and_cleanup", test_custom_merge_errors_and_cleanup},
    {"callbacks_cannot_reenter", test_callbacks_cannot_reenter},
    {"removal_replicates", test_removal_replicates},
    {"late_joiner_catches_up", test_late_joiner_catches_up},
    {"outbound_small_buffer_keeps_message", test_outbound_small_buffer_keeps_message},
    {"outbound_alloc_and_double_free", test_outbound_alloc_and_double_free},
    {"metrics_and_peer_lag", test_metrics_and_peer_lag},
    {"metrics_older_struct_size", test_metrics_older_struct_size},
    {"target_message_bytes", test_target_message_bytes},
    {"next_deadline_errors_and_idle", test_next_deadline_errors_and_idle},
    {"ticking_only_at_deadlines_converges", test_ticking_only_at_deadlines_converges},
    {"game_and_network_threads", test_game_and_network_threads},
    {"wait_converged_from_another_thread", test_wait_converged_from_another_thread},
    {"free_wakes_a_waiting_thread", test_free_wakes_a_waiting_thread},
};

int main(int argc, char **argv) { return zen_run_tests(CASES, sizeof CASES / sizeof CASES[0], argc, argv); }

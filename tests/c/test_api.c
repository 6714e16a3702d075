/* C harness tests of the zen-crdt C API: sessions of contexts in one process, every
 * mode, state, policy and correction, and every error path. Plain C99, also compiled as
 * C++17 (test_api_cpp.cpp), run by ctest one test per process, under ASan+UBSan and
 * valgrind in CI. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <time.h>

#include "harness.h"

#define ID(s) (s), (sizeof(s) - 1)

static zen_context_t new_ctx(uint64_t peer) {
  zen_context_t c = 0;
  if (zen_context_new(peer, NULL, &c) != ZEN_OK) {
    fprintf(stderr, "zen_context_new(%llu) failed: %s\n", (unsigned long long)peer, last_error());
    abort();
  }
  return c;
}

/* A session of n fully connected contexts with peer ids 1..n. */
typedef struct {
  zen_context_t ctx[8];
  size_t n;
  uint64_t now;
} session;

static void session_open(session *s, size_t n) {
  s->n = n;
  s->now = 0;
  for (size_t i = 0; i < n; i++) s->ctx[i] = new_ctx(i + 1);
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < n; j++)
      if (i != j) zen_context_add_peer(s->ctx[i], j + 1);
}

static void session_close(session *s) {
  for (size_t i = 0; i < s->n; i++) zen_context_free(s->ctx[i]);
}

/* Ticks every context and delivers every message, `ticks` times (16 ms each). */
static void session_run(session *s, int ticks) {
  static uint8_t buf[1 << 20];
  for (int t = 0; t < ticks; t++) {
    s->now += 16;
    for (size_t i = 0; i < s->n; i++) zen_context_tick(s->ctx[i], s->now);
    for (size_t i = 0; i < s->n; i++) {
      for (;;) {
        size_t len = 0;
        uint64_t to = 0;
        bool has = false;
        if (zen_context_poll_outbound(s->ctx[i], buf, sizeof buf, &len, &to, &has) != ZEN_OK || !has) break;
        for (size_t j = 0; j < s->n; j++)
          if (j != i && (to == 0 || to == j + 1)) zen_context_receive(s->ctx[j], buf, len);
      }
    }
  }
}

static void drain_changes(zen_context_t c) {
  zen_change_t ch;
  bool has = true;
  while (has && zen_context_poll_change(c, &ch, &has) == ZEN_OK) {
  }
}

static zen_value_t create(zen_context_t c, const char *id, uint32_t type, uint32_t mode, uint32_t policy) {
  zen_value_t v = 0;
  if (zen_value_create(c, id, strlen(id), type, mode, policy, NULL, 0, &v) != ZEN_OK) {
    fprintf(stderr, "create %s failed: %s\n", id, last_error());
    abort();
  }
  return v;
}

static zen_value_t open_value(zen_context_t c, const char *id) {
  zen_value_t v = 0;
  zen_value_open(c, id, strlen(id), &v);
  return v;
}

static zen_sync_state_t state_of(zen_context_t c, zen_value_t v) {
  zen_sync_state_t s = ZEN_STATE_LOCAL_ONLY;
  zen_value_info(c, v, NULL, NULL, NULL, &s);
  return s;
}

/* One real delta message from peer 1 carrying one i64 write. */
static size_t one_delta(uint8_t *buf, size_t cap) {
  zen_context_t a = new_ctx(1);
  zen_context_add_peer(a, 2);
  zen_value_t v = create(a, "hp", ZEN_TYPE_I64, ZEN_MODE_FAST_LOCAL, ZEN_POLICY_LAST_WRITER_WINS);
  zen_value_set_i64(a, v, 42);
  zen_context_tick(a, 16);
  size_t len = 0;
  uint64_t to = 0;
  bool has = false;
  zen_context_poll_outbound(a, buf, cap, &len, &to, &has);
  zen_context_free(a);
  return has ? len : 0;
}

/* ---- lifecycle and handles ------------------------------------------------------- */

static void test_version_matches_header(void) {
  CHECK(zen_version() == ((ZEN_VERSION_MAJOR << 16) | (ZEN_VERSION_MINOR << 8) | ZEN_VERSION_PATCH));
  CHECK(ZEN_PROTOCOL_VERSION >= 1);
}

static void test_options_default_and_custom(void) {
  zen_options_t o;
  CHECK_OK(zen_options_default(&o));
  CHECK(o.tick_interval_ms == 16 && o.max_message_bytes > 0);
  o.peer_timeout_ms = 5000;
  zen_context_t c = 0;
  CHECK_OK(zen_context_new(9, &o, &c));
  uint64_t id = 0;
  CHECK_OK(zen_context_peer_id(c, &id));
  CHECK(id == 9);
  o.tick_interval_ms = 0;
  zen_context_t bad = 0;
  CHECK_STATUS(zen_context_new(9, &o, &bad), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(bad == 0);
  CHECK(strstr(last_error(), "tick_interval_ms") != NULL);
  zen_context_free(c);
}

static void test_bad_peer_ids(void) {
  zen_context_t c = 0;
  CHECK_STATUS(zen_context_new(0, NULL, &c), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_context_new((uint64_t)1 << 53, NULL, &c), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "peer id") != NULL);
  c = new_ctx(1);
  CHECK_STATUS(zen_context_add_peer(c, 0), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_context_add_peer(c, 1), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_context_remove_peer(c, 77), ZEN_ERR_UNKNOWN_PEER);
  zen_context_free(c);
}

static void test_null_out_parameters(void) {
  CHECK_STATUS(zen_context_new(1, NULL, NULL), ZEN_ERR_NULL_ARGUMENT);
  zen_context_t c = new_ctx(1);
  zen_value_t v = create(c, "x", ZEN_TYPE_VEC3, 0, 0);
  CHECK_STATUS(zen_value_get_vec3(c, v, NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_value_create(c, ID("y"), ZEN_TYPE_I64, 0, 0, NULL, 0, NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_value_create(c, NULL, 3, ZEN_TYPE_I64, 0, 0, NULL, 0, &v), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_context_receive(c, NULL, 10), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_options_default(NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK(strstr(last_error(), "NULL") != NULL);
  zen_context_free(c);
}

static void test_free_is_safe_on_zero_and_twice(void) {
  CHECK_OK(zen_context_free(0));
  zen_context_t c = new_ctx(1);
  CHECK_OK(zen_context_free(c));
  CHECK_OK(zen_context_free(c));
  CHECK_OK(zen_bytes_free(NULL));
}

static void test_stale_context_handle(void) {
  zen_context_t c = new_ctx(1);
  zen_value_t v = create(c, "x", ZEN_TYPE_I64, 0, 0);
  zen_context_free(c);
  CHECK_STATUS(zen_context_tick(c, 16), ZEN_ERR_INVALID_HANDLE);
  CHECK_STATUS(zen_value_set_i64(c, v, 1), ZEN_ERR_INVALID_HANDLE);
  zen_context_t again = new_ctx(2); /* may reuse the slot: the old handle stays dead */
  CHECK_STATUS(zen_context_tick(c, 16), ZEN_ERR_INVALID_HANDLE);
  CHECK_STATUS(zen_context_tick(0, 16), ZEN_ERR_INVALID_HANDLE);
  CHECK_STATUS(zen_context_tick(12345, 16), ZEN_ERR_INVALID_HANDLE);
  zen_context_free(again);
}

static void test_wrong_kind_and_foreign_handles(void) {
  zen_context_t a = new_ctx(1), b = new_ctx(2);
  zen_value_t va = create(a, "x", ZEN_TYPE_I64, 0, 0);
  create(b, "x", ZEN_TYPE_I64, 0, 0);
  CHECK_STATUS(zen_context_tick(va, 16), ZEN_ERR_INVALID_HANDLE);
  CHECK_STATUS(zen_value_set_i64(a, a, 1), ZEN_ERR_INVALID_HANDLE);
  CHECK_STATUS(zen_value_set_i64(b, va, 1), ZEN_ERR_INVALID_HANDLE);
  CHECK(strstr(last_error(), "another context") != NULL);
  CHECK_STATUS(zen_value_set_i64(a, 0, 1), ZEN_ERR_INVALID_HANDLE);
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
  zen_value_t col = create(c, "c", ZEN_TYPE_COLOR, 0, 0);
  zen_vec2_t a2 = {1, 2};
  zen_vec3_t a3 = {1, 2, 3};
  zen_vec4_t a4 = {1, 2, 3, 4};
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
  CHECK_OK(zen_value_get_color(c, col, &oc));
  CHECK(o2.y == 2 && o3.z == 3 && o4.w == 4 && oc.g == 0.2f);
  zen_value_type_t t = ZEN_TYPE_NONE;
  CHECK_OK(zen_value_info(c, col, &t, NULL, NULL, NULL));
  CHECK(t == ZEN_TYPE_COLOR);
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
  zen_value_t other = 0;
  CHECK_STATUS(zen_value_create(c, ID("pos"), ZEN_TYPE_STRING, 0, 0, NULL, 0, &other), ZEN_ERR_WRONG_TYPE);
  zen_change_t ch;
  bool has = true;
  CHECK_OK(zen_context_poll_change(c, &ch, &has));
  CHECK(!has);
  zen_context_free(c);
}

static void test_invalid_utf8_is_refused(void) {
  zen_context_t c = new_ctx(1);
  const char bad[] = {'a', (char)0xff, 'b'};
  zen_value_t v = 0;
  CHECK_STATUS(zen_value_create(c, bad, 3, ZEN_TYPE_I64, 0, 0, NULL, 0, &v), ZEN_ERR_INVALID_UTF8);
  v = create(c, "s", ZEN_TYPE_STRING, 0, 0);
  CHECK_STATUS(zen_value_set_string(c, v, bad, 3), ZEN_ERR_INVALID_UTF8);
  CHECK(strstr(last_error(), "UTF-8") != NULL);
  zen_context_free(c);
}

static void test_invalid_enums_and_ids(void) {
  zen_context_t c = new_ctx(1);
  zen_value_t v = 0;
  CHECK_STATUS(zen_value_create(c, ID("x"), 42, 0, 0, NULL, 0, &v), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_value_create(c, ID("x"), ZEN_TYPE_I64, 7, 0, NULL, 0, &v), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_value_create(c, ID("x"), ZEN_TYPE_I64, 0, 99, NULL, 0, &v), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_value_create(c, ID("x"), ZEN_TYPE_I64, 0, ZEN_POLICY_CUSTOM, NULL, 0, &v), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_value_create(c, ID("x"), ZEN_TYPE_STRING, 0, ZEN_POLICY_TAKE_AVERAGE, NULL, 0, &v),
               ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_value_create(c, "", 0, ZEN_TYPE_I64, 0, 0, NULL, 0, &v), ZEN_ERR_INVALID_ARGUMENT);
  v = create(c, "x", ZEN_TYPE_I64, 0, 0);
  CHECK_STATUS(zen_value_set_mode(c, v, 5), ZEN_ERR_INVALID_ARGUMENT);
  zen_value_t missing = 0;
  CHECK_STATUS(zen_value_open(c, ID("nope"), &missing), ZEN_ERR_UNKNOWN_VALUE);
  CHECK(missing == 0);
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
  char msg[2];
  CHECK_STATUS(zen_last_error_message(msg, sizeof msg, &n), ZEN_ERR_BUFFER_TOO_SMALL);
  CHECK(n > 2);
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
  zen_options_default(&o);
  zen_context_t c = 0;
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
    zen_value_set_i64(s.ctx[i], v, (int64_t)(i * 10));
  }
  session_run(&s, 20);
  for (size_t i = 0; i < 8; i++) {
    int64_t v = -1;
    CHECK_OK(zen_value_get_i64(s.ctx[i], open_value(s.ctx[i], "score"), &v));
    CHECK(v == 70);
    CHECK(state_of(s.ctx[i], open_value(s.ctx[i], "score")) == ZEN_STATE_CONVERGED);
  }
  session_close(&s);
}

static void test_local_write_event_at_once(void) {
  zen_context_t c = new_ctx(1);
  zen_value_t v = create(c, "pos", ZEN_TYPE_VEC3, 0, 0);
  zen_vec3_t p = {4, 5, 6};
  zen_value_set_vec3(c, v, p);
  zen_change_t ch;
  bool has = false;
  CHECK_OK(zen_context_poll_change(c, &ch, &has));
  CHECK(has && ch.value == v && ch.kind == ZEN_CHANGE_MODIFIED && ch.origin == 1);
  CHECK(ch.state == ZEN_STATE_LOCAL_ONLY && !ch.is_correction);
  CHECK(ch.new_value.value_type == ZEN_TYPE_VEC3 && ch.new_value.data.vec[2] == 6);
  CHECK(ch.old_value.value_type == ZEN_TYPE_NONE);
  zen_context_free(c);
}

static void test_remote_creation_event_borrows_string(void) {
  session s;
  session_open(&s, 2);
  zen_value_t v = create(s.ctx[0], "player/name", ZEN_TYPE_STRING, 0, 0);
  zen_value_set_string(s.ctx[0], v, ID("zen"));
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
  zen_metrics_t m;
  CHECK_OK(zen_context_metrics(s.ctx[0], &m));
  CHECK(m.converge_ms_p50 != UINT64_MAX);
  session_close(&s);
}

static void test_mode_switch(void) {
  session s;
  session_open(&s, 2);
  zen_value_t v = create(s.ctx[0], "x", ZEN_TYPE_F64, 0, 0);
  zen_value_set_f64(s.ctx[0], v, 1.0);
  session_run(&s, 6);
  zen_value_set_f64(s.ctx[0], v, 2.0);
  CHECK_OK(zen_value_set_mode(s.ctx[0], v, ZEN_MODE_WAIT_FOR_SYNC));
  double got = 0;
  zen_value_get_f64(s.ctx[0], v, &got);
  CHECK(got == 1.0);
  zen_mode_t mode = ZEN_MODE_FAST_LOCAL;
  CHECK_OK(zen_value_info(s.ctx[0], v, NULL, &mode, NULL, NULL));
  CHECK(mode == ZEN_MODE_WAIT_FOR_SYNC);
  CHECK_OK(zen_value_set_mode(s.ctx[0], v, ZEN_MODE_FAST_LOCAL));
  zen_value_get_f64(s.ctx[0], v, &got);
  CHECK(got == 2.0);
  session_close(&s);
}

/* Both peers write in the same tick; returns peer 1's final i64 and counts corrections. */
static int64_t concurrent(uint32_t policy, int64_t a, int64_t b, int *corrections) {
  session s;
  session_open(&s, 2);
  zen_value_t va = create(s.ctx[0], "v", ZEN_TYPE_I64, 0, policy);
  session_run(&s, 6);
  zen_value_t vb = open_value(s.ctx[1], "v");
  drain_changes(s.ctx[0]);
  zen_value_set_i64(s.ctx[0], va, a);
  zen_value_set_i64(s.ctx[1], vb, b);
  *corrections = 0;
  for (int t = 0; t < 10; t++) {
    session_run(&s, 1);
    for (size_t i = 0; i < 2; i++) {
      zen_change_t ch;
      bool has = true;
      while (zen_context_poll_change(s.ctx[i], &ch, &has) == ZEN_OK && has)
        if (ch.is_correction && ch.state == ZEN_STATE_CONFLICTED) (*corrections)++;
    }
  }
  int64_t x = 0, y = 1;
  zen_value_get_i64(s.ctx[0], va, &x);
  zen_value_get_i64(s.ctx[1], vb, &y);
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

static int merges_called = 0;
static int cleanups_called = 0;
static zen_status_t reentry_status = ZEN_OK;
static zen_context_t reentry_ctx = 0;

static zen_status_t sum_merge(void *user, const zen_candidate_t *c, size_t n, zen_value_data_t *out) {
  int64_t total = *(int64_t *)user;
  for (size_t i = 0; i < n; i++) total += c[i].value.data.i;
  merges_called++;
  if (reentry_ctx) reentry_status = zen_context_tick(reentry_ctx, 1);
  out->value_type = ZEN_TYPE_I64;
  out->data.i = total;
  return ZEN_OK;
}

static void count_cleanup(void *user) {
  (void)user;
  cleanups_called++;
}

static void test_custom_merge_with_user_data_and_cleanup(void) {
  static int64_t bonus = 100;
  session s;
  session_open(&s, 2);
  for (size_t i = 0; i < 2; i++)
    CHECK_OK(zen_context_register_merge(s.ctx[i], ID("sum"), sum_merge, &bonus, count_cleanup));
  zen_value_t va = 0;
  CHECK_OK(zen_value_create(s.ctx[0], ID("v"), ZEN_TYPE_I64, 0, ZEN_POLICY_CUSTOM, ID("sum"), &va));
  zen_policy_t p = ZEN_POLICY_MAX;
  zen_value_info(s.ctx[0], va, NULL, NULL, &p, NULL);
  CHECK(p == ZEN_POLICY_CUSTOM);
  session_run(&s, 6);
  zen_value_t vb = open_value(s.ctx[1], "v");
  zen_value_set_i64(s.ctx[0], va, 3);
  zen_value_set_i64(s.ctx[1], vb, 4);
  session_run(&s, 10);
  int64_t x = 0, y = 0;
  zen_value_get_i64(s.ctx[0], va, &x);
  zen_value_get_i64(s.ctx[1], vb, &y);
  CHECK(x == 107 && y == 107);
  CHECK(merges_called > 0);
  CHECK_STATUS(zen_context_register_merge(s.ctx[0], ID("sum"), NULL, NULL, NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_context_register_merge(0, ID("sum"), sum_merge, &bonus, count_cleanup), ZEN_ERR_INVALID_HANDLE);
  CHECK(cleanups_called == 0);
  session_close(&s);
  CHECK(cleanups_called == 2);
}

static void test_callbacks_cannot_reenter(void) {
  static int64_t zero = 0;
  session s;
  session_open(&s, 2);
  for (size_t i = 0; i < 2; i++) zen_context_register_merge(s.ctx[i], ID("sum"), sum_merge, &zero, NULL);
  zen_value_t va = 0;
  zen_value_create(s.ctx[0], ID("v"), ZEN_TYPE_I64, 0, ZEN_POLICY_CUSTOM, ID("sum"), &va);
  session_run(&s, 6);
  zen_value_t vb = open_value(s.ctx[1], "v");
  reentry_ctx = s.ctx[0];
  merges_called = 0;
  zen_value_set_i64(s.ctx[0], va, 1);
  zen_value_set_i64(s.ctx[1], vb, 2);
  session_run(&s, 10);
  reentry_ctx = 0;
  CHECK(merges_called > 0);
  CHECK(reentry_status == ZEN_ERR_REENTRANT);
  session_close(&s);
}

static void test_removal_replicates(void) {
  session s;
  session_open(&s, 2);
  zen_value_t v = create(s.ctx[0], "door", ZEN_TYPE_BOOL, 0, 0);
  zen_value_set_bool(s.ctx[0], v, true);
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
  zen_value_set_i64(s.ctx[0], v, 1234);
  session_run(&s, 6);
  zen_context_t late = new_ctx(3);
  zen_context_add_peer(late, 1);
  zen_context_add_peer(late, 2);
  zen_context_add_peer(s.ctx[0], 3);
  zen_context_add_peer(s.ctx[1], 3);
  s.ctx[2] = late;
  s.n = 3;
  session_run(&s, 10);
  int64_t got = 0;
  CHECK_OK(zen_value_get_i64(late, open_value(late, "level/seed"), &got));
  CHECK(got == 1234);
  session_close(&s);
}

/* ---- transport and hostile input -------------------------------------------------- */

static void test_truncated_messages_are_rejected(void) {
  uint8_t msg[4096];
  size_t len = one_delta(msg, sizeof msg);
  CHECK(len > 8);
  zen_context_t b = new_ctx(2);
  zen_context_add_peer(b, 1);
  for (size_t cut = 0; cut < len; cut++) CHECK_STATUS(zen_context_receive(b, msg, cut), ZEN_ERR_DECODE);
  zen_metrics_t m;
  zen_context_metrics(b, &m);
  CHECK(m.messages_rejected == len && m.messages_in == 0);
  CHECK_OK(zen_context_receive(b, msg, len));
  zen_context_free(b);
}

static void test_corrupt_and_garbage_messages_are_rejected(void) {
  uint8_t msg[4096];
  size_t len = one_delta(msg, sizeof msg);
  zen_context_t b = new_ctx(2);
  zen_context_add_peer(b, 1);
  for (size_t i = 0; i < len; i++) {
    uint8_t saved = msg[i];
    msg[i] ^= 0x5a;
    zen_status_t st = zen_context_receive(b, msg, len);
    msg[i] = saved;
    CHECK(st == ZEN_ERR_DECODE || st == ZEN_ERR_PROTOCOL_VERSION);
  }
  uint8_t garbage[64];
  for (size_t i = 0; i < sizeof garbage; i++) garbage[i] = (uint8_t)(i * 37 + 11);
  CHECK_STATUS(zen_context_receive(b, garbage, sizeof garbage), ZEN_ERR_DECODE);
  CHECK(strstr(last_error(), "message rejected") != NULL);
  zen_context_tick(b, 16);
  zen_metrics_t m;
  zen_context_metrics(b, &m);
  CHECK(m.values == 0 && m.updates_applied == 0);
  zen_context_free(b);
}

static void test_newer_protocol_version_is_named(void) {
  uint8_t msg[4096];
  size_t len = one_delta(msg, sizeof msg);
  zen_context_t b = new_ctx(2);
  zen_context_add_peer(b, 1);
  msg[2] = ZEN_PROTOCOL_VERSION + 1;
  CHECK_STATUS(zen_context_receive(b, msg, len), ZEN_ERR_PROTOCOL_VERSION);
  CHECK(strstr(last_error(), "protocol version") != NULL);
  zen_context_free(b);
}

static void test_oversized_message_and_strangers(void) {
  uint8_t msg[4096];
  size_t len = one_delta(msg, sizeof msg);
  zen_context_t stranger = new_ctx(3);
  CHECK_STATUS(zen_context_receive(stranger, msg, len), ZEN_ERR_UNKNOWN_PEER);
  zen_options_t o;
  zen_options_default(&o);
  size_t big = (size_t)o.max_message_bytes + 1;
  uint8_t *huge = (uint8_t *)calloc(big, 1);
  CHECK_STATUS(zen_context_receive(stranger, huge, big), ZEN_ERR_TOO_LARGE);
  free(huge);
  zen_context_free(stranger);
}

static void test_outbound_small_buffer_keeps_message(void) {
  zen_context_t a = new_ctx(1);
  zen_context_add_peer(a, 2);
  zen_value_t v = create(a, "x", ZEN_TYPE_I64, 0, 0);
  zen_value_set_i64(a, v, 1);
  zen_context_tick(a, 16);
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
  zen_context_add_peer(a, 2);
  zen_value_t v = create(a, "x", ZEN_TYPE_I64, 0, 0);
  zen_value_set_i64(a, v, 1);
  zen_context_tick(a, 16);
  zen_bytes_t msg;
  uint64_t to = 9;
  bool has = false;
  CHECK_OK(zen_context_poll_outbound_alloc(a, &msg, &to, &has));
  CHECK(has && msg.ptr != NULL && msg.len > 0 && to == 0);
  CHECK_OK(zen_bytes_free(&msg));
  CHECK(msg.ptr == NULL && msg.len == 0);
  CHECK_OK(zen_bytes_free(&msg));
  CHECK_OK(zen_context_poll_outbound_alloc(a, &msg, &to, &has));
  CHECK(!has && msg.ptr == NULL);
  zen_context_free(a);
}

static void test_metrics_and_peer_lag(void) {
  session s;
  session_open(&s, 3);
  zen_value_t v = create(s.ctx[0], "x", ZEN_TYPE_I64, 0, 0);
  zen_value_set_i64(s.ctx[0], v, 1);
  session_run(&s, 8);
  zen_metrics_t m;
  CHECK_OK(zen_context_metrics(s.ctx[0], &m));
  CHECK(m.messages_out > 0 && m.bytes_out > 0 && m.messages_in > 0 && m.writes_flushed == 1);
  CHECK(m.peers == 2 && m.values == 1);
  zen_peer_lag_t lag;
  CHECK_OK(zen_context_peer_lag(s.ctx[0], 0, &lag));
  CHECK(lag.peer == 2 && lag.active && lag.unacked_messages == 0);
  CHECK_STATUS(zen_context_peer_lag(s.ctx[0], 2, &lag), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_OK(zen_context_metrics(s.ctx[1], &m));
  CHECK(m.updates_applied >= 1);
  session_close(&s);
}

/* ---- threads --------------------------------------------------------------------------- */

typedef struct {
  zen_context_t game, peer;
  volatile int stop;
  int received;
} net_args;

/* The "network thread": moves messages both ways while the game thread writes/ticks. */
static void *network_thread(void *p) {
  net_args *a = (net_args *)p;
  uint8_t *buf = (uint8_t *)malloc(1 << 20);
  while (!a->stop) {
    zen_context_t pairs[2][2] = {{a->game, a->peer}, {a->peer, a->game}};
    int moved = 0;
    for (int k = 0; k < 2; k++) {
      size_t len = 0;
      uint64_t to = 0;
      bool has = false;
      while (zen_context_poll_outbound(pairs[k][0], buf, 1 << 20, &len, &to, &has) == ZEN_OK && has) {
        if (zen_context_receive(pairs[k][1], buf, len) == ZEN_OK) a->received++;
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
  zen_context_add_peer(args.game, 2);
  zen_context_add_peer(args.peer, 1);
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
    zen_context_tick(args.game, t * 16);
    zen_context_tick(args.peer, t * 16);
  }
  for (uint64_t t = 301; t <= 340; t++) {
    zen_context_tick(args.game, t * 16);
    zen_context_tick(args.peer, t * 16);
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  args.stop = 1;
  pthread_join(net, NULL);
  CHECK(args.received > 0);
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
  uint8_t *buf = (uint8_t *)malloc(1 << 16);
  uint64_t now = 0;
  while (!t->stop) {
    now += 16;
    zen_context_tick(t->a, now);
    zen_context_tick(t->b, now);
    zen_context_t pairs[2][2] = {{t->a, t->b}, {t->b, t->a}};
    for (int k = 0; k < 2; k++) {
      size_t len = 0;
      uint64_t to = 0;
      bool has = false;
      while (zen_context_poll_outbound(pairs[k][0], buf, 1 << 16, &len, &to, &has) == ZEN_OK && has)
        zen_context_receive(pairs[k][1], buf, len);
    }
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
  }
  free(buf);
  return NULL;
}

static void test_wait_converged_from_another_thread(void) {
  ticker_args t;
  t.a = new_ctx(1);
  t.b = new_ctx(2);
  t.stop = 0;
  zen_context_add_peer(t.a, 2);
  zen_context_add_peer(t.b, 1);
  zen_value_t v = create(t.a, "score", ZEN_TYPE_I64, ZEN_MODE_WAIT_FOR_SYNC, 0);
  CHECK_STATUS(zen_value_wait_converged(t.a, v, 20), ZEN_ERR_TIMEOUT);
  pthread_t th;
  CHECK(pthread_create(&th, NULL, ticker_thread, &t) == 0);
  zen_value_set_i64(t.a, v, 5);
  zen_status_t st = zen_value_wait_converged(t.a, v, 5000);
  t.stop = 1;
  pthread_join(th, NULL);
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
  zen_context_add_peer(w.ctx, 2);
  w.value = create(w.ctx, "score", ZEN_TYPE_I64, ZEN_MODE_WAIT_FOR_SYNC, 0);
  zen_value_set_i64(w.ctx, w.value, 1);
  w.result = ZEN_OK;
  pthread_t th;
  CHECK(pthread_create(&th, NULL, waiter_thread, &w) == 0);
  struct timespec ts = {0, 50000000};
  nanosleep(&ts, NULL);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK_OK(zen_context_free(w.ctx));
  pthread_join(th, NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  CHECK(w.result == ZEN_ERR_INVALID_HANDLE);
  CHECK(t1.tv_sec - t0.tv_sec < 5);
}

/* ---- the network simulator through the C API ------------------------------------ */

static void test_net_session_with_loss_converges(void) {
  zen_link_t link = {25, 10, 0.1, 0.02, 0.05, 0};
  zen_net_t net = 0;
  CHECK_OK(zen_net_new(42, &link, &net));
  zen_context_t c[3];
  uint32_t host = 99;
  for (int i = 0; i < 3; i++) {
    c[i] = new_ctx((uint64_t)i + 1);
    CHECK_OK(zen_net_attach(net, c[i], &host));
    CHECK(host == (uint32_t)i);
  }
  zen_value_t v = create(c[0], "flag", ZEN_TYPE_I64, 0, 0);
  zen_value_set_i64(c[0], v, 7);
  for (uint64_t now = 16; now <= 3000; now += 16) CHECK_OK(zen_net_step(net, now));
  for (int i = 0; i < 3; i++) {
    int64_t got = 0;
    CHECK_OK(zen_value_get_i64(c[i], open_value(c[i], "flag"), &got));
    CHECK(got == 7);
  }
  uint64_t delivered = 0, dropped = 0;
  CHECK_OK(zen_net_stats(net, &delivered, &dropped));
  CHECK(delivered > 0 && dropped > 0);
  CHECK_OK(zen_net_free(net));
  CHECK_OK(zen_net_free(net));
  for (int i = 0; i < 3; i++) zen_context_free(c[i]);
}

static void test_net_partition_and_rejoin(void) {
  zen_net_t net = 0;
  CHECK_OK(zen_net_new(7, NULL, &net));
  zen_context_t a = new_ctx(1), b = new_ctx(2);
  uint32_t ha = 0, hb = 0;
  CHECK_OK(zen_net_attach(net, a, &ha));
  CHECK_OK(zen_net_attach(net, b, &hb));
  zen_value_t v = create(a, "door", ZEN_TYPE_BOOL, 0, 0);
  const uint32_t split[2] = {0, 1};
  CHECK_OK(zen_net_set_partition(net, split, 2));
  zen_value_set_bool(a, v, true);
  uint64_t now = 0;
  for (int t = 0; t < 20; t++) zen_net_step(net, now += 16);
  zen_value_t vb = 0;
  CHECK_STATUS(zen_value_open(b, ID("door"), &vb), ZEN_ERR_UNKNOWN_VALUE);
  const uint32_t healed[2] = {0, 0};
  CHECK_OK(zen_net_set_partition(net, healed, 2));
  CHECK_OK(zen_net_set_online(net, hb, false));
  CHECK_OK(zen_net_set_online(net, hb, true));
  for (int t = 0; t < 40; t++) zen_net_step(net, now += 16);
  bool open = false;
  CHECK_OK(zen_value_get_bool(b, open_value(b, "door"), &open));
  CHECK(open);
  CHECK_STATUS(zen_net_set_partition(net, split, 1), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_net_set_online(net, 9, true), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_net_attach(net, a, &ha), ZEN_ERR_INVALID_ARGUMENT);
  zen_net_free(net);
  zen_context_free(a);
  zen_context_free(b);
}

static void test_net_rejects_bad_handles_and_links(void) {
  zen_link_t bad = {25, 0, 1.5, 0, 0, 0};
  zen_net_t net = 0;
  CHECK_STATUS(zen_net_new(1, &bad, &net), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_net_step(0, 16), ZEN_ERR_INVALID_HANDLE);
  zen_context_t c = new_ctx(1);
  CHECK_STATUS(zen_net_step(c, 16), ZEN_ERR_INVALID_HANDLE);
  CHECK(strstr(last_error(), "network") != NULL);
  CHECK_OK(zen_net_new(1, NULL, &net));
  uint32_t h = 0;
  CHECK_STATUS(zen_net_attach(net, net, &h), ZEN_ERR_INVALID_HANDLE);
  CHECK_STATUS(zen_context_tick(net, 16), ZEN_ERR_INVALID_HANDLE);
  zen_net_free(net);
  zen_context_free(c);
}

static void *fail_on_other_thread(void *p) {
  (void)p;
  zen_context_new(0, NULL, NULL);
  return NULL;
}

static void test_last_error_is_per_thread(void) {
  zen_context_tick(0, 1);
  CHECK(strstr(last_error(), "context handle is 0") != NULL);
  zen_options_t o;
  CHECK_OK(zen_options_default(&o)); /* success leaves the message alone */
  CHECK(strstr(last_error(), "context handle is 0") != NULL);
  pthread_t th;
  CHECK(pthread_create(&th, NULL, fail_on_other_thread, NULL) == 0);
  pthread_join(th, NULL);
  CHECK(strstr(last_error(), "context handle is 0") != NULL);
}

static const zen_test_case CASES[] = {
    {"version_matches_header", test_version_matches_header},
    {"options_default_and_custom", test_options_default_and_custom},
    {"bad_peer_ids", test_bad_peer_ids},
    {"null_out_parameters", test_null_out_parameters},
    {"free_is_safe_on_zero_and_twice", test_free_is_safe_on_zero_and_twice},
    {"stale_context_handle", test_stale_context_handle},
    {"wrong_kind_and_foreign_handles", test_wrong_kind_and_foreign_handles},
    {"every_type_roundtrips", test_every_type_roundtrips},
    {"wrong_type_changes_nothing", test_wrong_type_changes_nothing},
    {"invalid_utf8_is_refused", test_invalid_utf8_is_refused},
    {"invalid_enums_and_ids", test_invalid_enums_and_ids},
    {"small_buffers_report_needed_size", test_small_buffers_report_needed_size},
    {"empty_bytes_with_null_pointer", test_empty_bytes_with_null_pointer},
    {"oversized_value_is_refused", test_oversized_value_is_refused},
    {"two_contexts_converge", test_two_contexts_converge},
    {"eight_contexts_converge", test_eight_contexts_converge},
    {"local_write_event_at_once", test_local_write_event_at_once},
    {"remote_creation_event_borrows_string", test_remote_creation_event_borrows_string},
    {"wait_for_sync_reads_acknowledged_value", test_wait_for_sync_reads_acknowledged_value},
    {"mode_switch", test_mode_switch},
    {"policies_resolve_concurrent_writes", test_policies_resolve_concurrent_writes},
    {"lww_correction_event", test_lww_correction_event},
    {"custom_merge_with_user_data_and_cleanup", test_custom_merge_with_user_data_and_cleanup},
    {"callbacks_cannot_reenter", test_callbacks_cannot_reenter},
    {"removal_replicates", test_removal_replicates},
    {"late_joiner_catches_up", test_late_joiner_catches_up},
    {"truncated_messages_are_rejected", test_truncated_messages_are_rejected},
    {"corrupt_and_garbage_messages_are_rejected", test_corrupt_and_garbage_messages_are_rejected},
    {"newer_protocol_version_is_named", test_newer_protocol_version_is_named},
    {"oversized_message_and_strangers", test_oversized_message_and_strangers},
    {"outbound_small_buffer_keeps_message", test_outbound_small_buffer_keeps_message},
    {"outbound_alloc_and_double_free", test_outbound_alloc_and_double_free},
    {"metrics_and_peer_lag", test_metrics_and_peer_lag},
    {"game_and_network_threads", test_game_and_network_threads},
    {"wait_converged_from_another_thread", test_wait_converged_from_another_thread},
    {"free_wakes_a_waiting_thread", test_free_wakes_a_waiting_thread},
    {"net_session_with_loss_converges", test_net_session_with_loss_converges},
    {"net_partition_and_rejoin", test_net_partition_and_rejoin},
    {"net_rejects_bad_handles_and_links", test_net_rejects_bad_handles_and_links},
    {"last_error_is_per_thread", test_last_error_is_per_thread},
};

int main(int argc, char **argv) {
  return zen_run_tests(CASES, sizeof CASES / sizeof CASES[0], argc, argv);
}

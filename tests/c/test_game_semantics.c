/* C harness tests of the 1.3 game semantics: `is_initial` on change events,
 * zen_value_touch and ZEN_CHANGE_TOUCHED, local-only values (zen_value_options_t
 * .local_only, zen_value_is_local_only), and every error path of the new calls. Built
 * and run like test_api.c. */
#include <stddef.h>
#include <stdint.h>

#include "session.h"

/* Polls every queued event of `c` for value `id`; returns how many, the last in *last. */
static int events_of(zen_context_t c, zen_value_t v, zen_change_t *first, zen_change_t *last) {
  int n = 0;
  zen_change_t ch;
  bool has = true;
  while (has) {
    MUST(zen_context_poll_change(c, &ch, &has));
    if (!has || !same_value(ch.value, v)) continue;
    if (n == 0 && first) *first = ch;
    if (last) *last = ch;
    n++;
  }
  return n;
}

static void drain(zen_context_t c) {
  zen_change_t ch;
  bool has = true;
  while (has) MUST(zen_context_poll_change(c, &ch, &has));
}

static void test_created_elsewhere_is_initial_then_not(void) {
  session s;
  session_open(&s, 2);
  zen_value_t a = create(s.ctx[0], "score", ZEN_TYPE_I64, ZEN_MODE_FAST_LOCAL, ZEN_POLICY_LAST_WRITER_WINS);
  MUST(zen_value_set_i64(s.ctx[0], a, 5));
  zen_change_t first, last;
  CHECK(events_of(s.ctx[0], a, &first, NULL) == 1);
  CHECK(first.kind == ZEN_CHANGE_MODIFIED && !first.is_initial); /* our own write */
  session_run(&s, 20);
  zen_value_t b = open_value(s.ctx[1], "score");
  CHECK(events_of(s.ctx[1], b, &first, NULL) >= 1);
  CHECK(first.kind == ZEN_CHANGE_CREATED && first.is_initial && first.origin == 1);
  CHECK(first.new_value.value_type == ZEN_TYPE_I64 && first.new_value.data.i == 5);
  MUST(zen_value_set_i64(s.ctx[0], a, 6));
  session_run(&s, 20);
  CHECK(events_of(s.ctx[1], b, &first, &last) >= 1);
  CHECK(first.kind == ZEN_CHANGE_MODIFIED && !first.is_initial && first.new_value.data.i == 6);
  /* The field sits in 1.2's padding: the struct did not grow. */
  CHECK(offsetof(zen_change_t, is_initial) == offsetof(zen_change_t, is_correction) + 1);
  CHECK(offsetof(zen_change_t, origin) == 32);
  session_close(&s);
}

static void test_touch_reaches_every_peer_unchanged(void) {
  session s;
  session_open(&s, 3);
  zen_value_t a = create(s.ctx[0], "door", ZEN_TYPE_BOOL, ZEN_MODE_FAST_LOCAL, ZEN_POLICY_LAST_WRITER_WINS);
  MUST(zen_value_set_bool(s.ctx[0], a, true));
  session_run(&s, 20);
  for (size_t i = 0; i < 3; i++) drain(s.ctx[i]);
  zen_value_t b = open_value(s.ctx[1], "door");
  CHECK_OK(zen_value_touch(s.ctx[1], b));
  zen_change_t first, last;
  CHECK(events_of(s.ctx[1], b, &first, NULL) == 1);
  CHECK(first.kind == ZEN_CHANGE_TOUCHED && first.origin == 2 && !first.is_initial);
  CHECK(first.old_value.data.b && first.new_value.data.b);
  session_run(&s, 20);
  size_t peers[2] = {0, 2};
  for (size_t k = 0; k < 2; k++) {
    zen_context_t c = s.ctx[peers[k]];
    zen_value_t v = open_value(c, "door");
    CHECK(events_of(c, v, &first, &last) >= 1);
    CHECK(first.kind == ZEN_CHANGE_TOUCHED && first.origin == 2);
    CHECK(first.new_value.value_type == ZEN_TYPE_BOOL && first.new_value.data.b);
    CHECK(state_of(c, v) == ZEN_STATE_CONVERGED);
  }
  session_close(&s);
}

static void test_touch_errors(void) {
  session s;
  session_open(&s, 2);
  zen_value_t a = create(s.ctx[0], "hp", ZEN_TYPE_I64, ZEN_MODE_FAST_LOCAL, ZEN_POLICY_MAX);
  CHECK_STATUS(zen_value_touch(s.ctx[0], a), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "never written") != NULL);
  MUST(zen_value_set_i64(s.ctx[0], a, 3));
  CHECK_OK(zen_value_touch(s.ctx[0], a));
  MUST(zen_value_remove(s.ctx[0], a));
  CHECK_STATUS(zen_value_touch(s.ctx[0], a), ZEN_ERR_REMOVED);
  session_run(&s, 20);
  CHECK_STATUS(zen_value_touch(s.ctx[1], open_value(s.ctx[1], "hp")), ZEN_ERR_REMOVED);
  /* Handles: zeroed, of another context, of a freed context. */
  zen_value_t zero = {0, 0};
  CHECK_STATUS(zen_value_touch(s.ctx[0], zero), ZEN_ERR_INVALID_HANDLE);
  CHECK_STATUS(zen_value_touch(s.ctx[1], a), ZEN_ERR_INVALID_HANDLE);
  zen_context_t freed = new_ctx(9);
  zen_context_free(freed);
  CHECK_STATUS(zen_value_touch(freed, a), ZEN_ERR_INVALID_HANDLE);
  session_close(&s);
}

/* Two sessions on the same schedule, one also writing local-only values every tick:
 * every context sends the same number of bytes. */
static void local_session(int with_local, uint64_t bytes_out[2]) {
  session s;
  session_open(&s, 2);
  zen_value_t shared = create(s.ctx[0], "shared", ZEN_TYPE_I64, ZEN_MODE_FAST_LOCAL, ZEN_POLICY_LAST_WRITER_WINS);
  zen_value_t ui[2] = {{0, 0}, {0, 0}};
  if (with_local) {
    for (size_t i = 0; i < 2; i++) {
      zen_value_options_t o = value_opts(ZEN_MODE_FAST_LOCAL, ZEN_POLICY_LAST_WRITER_WINS);
      o.local_only = 1;
      MUST(zen_value_create(s.ctx[i], ID("ui"), ZEN_TYPE_STRING, &o, &ui[i]));
    }
  }
  for (int t = 0; t < 60; t++) {
    if (t % 10 == 0) MUST(zen_value_set_i64(s.ctx[0], shared, t));
    if (with_local)
      for (size_t i = 0; i < 2; i++) MUST(zen_value_set_string(s.ctx[i], ui[i], ID("menu open")));
    session_run(&s, 1);
  }
  session_run(&s, 30);
  for (size_t i = 0; i < 2; i++) bytes_out[i] = metrics_of(s.ctx[i]).bytes_out;
  if (with_local) {
    bool local = false;
    MUST(zen_value_is_local_only(s.ctx[0], ui[0], &local));
    if (!local || state_of(s.ctx[0], ui[0]) != ZEN_STATE_LOCAL_ONLY) bytes_out[0] = 0;
  }
  session_close(&s);
}

static void test_local_only_never_reaches_the_wire(void) {
  uint64_t plain[2], with_local[2];
  local_session(0, plain);
  local_session(1, with_local);
  CHECK(plain[0] > 0 && plain[0] == with_local[0]);
  CHECK(plain[1] == with_local[1]);
}

static void test_local_only_errors_and_1_2_structs(void) {
  zen_context_t c = new_ctx(1);
  zen_value_options_t o = value_opts(ZEN_MODE_FAST_LOCAL, ZEN_POLICY_LAST_WRITER_WINS);
  zen_value_t v = {0, 0};
  o.local_only = 2;
  CHECK_STATUS(zen_value_create(c, ID("x"), ZEN_TYPE_I64, &o, &v), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "local_only") != NULL && v.owner == 0);
  o.local_only = 1;
  CHECK_OK(zen_value_create(c, ID("x"), ZEN_TYPE_I64, &o, &v));
  bool local = false;
  CHECK_OK(zen_value_is_local_only(c, v, &local));
  CHECK(local);
  /* Opened as shared: refused, and it stays local-only. */
  zen_value_t again = {0, 0};
  CHECK_STATUS(zen_value_create(c, ID("x"), ZEN_TYPE_I64, NULL, &again), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "local-only") != NULL && again.owner == 0);
  CHECK_STATUS(zen_value_is_local_only(c, v, NULL), ZEN_ERR_NULL_ARGUMENT);
  zen_value_t zero = {0, 0};
  CHECK_STATUS(zen_value_is_local_only(c, zero, &local), ZEN_ERR_INVALID_HANDLE);
  /* A caller built against 1.2's header passes the smaller struct: shared, as it meant. */
  zen_value_options_t old = value_opts(ZEN_MODE_FAST_LOCAL, ZEN_POLICY_LAST_WRITER_WINS);
  old.struct_size = offsetof(zen_value_options_t, local_only);
  old.local_only = 1; /* past its struct: never read */
  zen_value_t y = {0, 0};
  CHECK_OK(zen_value_create(c, ID("y"), ZEN_TYPE_I64, &old, &y));
  CHECK_OK(zen_value_is_local_only(c, y, &local));
  CHECK(!local);
  zen_context_free(c);
}

static const zen_test_case CASES[] = {
    {"created_elsewhere_is_initial_then_not", test_created_elsewhere_is_initial_then_not},
    {"touch_reaches_every_peer_unchanged", test_touch_reaches_every_peer_unchanged},
    {"touch_errors", test_touch_errors},
    {"local_only_never_reaches_the_wire", test_local_only_never_reaches_the_wire},
    {"local_only_errors_and_1_2_structs", test_local_only_errors_and_1_2_structs},
};

int main(int argc, char **argv) { return zen_run_tests(CASES, sizeof CASES / sizeof CASES[0], argc, argv); }

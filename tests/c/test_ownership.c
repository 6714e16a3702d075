/* C harness tests of 1.4's write permissions: owner-only values
 * (zen_value_options_t.owner), zen_value_owner, zen_value_transfer, the heir taking
 * over when the owner is removed, ZEN_CHANGE_OWNER_CHANGED / ZEN_CHANGE_REJECTED and
 * the owner_changed flag, ZEN_ERR_NOT_OWNER, and every error path of the new calls.
 * Built and run like test_api.c. */
#include <stddef.h>
#include <stdint.h>

#include "session.h"

static zen_value_t create_owned(zen_context_t c, const char *id, uint64_t owner) {
  zen_value_options_t o = value_opts(ZEN_MODE_FAST_LOCAL, ZEN_POLICY_LAST_WRITER_WINS);
  o.owner = owner;
  zen_value_t v = {0, 0};
  MUST(zen_value_create(c, id, strlen(id), ZEN_TYPE_I64, &o, &v));
  return v;
}

static uint64_t owner_of(zen_context_t c, zen_value_t v) {
  uint64_t owner = 99;
  MUST(zen_value_owner(c, v, &owner));
  return owner;
}

static int64_t i64_of(zen_context_t c, zen_value_t v) {
  int64_t x = -1;
  MUST(zen_value_get_i64(c, v, &x));
  return x;
}

/* Polls every event of `c`; counts those with owner_changed, the last such in *last. */
static int owner_events(zen_context_t c, zen_change_t *last) {
  int n = 0;
  zen_change_t ch;
  bool has = true;
  while (has) {
    MUST(zen_context_poll_change(c, &ch, &has));
    if (has && ch.owner_changed) {
      *last = ch;
      n++;
    }
  }
  return n;
}

static void test_only_the_owner_writes(void) {
  session s;
  session_open(&s, 3);
  zen_value_t a = create_owned(s.ctx[0], "hp", 1);
  MUST(zen_value_set_i64(s.ctx[0], a, 100));
  session_run(&s, 20);
  zen_value_t b = open_value(s.ctx[1], "hp");
  CHECK(owner_of(s.ctx[1], b) == 1 && i64_of(s.ctx[1], b) == 100);
  drain_changes(s.ctx[1]);
  CHECK_STATUS(zen_value_set_i64(s.ctx[1], b, 5), ZEN_ERR_NOT_OWNER);
  CHECK(strstr(last_error(), "owned by peer 1") != NULL);
  CHECK(strcmp(zen_status_name(ZEN_ERR_NOT_OWNER), "ZEN_ERR_NOT_OWNER") == 0);
  CHECK_STATUS(zen_value_touch(s.ctx[1], b), ZEN_ERR_NOT_OWNER);
  CHECK_STATUS(zen_value_remove(s.ctx[1], b), ZEN_ERR_NOT_OWNER);
  CHECK_STATUS(zen_value_transfer(s.ctx[1], b, 2), ZEN_ERR_NOT_OWNER);
  /* Refused calls change nothing: no event here, nothing anywhere. */
  zen_change_t ch;
  bool has = true;
  MUST(zen_context_poll_change(s.ctx[1], &ch, &has));
  CHECK(!has);
  session_run(&s, 20);
  CHECK(i64_of(s.ctx[0], a) == 100 && i64_of(s.ctx[1], b) == 100);
  CHECK(i64_of(s.ctx[2], open_value(s.ctx[2], "hp")) == 100);
  /* A value anyone may write has owner 0. */
  zen_value_t free_v = create(s.ctx[0], "free", ZEN_TYPE_I64, ZEN_MODE_FAST_LOCAL, ZEN_POLICY_LAST_WRITER_WINS);
  CHECK(owner_of(s.ctx[0], free_v) == 0);
  session_close(&s);
}

static void test_transfer_moves_the_right_to_write(void) {
  session s;
  session_open(&s, 3);
  zen_value_t a = create_owned(s.ctx[0], "ball", 1);
  MUST(zen_value_set_i64(s.ctx[0], a, 1));
  session_run(&s, 20);
  for (size_t i = 0; i < 3; i++) drain_changes(s.ctx[i]);
  CHECK_OK(zen_value_transfer(s.ctx[0], a, 2));
  zen_change_t last;
  CHECK(owner_events(s.ctx[0], &last) == 1);
  CHECK(last.kind == ZEN_CHANGE_OWNER_CHANGED && last.origin == 2);
  CHECK_STATUS(zen_value_set_i64(s.ctx[0], a, 9), ZEN_ERR_NOT_OWNER);
  CHECK(owner_of(s.ctx[0], a) == 2);
  session_run(&s, 20);
  for (size_t i = 1; i < 3; i++) {
    zen_value_t v = open_value(s.ctx[i], "ball");
    CHECK(owner_of(s.ctx[i], v) == 2);
    CHECK(owner_events(s.ctx[i], &last) == 1 && last.kind == ZEN_CHANGE_OWNER_CHANGED && last.origin == 2);
  }
  zen_value_t b = open_value(s.ctx[1], "ball");
  MUST(zen_value_set_i64(s.ctx[1], b, 2));
  session_run(&s, 20);
  CHECK(i64_of(s.ctx[0], a) == 2 && i64_of(s.ctx[2], open_value(s.ctx[2], "ball")) == 2);
  CHECK(metrics_of(s.ctx[0]).unowned_writes == 0);
  session_close(&s);
}

static void test_the_heir_takes_over_when_the_owner_is_removed(void) {
  session s;
  session_open(&s, 3);
  zen_value_t a = create_owned(s.ctx[1], "door", 2);
  MUST(zen_value_set_i64(s.ctx[1], a, 7));
  session_run(&s, 20);
  for (size_t i = 0; i < 3; i++) drain_changes(s.ctx[i]);
  /* Peer 2 leaves for good: the others' hosts remove it. */
  MUST(zen_context_remove_peer(s.ctx[0], 2));
  MUST(zen_context_remove_peer(s.ctx[2], 2));
  zen_value_t v1 = open_value(s.ctx[0], "door"), v3 = open_value(s.ctx[2], "door");
  CHECK(owner_of(s.ctx[0], v1) == 1); /* the lowest id left: itself, at once */
  zen_change_t last;
  CHECK(owner_events(s.ctx[0], &last) == 1 && last.origin == 1);
  session_run_without(&s, 1, 20);
  CHECK(owner_of(s.ctx[2], v3) == 1 && i64_of(s.ctx[2], v3) == 7);
  CHECK(owner_events(s.ctx[2], &last) == 1 && last.origin == 1);
  MUST(zen_value_set_i64(s.ctx[0], v1, 8));
  CHECK_STATUS(zen_value_set_i64(s.ctx[2], v3, 9), ZEN_ERR_NOT_OWNER);
  session_run_without(&s, 1, 20);
  CHECK(i64_of(s.ctx[2], v3) == 8);
  session_close(&s);
}

static void test_errors_and_1_3_structs(void) {
  zen_context_t c = new_ctx(1);
  zen_value_t owned = create_owned(c, "mine", 1);
  zen_value_t free_v = create(c, "free", ZEN_TYPE_I64, ZEN_MODE_FAST_LOCAL, ZEN_POLICY_LAST_WRITER_WINS);
  CHECK_STATUS(zen_value_transfer(c, free_v, 2), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "anyone") != NULL);
  CHECK_STATUS(zen_value_transfer(c, owned, 0), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_value_transfer(c, owned, UINT64_MAX), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_OK(zen_value_transfer(c, owned, 1)); /* to oneself: nothing */
  CHECK(owner_of(c, owned) == 1);
  CHECK_STATUS(zen_value_owner(c, owned, NULL), ZEN_ERR_NULL_ARGUMENT);
  zen_value_t zero = {0, 0};
  uint64_t o = 0;
  CHECK_STATUS(zen_value_owner(c, zero, &o), ZEN_ERR_INVALID_HANDLE);
  CHECK_STATUS(zen_value_transfer(c, zero, 2), ZEN_ERR_INVALID_HANDLE);
  /* An invalid first owner is refused and creates nothing. */
  zen_value_options_t bad = value_opts(ZEN_MODE_FAST_LOCAL, ZEN_POLICY_LAST_WRITER_WINS);
  bad.owner = UINT64_MAX;
  zen_value_t v = {0, 0};
  CHECK_STATUS(zen_value_create(c, ID("bad"), ZEN_TYPE_I64, &bad, &v), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_value_open(c, ID("bad"), &v), ZEN_ERR_UNKNOWN_VALUE);
  /* A caller built against 1.3's header passes the smaller struct: anyone may write. */
  zen_value_options_t old = value_opts(ZEN_MODE_FAST_LOCAL, ZEN_POLICY_LAST_WRITER_WINS);
  old.struct_size = offsetof(zen_value_options_t, owner);
  old.owner = 5; /* past its struct: never read */
  CHECK_OK(zen_value_create(c, ID("old"), ZEN_TYPE_I64, &old, &v));
  CHECK(owner_of(c, v) == 0);
  CHECK_OK(zen_value_set_i64(c, v, 1));
  /* The event flag sits in 1.3's padding: zen_change_t did not grow. */
  CHECK(offsetof(zen_change_t, owner_changed) == offsetof(zen_change_t, is_initial) + 1);
  CHECK(offsetof(zen_change_t, origin) == 32);
  zen_context_free(c);
}

static const zen_test_case CASES[] = {
    {"only_the_owner_writes", test_only_the_owner_writes},
    {"transfer_moves_the_right_to_write", test_transfer_moves_the_right_to_write},
    {"the_heir_takes_over_when_the_owner_is_removed", test_the_heir_takes_over_when_the_owner_is_removed},
    {"errors_and_1_3_structs", test_errors_and_1_3_structs},
};

int main(int argc, char **argv) { return zen_run_tests(CASES, sizeof CASES / sizeof CASES[0], argc, argv); }

/* Handle identity under churn: 2^20 contexts are created and freed (a few live at a
 * time, so slots are reused), and no stale or foreign handle is ever accepted: not a
 * freed context's handle, not a freed context's value handle, not a live context's value
 * handle used with another context. Usage: zen_test_handles [case] [contexts]. Built and
 * run like test_api.c (not under valgrind: a million contexts take minutes there). */
#include <stdint.h>

#include "session.h"

static unsigned long contexts = 1ul << 20;

static void test_no_stale_or_foreign_handle_is_accepted(void) {
  zen_context_t keep = new_ctx(1);
  zen_value_t kept = create(keep, "kept", ZEN_TYPE_I64, 0, 0);
  zen_context_t prev = {0};
  zen_value_t prev_value = {0, 0};
  unsigned long accepted = 0, distinct_ids = 0;
  for (unsigned long i = 0; i < contexts; i++) {
    zen_context_t c = new_ctx(2 + (i % 1000));
    zen_value_t v = create(c, "x", ZEN_TYPE_I64, 0, 0);
    /* The freed predecessor (whose slot this one most likely reuses) stays dead. */
    if (prev.id != 0) {
      distinct_ids += c.id != prev.id;
      if (zen_context_tick(prev, 16) != ZEN_ERR_INVALID_HANDLE) accepted++;
      /* Its value handle, same index as v, is foreign to c. */
      if (zen_value_set_i64(c, prev_value, 1) != ZEN_ERR_INVALID_HANDLE) accepted++;
    }
    /* A live context's value is foreign here, and this one's is foreign there. */
    if (zen_value_set_i64(c, kept, 1) != ZEN_ERR_INVALID_HANDLE) accepted++;
    if (zen_value_set_i64(keep, v, 1) != ZEN_ERR_INVALID_HANDLE) accepted++;
    if (zen_value_set_i64(c, v, (int64_t)i) != ZEN_OK) accepted++; /* its own works */
    zen_context_free(c);
    prev = c;
    prev_value = v;
  }
  CHECK(accepted == 0);
  CHECK(distinct_ids == contexts - 1);
  CHECK_OK(zen_value_set_i64(keep, kept, 7));
  zen_context_free(keep);
}

static const zen_test_case CASES[] = {
    {"no_stale_or_foreign_handle_is_accepted", test_no_stale_or_foreign_handle_is_accepted},
};

int main(int argc, char **argv) {
  if (argc > 2) contexts = strtoul(argv[2], NULL, 10);
  return zen_run_tests(CASES, sizeof CASES / sizeof CASES[0], argc, argv);
}

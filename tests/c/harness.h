/* A tiny test harness for the C API tests: each test is a function; the runner takes a
 * test name (ctest runs one per process) or runs all, and prints "N passed, M failed".
 * Every zen_* call that returns a status is checked (the header makes them
 * ZEN_NODISCARD, and the tests build with -Werror). */
#ifndef ZEN_TEST_HARNESS_H
#define ZEN_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zen_crdt.h"
#include "zen_crdt_sim.h"

typedef void (*zen_test_fn)(void);
typedef struct {
  const char *name;
  zen_test_fn fn;
} zen_test_case;

static int zen_test_failures = 0;

#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
      zen_test_failures++;                                                           \
      return;                                                                        \
    }                                                                                \
  } while (0)

/* Checks a status and prints its name and the library's message when it differs. */
#define CHECK_STATUS(call, expected)                                                 \
  do {                                                                               \
    zen_status_t zen_s_ = (call);                                                    \
    if (zen_s_ != (expected)) {                                                      \
      fprintf(stderr, "%s:%d: %s returned %s, expected %s: %s\n", __FILE__, __LINE__, \
              #call, zen_status_name(zen_s_), #expected, zen_last_error());           \
      zen_test_failures++;                                                           \
      return;                                                                        \
    }                                                                                \
  } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, ZEN_OK)

/* For set-up outside a test function's own checks: a failure ends the process. */
#define MUST(call)                                                                   \
  do {                                                                               \
    zen_status_t zen_s_ = (call);                                                    \
    if (zen_s_ != ZEN_OK) {                                                          \
      fprintf(stderr, "%s:%d: %s failed with %s: %s\n", __FILE__, __LINE__, #call,    \
              zen_status_name(zen_s_), zen_last_error());                             \
      abort();                                                                       \
    }                                                                                \
  } while (0)

/* The last error message of this thread. */
static inline const char *last_error(void) { return zen_last_error(); }

static inline int zen_run_tests(const zen_test_case *cases, size_t count, int argc, char **argv) {
  size_t passed = 0, failed = 0, ran = 0;
  for (size_t i = 0; i < count; i++) {
    if (argc > 1 && strcmp(argv[1], cases[i].name) != 0) continue;
    ran++;
    int before = zen_test_failures;
    cases[i].fn();
    if (zen_test_failures == before) {
      passed++;
    } else {
      failed++;
      fprintf(stderr, "FAILED: %s\n", cases[i].name);
    }
  }
  if (ran == 0) {
    fprintf(stderr, "no test named %s\n", argc > 1 ? argv[1] : "(none)");
    return 2;
  }
  printf("%zu passed, %zu failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

#endif

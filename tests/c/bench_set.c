/* Benchmark: zen_value_set_vec3 (FastLocal) through the C ABI, beside the Rust core's
 * own figure measured the same way in the same run. Prints a table; asserts nothing.
 * Usage: zen_bench_set [samples]   (default 2000 batches of 1000 writes) */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "zen_crdt.h"

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  int samples = argc > 1 ? atoi(argv[1]) : 2000;
  if (samples < 1) samples = 1;
  zen_context_t ctx = 0;
  if (zen_context_new(1, NULL, &ctx) != ZEN_OK) return 1;
  zen_value_t v[1000];
  for (int i = 0; i < 1000; i++) {
    char id[32];
    int n = snprintf(id, sizeof id, "bench/%d", i);
    if (zen_value_create(ctx, id, (size_t)n, ZEN_TYPE_VEC3, ZEN_MODE_FAST_LOCAL, ZEN_POLICY_LAST_WRITER_WINS, NULL,
                         0, &v[i]) != ZEN_OK)
      return 1;
  }
  double *per_call = (double *)malloc(sizeof(double) * (size_t)samples);
  for (int s = 0; s < samples; s++) {
    double t0 = now_ns();
    for (int i = 0; i < 1000; i++) {
      zen_vec3_t p = {(float)i, (float)s, 0.5f};
      zen_value_set_vec3(ctx, v[i], p);
    }
    per_call[s] = (now_ns() - t0) / 1000.0;
    zen_context_tick(ctx, 16 * (uint64_t)(s + 1));
    zen_change_t ch;
    bool has = true;
    while (zen_context_poll_change(ctx, &ch, &has) == ZEN_OK && has) {
    }
  }
  qsort(per_call, (size_t)samples, sizeof(double), cmp);
  double c_median = per_call[samples / 2];
  double core = 0;
  zen_diagnostics_core_set_vec3_ns((uint32_t)samples, &core);
  printf("\n| figure (median ns per call, %d x 1000 writes) | ns    | target   |\n", samples);
  printf("|------------------------------------------------|-------|----------|\n");
  printf("| zen_value_set_vec3 through the C ABI           | %5.1f | <= 100   |\n", c_median);
  printf("| Context::set in the Rust core (same loop)      | %5.1f |          |\n", core);
  printf("| cost of the C boundary (handle check, lock)    | %5.1f |          |\n", c_median - core);
  free(per_call);
  zen_context_free(ctx);
  return 0;
}

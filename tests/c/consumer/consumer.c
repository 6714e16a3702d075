/* Links zen-crdt (installed package, pkg-config or add_subdirectory) and syncs one value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zen_crdt.h"

/* Ends the program with the library's message when a call fails. */
static void must(zen_status_t status, const char *what) {
  if (status != ZEN_OK) {
    fprintf(stderr, "%s: %s: %s\n", what, zen_status_name(status), zen_last_error());
    exit(1);
  }
}

int main(void) {
  if (zen_version() != ((ZEN_VERSION_MAJOR << 16) | (ZEN_VERSION_MINOR << 8) | ZEN_VERSION_PATCH)) {
    fprintf(stderr, "header and library versions differ\n");
    return 1;
  }
  zen_context_t a = {0}, b = {0};
  must(zen_context_new(1, NULL, &a), "new a");
  must(zen_context_new(2, NULL, &b), "new b");
  must(zen_context_add_peer(a, 2), "add peer");
  must(zen_context_add_peer(b, 1), "add peer");
  zen_value_options_t opts;
  must(zen_value_options_default(&opts), "value options");
  opts.mode = ZEN_MODE_WAIT_FOR_SYNC;
  opts.policy = ZEN_POLICY_MIN;
  zen_value_t hp = {0, 0};
  must(zen_value_create(a, "hp", 2, ZEN_TYPE_I64, &opts, &hp), "create");
  must(zen_value_set_i64(a, hp, 75), "set");
  static uint8_t buf[1 << 16];
  for (uint64_t now = 16; now < 400; now += 16) {
    must(zen_context_tick(a, now), "tick a");
    must(zen_context_tick(b, now), "tick b");
    size_t len;
    uint64_t to;
    bool has = true;
    while (must(zen_context_poll_outbound(a, buf, sizeof buf, &len, &to, &has), "poll a"), has)
      must(zen_context_receive_from(b, 1, buf, len), "receive on b");
    has = true;
    while (must(zen_context_poll_outbound(b, buf, sizeof buf, &len, &to, &has), "poll b"), has)
      must(zen_context_receive_from(a, 2, buf, len), "receive on a");
  }
  int64_t seen = 0;
  must(zen_value_get_i64(a, hp, &seen), "get");
  printf("linked zen-crdt %u.%u.%u: hp converged to %lld\n", ZEN_VERSION_MAJOR, ZEN_VERSION_MINOR, ZEN_VERSION_PATCH,
         (long long)seen);
  zen_context_free(a);
  zen_context_free(b);
  return seen == 75 ? 0 : 1;
}

/* Links zen-crdt (installed package, pkg-config or add_subdirectory) and syncs one value. */
#include <stdio.h>
#include <string.h>

#include "zen_crdt.h"

int main(void) {
  if (zen_version() != ((ZEN_VERSION_MAJOR << 16) | (ZEN_VERSION_MINOR << 8) | ZEN_VERSION_PATCH)) {
    fprintf(stderr, "header and library versions differ\n");
    return 1;
  }
  zen_context_t a = 0, b = 0;
  if (zen_context_new(1, NULL, &a) != ZEN_OK || zen_context_new(2, NULL, &b) != ZEN_OK) return 1;
  zen_context_add_peer(a, 2);
  zen_context_add_peer(b, 1);
  zen_value_t hp = 0;
  zen_value_create(a, "hp", 2, ZEN_TYPE_I64, ZEN_MODE_WAIT_FOR_SYNC, ZEN_POLICY_MIN, NULL, 0, &hp);
  zen_value_set_i64(a, hp, 75);
  static uint8_t buf[1 << 16];
  for (uint64_t now = 16; now < 400; now += 16) {
    zen_context_tick(a, now);
    zen_context_tick(b, now);
    size_t len;
    uint64_t to;
    bool has;
    while (zen_context_poll_outbound(a, buf, sizeof buf, &len, &to, &has) == ZEN_OK && has) zen_context_receive(b, buf, len);
    while (zen_context_poll_outbound(b, buf, sizeof buf, &len, &to, &has) == ZEN_OK && has) zen_context_receive(a, buf, len);
  }
  int64_t seen = 0;
  zen_value_get_i64(a, hp, &seen);
  printf("linked zen-crdt %u.%u.%u: hp converged to %lld\n", ZEN_VERSION_MAJOR, ZEN_VERSION_MINOR, ZEN_VERSION_PATCH,
         (long long)seen);
  zen_context_free(a);
  zen_context_free(b);
  return seen == 75 ? 0 : 1;
}

/* C harness tests of saving and loading (zen_context_save / _load / _save_file /
 * _load_file): a session's state survives a save, the loaded context rejoins and catches
 * up, a save taken over under a new id serves a newcomer, files are written atomically,
 * and every error path (corrupt, truncated, newer, an id that wrote, a missing file, bad
 * arguments) is a clear status that creates nothing. Built and run like test_api.c. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <unistd.h>

#include "session.h"

static int64_t i64_of(zen_context_t c, const char *id) {
  int64_t x = -999;
  MUST(zen_value_get_i64(c, open_value(c, id), &x));
  return x;
}

/* A two-peer session where peer 2 wrote "hp" (Max), peer 1 "name" (WaitForSync). */
static void written(session *s) {
  session_open(s, 2);
  zen_value_t hp = create(s->ctx[1], "hp", ZEN_TYPE_I64, ZEN_MODE_FAST_LOCAL, ZEN_POLICY_MAX);
  MUST(zen_value_set_i64(s->ctx[1], hp, 70));
  zen_value_t name = create(s->ctx[0], "name", ZEN_TYPE_STRING, ZEN_MODE_WAIT_FOR_SYNC, ZEN_POLICY_LAST_WRITER_WINS);
  MUST(zen_value_set_string(s->ctx[0], name, ID("ada")));
  session_run(s, 30);
}

static void test_save_load_round_trip_and_rejoin(void) {
  session s;
  written(&s);
  zen_bytes_t saved = {NULL, 0};
  CHECK_OK(zen_context_save(s.ctx[1], &saved));
  CHECK(saved.ptr != NULL && saved.len > 16);
  /* Peer 2 stops; peer 1 writes on; peer 2 comes back from its save. */
  zen_context_free(s.ctx[1]);
  MUST(zen_context_remove_peer(s.ctx[0], 2));
  MUST(zen_value_set_i64(s.ctx[0], open_value(s.ctx[0], "hp"), 90));
  s.n = 1; /* peer 1 alone */
  session_run(&s, 1);
  s.n = 2;
  zen_context_t back = {0};
  CHECK_OK(zen_context_load(2, NULL, saved.ptr, saved.len, &back));
  zen_bytes_free(&saved);
  CHECK(saved.ptr == NULL && saved.len == 0);
  CHECK(i64_of(back, "hp") == 70);
  /* Each value is announced as created. */
  int created = 0;
  zen_change_t ch;
  bool has = true;
  while (has) {
    CHECK_OK(zen_context_poll_change(back, &ch, &has));
    if (has) created += ch.kind == ZEN_CHANGE_CREATED;
  }
  CHECK(created == 2);
  s.ctx[1] = back;
  MUST(zen_context_add_peer(s.ctx[0], 2));
  MUST(zen_context_add_peer(back, 1));
  session_run(&s, 40);
  CHECK(i64_of(back, "hp") == 90);
  char name[8];
  size_t n = 0;
  CHECK_OK(zen_value_get_string(back, open_value(back, "name"), name, sizeof name, &n));
  CHECK(n == 3 && memcmp(name, "ada", 3) == 0);
  CHECK(state_of(back, open_value(back, "hp")) == ZEN_STATE_CONVERGED);
  session_close(&s);
}

static void test_save_taken_over_serves_a_newcomer(void) {
  session s;
  written(&s);
  zen_bytes_t saved = {NULL, 0};
  CHECK_OK(zen_context_save(s.ctx[1], &saved));
  session_close(&s);
  /* Every player left; a keeper (id 50) loads the save; a newcomer (id 3) meets only it. */
  session k;
  k.n = 2;
  k.now = 0;
  CHECK_OK(zen_context_load(50, NULL, saved.ptr, saved.len, &k.ctx[0]));
  /* Peer 2 wrote in the save: it may continue it only as its saver, which it is not. */
  zen_context_t taken = {0};
  CHECK_STATUS(zen_context_load(1, NULL, saved.ptr, saved.len, &taken), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(taken.id == 0 && strstr(last_error(), "load as peer 2") != NULL);
  zen_bytes_free(&saved);
  k.ctx[1] = new_ctx(3);
  /* session_run delivers by position: peer ids 1..n are assumed, so connect by hand. */
  MUST(zen_context_add_peer(k.ctx[0], 3));
  MUST(zen_context_add_peer(k.ctx[1], 50));
  static uint8_t buf[1 << 16];
  for (int t = 0; t < 60; t++) {
    k.now += 16;
    for (int i = 0; i < 2; i++) MUST(zen_context_tick(k.ctx[i], k.now));
    for (int i = 0; i < 2; i++) {
      for (;;) {
        size_t len = 0;
        uint64_t to = 0;
        bool has = false;
        MUST(zen_context_poll_outbound(k.ctx[i], buf, sizeof buf, &len, &to, &has));
        if (!has) break;
        MUST(zen_context_receive_from(k.ctx[1 - i], i == 0 ? 50 : 3, buf, len));
      }
    }
  }
  CHECK(i64_of(k.ctx[1], "hp") == 70);
  CHECK(state_of(k.ctx[1], open_value(k.ctx[1], "name")) == ZEN_STATE_CONVERGED);
  session_close(&k);
}

static void test_save_files(void) {
  session s;
  written(&s);
  char path[64];
  int n = snprintf(path, sizeof path, "/tmp/zen_save_%d.zen", (int)getpid());
  CHECK_OK(zen_context_save_file(s.ctx[1], path, (size_t)n));
  CHECK_OK(zen_context_save_file(s.ctx[1], path, (size_t)n)); /* over the old one */
  zen_context_t back = {0};
  CHECK_OK(zen_context_load_file(2, NULL, path, (size_t)n, &back));
  CHECK(i64_of(back, "hp") == 70);
  zen_context_free(back);
  /* A truncated file: DECODE, nothing created. */
  CHECK(truncate(path, 20) == 0);
  back.id = 0;
  CHECK_STATUS(zen_context_load_file(2, NULL, path, (size_t)n, &back), ZEN_ERR_DECODE);
  CHECK(back.id == 0 && strstr(last_error(), "truncated") != NULL);
  CHECK(unlink(path) == 0);
  CHECK_STATUS(zen_context_load_file(2, NULL, path, (size_t)n, &back), ZEN_ERR_IO);
  CHECK(strstr(last_error(), "zen_save_") != NULL);
  const char *nowhere = "/nonexistent-dir/x.zen";
  CHECK_STATUS(zen_context_save_file(s.ctx[1], nowhere, strlen(nowhere)), ZEN_ERR_IO);
  CHECK(strstr(last_error(), "nonexistent-dir") != NULL);
  CHECK(strcmp(zen_status_name(ZEN_ERR_IO), "ZEN_ERR_IO") == 0);
  session_close(&s);
}

static void test_save_errors(void) {
  session s;
  written(&s);
  zen_bytes_t saved = {NULL, 0};
  CHECK_OK(zen_context_save(s.ctx[1], &saved));
  zen_context_t c = {0};
  /* Every truncation and a flipped byte are DECODE. */
  for (size_t len = 0; len < saved.len; len += 3) {
    CHECK_STATUS(zen_context_load(2, NULL, saved.ptr, len, &c), ZEN_ERR_DECODE);
    CHECK(c.id == 0);
  }
  saved.ptr[saved.len / 2] ^= 0x10;
  CHECK_STATUS(zen_context_load(2, NULL, saved.ptr, saved.len, &c), ZEN_ERR_DECODE);
  CHECK(strstr(last_error(), "checksum") != NULL);
  saved.ptr[saved.len / 2] ^= 0x10;
  /* Limits of the loading host: options with max_values 1. */
  zen_options_t o;
  MUST(zen_options_default(&o));
  o.max_values = 1;
  CHECK_STATUS(zen_context_load(2, &o, saved.ptr, saved.len, &c), ZEN_ERR_TOO_LARGE);
  /* Bad arguments. */
  CHECK_STATUS(zen_context_load(0, NULL, saved.ptr, saved.len, &c), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_context_load(2, NULL, NULL, saved.len, &c), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_context_load(2, NULL, saved.ptr, saved.len, NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_context_save(s.ctx[1], NULL), ZEN_ERR_NULL_ARGUMENT);
  zen_context_t freed = new_ctx(9);
  zen_context_free(freed);
  zen_bytes_t none = {NULL, 0};
  CHECK_STATUS(zen_context_save(freed, &none), ZEN_ERR_INVALID_HANDLE);
  CHECK(none.ptr == NULL);
  CHECK_STATUS(zen_context_save_file(s.ctx[1], NULL, 3), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_context_save_file(s.ctx[1], "\xff\xfe", 2), ZEN_ERR_INVALID_UTF8);
  CHECK_STATUS(zen_context_load_file(2, NULL, "\xff", 1, &c), ZEN_ERR_INVALID_UTF8);
  CHECK(c.id == 0);
  /* The good save still loads. */
  CHECK_OK(zen_context_load(2, NULL, saved.ptr, saved.len, &c));
  zen_context_free(c);
  zen_bytes_free(&saved);
  zen_bytes_free(&saved);
  session_close(&s);
}

static const zen_test_case CASES[] = {
    {"save_load_round_trip_and_rejoin", test_save_load_round_trip_and_rejoin},
    {"save_taken_over_serves_a_newcomer", test_save_taken_over_serves_a_newcomer},
    {"save_files", test_save_files},
    {"save_errors", test_save_errors},
};

int main(int argc, char **argv) { return zen_run_tests(CASES, sizeof CASES / sizeof CASES[0], argc, argv); }

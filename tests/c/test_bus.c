/* C harness tests of the in-process bus (zen_bus_*, zen_endpoint_*): contexts pumped on
 * their own threads converge; every error path. Built and run like test_api.c. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "session.h"

typedef struct {
  zen_context_t ctx;
  zen_endpoint_t ep;
  int frames;
  int failures;
} player;

/* One player's thread: a frame every millisecond of its own clock (virtual: 16 ms a
 * frame), as a game loop would. */
static void *play(void *arg) {
  player *p = (player *)arg;
  for (int f = 1; f <= p->frames; f++) {
    if (zen_endpoint_pump(p->ctx, p->ep, (uint64_t)f * 16) != ZEN_OK) p->failures++;
    struct timespec ts = {0, 200000};
    nanosleep(&ts, NULL);
  }
  return NULL;
}

static void test_bus_threads_converge(void) {
  zen_bus_t bus = {0};
  CHECK_OK(zen_bus_new(&bus));
  player ps[3];
  for (int i = 0; i < 3; i++) {
    ps[i].ctx = new_ctx((uint64_t)i + 1);
    CHECK_OK(zen_bus_join(bus, (uint64_t)i + 1, 64, &ps[i].ep));
    ps[i].frames = 400;
    ps[i].failures = 0;
  }
  /* Each player writes its own value before the threads start. */
  const char *ids[3] = {"p1", "p2", "p3"};
  for (int i = 0; i < 3; i++) {
    zen_value_t v = create(ps[i].ctx, ids[i], ZEN_TYPE_I64, ZEN_MODE_FAST_LOCAL, ZEN_POLICY_LAST_WRITER_WINS);
    CHECK_OK(zen_value_set_i64(ps[i].ctx, v, 10 + i));
  }
  pthread_t th[3];
  for (int i = 0; i < 3; i++) CHECK(pthread_create(&th[i], NULL, play, &ps[i]) == 0);
  for (int i = 0; i < 3; i++) CHECK(pthread_join(th[i], NULL) == 0);
  for (int i = 0; i < 3; i++) {
    CHECK(ps[i].failures == 0);
    for (int k = 0; k < 3; k++) {
      int64_t got = 0;
      CHECK_OK(zen_value_get_i64(ps[i].ctx, open_value(ps[i].ctx, ids[k]), &got));
      CHECK(got == 10 + k);
      zen_sync_state_t st;
      zen_value_type_t ty;
      zen_mode_t mode;
      zen_policy_t policy;
      CHECK_OK(zen_value_info(ps[i].ctx, open_value(ps[i].ctx, ids[k]), &ty, &mode, &policy, &st));
      CHECK(st == ZEN_STATE_CONVERGED);
    }
    zen_endpoint_stats_t s;
    s.struct_size = sizeof s;
    CHECK_OK(zen_endpoint_stats(ps[i].ep, &s));
    CHECK(s.struct_size == sizeof s && s.sent > 0 && s.received > 0 && s.bytes_received > 0);
  }
  /* Player 3 leaves: the others drop it from their members at their next pump. */
  zen_endpoint_free(ps[2].ep);
  zen_endpoint_free(ps[2].ep); /* twice is harmless */
  CHECK_OK(zen_endpoint_pump(ps[0].ctx, ps[0].ep, 99999));
  zen_metrics_t m = metrics_of(ps[0].ctx);
  CHECK(m.peers == 1);
  zen_peer_lag_t lag;
  CHECK_OK(zen_context_peer_lag(ps[0].ctx, 0, &lag));
  CHECK(lag.peer == 2);
  for (int i = 0; i < 2; i++) zen_endpoint_free(ps[i].ep);
  for (int i = 0; i < 3; i++) zen_context_free(ps[i].ctx);
  zen_bus_free(bus);
}

static void test_bus_errors(void) {
  CHECK_STATUS(zen_bus_new(NULL), ZEN_ERR_NULL_ARGUMENT);
  zen_bus_t zero = {0};
  zen_endpoint_t ep = {0};
  CHECK_STATUS(zen_bus_join(zero, 1, 8, &ep), ZEN_ERR_INVALID_HANDLE);
  CHECK(strstr(last_error(), "bus") != NULL);
  zen_bus_t bus = {0};
  CHECK_OK(zen_bus_new(&bus));
  CHECK_STATUS(zen_bus_join(bus, 1, 8, NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_bus_join(bus, 0, 8, &ep), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_bus_join(bus, 1, 0, &ep), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "capacity") != NULL);
  CHECK(ep.id == 0);
  CHECK_OK(zen_bus_join(bus, 1, 8, &ep));
  zen_endpoint_t again = {0};
  CHECK_STATUS(zen_bus_join(bus, 1, 8, &again), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "already taken") != NULL && again.id == 0);

  zen_context_t c1 = new_ctx(1), c2 = new_ctx(2);
  CHECK_STATUS(zen_endpoint_pump(c2, ep, 16), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "peer 1") != NULL);
  zen_endpoint_t none = {0};
  CHECK_STATUS(zen_endpoint_pump(c1, none, 16), ZEN_ERR_INVALID_HANDLE);
  zen_endpoint_t cast = {c1.id}; /* a context's number is not an endpoint */
  CHECK_STATUS(zen_endpoint_pump(c1, cast, 16), ZEN_ERR_INVALID_HANDLE);
  zen_context_t not_ctx = {ep.id};
  CHECK_STATUS(zen_endpoint_pump(not_ctx, ep, 16), ZEN_ERR_INVALID_HANDLE);
  CHECK_OK(zen_endpoint_pump(c1, ep, 16));

  zen_endpoint_stats_t s;
  CHECK_STATUS(zen_endpoint_stats(ep, NULL), ZEN_ERR_NULL_ARGUMENT);
  s.struct_size = 0;
  CHECK_STATUS(zen_endpoint_stats(ep, &s), ZEN_ERR_INVALID_ARGUMENT);
  s.struct_size = sizeof s;
  CHECK_OK(zen_endpoint_stats(ep, &s));
  CHECK(s.sent == 0 && s.dropped == 0);

  /* Freeing the bus handle leaves joined endpoints working; nobody can join. */
  zen_bus_free(bus);
  zen_bus_free(bus);
  CHECK_OK(zen_endpoint_pump(c1, ep, 32));
  CHECK_STATUS(zen_bus_join(bus, 2, 8, &again), ZEN_ERR_INVALID_HANDLE);
  zen_endpoint_free(ep);
  CHECK_STATUS(zen_endpoint_pump(c1, ep, 48), ZEN_ERR_INVALID_HANDLE);
  zen_endpoint_free(none);
  zen_context_free(c1);
  zen_context_free(c2);
}

/* A queue of one message overflows: the drop is counted, and the protocol repairs it. */
static void test_bus_full_queue_drops_and_recovers(void) {
  zen_bus_t bus = {0};
  CHECK_OK(zen_bus_new(&bus));
  zen_context_t a = new_ctx(1), b = new_ctx(2);
  zen_endpoint_t ea = {0}, eb = {0};
  CHECK_OK(zen_bus_join(bus, 1, 1, &ea));
  CHECK_OK(zen_bus_join(bus, 2, 1, &eb));
  uint64_t now = 0;
  for (int round = 0; round < 4; round++) {
    zen_value_t v = create(a, round % 2 ? "odd" : "even", ZEN_TYPE_I64, ZEN_MODE_FAST_LOCAL,
                           ZEN_POLICY_LAST_WRITER_WINS);
    CHECK_OK(zen_value_set_i64(a, v, round));
    /* a sends twice before b takes anything: the second message finds b's queue full */
    CHECK_OK(zen_endpoint_pump(a, ea, now += 16));
    CHECK_OK(zen_endpoint_pump(a, ea, now += 300));
  }
  zen_endpoint_stats_t s;
  s.struct_size = sizeof s;
  CHECK_OK(zen_endpoint_stats(ea, &s));
  CHECK(s.dropped > 0);
  for (int f = 0; f < 300; f++) {
    now += 16;
    CHECK_OK(zen_endpoint_pump(a, ea, now));
    CHECK_OK(zen_endpoint_pump(b, eb, now));
  }
  int64_t got = -1;
  CHECK_OK(zen_value_get_i64(b, open_value(b, "odd"), &got));
  CHECK(got == 3);
  CHECK_OK(zen_value_get_i64(b, open_value(b, "even"), &got));
  CHECK(got == 2);
  zen_endpoint_free(ea);
  zen_endpoint_free(eb);
  zen_context_free(a);
  zen_context_free(b);
  zen_bus_free(bus);
}

static const zen_test_case CASES[] = {
    {"bus_threads_converge", test_bus_threads_converge},
    {"bus_errors", test_bus_errors},
    {"bus_full_queue_drops_and_recovers", test_bus_full_queue_drops_and_recovers},
};

int main(int argc, char **argv) { return zen_run_tests(CASES, sizeof CASES / sizeof CASES[0], argc, argv); }

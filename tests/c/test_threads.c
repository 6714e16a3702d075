/* C harness tests of the library's threads. Bridges (zen_bridge_*, the relay endpoints):
 * a game's two contexts on a bus reach an ENet host through a bridge thread, every
 * context counts the others and not the bridge, and freeing the bridge is their leave.
 * Drivers (zen_driver_*): contexts pumped by library threads converge while the test
 * thread writes and waits, a refused ENet client is reported, a freed context stops its
 * driver. Every error path. Built and run like test_api.c. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <time.h>

#include "clock.h"
#include "session.h"

enum { N = 3 };

/* Pumps the three contexts until every one has `members` peers and, if `id` is given,
 * that value is converged everywhere; false after 10 s. */
static int pump_until(zen_context_t *ctx, zen_endpoint_t *ep, uint64_t start, uint64_t members, const char *id) {
  uint64_t until = now_ms() + 10000;
  while (now_ms() < until) {
    int done = 1;
    for (int i = 0; i < N; i++) {
      if (zen_endpoint_pump(ctx[i], ep[i], now_ms() - start) != ZEN_OK) return 0;
      if (metrics_of(ctx[i]).peers != members) done = 0;
      zen_value_t v;
      if (id && (zen_value_open(ctx[i], id, strlen(id), &v) != ZEN_OK || state_of(ctx[i], v) != ZEN_STATE_CONVERGED))
        done = 0;
    }
    if (done) return 1;
    nap();
  }
  return 0;
}

static void test_bridge_bus_to_enet(void) {
  uint64_t start = now_ms();
  zen_context_t ctx[N] = {new_ctx(1), new_ctx(2), new_ctx(10)};
  zen_endpoint_t ep[N];
  /* The host: peer 10 on ENet. */
  const char *any = "127.0.0.1:0";
  CHECK_OK(zen_enet_listen(any, strlen(any), 10, NULL, &ep[2]));
  uint16_t port = 0;
  CHECK_OK(zen_endpoint_local_port(ep[2], &port));
  char addr[32];
  snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)port);
  /* The game: peers 1 and 2 on a bus, bridged to the host by a relay client. */
  zen_bus_t bus = {0};
  CHECK_OK(zen_bus_new(&bus));
  CHECK_OK(zen_bus_join(bus, 1, 256, &ep[0]));
  CHECK_OK(zen_bus_join(bus, 2, 256, &ep[1]));
  zen_endpoint_t near = {0}, far = {0};
  CHECK_OK(zen_bus_join_relay(bus, 1024, &near));
  CHECK_OK(zen_enet_connect_relay(addr, strlen(addr), NULL, &far));
  zen_bridge_t bridge = {0};
  CHECK_OK(zen_bridge_start(near, far, 1, &bridge));
  /* The bridge owns its endpoints now. */
  zen_endpoint_stats_t es;
  es.struct_size = sizeof es;
  CHECK_STATUS(zen_endpoint_stats(near, &es), ZEN_ERR_INVALID_HANDLE);
  zen_endpoint_free(far); /* harmless: no longer a live handle */

  CHECK(pump_until(ctx, ep, start, 2, NULL));
  zen_value_t door = create(ctx[0], "door", ZEN_TYPE_BOOL, ZEN_MODE_WAIT_FOR_SYNC, ZEN_POLICY_LAST_WRITER_WINS);
  CHECK_OK(zen_value_set_bool(ctx[0], door, true));
  CHECK(pump_until(ctx, ep, start, 2, "door"));
  bool open = false;
  CHECK_OK(zen_value_get_bool(ctx[2], open_value(ctx[2], "door"), &open));
  CHECK(open);
  zen_bridge_stats_t bs;
  bs.struct_size = sizeof bs;
  CHECK_OK(zen_bridge_stats(bridge, &bs));
  CHECK(bs.struct_size == sizeof bs && bs.forwarded > 0 && bs.bytes_forwarded > 0);
  CHECK(bs.carried == 3 && bs.refused == 0); /* 1 and 2 to ENet, 10 to the bus */

  /* Without the bridge, the host is alone and the game's contexts have each other. */
  zen_bridge_free(bridge);
  zen_bridge_free(bridge);
  uint64_t until = now_ms() + 5000;
  while (now_ms() < until && (metrics_of(ctx[2]).peers != 0 || metrics_of(ctx[0]).peers != 1)) {
    for (int i = 0; i < N; i++) CHECK_OK(zen_endpoint_pump(ctx[i], ep[i], now_ms() - start));
    nap();
  }
  CHECK(metrics_of(ctx[2]).peers == 0 && metrics_of(ctx[0]).peers == 1);
  for (int i = 0; i < N; i++) {
    zen_endpoint_free(ep[i]);
    zen_context_free(ctx[i]);
  }
  zen_bus_free(bus);
}

static void test_bridge_errors(void) {
  zen_bus_t bus = {0};
  CHECK_OK(zen_bus_new(&bus));
  zen_endpoint_t a = {0}, b = {0}, plain = {0}, none = {0};
  CHECK_STATUS(zen_bus_join_relay(bus, 0, &a), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_bus_join_relay(bus, 8, NULL), ZEN_ERR_NULL_ARGUMENT);
  zen_bus_t no_bus = {0};
  CHECK_STATUS(zen_bus_join_relay(no_bus, 8, &a), ZEN_ERR_INVALID_HANDLE);
  CHECK_OK(zen_bus_join_relay(bus, 8, &a));
  CHECK_OK(zen_bus_join_relay(bus, 8, &b));
  CHECK_OK(zen_bus_join(bus, 5, 8, &plain));
  const char *bad = "localhost:7000";
  zen_endpoint_t e = {0};
  CHECK_STATUS(zen_enet_connect_relay(bad, strlen(bad), NULL, &e), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "host_addr") != NULL && e.id == 0);
  CHECK_STATUS(zen_enet_listen_relay(bad, strlen(bad), NULL, &e), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_enet_listen_relay(NULL, 4, NULL, &e), ZEN_ERR_NULL_ARGUMENT);
  zen_enet_options_t o;
  CHECK_OK(zen_enet_options_default(&o));
  o.timeout_ms = 0;
  const char *any = "127.0.0.1:0";
  CHECK_STATUS(zen_enet_listen_relay(any, strlen(any), &o, &e), ZEN_ERR_INVALID_ARGUMENT);

  /* A relay cannot be pumped with a context. */
  zen_context_t c = new_ctx(7);
  CHECK_STATUS(zen_endpoint_pump(c, a, 16), ZEN_ERR_INVALID_ARGUMENT);
  zen_context_free(c);

  zen_bridge_t br = {0};
  CHECK_STATUS(zen_bridge_start(a, b, 1, NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_bridge_start(a, b, 0, &br), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "period_ms") != NULL);
  CHECK_STATUS(zen_bridge_start(a, b, 1001, &br), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_bridge_start(a, a, 1, &br), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "same") != NULL);
  CHECK_STATUS(zen_bridge_start(a, plain, 1, &br), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "not a relay") != NULL);
  CHECK_STATUS(zen_bridge_start(a, none, 1, &br), ZEN_ERR_INVALID_HANDLE);
  CHECK(br.id == 0);
  /* Every refusal left both endpoints with the caller. */
  zen_endpoint_stats_t es;
  es.struct_size = sizeof es;
  CHECK_OK(zen_endpoint_stats(a, &es));
  CHECK_OK(zen_endpoint_stats(plain, &es));

  zen_bridge_stats_t bs;
  bs.struct_size = sizeof bs;
  CHECK_STATUS(zen_bridge_stats(br, &bs), ZEN_ERR_INVALID_HANDLE);
  zen_bridge_t cast = {a.id}; /* an endpoint's number is not a bridge */
  CHECK_STATUS(zen_bridge_stats(cast, &bs), ZEN_ERR_INVALID_HANDLE);
  CHECK_OK(zen_bridge_start(a, b, 2, &br));
  CHECK_STATUS(zen_bridge_stats(br, NULL), ZEN_ERR_NULL_ARGUMENT);
  bs.struct_size = 0;
  CHECK_STATUS(zen_bridge_stats(br, &bs), ZEN_ERR_INVALID_ARGUMENT);
  bs.struct_size = sizeof bs;
  CHECK_OK(zen_bridge_stats(br, &bs));
  /* Taken endpoints are gone from the caller's hands. */
  zen_bridge_t again = {0};
  CHECK_STATUS(zen_bridge_start(a, b, 1, &again), ZEN_ERR_INVALID_HANDLE);
  zen_bridge_free(br);
  zen_bridge_free((zen_bridge_t){0});
  zen_endpoint_free(plain);
  zen_bus_free(bus);
}

/* Two contexts on a bus, each pumped by a driver; this thread only writes and waits. */
static void test_driver_pumps_while_the_game_waits(void) {
  zen_bus_t bus = {0};
  CHECK_OK(zen_bus_new(&bus));
  zen_context_t a = new_ctx(1), b = new_ctx(2);
  zen_endpoint_t ea = {0}, eb = {0};
  CHECK_OK(zen_bus_join(bus, 1, 256, &ea));
  CHECK_OK(zen_bus_join(bus, 2, 256, &eb));
  zen_driver_t da = {0}, db = {0};
  CHECK_OK(zen_driver_start(a, ea, 5, &da));
  CHECK_OK(zen_driver_start(b, eb, 5, &db));
  zen_endpoint_stats_t es;
  es.struct_size = sizeof es;
  CHECK_STATUS(zen_endpoint_stats(ea, &es), ZEN_ERR_INVALID_HANDLE); /* the driver has it */
  zen_value_t door = create(a, "door", ZEN_TYPE_BOOL, ZEN_MODE_WAIT_FOR_SYNC, ZEN_POLICY_LAST_WRITER_WINS);
  /* Wait for the membership before writing, so converged means b has it. */
  uint64_t until = now_ms() + 10000;
  while (metrics_of(a).peers != 1 && now_ms() < until) nap();
  CHECK_OK(zen_value_set_bool(a, door, true));
  CHECK_OK(zen_value_wait_converged(a, door, 10000));
  bool open = false;
  zen_value_t seen;
  until = now_ms() + 10000;
  while (zen_value_open(b, ID("door"), &seen) != ZEN_OK && now_ms() < until) nap();
  CHECK_OK(zen_value_wait_converged(b, seen, 10000));
  CHECK_OK(zen_value_get_bool(b, seen, &open));
  CHECK(open);
  CHECK_OK(zen_driver_check(da));
  /* b's driver stops: a sees b leave; b's context stays usable, ticked no more. */
  zen_driver_free(db);
  zen_driver_free(db);
  until = now_ms() + 5000;
  while (metrics_of(a).peers != 0 && now_ms() < until) nap();
  CHECK(metrics_of(a).peers == 0);
  CHECK_OK(zen_value_get_bool(b, seen, &open));
  /* Freeing a driven context stops its driver, which says why. */
  zen_context_free(a);
  until = now_ms() + 5000;
  zen_status_t st = ZEN_OK;
  while ((st = zen_driver_check(da)) == ZEN_OK && now_ms() < until) nap();
  CHECK(st == ZEN_ERR_INVALID_HANDLE && strstr(last_error(), "freed") != NULL);
  zen_driver_free(da);
  zen_context_free(b);
  zen_bus_free(bus);
}

/* A driven ENet client with a peer id the host has: the driver reports the refusal. */
static void test_driver_reports_a_refusal(void) {
  zen_context_t h = new_ctx(1), dup = new_ctx(1);
  zen_endpoint_t eh = {0}, ed = {0};
  const char *any = "127.0.0.1:0";
  CHECK_OK(zen_enet_listen(any, strlen(any), 1, NULL, &eh));
  uint16_t port = 0;
  CHECK_OK(zen_endpoint_local_port(eh, &port));
  char addr[32];
  snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)port);
  CHECK_OK(zen_enet_connect(addr, strlen(addr), 1, NULL, &ed));
  zen_driver_t dh = {0}, dd = {0};
  CHECK_OK(zen_driver_start(h, eh, 2, &dh));
  CHECK_OK(zen_driver_start(dup, ed, 2, &dd));
  uint64_t until = now_ms() + 10000;
  zen_status_t st = ZEN_OK;
  while ((st = zen_driver_check(dd)) == ZEN_OK && now_ms() < until) nap();
  CHECK(st == ZEN_ERR_TRANSPORT && strstr(last_error(), "already taken") != NULL);
  CHECK_OK(zen_driver_check(dh));
  zen_driver_free(dd);
  zen_driver_free(dh);
  zen_context_free(h);
  zen_context_free(dup);
}

static void test_driver_errors(void) {
  zen_bus_t bus = {0};
  CHECK_OK(zen_bus_new(&bus));
  zen_context_t c = new_ctx(1);
  zen_endpoint_t mine = {0}, other = {0}, relay = {0}, none = {0};
  CHECK_OK(zen_bus_join(bus, 1, 8, &mine));
  CHECK_OK(zen_bus_join(bus, 2, 8, &other));
  CHECK_OK(zen_bus_join_relay(bus, 8, &relay));
  zen_driver_t d = {0};
  CHECK_STATUS(zen_driver_start(c, mine, 5, NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_driver_start(c, mine, 0, &d), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "tick_ms") != NULL);
  CHECK_STATUS(zen_driver_start(c, mine, 1001, &d), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_driver_start(c, other, 5, &d), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "peer 2") != NULL);
  CHECK_STATUS(zen_driver_start(c, relay, 5, &d), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_driver_start(c, none, 5, &d), ZEN_ERR_INVALID_HANDLE);
  zen_context_t no_ctx = {0};
  CHECK_STATUS(zen_driver_start(no_ctx, mine, 5, &d), ZEN_ERR_INVALID_HANDLE);
  CHECK(d.id == 0);
  zen_endpoint_stats_t es;
  es.struct_size = sizeof es;
  CHECK_OK(zen_endpoint_stats(mine, &es)); /* every refusal left it with the caller */
  CHECK_STATUS(zen_driver_check(d), ZEN_ERR_INVALID_HANDLE);
  zen_driver_t cast = {mine.id}; /* an endpoint's number is not a driver */
  CHECK_STATUS(zen_driver_check(cast), ZEN_ERR_INVALID_HANDLE);
  CHECK_OK(zen_driver_start(c, mine, 5, &d));
  CHECK_STATUS(zen_driver_start(c, mine, 5, &d), ZEN_ERR_INVALID_HANDLE); /* taken */
  CHECK_OK(zen_driver_check(d));
  zen_driver_free(d);
  zen_driver_free((zen_driver_t){0});
  zen_endpoint_free(other);
  zen_endpoint_free(relay);
  zen_context_free(c);
  zen_bus_free(bus);
}

static const zen_test_case CASES[] = {
    {"bridge_bus_to_enet", test_bridge_bus_to_enet},
    {"bridge_errors", test_bridge_errors},
    {"driver_pumps_while_the_game_waits", test_driver_pumps_while_the_game_waits},
    {"driver_reports_a_refusal", test_driver_reports_a_refusal},
    {"driver_errors", test_driver_errors},
};

int main(int argc, char **argv) { return zen_run_tests(CASES, sizeof CASES / sizeof CASES[0], argc, argv); }

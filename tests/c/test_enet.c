/* C harness tests of the ENet link (zen_enet_*): a listen host and a client on their
 * own threads over 127.0.0.1 converge; a refused client gets ZEN_ERR_TRANSPORT with the
 * reason; a mesh of three converges; every error path. Built and run like test_api.c. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "clock.h"
#include "session.h"

typedef struct {
  zen_context_t ctx;
  zen_endpoint_t ep;
  uint64_t until;
  int failures;
  const char *want; /* stop once this value has arrived */
} player;

static void *play(void *arg) {
  player *p = (player *)arg;
  uint64_t start = now_ms();
  while (now_ms() < p->until) {
    if (zen_endpoint_pump(p->ctx, p->ep, now_ms() - start) != ZEN_OK) p->failures++;
    zen_value_t v;
    zen_sync_state_t st = ZEN_STATE_SYNCING;
    zen_value_type_t ty;
    zen_mode_t mode;
    zen_policy_t policy;
    if (zen_value_open(p->ctx, p->want, strlen(p->want), &v) == ZEN_OK &&
        zen_value_info(p->ctx, v, &ty, &mode, &policy, &st) == ZEN_OK && st == ZEN_STATE_CONVERGED) {
      /* a few more frames so the other side hears our acknowledgement */
      for (int i = 0; i < 50; i++) {
        if (zen_endpoint_pump(p->ctx, p->ep, now_ms() - start) != ZEN_OK) p->failures++;
        nap();
      }
      return NULL;
    }
    nap();
  }
  p->failures++;
  return NULL;
}

static zen_endpoint_t listen_any(uint64_t peer, uint16_t *port) {
  zen_endpoint_t ep = {0};
  const char *any = "127.0.0.1:0";
  MUST(zen_enet_listen(any, strlen(any), peer, NULL, &ep));
  MUST(zen_endpoint_local_port(ep, port));
  return ep;
}

static zen_endpoint_t connect_to(uint16_t port, uint64_t peer) {
  char addr[32];
  int n = snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)port);
  zen_endpoint_t ep = {0};
  MUST(zen_enet_connect(addr, (size_t)n, peer, NULL, &ep));
  return ep;
}

static void test_enet_host_and_client_converge_on_threads(void) {
  uint16_t port = 0;
  player h = {new_ctx(1), listen_any(1, &port), now_ms() + 20000, 0, "from_client"};
  CHECK(port != 0);
  player c = {new_ctx(2), connect_to(port, 2), now_ms() + 20000, 0, "from_host"};
  zen_value_t a = create(h.ctx, "from_host", ZEN_TYPE_I64, ZEN_MODE_FAST_LOCAL, ZEN_POLICY_LAST_WRITER_WINS);
  CHECK_OK(zen_value_set_i64(h.ctx, a, 1));
  zen_value_t b = create(c.ctx, "from_client", ZEN_TYPE_I64, ZEN_MODE_FAST_LOCAL, ZEN_POLICY_LAST_WRITER_WINS);
  CHECK_OK(zen_value_set_i64(c.ctx, b, 2));
  pthread_t th[2];
  CHECK(pthread_create(&th[0], NULL, play, &h) == 0);
  CHECK(pthread_create(&th[1], NULL, play, &c) == 0);
  CHECK(pthread_join(th[0], NULL) == 0);
  CHECK(pthread_join(th[1], NULL) == 0);
  CHECK(h.failures == 0 && c.failures == 0);
  int64_t got = 0;
  CHECK_OK(zen_value_get_i64(h.ctx, open_value(h.ctx, "from_client"), &got));
  CHECK(got == 2);
  CHECK_OK(zen_value_get_i64(c.ctx, open_value(c.ctx, "from_host"), &got));
  CHECK(got == 1);
  zen_endpoint_stats_t s;
  s.struct_size = sizeof s;
  CHECK_OK(zen_endpoint_stats(c.ep, &s));
  CHECK(s.sent > 0 && s.received > 0 && s.rejected == 0);

  /* A second client with the host's peer id is refused, with the reason. */
  zen_context_t dup = new_ctx(1);
  zen_endpoint_t dup_ep = connect_to(port, 1);
  zen_status_t st = ZEN_OK;
  uint64_t start = now_ms();
  while (st == ZEN_OK && now_ms() < start + 10000) {
    CHECK_OK(zen_endpoint_pump(h.ctx, h.ep, now_ms()));
    st = zen_endpoint_pump(dup, dup_ep, now_ms());
    nap();
  }
  CHECK(st == ZEN_ERR_TRANSPORT);
  CHECK(strstr(last_error(), "already taken") != NULL);
  CHECK_STATUS(zen_endpoint_pump(dup, dup_ep, now_ms()), ZEN_ERR_TRANSPORT); /* and later */
  CHECK_OK(zen_endpoint_stats(h.ep, &s));
  CHECK(s.rejected >= 1);

  zen_endpoint_free(dup_ep);
  zen_endpoint_free(c.ep);
  zen_endpoint_free(h.ep);
  zen_endpoint_free(h.ep);
  zen_context_free(dup);
  zen_context_free(c.ctx);
  zen_context_free(h.ctx);
}

static void test_enet_errors(void) {
  zen_enet_options_t o;
  CHECK_STATUS(zen_enet_options_default(NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_OK(zen_enet_options_default(&o));
  CHECK(o.struct_size == sizeof o && o.max_clients == 64 && o.timeout_ms == 3000 && o.max_messages_per_s == 1000);
  zen_endpoint_t ep = {0};
  const char *bad = "localhost:7000";
  CHECK_STATUS(zen_enet_listen(bad, strlen(bad), 1, NULL, &ep), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "not an IP address and port") != NULL);
  const char *any = "127.0.0.1:0";
  CHECK_STATUS(zen_enet_listen(any, strlen(any), 1, NULL, NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_enet_listen(NULL, 4, 1, NULL, &ep), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_enet_listen(any, strlen(any), 0, NULL, &ep), ZEN_ERR_INVALID_ARGUMENT);
  o.timeout_ms = 0;
  CHECK_STATUS(zen_enet_listen(any, strlen(any), 1, &o, &ep), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "timeout_ms") != NULL);
  o.timeout_ms = 1000;
  o.max_messages_per_s = 0;
  CHECK_STATUS(zen_enet_listen(any, strlen(any), 1, &o, &ep), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "max_messages_per_s") != NULL);
  o.max_messages_per_s = 1000;
  o.struct_size = 4;
  CHECK_STATUS(zen_enet_listen(any, strlen(any), 1, &o, &ep), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(ep.id == 0);
  o.struct_size = sizeof o;
  CHECK_OK(zen_enet_listen(any, strlen(any), 1, &o, &ep));
  uint16_t port = 0;
  CHECK_STATUS(zen_endpoint_local_port(ep, NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_OK(zen_endpoint_local_port(ep, &port));
  /* the same port again: in use */
  char addr[32];
  int n = snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)port);
  zen_endpoint_t again = {0};
  CHECK_STATUS(zen_enet_listen(addr, (size_t)n, 2, NULL, &again), ZEN_ERR_TRANSPORT);
  CHECK(strstr(last_error(), "cannot bind") != NULL && again.id == 0);
  CHECK_STATUS(zen_enet_connect(bad, strlen(bad), 2, NULL, &again), ZEN_ERR_INVALID_ARGUMENT);
  /* a bus endpoint has no port */
  zen_bus_t bus = {0};
  CHECK_OK(zen_bus_new(&bus));
  zen_endpoint_t on_bus = {0};
  CHECK_OK(zen_bus_join(bus, 1, 4, &on_bus));
  CHECK_STATUS(zen_endpoint_local_port(on_bus, &port), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "bus") != NULL);
  CHECK(strcmp(zen_status_name(ZEN_ERR_TRANSPORT), "ZEN_ERR_TRANSPORT") == 0);
  zen_endpoint_free(on_bus);
  zen_bus_free(bus);
  zen_endpoint_free(ep);
}

/* Three mesh peers, each dialing the others (pairs dial both ways), pumped on this
 * thread: one connection per pair, every context counts two members, values converge. */
static void test_enet_mesh_converges(void) {
  zen_context_t ctx[3];
  zen_endpoint_t ep[3];
  char addr[3][32];
  const char *any = "127.0.0.1:0";
  for (int i = 0; i < 3; i++) {
    ctx[i] = new_ctx((uint64_t)i + 1);
    CHECK_OK(zen_enet_mesh(any, strlen(any), (uint64_t)i + 1, NULL, &ep[i]));
    uint16_t port = 0;
    CHECK_OK(zen_endpoint_local_port(ep[i], &port));
    snprintf(addr[i], sizeof addr[i], "127.0.0.1:%u", (unsigned)port);
  }
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++)
      if (i != j) CHECK_OK(zen_endpoint_dial(ep[i], addr[j], strlen(addr[j])));
  zen_value_t v = create(ctx[2], "shared", ZEN_TYPE_I64, ZEN_MODE_WAIT_FOR_SYNC, ZEN_POLICY_MAX);
  CHECK_OK(zen_value_set_i64(ctx[2], v, 33));
  uint64_t start = now_ms();
  int done = 0;
  while (!done && now_ms() < start + 10000) {
    done = 1;
    for (int i = 0; i < 3; i++) {
      CHECK_OK(zen_endpoint_pump(ctx[i], ep[i], now_ms() - start));
      zen_value_t got;
      if (metrics_of(ctx[i]).peers != 2 || zen_value_open(ctx[i], ID("shared"), &got) != ZEN_OK ||
          state_of(ctx[i], got) != ZEN_STATE_CONVERGED)
        done = 0;
    }
    nap();
  }
  CHECK(done);
  int64_t got = 0;
  CHECK_OK(zen_value_get_i64(ctx[0], open_value(ctx[0], "shared"), &got));
  CHECK(got == 33);
  /* Only mesh endpoints dial. */
  const char *bad = "localhost:1";
  CHECK_STATUS(zen_endpoint_dial(ep[0], bad, strlen(bad)), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_endpoint_dial(ep[0], NULL, 3), ZEN_ERR_NULL_ARGUMENT);
  zen_endpoint_t host = {0}, none = {0};
  CHECK_OK(zen_enet_listen(any, strlen(any), 9, NULL, &host));
  CHECK_STATUS(zen_endpoint_dial(host, addr[0], strlen(addr[0])), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "not a mesh peer") != NULL);
  CHECK_STATUS(zen_endpoint_dial(none, addr[0], strlen(addr[0])), ZEN_ERR_INVALID_HANDLE);
  CHECK_STATUS(zen_enet_mesh(any, strlen(any), 0, NULL, &none), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(none.id == 0);
  zen_endpoint_free(host);
  for (int i = 0; i < 3; i++) {
    zen_endpoint_free(ep[i]);
    zen_context_free(ctx[i]);
  }
}

/* A host with a room and a token (a session password) admits a client that names both
 * and refuses one that shows another token, with the reason. */
static void test_enet_room_and_token(void) {
  zen_enet_options_t o;
  CHECK_OK(zen_enet_options_default(&o));
  CHECK(o.room == NULL && o.room_len == 0 && o.token == NULL && o.token_len == 0);
  o.room = "arena";
  o.room_len = 5;
  o.token = (const uint8_t *)"secret";
  o.token_len = 6;
  const char *any = "127.0.0.1:0";
  zen_endpoint_t host = {0};
  CHECK_OK(zen_enet_listen(any, strlen(any), 1, &o, &host));
  uint16_t port = 0;
  CHECK_OK(zen_endpoint_local_port(host, &port));
  char addr[32];
  int n = snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)port);
  zen_endpoint_t good = {0}, bad = {0};
  CHECK_OK(zen_enet_connect(addr, (size_t)n, 2, &o, &good));
  o.token = (const uint8_t *)"guess!";
  CHECK_OK(zen_enet_connect(addr, (size_t)n, 3, &o, &bad));
  zen_context_t h = new_ctx(1), g = new_ctx(2), b = new_ctx(3);
  zen_status_t st = ZEN_OK;
  uint64_t start = now_ms();
  while ((st == ZEN_OK || metrics_of(g).peers != 1) && now_ms() < start + 10000) {
    CHECK_OK(zen_endpoint_pump(h, host, now_ms()));
    CHECK_OK(zen_endpoint_pump(g, good, now_ms()));
    if (st == ZEN_OK) st = zen_endpoint_pump(b, bad, now_ms());
    nap();
  }
  CHECK(st == ZEN_ERR_TRANSPORT && strstr(last_error(), "token") != NULL);
  CHECK(metrics_of(g).peers == 1 && metrics_of(h).peers == 1);
  /* Limits: a room over 64 bytes, a room that is not UTF-8, a token with NULL bytes. */
  char long_room[80];
  memset(long_room, 'r', sizeof long_room);
  o.room = long_room;
  o.room_len = sizeof long_room;
  zen_endpoint_t none = {0};
  CHECK_STATUS(zen_enet_connect(addr, (size_t)n, 4, &o, &none), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "room") != NULL);
  o.room = "\xff";
  o.room_len = 1;
  CHECK_STATUS(zen_enet_connect(addr, (size_t)n, 4, &o, &none), ZEN_ERR_INVALID_UTF8);
  o.room = NULL;
  o.room_len = 0;
  o.token = NULL;
  o.token_len = 3;
  CHECK_STATUS(zen_enet_connect(addr, (size_t)n, 4, &o, &none), ZEN_ERR_NULL_ARGUMENT);
  CHECK(none.id == 0);
  zen_endpoint_free(bad);
  zen_endpoint_free(good);
  zen_endpoint_free(host);
  zen_context_free(b);
  zen_context_free(g);
  zen_context_free(h);
}

static const zen_test_case CASES[] = {
    {"enet_room_and_token", test_enet_room_and_token},
    {"enet_host_and_client_converge_on_threads", test_enet_host_and_client_converge_on_threads},
    {"enet_errors", test_enet_errors},
    {"enet_mesh_converges", test_enet_mesh_converges},
};

int main(int argc, char **argv) { return zen_run_tests(CASES, sizeof CASES / sizeof CASES[0], argc, argv); }

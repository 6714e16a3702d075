/* C harness tests of the network simulator (zen_crdt_sim.h): sessions over loss,
 * partitions and rejoins, and its error paths. Built and run like test_api.c. */
#include <stdint.h>

#include "session.h"

static void test_link_default(void) {
  zen_link_t link;
  CHECK_OK(zen_link_default(&link));
  CHECK(link.struct_size == sizeof link && link.latency_ms == 25 && link.loss == 0.0);
  CHECK_STATUS(zen_link_default(NULL), ZEN_ERR_NULL_ARGUMENT);
}

static void test_net_session_with_loss_converges(void) {
  zen_link_t link;
  CHECK_OK(zen_link_default(&link));
  link.jitter_ms = 10;
  link.loss = 0.1;
  link.duplicate = 0.02;
  link.reorder = 0.05;
  zen_net_t net = {0};
  CHECK_OK(zen_net_new(42, &link, &net));
  zen_context_t c[3];
  uint32_t host = 99;
  for (int i = 0; i < 3; i++) {
    c[i] = new_ctx((uint64_t)i + 1);
    CHECK_OK(zen_net_attach(net, c[i], &host));
    CHECK(host == (uint32_t)i);
  }
  zen_value_t v = create(c[0], "flag", ZEN_TYPE_I64, 0, 0);
  CHECK_OK(zen_value_set_i64(c[0], v, 7));
  for (uint64_t now = 16; now <= 3000; now += 16) CHECK_OK(zen_net_step(net, now));
  for (int i = 0; i < 3; i++) {
    int64_t got = 0;
    CHECK_OK(zen_value_get_i64(c[i], open_value(c[i], "flag"), &got));
    CHECK(got == 7);
    zen_metrics_t m = metrics_of(c[i]);
    CHECK(m.messages_forged == 0);
  }
  uint64_t delivered = 0, dropped = 0;
  CHECK_OK(zen_net_stats(net, &delivered, &dropped));
  CHECK(delivered > 0 && dropped > 0);
  zen_net_free(net);
  zen_net_free(net);
  for (int i = 0; i < 3; i++) zen_context_free(c[i]);
}

static void test_net_partition_and_rejoin(void) {
  zen_net_t net = {0};
  CHECK_OK(zen_net_new(7, NULL, &net));
  zen_context_t a = new_ctx(1), b = new_ctx(2);
  uint32_t ha = 0, hb = 0;
  CHECK_OK(zen_net_attach(net, a, &ha));
  CHECK_OK(zen_net_attach(net, b, &hb));
  zen_value_t v = create(a, "door", ZEN_TYPE_BOOL, 0, 0);
  const uint32_t split[2] = {0, 1};
  CHECK_OK(zen_net_set_partition(net, split, 2));
  CHECK_OK(zen_value_set_bool(a, v, true));
  uint64_t now = 0;
  for (int t = 0; t < 20; t++) CHECK_OK(zen_net_step(net, now += 16));
  zen_value_t vb = {0, 0};
  CHECK_STATUS(zen_value_open(b, ID("door"), &vb), ZEN_ERR_UNKNOWN_VALUE);
  const uint32_t healed[2] = {0, 0};
  CHECK_OK(zen_net_set_partition(net, healed, 2));
  CHECK_OK(zen_net_set_online(net, hb, false));
  CHECK_OK(zen_net_set_online(net, hb, true));
  for (int t = 0; t < 40; t++) CHECK_OK(zen_net_step(net, now += 16));
  bool open = false;
  CHECK_OK(zen_value_get_bool(b, open_value(b, "door"), &open));
  CHECK(open);
  CHECK_STATUS(zen_net_set_partition(net, split, 1), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_net_set_online(net, 9, true), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_net_attach(net, a, &ha), ZEN_ERR_INVALID_ARGUMENT);
  zen_net_free(net);
  zen_context_free(a);
  zen_context_free(b);
}

/* A freed attached context is skipped (reported), the others keep stepping. */
static void test_net_reports_a_freed_context(void) {
  zen_net_t net = {0};
  CHECK_OK(zen_net_new(3, NULL, &net));
  zen_context_t a = new_ctx(1), b = new_ctx(2), c = new_ctx(3);
  uint32_t h = 0;
  CHECK_OK(zen_net_attach(net, a, &h));
  CHECK_OK(zen_net_attach(net, b, &h));
  CHECK_OK(zen_net_attach(net, c, &h));
  zen_value_t v = create(a, "x", ZEN_TYPE_I64, 0, 0);
  CHECK_OK(zen_value_set_i64(a, v, 5));
  zen_context_free(b);
  uint64_t now = 0;
  for (int t = 0; t < 10; t++) CHECK_STATUS(zen_net_step(net, now += 16), ZEN_ERR_INVALID_HANDLE);
  int64_t got = 0;
  CHECK_OK(zen_value_get_i64(c, open_value(c, "x"), &got));
  CHECK(got == 5);
  zen_net_free(net);
  zen_context_free(a);
  zen_context_free(c);
}

static void test_net_rejects_bad_handles_and_links(void) {
  zen_link_t bad;
  CHECK_OK(zen_link_default(&bad));
  bad.loss = 1.5;
  zen_net_t net = {0};
  CHECK_STATUS(zen_net_new(1, &bad, &net), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "loss") != NULL);
  bad.loss = 0;
  bad.struct_size = 8;
  CHECK_STATUS(zen_net_new(1, &bad, &net), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(net.id == 0);
  zen_net_t zero = {0};
  CHECK_STATUS(zen_net_step(zero, 16), ZEN_ERR_INVALID_HANDLE);
  zen_context_t c = new_ctx(1);
  zen_net_t cast = {c.id}; /* a context's number is not a network */
  CHECK_STATUS(zen_net_step(cast, 16), ZEN_ERR_INVALID_HANDLE);
  CHECK(strstr(last_error(), "network") != NULL);
  CHECK_OK(zen_net_new(1, NULL, &net));
  zen_context_t not_ctx = {net.id};
  uint32_t h = 0;
  CHECK_STATUS(zen_net_attach(net, not_ctx, &h), ZEN_ERR_INVALID_HANDLE);
  CHECK_STATUS(zen_context_tick(not_ctx, 16), ZEN_ERR_INVALID_HANDLE);
  zen_net_free(net);
  CHECK_STATUS(zen_net_step(net, 16), ZEN_ERR_INVALID_HANDLE);
  zen_context_free(c);
}

static const zen_test_case CASES[] = {
    {"link_default", test_link_default},
    {"net_session_with_loss_converges", test_net_session_with_loss_converges},
    {"net_partition_and_rejoin", test_net_partition_and_rejoin},
    {"net_reports_a_freed_context", test_net_reports_a_freed_context},
    {"net_rejects_bad_handles_and_links", test_net_rejects_bad_handles_and_links},
};

int main(int argc, char **argv) { return zen_run_tests(CASES, sizeof CASES / sizeof CASES[0], argc, argv); }

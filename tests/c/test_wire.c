/* C harness tests of what crosses the wire: hostile, corrupt, truncated, oversized and
 * newer-version messages, strangers, and authenticated receive (a message in another
 * member's name, forged deltas and acknowledgements). Each rejected message is counted
 * and changes nothing. Built and run like test_api.c. */
#include <stdint.h>

#include "forged_messages.h"
#include "session.h"

/* Peer 2, whose member peer 1 is. */
static zen_context_t peer_two(void) {
  zen_context_t b = new_ctx(2);
  MUST(zen_context_add_peer(b, 1));
  return b;
}

static void test_truncated_messages_are_rejected(void) {
  uint8_t msg[4096];
  size_t len = one_delta(msg, sizeof msg);
  CHECK(len > 8);
  zen_context_t b = peer_two();
  for (size_t cut = 0; cut < len; cut++) CHECK_STATUS(zen_context_receive(b, msg, cut), ZEN_ERR_DECODE);
  zen_metrics_t m = metrics_of(b);
  CHECK(m.messages_rejected == len && m.messages_in == 0 && m.messages_forged == 0);
  CHECK_OK(zen_context_receive(b, msg, len));
  zen_context_free(b);
}

static void test_corrupt_and_garbage_messages_are_rejected(void) {
  uint8_t msg[4096];
  size_t len = one_delta(msg, sizeof msg);
  zen_context_t b = peer_two();
  for (size_t i = 0; i < len; i++) {
    uint8_t saved = msg[i];
    msg[i] ^= 0x5a;
    zen_status_t st = zen_context_receive_from(b, 1, msg, len);
    msg[i] = saved;
    CHECK(st == ZEN_ERR_DECODE || st == ZEN_ERR_PROTOCOL_VERSION);
  }
  uint8_t garbage[64];
  for (size_t i = 0; i < sizeof garbage; i++) garbage[i] = (uint8_t)(i * 37 + 11);
  CHECK_STATUS(zen_context_receive(b, garbage, sizeof garbage), ZEN_ERR_DECODE);
  CHECK(strstr(last_error(), "message rejected") != NULL);
  CHECK_OK(zen_context_tick(b, 16));
  zen_metrics_t m = metrics_of(b);
  CHECK(m.values == 0 && m.updates_applied == 0);
  zen_context_free(b);
}

static void test_newer_protocol_version_is_named(void) {
  uint8_t msg[4096];
  size_t len = one_delta(msg, sizeof msg);
  zen_context_t b = peer_two();
  msg[2] = ZEN_PROTOCOL_VERSION + 1;
  CHECK_STATUS(zen_context_receive(b, msg, len), ZEN_ERR_PROTOCOL_VERSION);
  CHECK(strstr(last_error(), "protocol version") != NULL);
  zen_context_free(b);
}

static void test_oversized_message_and_strangers(void) {
  uint8_t msg[4096];
  size_t len = one_delta(msg, sizeof msg);
  zen_context_t stranger = new_ctx(3);
  CHECK_STATUS(zen_context_receive(stranger, msg, len), ZEN_ERR_UNKNOWN_PEER);
  CHECK_STATUS(zen_context_receive_from(stranger, 1, msg, len), ZEN_ERR_UNKNOWN_PEER);
  zen_options_t o;
  CHECK_OK(zen_options_default(&o));
  size_t big = (size_t)o.max_message_bytes + 1;
  uint8_t *huge = (uint8_t *)calloc(big, 1);
  CHECK_STATUS(zen_context_receive(stranger, huge, big), ZEN_ERR_TOO_LARGE);
  free(huge);
  zen_context_free(stranger);
}

static void test_duplicates_are_harmless(void) {
  uint8_t msg[4096];
  size_t len = one_delta(msg, sizeof msg);
  zen_context_t b = peer_two();
  for (int i = 0; i < 5; i++) CHECK_OK(zen_context_receive_from(b, 1, msg, len));
  CHECK_OK(zen_context_tick(b, 16));
  zen_metrics_t m = metrics_of(b);
  CHECK(m.messages_duplicate == 4 && m.updates_applied == 1);
  zen_context_free(b);
}

/* Peer 1 holding hp = 42 from peer 3, with members 2 and 3. */
static zen_context_t receiver(void) {
  zen_context_t one = new_ctx(1);
  MUST(zen_context_add_peer(one, 2));
  MUST(zen_context_add_peer(one, 3));
  uint8_t buf[4096];
  size_t len = delta_from(3, 1, 42, buf, sizeof buf);
  MUST(zen_context_receive_from(one, 3, buf, len));
  MUST(zen_context_tick(one, 16));
  return one;
}

static int64_t hp_of(zen_context_t c) {
  int64_t v = 0;
  MUST(zen_value_get_i64(c, open_value(c, "hp"), &v));
  return v;
}

/* Peer 2 relays (or makes up) a message in peer 3's name: the transport knows it came
 * from peer 2, so it is rejected with its own status, counted, and changes nothing. */
static void test_receive_from_rejects_another_members_message(void) {
  zen_context_t one = receiver();
  uint8_t buf[4096];
  size_t len = delta_from(3, 1, -1, buf, sizeof buf);
  CHECK(len > 0);
  CHECK_STATUS(zen_context_receive_from(one, 2, buf, len), ZEN_ERR_SENDER_MISMATCH);
  CHECK(strstr(last_error(), "names peer 3") != NULL && strstr(last_error(), "from peer 2") != NULL);
  zen_metrics_t m = metrics_of(one);
  CHECK(m.messages_forged == 1 && m.messages_rejected == 1 && m.messages_in == 1);
  CHECK_OK(zen_context_tick(one, 32));
  CHECK(hp_of(one) == 42);
  zen_context_free(one);
}

/* Deltas that touch another writer's state, and acknowledgements of messages never
 * sent (crafted by src/forgery.rs): rejected as forged, counted, nothing changes. */
static void test_forged_messages_are_rejected(void) {
  zen_context_t one = receiver();
  const uint8_t *forged[3] = {forged_slot, forged_delete, forged_ack};
  size_t lens[3] = {sizeof forged_slot, sizeof forged_delete, sizeof forged_ack};
  const char *why[3] = {"item of peer 3", "deletes items of peer 3", "acknowledges seq 1000"};
  for (int i = 0; i < 3; i++) {
    CHECK_STATUS(zen_context_receive_from(one, 2, forged[i], lens[i]), ZEN_ERR_FORGED);
    CHECK(strstr(last_error(), why[i]) != NULL);
    /* The message names its sender, so the unauthenticated path refuses it too. */
    CHECK_STATUS(zen_context_receive(one, forged[i], lens[i]), ZEN_ERR_FORGED);
    CHECK_OK(zen_context_tick(one, 32 + 16 * (uint64_t)i));
    zen_metrics_t m = metrics_of(one);
    CHECK(m.messages_forged == 2 * (uint64_t)i + 2 && m.messages_in == 1 && m.values == 1);
    CHECK(hp_of(one) == 42);
  }
  zen_context_free(one);
}

static const zen_test_case CASES[] = {
    {"truncated_messages_are_rejected", test_truncated_messages_are_rejected},
    {"corrupt_and_garbage_messages_are_rejected", test_corrupt_and_garbage_messages_are_rejected},
    {"newer_protocol_version_is_named", test_newer_protocol_version_is_named},
    {"oversized_message_and_strangers", test_oversized_message_and_strangers},
    {"duplicates_are_harmless", test_duplicates_are_harmless},
    {"receive_from_rejects_another_members_message", test_receive_from_rejects_another_members_message},
    {"forged_messages_are_rejected", test_forged_messages_are_rejected},
};

int main(int argc, char **argv) { return zen_run_tests(CASES, sizeof CASES / sizeof CASES[0], argc, argv); }

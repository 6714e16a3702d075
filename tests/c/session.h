/* Helpers the C tests share: contexts that must be created, a fully connected session
 * of contexts in one process that moves messages as a transport would (each delivered
 * with zen_context_receive_from, since this "transport" knows the sender), and small
 * readers. */
#ifndef ZEN_TEST_SESSION_H
#define ZEN_TEST_SESSION_H

#include <stdint.h>

#include "harness.h"

#define ID(s) (s), (sizeof(s) - 1)

static inline zen_context_t new_ctx(uint64_t peer) {
  zen_context_t c = {0};
  MUST(zen_context_new(peer, NULL, &c));
  return c;
}

static inline zen_value_options_t value_opts(uint32_t mode, uint32_t policy) {
  zen_value_options_t o;
  MUST(zen_value_options_default(&o));
  o.mode = mode;
  o.policy = policy;
  return o;
}

static inline zen_value_t create(zen_context_t c, const char *id, uint32_t type, uint32_t mode, uint32_t policy) {
  zen_value_t v = {0, 0};
  zen_value_options_t o = value_opts(mode, policy);
  MUST(zen_value_create(c, id, strlen(id), type, &o, &v));
  return v;
}

static inline zen_value_t open_value(zen_context_t c, const char *id) {
  zen_value_t v = {0, 0};
  MUST(zen_value_open(c, id, strlen(id), &v));
  return v;
}

static inline int same_value(zen_value_t a, zen_value_t b) { return a.owner == b.owner && a.index == b.index; }

static inline zen_sync_state_t state_of(zen_context_t c, zen_value_t v) {
  zen_sync_state_t s = ZEN_STATE_LOCAL_ONLY;
  MUST(zen_value_info(c, v, NULL, NULL, NULL, &s));
  return s;
}

static inline zen_metrics_t metrics_of(zen_context_t c) {
  zen_metrics_t m;
  memset(&m, 0, sizeof m);
  m.struct_size = sizeof m;
  MUST(zen_context_metrics(c, &m));
  return m;
}

/* A session of n fully connected contexts with peer ids 1..n. */
typedef struct {
  zen_context_t ctx[8];
  size_t n;
  uint64_t now;
} session;

static inline void session_open(session *s, size_t n) {
  s->n = n;
  s->now = 0;
  for (size_t i = 0; i < n; i++) s->ctx[i] = new_ctx(i + 1);
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < n; j++)
      if (i != j) MUST(zen_context_add_peer(s->ctx[i], j + 1));
}

static inline void session_close(session *s) {
  for (size_t i = 0; i < s->n; i++) zen_context_free(s->ctx[i]);
}

/* session_run without context `away` (it left: it is neither ticked nor sent to, and
   sends nothing). */
static inline void session_run_without(session *s, size_t away, int ticks) {
  static uint8_t buf[1 << 20];
  for (int t = 0; t < ticks; t++) {
    s->now += 16;
    for (size_t i = 0; i < s->n; i++)
      if (i != away) MUST(zen_context_tick(s->ctx[i], s->now));
    for (size_t i = 0; i < s->n; i++) {
      if (i == away) continue;
      for (;;) {
        size_t len = 0;
        uint64_t to = 0;
        bool has = false;
        MUST(zen_context_poll_outbound(s->ctx[i], buf, sizeof buf, &len, &to, &has));
        if (!has) break;
        for (size_t j = 0; j < s->n; j++)
          if (j != i && j != away && (to == 0 || to == j + 1))
            MUST(zen_context_receive_from(s->ctx[j], i + 1, buf, len));
      }
    }
  }
}

/* Ticks every context and delivers every message, `ticks` times (16 ms each). */
static inline void session_run(session *s, int ticks) { session_run_without(s, (size_t)-1, ticks); }

static inline void drain_changes(zen_context_t c) {
  zen_change_t ch;
  bool has = true;
  while (has) MUST(zen_context_poll_change(c, &ch, &has));
}

/* One real delta message from peer `from` (with member `to`) that writes `hp` = `value`
 * (i64), into `buf`; returns its length. */
static inline size_t delta_from(uint64_t from, uint64_t to, int64_t value, uint8_t *buf, size_t cap) {
  zen_context_t a = new_ctx(from);
  MUST(zen_context_add_peer(a, to));
  zen_value_t v = create(a, "hp", ZEN_TYPE_I64, ZEN_MODE_FAST_LOCAL, ZEN_POLICY_LAST_WRITER_WINS);
  MUST(zen_value_set_i64(a, v, value));
  MUST(zen_context_tick(a, 16));
  size_t len = 0;
  uint64_t dest = 0;
  bool has = false;
  MUST(zen_context_poll_outbound(a, buf, cap, &len, &dest, &has));
  zen_context_free(a);
  return has ? len : 0;
}

/* One real delta message from peer 1 (to peer 2) carrying one i64 write. */
static inline size_t one_delta(uint8_t *buf, size_t cap) { return delta_from(1, 2, 42, buf, cap); }

#endif

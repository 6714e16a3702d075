/* C harness tests of 1.5's tables, sets and sequences: zen_table_open / set / remove / get / len,
 * the entries snapshot, zen_context_poll_table_change with its borrowed keys and values,
 * removed entries forgotten (zen_metrics_t.table_entries / entries_forgotten), owner-only
 * collections, and every error path of the new calls. Built and run like test_api.c. */
#include <stddef.h>
#include <stdint.h>

#include "session.h"

static zen_key_t int_key(int64_t k) {
  zen_key_t key = {ZEN_KEY_INT, k, NULL, 0};
  return key;
}

static zen_key_t str_key(const char *s) {
  zen_key_t key = {ZEN_KEY_STRING, 0, s, strlen(s)};
  return key;
}

static zen_value_data_t i64_data(int64_t x) {
  zen_value_data_t d;
  memset(&d, 0, sizeof d);
  d.value_type = ZEN_TYPE_I64;
  d.data.i = x;
  return d;
}

static zen_table_t open_table(zen_context_t c, const char *id) {
  zen_table_t t = {0, 0};
  MUST(zen_table_open(c, id, strlen(id), ZEN_TYPE_I64, NULL, &t));
  return t;
}

static void set_i64(zen_context_t c, zen_table_t t, zen_key_t k, int64_t x) {
  zen_value_data_t d = i64_data(x);
  MUST(zen_table_set(c, t, &k, &d));
}

/* What `k` shows: its value, or INT64_MIN for no entry. */
static int64_t get_i64(zen_context_t c, zen_table_t t, zen_key_t k) {
  zen_value_data_t d;
  bool has = true;
  MUST(zen_table_get(c, t, &k, &d, &has));
  if (!has) {
    return d.value_type == ZEN_TYPE_NONE ? INT64_MIN : INT64_MAX;
  }
  return d.value_type == ZEN_TYPE_I64 ? d.data.i : INT64_MAX;
}

static size_t len_of(zen_context_t c, zen_table_t t) {
  size_t n = 99;
  MUST(zen_table_len(c, t, &n));
  return n;
}

static void test_insert_update_remove_reach_every_peer(void) {
  session s;
  session_open(&s, 3);
  zen_table_t t0 = open_table(s.ctx[0], "blocks");
  zen_table_t t1 = open_table(s.ctx[1], "blocks");
  zen_table_t t2 = open_table(s.ctx[2], "blocks");
  set_i64(s.ctx[0], t0, int_key(7), 70);
  set_i64(s.ctx[0], t0, str_key("door"), 1);
  /* FastLocal: the writer reads it at once and hears of it at once. */
  CHECK(get_i64(s.ctx[0], t0, int_key(7)) == 70);
  zen_table_change_t ch;
  bool has = false;
  MUST(zen_context_poll_table_change(s.ctx[0], &ch, &has));
  CHECK(has && ch.kind == ZEN_TABLE_ADDED && ch.key.kind == ZEN_KEY_INT && ch.key.int_key == 7);
  CHECK(ch.old_value.value_type == ZEN_TYPE_NONE && ch.new_value.data.i == 70 && ch.origin == 1);
  CHECK(ch.table.owner == t0.owner && ch.table.index == t0.index && !ch.is_initial);
  session_run(&s, 20);
  /* Peer 3 hears both insertions, with their keys. */
  int added = 0, saw_door = 0;
  for (has = true; has;) {
    MUST(zen_context_poll_table_change(s.ctx[2], &ch, &has));
    if (!has) break;
    added += ch.kind == ZEN_TABLE_ADDED;
    if (ch.key.kind == ZEN_KEY_STRING && ch.key.str_len == 4 && memcmp(ch.key.str, "door", 4) == 0) {
      saw_door = ch.new_value.data.i == 1 && ch.origin == 1;
    }
  }
  CHECK(added == 2 && saw_door);
  CHECK(len_of(s.ctx[2], t2) == 2);
  /* Peer 2 updates one key and removes the other. */
  set_i64(s.ctx[1], t1, int_key(7), 71);
  bool removed = false;
  zen_key_t door = str_key("door");
  MUST(zen_table_remove(s.ctx[1], t1, &door, &removed));
  CHECK(removed);
  zen_key_t none = str_key("nothing");
  MUST(zen_table_remove(s.ctx[1], t1, &none, NULL));
  session_run(&s, 20);
  for (size_t p = 0; p < 3; p++) {
    zen_table_t t = p == 0 ? t0 : p == 1 ? t1 : t2;
    CHECK(get_i64(s.ctx[p], t, int_key(7)) == 71);
    CHECK(get_i64(s.ctx[p], t, str_key("door")) == INT64_MIN);
    CHECK(len_of(s.ctx[p], t) == 1);
  }
  session_close(&s);
}

static void test_entries_snapshot_and_strings(void) {
  zen_context_t c = new_ctx(1);
  zen_table_t t = {0, 0};
  MUST(zen_table_open(c, ID("names"), ZEN_TYPE_STRING, NULL, &t));
  const char *keys[] = {"b", "a"};
  for (int i = 0; i < 2; i++) {
    zen_key_t k = str_key(keys[i]);
    zen_value_data_t d;
    memset(&d, 0, sizeof d);
    d.value_type = ZEN_TYPE_STRING;
    d.data.bytes.ptr = (const uint8_t *)"hello";
    d.data.bytes.len = 5;
    MUST(zen_table_set(c, t, &k, &d));
  }
  zen_key_t k3 = int_key(-3);
  zen_value_data_t d3;
  memset(&d3, 0, sizeof d3);
  d3.value_type = ZEN_TYPE_STRING;
  MUST(zen_table_set(c, t, &k3, &d3));
  size_t n = 0;
  MUST(zen_table_entries(c, t, &n));
  CHECK(n == 3);
  zen_key_t key;
  zen_value_data_t v;
  /* Sorted by key, integers first. */
  MUST(zen_table_entry_at(c, 0, &key, &v));
  CHECK(key.kind == ZEN_KEY_INT && key.int_key == -3 && v.value_type == ZEN_TYPE_STRING && v.data.bytes.len == 0);
  MUST(zen_table_entry_at(c, 1, &key, &v));
  CHECK(key.kind == ZEN_KEY_STRING && key.str_len == 1 && key.str[0] == 'a');
  CHECK(v.data.bytes.len == 5 && memcmp(v.data.bytes.ptr, "hello", 5) == 0);
  CHECK_STATUS(zen_table_entry_at(c, 3, &key, &v), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "entry index 3") != NULL);
  zen_context_free(c);
}

static void test_removed_entries_are_forgotten(void) {
  session s;
  session_open(&s, 2);
  zen_table_t t = open_table(s.ctx[0], "units");
  open_table(s.ctx[1], "units");
  for (int64_t k = 0; k < 200; k++) {
    set_i64(s.ctx[0], t, int_key(k), k);
    if (k >= 10) {
      zen_key_t old = int_key(k - 10);
      MUST(zen_table_remove(s.ctx[0], t, &old, NULL));
    }
    session_run(&s, 1);
  }
  session_run(&s, 30);
  for (size_t p = 0; p < 2; p++) {
    zen_metrics_t m = metrics_of(s.ctx[p]);
    CHECK(m.table_entries == 10);
    CHECK(m.entries_forgotten >= 190);
  }
  session_close(&s);
}

static void test_errors_change_nothing(void) {
  zen_context_t c = new_ctx(1);
  zen_table_t t = open_table(c, "t");
  zen_key_t k = int_key(1);
  zen_value_data_t d = i64_data(5);
  zen_value_data_t f;
  memset(&f, 0, sizeof f);
  f.value_type = ZEN_TYPE_F64;
  CHECK_STATUS(zen_table_set(c, t, &k, &f), ZEN_ERR_WRONG_TYPE);
  CHECK_STATUS(zen_table_set(c, t, NULL, &d), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_table_set(c, t, &k, NULL), ZEN_ERR_NULL_ARGUMENT);
  zen_key_t bad_kind = {7, 0, NULL, 0};
  CHECK_STATUS(zen_table_set(c, t, &bad_kind, &d), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "key->kind is 7") != NULL);
  zen_key_t bad_utf8 = {ZEN_KEY_STRING, 0, "\xff", 1};
  CHECK_STATUS(zen_table_set(c, t, &bad_utf8, &d), ZEN_ERR_INVALID_UTF8);
  zen_key_t null_str = {ZEN_KEY_STRING, 0, NULL, 3};
  CHECK_STATUS(zen_table_set(c, t, &null_str, &d), ZEN_ERR_NULL_ARGUMENT);
  char long_key[400];
  memset(long_key, 'k', sizeof long_key);
  zen_key_t too_long = {ZEN_KEY_STRING, 0, long_key, sizeof long_key};
  CHECK_STATUS(zen_table_set(c, t, &too_long, &d), ZEN_ERR_TOO_LARGE);
  zen_table_t stale = t;
  stale.index = 77;
  CHECK_STATUS(zen_table_set(c, stale, &k, &d), ZEN_ERR_INVALID_HANDLE);
  zen_table_t zero = {0, 0};
  size_t n = 0;
  CHECK_STATUS(zen_table_len(c, zero, &n), ZEN_ERR_INVALID_HANDLE);
  CHECK_STATUS(zen_table_len(c, t, NULL), ZEN_ERR_NULL_ARGUMENT);
  bool has = true;
  zen_value_data_t out;
  CHECK_STATUS(zen_table_get(c, t, &k, NULL, &has), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_table_get(c, t, &k, &out, NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_table_entries(c, t, NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_table_set_mode(c, t, 9), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_context_poll_table_change(c, NULL, &has), ZEN_ERR_NULL_ARGUMENT);
  /* A table of another type, an invalid type, a NULL or non-UTF-8 id. */
  zen_table_t t2;
  CHECK_STATUS(zen_table_open(c, ID("t"), ZEN_TYPE_STRING, NULL, &t2), ZEN_ERR_WRONG_TYPE);
  CHECK_STATUS(zen_table_open(c, ID("u"), 99, NULL, &t2), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_table_open(c, NULL, 1, ZEN_TYPE_I64, NULL, &t2), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_table_open(c, "\xff", 1, ZEN_TYPE_I64, NULL, &t2), ZEN_ERR_INVALID_UTF8);
  CHECK_STATUS(zen_table_open(c, ID("u"), ZEN_TYPE_I64, NULL, NULL), ZEN_ERR_NULL_ARGUMENT);
  zen_table_options_t o;
  MUST(zen_table_options_default(&o));
  CHECK(o.struct_size == sizeof o && o.mode == ZEN_MODE_FAST_LOCAL);
  o.policy = 42;
  CHECK_STATUS(zen_table_open(c, ID("u"), ZEN_TYPE_I64, &o, &t2), ZEN_ERR_INVALID_ARGUMENT);
  o.policy = ZEN_POLICY_TAKE_AVERAGE;
  CHECK_STATUS(zen_table_open(c, ID("u"), ZEN_TYPE_STRING, &o, &t2), ZEN_ERR_INVALID_ARGUMENT);
  o.struct_size = 4;
  CHECK_STATUS(zen_table_open(c, ID("u"), ZEN_TYPE_I64, &o, &t2), ZEN_ERR_INVALID_ARGUMENT);
  /* A value id may not start with 0x01, which names table entries on the wire. */
  zen_value_t v;
  CHECK_STATUS(zen_value_create(c, "\x01x", 2, ZEN_TYPE_I64, NULL, &v), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "0x01") != NULL);
  /* Nothing changed: no entry, no event. */
  CHECK(len_of(c, t) == 0);
  zen_table_change_t ch;
  MUST(zen_context_poll_table_change(c, &ch, &has));
  CHECK(!has);
  zen_context_free(c);
  /* A freed context's table. */
  CHECK_STATUS(zen_table_len(c, t, &n), ZEN_ERR_INVALID_HANDLE);
}

static void test_wait_for_sync_table(void) {
  session s;
  session_open(&s, 2);
  zen_table_options_t o;
  MUST(zen_table_options_default(&o));
  o.mode = ZEN_MODE_WAIT_FOR_SYNC;
  zen_table_t t;
  MUST(zen_table_open(s.ctx[0], ID("score"), ZEN_TYPE_I64, &o, &t));
  set_i64(s.ctx[0], t, str_key("red"), 3);
  CHECK(get_i64(s.ctx[0], t, str_key("red")) == INT64_MIN);
  uint32_t state = 99;
  MUST(zen_table_state(s.ctx[0], t, &state));
  CHECK(state == ZEN_STATE_LOCAL_ONLY);
  session_run(&s, 20);
  MUST(zen_table_state(s.ctx[0], t, &state));
  CHECK(state == ZEN_STATE_CONVERGED);
  CHECK_STATUS(zen_table_state(s.ctx[0], t, NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK(get_i64(s.ctx[0], t, str_key("red")) == 3);
  zen_table_change_t ch;
  bool has = false;
  MUST(zen_context_poll_table_change(s.ctx[0], &ch, &has));
  CHECK(has && ch.kind == ZEN_TABLE_ADDED && ch.state == ZEN_STATE_CONVERGED);
  MUST(zen_table_set_mode(s.ctx[0], t, ZEN_MODE_FAST_LOCAL));
  session_close(&s);
}

static zen_value_data_t str_data(const char *text) {
  zen_value_data_t d;
  memset(&d, 0, sizeof d);
  d.value_type = ZEN_TYPE_STRING;
  d.data.bytes.ptr = (const uint8_t *)text;
  d.data.bytes.len = strlen(text);
  return d;
}

static bool has_flag(zen_context_t c, zen_table_t set, const char *flag) {
  zen_value_data_t d = str_data(flag);
  bool in = false;
  MUST(zen_set_contains(c, set, &d, &in));
  return in;
}

static void test_sets_add_wins(void) {
  session s;
  session_open(&s, 3);
  zen_table_t f[3];
  for (size_t p = 0; p < 3; p++) MUST(zen_set_open(s.ctx[p], ID("flags"), ZEN_TYPE_STRING, NULL, &f[p]));
  zen_value_data_t door = str_data("door_open");
  zen_value_data_t boss = str_data("boss_dead");
  MUST(zen_set_add(s.ctx[0], f[0], &door));
  MUST(zen_set_add(s.ctx[0], f[0], &boss));
  CHECK(has_flag(s.ctx[0], f[0], "door_open"));
  session_run(&s, 20);
  CHECK(has_flag(s.ctx[2], f[2], "boss_dead"));
  /* A removal and a concurrent add of the same flag: the add wins. */
  bool removed = false;
  MUST(zen_set_remove(s.ctx[1], f[1], &door, &removed));
  CHECK(removed);
  MUST(zen_set_add(s.ctx[2], f[2], &door));
  MUST(zen_set_remove(s.ctx[1], f[1], &boss, NULL));
  session_run(&s, 40);
  for (size_t p = 0; p < 3; p++) {
    CHECK(has_flag(s.ctx[p], f[p], "door_open") && !has_flag(s.ctx[p], f[p], "boss_dead"));
    size_t n = 0;
    MUST(zen_table_len(s.ctx[p], f[p], &n));
    CHECK(n == 1);
  }
  /* Members through the entries snapshot; the removal as an event with the member. */
  size_t n = 0;
  MUST(zen_table_entries(s.ctx[0], f[0], &n));
  zen_key_t key;
  zen_value_data_t member;
  MUST(zen_table_entry_at(s.ctx[0], 0, &key, &member));
  CHECK(member.value_type == ZEN_TYPE_STRING && member.data.bytes.len == 9 && memcmp(member.data.bytes.ptr, "door_open", 9) == 0);
  int saw_removed = 0;
  zen_table_change_t ch;
  for (bool has = true; has;) {
    MUST(zen_context_poll_table_change(s.ctx[0], &ch, &has));
    if (has && ch.kind == ZEN_TABLE_REMOVED) saw_removed += ch.old_value.data.bytes.len == 9 && memcmp(ch.old_value.data.bytes.ptr, "boss_dead", 9) == 0;
  }
  CHECK(saw_removed == 1);
  uint32_t kind = 99;
  MUST(zen_table_kind(s.ctx[0], f[0], &kind));
  CHECK(kind == ZEN_COLLECTION_SET);
  session_close(&s);
}

static void test_set_errors_change_nothing(void) {
  zen_context_t c = new_ctx(1);
  zen_table_t set, table;
  MUST(zen_set_open(c, ID("flags"), ZEN_TYPE_STRING, NULL, &set));
  MUST(zen_table_open(c, ID("flags"), ZEN_TYPE_STRING, NULL, &table)); /* the same name, another kind */
  zen_value_data_t flag = str_data("x");
  zen_value_data_t num = i64_data(3);
  zen_key_t k = str_key("x");
  CHECK_STATUS(zen_set_add(c, set, &num), ZEN_ERR_WRONG_TYPE);
  CHECK_STATUS(zen_set_add(c, table, &flag), ZEN_ERR_WRONG_TYPE);
  CHECK(strstr(last_error(), "is a table, not a set") != NULL);
  CHECK_STATUS(zen_table_set(c, set, &k, &flag), ZEN_ERR_WRONG_TYPE);
  CHECK(strstr(last_error(), "is a set, not a table") != NULL);
  CHECK_STATUS(zen_set_add(c, set, NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_set_remove(c, set, NULL, NULL), ZEN_ERR_NULL_ARGUMENT);
  bool in = true;
  CHECK_STATUS(zen_set_contains(c, set, &flag, NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_set_contains(c, set, NULL, &in), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_table_kind(c, set, NULL), ZEN_ERR_NULL_ARGUMENT);
  zen_table_options_t o;
  MUST(zen_table_options_default(&o));
  o.mode = 7;
  CHECK_STATUS(zen_set_open(c, ID("s"), ZEN_TYPE_STRING, &o, &set), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_set_open(c, ID("s"), 77, NULL, &set), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_set_open(c, "\x02s", 2, ZEN_TYPE_STRING, NULL, &set), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_set_open(c, ID("s"), ZEN_TYPE_STRING, NULL, NULL), ZEN_ERR_NULL_ARGUMENT);
  zen_table_t stale = set;
  stale.index = 99;
  CHECK_STATUS(zen_set_add(c, stale, &flag), ZEN_ERR_INVALID_HANDLE);
  MUST(zen_set_contains(c, set, &flag, &in));
  CHECK(!in);
  zen_context_free(c);
}

static int64_t seq_at(zen_context_t c, zen_table_t q, size_t i) {
  zen_value_data_t d;
  MUST(zen_seq_get(c, q, i, &d));
  return d.value_type == ZEN_TYPE_I64 ? d.data.i : INT64_MIN;
}

static void test_sequences_keep_one_order(void) {
  session s;
  session_open(&s, 3);
  zen_table_t q[3];
  for (size_t p = 0; p < 3; p++) MUST(zen_seq_open(s.ctx[p], ID("units"), ZEN_TYPE_I64, NULL, &q[p]));
  for (int64_t x = 10; x <= 30; x += 10) {
    zen_value_data_t d = i64_data(x);
    MUST(zen_seq_push(s.ctx[0], q[0], &d));
  }
  zen_value_data_t d15 = i64_data(15);
  MUST(zen_seq_insert(s.ctx[0], q[0], 1, &d15));
  zen_table_change_t ch;
  bool has = true;
  int64_t last_index = -2;
  while (has) {
    MUST(zen_context_poll_table_change(s.ctx[0], &ch, &has));
    if (has) last_index = ch.index;
  }
  CHECK(last_index == 1);
  session_run(&s, 20);
  CHECK(seq_at(s.ctx[2], q[2], 0) == 10 && seq_at(s.ctx[2], q[2], 1) == 15 && seq_at(s.ctx[2], q[2], 3) == 30);
  /* Two players insert at the same place at once: both items, in one order. */
  zen_value_data_t d17 = i64_data(17), d18 = i64_data(18);
  MUST(zen_seq_insert(s.ctx[1], q[1], 2, &d17));
  MUST(zen_seq_insert(s.ctx[2], q[2], 2, &d18));
  session_run(&s, 20);
  for (size_t p = 0; p < 3; p++) {
    size_t n = 0;
    MUST(zen_table_len(s.ctx[p], q[p], &n));
    CHECK(n == 6);
    CHECK(seq_at(s.ctx[p], q[p], 2) == seq_at(s.ctx[0], q[0], 2) && seq_at(s.ctx[p], q[p], 3) == seq_at(s.ctx[0], q[0], 3));
  }
  /* Set, move, remove. */
  zen_value_data_t d11 = i64_data(11);
  MUST(zen_seq_set(s.ctx[0], q[0], 0, &d11));
  MUST(zen_seq_move(s.ctx[0], q[0], 0, 5));
  MUST(zen_seq_remove(s.ctx[0], q[0], 0));
  session_run(&s, 20);
  CHECK(seq_at(s.ctx[1], q[1], 4) == 11 && seq_at(s.ctx[1], q[1], 0) != 15);
  uint32_t kind = 99;
  MUST(zen_table_kind(s.ctx[1], q[1], &kind));
  CHECK(kind == ZEN_COLLECTION_SEQUENCE);
  session_close(&s);
}

static void test_sequence_errors_change_nothing(void) {
  zen_context_t c = new_ctx(1);
  zen_table_t q;
  MUST(zen_seq_open(c, ID("q"), ZEN_TYPE_I64, NULL, &q));
  zen_value_data_t one = i64_data(1);
  zen_value_data_t text = str_data("x");
  CHECK_STATUS(zen_seq_insert(c, q, 1, &one), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "index 1 is out of range") != NULL);
  CHECK_STATUS(zen_seq_push(c, q, &text), ZEN_ERR_WRONG_TYPE);
  CHECK_STATUS(zen_seq_push(c, q, NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_seq_set(c, q, 0, &one), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_seq_remove(c, q, 0), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_seq_move(c, q, 0, 0), ZEN_ERR_INVALID_ARGUMENT);
  zen_value_data_t d;
  CHECK_STATUS(zen_seq_get(c, q, 0, &d), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_seq_get(c, q, 0, NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_seq_open(c, "\x03q", 2, ZEN_TYPE_I64, NULL, &q), ZEN_ERR_INVALID_ARGUMENT);
  zen_table_t t;
  MUST(zen_table_open(c, ID("q"), ZEN_TYPE_I64, NULL, &t));
  CHECK_STATUS(zen_seq_push(c, t, &one), ZEN_ERR_WRONG_TYPE);
  CHECK(strstr(last_error(), "is a table, not a sequence") != NULL);
  size_t n = 9;
  MUST(zen_table_len(c, q, &n));
  CHECK(n == 0);
  zen_context_free(c);
}

/* 1.5 write permissions for collections: zen_table_options_t.owner, zen_table_owner,
 * zen_table_transfer and the owner events, on a table, a set and a sequence; every
 * refused call changes nothing. */
static void test_owner_only_collections(void) {
  session s;
  session_open(&s, 3);
  zen_table_options_t o;
  MUST(zen_table_options_default(&o));
  CHECK(o.owner == 0);
  o.owner = 1;
  zen_table_t t[3], f[3], q[3];
  for (size_t p = 0; p < 3; p++) {
    MUST(zen_table_open(s.ctx[p], ID("blocks"), ZEN_TYPE_I64, &o, &t[p]));
    MUST(zen_set_open(s.ctx[p], ID("flags"), ZEN_TYPE_I64, &o, &f[p]));
    MUST(zen_seq_open(s.ctx[p], ID("units"), ZEN_TYPE_I64, &o, &q[p]));
  }
  set_i64(s.ctx[0], t[0], int_key(1), 10);
  zen_value_data_t seven = i64_data(7);
  MUST(zen_set_add(s.ctx[0], f[0], &seven));
  MUST(zen_seq_push(s.ctx[0], q[0], &seven));
  session_run(&s, 20);
  uint64_t owner = 99;
  MUST(zen_table_owner(s.ctx[2], t[2], &owner));
  CHECK(owner == 1);
  CHECK(get_i64(s.ctx[2], t[2], int_key(1)) == 10);
  /* A non-owner's writes fail here and change nothing. */
  zen_key_t k = int_key(2);
  zen_value_data_t d = i64_data(20);
  bool had = true;
  CHECK_STATUS(zen_table_set(s.ctx[1], t[1], &k, &d), ZEN_ERR_NOT_OWNER);
  CHECK(strstr(last_error(), "owned by peer 1") != NULL);
  k = int_key(1);
  CHECK_STATUS(zen_table_remove(s.ctx[1], t[1], &k, &had), ZEN_ERR_NOT_OWNER);
  CHECK_STATUS(zen_set_add(s.ctx[1], f[1], &seven), ZEN_ERR_NOT_OWNER);
  CHECK_STATUS(zen_set_remove(s.ctx[1], f[1], &seven, &had), ZEN_ERR_NOT_OWNER);
  CHECK_STATUS(zen_seq_push(s.ctx[1], q[1], &seven), ZEN_ERR_NOT_OWNER);
  CHECK_STATUS(zen_seq_remove(s.ctx[1], q[1], 0), ZEN_ERR_NOT_OWNER);
  CHECK_STATUS(zen_table_transfer(s.ctx[1], t[1], 2), ZEN_ERR_NOT_OWNER);
  /* Errors of the new calls. */
  CHECK_STATUS(zen_table_owner(s.ctx[0], t[0], NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_table_transfer(s.ctx[0], t[0], 0), ZEN_ERR_INVALID_ARGUMENT);
  zen_table_t free_table;
  MUST(zen_table_open(s.ctx[0], ID("free"), ZEN_TYPE_I64, NULL, &free_table));
  MUST(zen_table_owner(s.ctx[0], free_table, &owner));
  CHECK(owner == 0);
  CHECK_STATUS(zen_table_transfer(s.ctx[0], free_table, 2), ZEN_ERR_INVALID_ARGUMENT);
  zen_table_t stale = t[0];
  stale.index = 99;
  CHECK_STATUS(zen_table_owner(s.ctx[0], stale, &owner), ZEN_ERR_INVALID_HANDLE);
  zen_table_options_t bad = o;
  bad.owner = (uint64_t)1 << 60;
  zen_table_t t2;
  CHECK_STATUS(zen_table_open(s.ctx[0], ID("other"), ZEN_TYPE_I64, &bad, &t2), ZEN_ERR_INVALID_ARGUMENT);
  /* The owner gives the table to peer 2: everyone hears it, peer 2 writes. */
  zen_table_change_t ch;
  bool has = true;
  for (size_t p = 0; p < 3; p++) {
    do {
      MUST(zen_context_poll_table_change(s.ctx[p], &ch, &has));
    } while (has);
  }
  MUST(zen_table_transfer(s.ctx[0], t[0], 2));
  MUST(zen_context_poll_table_change(s.ctx[0], &ch, &has));
  CHECK(has && ch.kind == ZEN_TABLE_OWNER_CHANGED && ch.origin == 2 && ch.table.index == t[0].index);
  CHECK(ch.key.kind == ZEN_KEY_INT && ch.key.int_key == 0 && ch.index == -1);
  CHECK(ch.old_value.value_type == ZEN_TYPE_NONE && ch.new_value.value_type == ZEN_TYPE_NONE);
  session_run(&s, 20);
  MUST(zen_context_poll_table_change(s.ctx[2], &ch, &has));
  CHECK(has && ch.kind == ZEN_TABLE_OWNER_CHANGED && ch.origin == 2);
  MUST(zen_table_owner(s.ctx[2], t[2], &owner));
  CHECK(owner == 2);
  set_i64(s.ctx[1], t[1], int_key(2), 20);
  session_run(&s, 20);
  CHECK(get_i64(s.ctx[0], t[0], int_key(2)) == 20 && get_i64(s.ctx[0], t[0], int_key(1)) == 10);
  CHECK(len_of(s.ctx[2], f[2]) == 1 && len_of(s.ctx[2], q[2]) == 1);
  session_close(&s);
}

/* 1.5 touches: zen_table_touch / zen_set_touch / zen_seq_touch re-announce what shows
 * (ZEN_TABLE_TOUCHED here and on the other peer), a table touch with another value
 * writes it, and the errors change nothing. */
static void test_touches(void) {
  session s;
  session_open(&s, 2);
  zen_table_t t[2], f[2], q[2];
  for (size_t p = 0; p < 2; p++) {
    t[p] = open_table(s.ctx[p], "blocks");
    MUST(zen_set_open(s.ctx[p], ID("flags"), ZEN_TYPE_I64, NULL, &f[p]));
    MUST(zen_seq_open(s.ctx[p], ID("units"), ZEN_TYPE_I64, NULL, &q[p]));
  }
  set_i64(s.ctx[0], t[0], int_key(7), 70);
  zen_value_data_t three = i64_data(3), seventy = i64_data(70);
  MUST(zen_set_add(s.ctx[0], f[0], &three));
  MUST(zen_seq_push(s.ctx[0], q[0], &three));
  session_run(&s, 20);
  zen_table_change_t ch;
  bool has = true;
  for (size_t p = 0; p < 2; p++) {
    do {
      MUST(zen_context_poll_table_change(s.ctx[p], &ch, &has));
    } while (has);
  }
  zen_key_t k = int_key(7);
  MUST(zen_table_touch(s.ctx[0], t[0], &k, &seventy));
  MUST(zen_set_touch(s.ctx[0], f[0], &three));
  MUST(zen_seq_touch(s.ctx[0], q[0], 0));
  session_run(&s, 20);
  int touched = 0;
  for (;;) {
    MUST(zen_context_poll_table_change(s.ctx[1], &ch, &has));
    if (!has) break;
    touched += ch.kind == ZEN_TABLE_TOUCHED && ch.origin == 1 && ch.new_value.value_type == ZEN_TYPE_I64 &&
               ch.old_value.value_type == ZEN_TYPE_I64;
    if (ch.table.index == q[1].index) CHECK(ch.index == 0);
  }
  CHECK(touched == 3);
  /* Another value: a write. */
  zen_value_data_t seventy_one = i64_data(71);
  MUST(zen_table_touch(s.ctx[0], t[0], &k, &seventy_one));
  CHECK(get_i64(s.ctx[0], t[0], k) == 71);
  /* Errors. */
  CHECK_STATUS(zen_seq_touch(s.ctx[0], q[0], 5), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(zen_table_touch(s.ctx[0], t[0], NULL, &seventy), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_table_touch(s.ctx[0], t[0], &k, NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_set_touch(s.ctx[0], f[0], NULL), ZEN_ERR_NULL_ARGUMENT);
  CHECK_STATUS(zen_set_touch(s.ctx[0], t[0], &three), ZEN_ERR_WRONG_TYPE);
  zen_value_data_t text = str_data("x");
  CHECK_STATUS(zen_table_touch(s.ctx[0], t[0], &k, &text), ZEN_ERR_WRONG_TYPE);
  zen_table_t stale = q[0];
  stale.index = 99;
  CHECK_STATUS(zen_seq_touch(s.ctx[0], stale, 0), ZEN_ERR_INVALID_HANDLE);
  session_close(&s);
}

static const zen_test_case CASES[] = {
    {"insert_update_remove_reach_every_peer", test_insert_update_remove_reach_every_peer},
    {"entries_snapshot_and_strings", test_entries_snapshot_and_strings},
    {"removed_entries_are_forgotten", test_removed_entries_are_forgotten},
    {"table_errors_change_nothing", test_errors_change_nothing},
    {"wait_for_sync_table", test_wait_for_sync_table},
    {"sets_add_wins", test_sets_add_wins},
    {"set_errors_change_nothing", test_set_errors_change_nothing},
    {"sequences_keep_one_order", test_sequences_keep_one_order},
    {"sequence_errors_change_nothing", test_sequence_errors_change_nothing},
    {"owner_only_collections", test_owner_only_collections},
    {"touches", test_touches},
};

int main(int argc, char **argv) { return zen_run_tests(CASES, sizeof CASES / sizeof CASES[0], argc, argv); }

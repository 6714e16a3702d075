// Every function of zen_crdt.hpp and its error paths, on real contexts. Built as C++17
// and C++20, with and without exceptions, against the shared and the static library,
// under ASan + UBSan and under valgrind (bindings/cpp/tests/CMakeLists.txt).
#include "harness.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>
#ifdef ZEN_CRDT_HPP_EXCEPTIONS
#include <stdexcept>
#endif

#include <sys/wait.h>
#include <unistd.h>

namespace {

// A glm-like vector of a game engine, stored through value_traits.
namespace glm_like {
struct vec3 {
  float x, y, z;
};
}  // namespace glm_like

}  // namespace

template <>
struct zen::value_traits<glm_like::vec3> {
  using wire = zen::Vec3;
  static wire to_wire(const glm_like::vec3& v) { return {v.x, v.y, v.z}; }
  static glm_like::vec3 from_wire(const wire& w) { return {w.x, w.y, w.z}; }
};

namespace {

zen::Context make(std::uint64_t peer) { return zen::Context::create(peer).value(); }

// Two players that are members of each other.
struct Pair {
  zen::Context a = make(1);
  zen::Context b = make(2);
  std::uint64_t now = 0;
  Pair() {
    a.add_peer(2).value();
    b.add_peer(1).value();
  }
  // `rounds` ticks of both, each carrying what the other sent (the wire knows the sender).
  void pump(int rounds = 6) {
    for (int i = 0; i < rounds; ++i) {
      now += 16;
      a.tick(now).value();
      b.tick(now).value();
      for (const zen::Message& m : a.outbound()) b.receive_from(1, m.data(), m.size()).value();
      for (const zen::Message& m : b.outbound()) a.receive_from(2, m.data(), m.size()).value();
    }
  }
  void drain() {
    for (const zen::Change& c : a.changes()) (void)c;
    for (const zen::Change& c : b.changes()) (void)c;
  }
};

// Runs `f` in a child process; true if the child was killed by SIGABRT after printing
// something containing `needle` to stderr.
template <class F>
bool aborts_saying(F f, const char* needle) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 2);
    f();
    _exit(0);
  }
  close(fds[1]);
  std::string err;
  char buf[256];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) err.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && err.find(needle) != std::string::npos;
}

}  // namespace

// ---- contexts ---------------------------------------------------------------------------

ZEN_TEST(version_matches_the_header) {
  CHECK(zen::version() >> 16 == ZEN_VERSION_MAJOR);
  CHECK(zen::version() >= (ZEN_VERSION_MAJOR << 16 | ZEN_VERSION_MINOR << 8 | ZEN_VERSION_PATCH));
}

ZEN_TEST(create_context_and_read_its_peer_id) {
  auto ctx = zen::Context::create(7);
  CHECK_OK(ctx);
  CHECK(static_cast<bool>(*ctx));
  CHECK(ctx->peer_id().value() == 7);
}

ZEN_TEST(create_rejects_bad_peer_ids_with_a_message) {
  CHECK_ERR(zen::Context::create(0), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_ERR(zen::Context::create(std::uint64_t{1} << 53), ZEN_ERR_INVALID_ARGUMENT);
}

ZEN_TEST(options_are_applied_and_checked) {
  auto small = zen::Context::create(1, zen::Options().max_id_bytes(4)).value();
  auto too_long = small.create<double>("longer-than-4");
  CHECK_ERR(too_long, ZEN_ERR_INVALID_ARGUMENT);
  CHECK(too_long.error().message().find("4 bytes") != std::string::npos);
  CHECK_OK(small.create<double>("ok"));
  auto bad = zen::Context::create(1, zen::Options().tick_interval_ms(0));
  CHECK_ERR(bad, ZEN_ERR_INVALID_ARGUMENT);
  CHECK(bad.error().message().find("tick_interval_ms") != std::string::npos);
  CHECK(zen::Options().capi().struct_size == sizeof(zen_options_t));
}

ZEN_TEST(every_option_setter_reaches_the_library) {
  auto opts = zen::Options()
                  .tick_interval_ms(10)
                  .peer_timeout_ms(4000)
                  .heartbeat_ms(200)
                  .max_message_bytes(1 << 20)
                  .max_value_bytes(8)
                  .max_id_bytes(64)
                  .event_capacity(2)
                  .hibernate_after_ms(5000)
                  .max_values(2)
                  .target_message_bytes(1200);
  const zen_options_t& o = opts.capi();
  CHECK(o.tick_interval_ms == 10 && o.peer_timeout_ms == 4000 && o.heartbeat_ms == 200);
  CHECK(o.max_message_bytes == (1 << 20) && o.max_id_bytes == 64 && o.hibernate_after_ms == 5000);
  CHECK(o.target_message_bytes == 1200);
  CHECK_ERR(zen::Context::create(1, zen::Options().target_message_bytes(100)), ZEN_ERR_INVALID_ARGUMENT);
  auto c = zen::Context::create(1, opts).value();
  auto s = c.create<std::string>("s").value();
  CHECK_ERR(s.set(std::string("nine bytes")), ZEN_ERR_TOO_LARGE);  // max_value_bytes
  auto n = c.create<std::int64_t>("n").value();
  CHECK_ERR(c.create<bool>("third"), ZEN_ERR_TOO_LARGE);  // max_values
  for (std::int64_t k = 0; k < 5; ++k) CHECK_OK(n.set(k));
  CHECK_OK(s.set(std::string("ok")));
  CHECK_OK(c.tick(10));
  int events = 0;
  for (const zen::Change& ch : c.changes()) events += ch.kind() == zen::ChangeKind::Modified;
  CHECK(events <= 2);  // event_capacity: the rest merged or dropped, and counted
  auto m = c.metrics().value();
  CHECK(m.events_coalesced + m.events_dropped > 0);
}

ZEN_TEST(moved_from_context_is_safe_and_reports_invalid_handle) {
  auto a = make(1);
  zen::Context b = std::move(a);
  CHECK(!a);  // NOLINT(bugprone-use-after-move): that is the point
  CHECK_ERR(a.tick(16), ZEN_ERR_INVALID_HANDLE);
  CHECK_ERR(a.peer_id(), ZEN_ERR_INVALID_HANDLE);
  CHECK_ERR(a.create<bool>("x"), ZEN_ERR_INVALID_HANDLE);
  CHECK_OK(b.tick(16));
}

ZEN_TEST(closed_context_is_safe_to_close_again_and_to_call) {
  auto a = make(1);
  a.close();
  a.close();
  CHECK(!a);
  CHECK_ERR(a.add_peer(2), ZEN_ERR_INVALID_HANDLE);
  CHECK_ERR(a.metrics(), ZEN_ERR_INVALID_HANDLE);
}

ZEN_TEST(move_assignment_frees_the_context_it_replaces) {
  auto a = make(1);
  auto v = a.create<std::int64_t>("n").value();
  a = make(2);
  CHECK_ERR(v.get(), ZEN_ERR_INVALID_HANDLE);
  CHECK(a.peer_id().value() == 2);
  zen::Context& same = a;
  a = std::move(same);  // self-move keeps it
  CHECK(a.peer_id().value() == 2);
}

ZEN_TEST(release_hands_the_handle_over) {
  auto a = make(3);
  zen_context_t raw = a.release();
  CHECK(!a);
  std::uint64_t id = 0;
  CHECK(zen_context_peer_id(raw, &id) == ZEN_OK && id == 3);
  zen::Context again(raw);  // and back: owned once more, freed by its destructor
  CHECK(again.peer_id().value() == 3);
}

ZEN_TEST(peers_are_added_and_removed_with_errors_for_bad_ones) {
  auto a = make(1);
  CHECK_OK(a.add_peer(2));
  CHECK_ERR(a.add_peer(0), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_ERR(a.add_peer(1), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_OK(a.remove_peer(2));
  CHECK_ERR(a.remove_peer(77), ZEN_ERR_UNKNOWN_PEER);
}

// ---- values: every type -----------------------------------------------------------------

ZEN_TEST(bool_int_double_round_trip) {
  auto c = make(1);
  auto b = c.create<bool>("b").value();
  auto i = c.create<std::int64_t>("i").value();
  auto f = c.create<double>("f").value();
  CHECK_OK(b.set(true));
  CHECK_OK(i.set(-42));
  CHECK_OK(f.set(2.5));
  CHECK(b.get().value());
  CHECK(i.get().value() == -42);
  CHECK(f.get().value() == 2.5);
}

ZEN_TEST(strings_grow_their_buffer_and_may_be_empty) {
  auto c = make(1);
  auto s = c.create<std::string>("s").value();
  CHECK(s.get().value().empty());
  std::string long_text(5000, 'x');
  long_text += "end";
  CHECK_OK(s.set(long_text));
  CHECK(s.get().value() == long_text);
  CHECK_OK(s.set(std::string("héllo")));
  CHECK(s.get().value() == "héllo");
  CHECK_ERR(s.set(std::string("\xff\xfe")), ZEN_ERR_INVALID_UTF8);
  CHECK(s.get().value() == "héllo");  // a refused write changes nothing
}

ZEN_TEST(bytes_round_trip_including_large) {
  auto c = make(1);
  auto v = c.create<std::vector<std::uint8_t>>("blob").value();
  std::vector<std::uint8_t> data(3000);
  for (std::size_t k = 0; k < data.size(); ++k) data[k] = static_cast<std::uint8_t>(k * 7);
  CHECK_OK(v.set(data));
  CHECK(v.get().value() == data);
  CHECK_OK(v.set({}));
  CHECK(v.get().value().empty());
}

ZEN_TEST(vectors_quaternions_and_colors_round_trip) {
  auto c = make(1);
  auto v2 = c.create<zen::Vec2>("v2").value();
  auto v3 = c.create<zen::Vec3>("v3").value();
  auto v4 = c.create<zen::Vec4>("v4").value();
  auto q = c.create<zen::Quat>("q").value();
  auto col = c.create<zen::Color>("c").value();
  CHECK_OK(v2.set({1, 2}));
  CHECK_OK(v3.set({1, 2, 3}));
  CHECK_OK(v4.set({1, 2, 3, 4}));
  CHECK_OK(q.set({0, 0.7071f, 0, 0.7071f}));
  CHECK_OK(col.set({1, 0.5f, 0.25f, 1}));
  CHECK((v2.get().value() == zen::Vec2{1, 2}));
  CHECK((v3.get().value() == zen::Vec3{1, 2, 3}));
  CHECK((v4.get().value() == zen::Vec4{1, 2, 3, 4}));
  CHECK((q.get().value() == zen::Quat{0, 0.7071f, 0, 0.7071f}));
  CHECK((col.get().value() == zen::Color{1, 0.5f, 0.25f, 1}));
  CHECK(v3.info().value().type == zen::Type::Vec3);
  CHECK(q.info().value().type == zen::Type::Quat);
}

ZEN_TEST(never_written_values_read_as_zero_and_quaternions_as_identity) {
  auto c = make(1);
  CHECK(c.create<std::int64_t>("i").value().get().value() == 0);
  CHECK((c.create<zen::Vec3>("v").value().get().value() == zen::Vec3{}));
  CHECK((c.create<zen::Quat>("q").value().get().value() == zen::Quat{0, 0, 0, 1}));
}

ZEN_TEST(your_own_type_through_value_traits) {
  Pair p;
  auto pos = p.a.create<glm_like::vec3>("unit/7/pos").value();
  CHECK(zen::type_of<glm_like::vec3> == zen::Type::Vec3);
  CHECK_OK(pos.set(glm_like::vec3{1, 2, 3}));
  CHECK(pos.get().value().z == 3);
  p.pump();
  auto seen = p.b.open<glm_like::vec3>("unit/7/pos");
  CHECK_OK(seen);
  CHECK(seen->get().value().y == 2);
  bool saw = false;
  for (const zen::Change& c : p.b.changes()) {
    if (auto v = c.new_value().as<glm_like::vec3>()) saw = saw || v->x == 1;
  }
  CHECK(saw);
}

// ---- values: errors ---------------------------------------------------------------------

ZEN_TEST(a_value_outliving_its_context_reports_invalid_handle) {
  zen::Value<double> v;
  {
    auto c = make(1);
    v = c.create<double>("hp").value();
    CHECK_OK(v.set(1));
  }
  CHECK_ERR(v.set(2), ZEN_ERR_INVALID_HANDLE);
  CHECK_ERR(v.get(), ZEN_ERR_INVALID_HANDLE);
  CHECK_ERR(v.info(), ZEN_ERR_INVALID_HANDLE);
  CHECK_ERR(v.id(), ZEN_ERR_INVALID_HANDLE);
  CHECK_ERR(v.remove(), ZEN_ERR_INVALID_HANDLE);
  CHECK_ERR(v.set_mode(zen::Mode::WaitForSync), ZEN_ERR_INVALID_HANDLE);
  CHECK_ERR(v.wait_converged(std::chrono::milliseconds(1)), ZEN_ERR_INVALID_HANDLE);
  zen::Value<double> never;  // a default view is never valid
  CHECK_ERR(never.get(), ZEN_ERR_INVALID_HANDLE);
}

ZEN_TEST(a_value_of_another_context_is_refused) {
  auto a = make(1);
  auto b = make(2);
  auto va = a.create<std::int64_t>("n").value();
  zen::Value<std::int64_t> foreign(b.capi(), va.handle());
  CHECK_ERR(foreign.set(1), ZEN_ERR_INVALID_HANDLE);
}

ZEN_TEST(creating_an_existing_value_with_another_type_is_wrong_type) {
  auto c = make(1);
  CHECK_OK(c.create<zen::Vec3>("pos"));
  CHECK_ERR(c.create<double>("pos"), ZEN_ERR_WRONG_TYPE);
  CHECK_OK(c.create<zen::Vec3>("pos"));  // the same type opens it
}

ZEN_TEST(open_finds_values_and_checks_the_type) {
  auto c = make(1);
  auto made = c.create<std::string>("name").value();
  auto opened = c.open<std::string>("name");
  CHECK_OK(opened);
  CHECK(zen::same_handle(opened->handle(), made.handle()));
  CHECK_ERR(c.open<std::string>("nope"), ZEN_ERR_UNKNOWN_VALUE);
  auto wrong = c.open<double>("name");
  CHECK_ERR(wrong, ZEN_ERR_WRONG_TYPE);
  CHECK(wrong.error().message().find("name") != std::string::npos);
}

ZEN_TEST(bad_ids_and_options_are_refused) {
  auto c = make(1);
  CHECK_ERR(c.create<double>(std::string_view("\xc3\x28", 2)), ZEN_ERR_INVALID_UTF8);
  CHECK_ERR(c.create<double>(""), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_ERR(c.create<zen::Quat>("rot", {zen::Mode::FastLocal, zen::Policy::Max}), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_ERR(c.create<double>("x", {zen::Mode::FastLocal, zen::Policy::Custom, ""}), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_ERR(c.create<double>("x", {static_cast<zen::Mode>(9), zen::Policy::Max}), ZEN_ERR_INVALID_ARGUMENT);
}

ZEN_TEST(info_mode_switch_and_id) {
  auto c = make(1);
  auto v = c.create<std::int64_t>("score/red", {zen::Mode::WaitForSync, zen::Policy::Max}).value();
  zen::Info i = v.info().value();
  CHECK(i.type == zen::Type::I64 && i.mode == zen::Mode::WaitForSync && i.policy == zen::Policy::Max);
  CHECK(i.state == zen::SyncState::LocalOnly || i.state == zen::SyncState::Converged);
  CHECK_OK(v.set_mode(zen::Mode::FastLocal));
  CHECK(v.info().value().mode == zen::Mode::FastLocal);
  CHECK_ERR(v.set_mode(static_cast<zen::Mode>(5)), ZEN_ERR_INVALID_ARGUMENT);
  std::string long_id(100, 'k');
  auto lv = c.create<bool>(long_id).value();
  CHECK(v.id().value() == "score/red");
  CHECK(lv.id().value() == long_id);
}

ZEN_TEST(removed_values_read_as_removed_on_both_peers) {
  Pair p;
  auto door = p.a.create<bool>("door").value();
  CHECK_OK(door.set(true));
  p.pump();
  CHECK_OK(door.remove());
  p.pump();
  CHECK_ERR(door.get(), ZEN_ERR_REMOVED);
  CHECK_ERR(p.b.open<bool>("door")->get(), ZEN_ERR_REMOVED);
}

ZEN_TEST(wait_converged_times_out_on_the_ticking_thread) {
  auto c = make(1);
  CHECK_OK(c.add_peer(2));  // a member that never answers
  auto v = c.create<std::int64_t>("n", {zen::Mode::WaitForSync, zen::Policy::LastWriterWins}).value();
  CHECK_OK(v.set(1));
  CHECK_OK(c.tick(16));
  CHECK_ERR(v.wait_converged(std::chrono::milliseconds(5)), ZEN_ERR_TIMEOUT);
  CHECK_ERR(v.wait_converged(std::chrono::milliseconds(-3)), ZEN_ERR_TIMEOUT);
}

ZEN_TEST(wait_converged_wakes_when_another_thread_ticks) {
  Pair p;
  auto v = p.a.create<std::int64_t>("n", {zen::Mode::WaitForSync, zen::Policy::LastWriterWins}).value();
  CHECK_OK(v.set(5));
  std::atomic<int> result{-1};
  std::thread waiter([&] {
    zen::Status s = v.wait_converged(std::chrono::milliseconds(10000));
    result = static_cast<int>(s.code());
  });
  for (int i = 0; i < 200 && result.load() < 0; ++i) {
    p.pump(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  waiter.join();
  CHECK(result.load() == ZEN_OK);
  CHECK(v.info().value().state == zen::SyncState::Converged);
  CHECK(v.get().value() == 5);
}

// ---- the wire -----------------------------------------------------------------------------

ZEN_TEST(two_peers_converge_through_outbound_and_receive) {
  Pair p;
  auto pos = p.a.create<zen::Vec3>("unit/1/pos").value();
  CHECK_OK(pos.set({4, 5, 6}));
  p.pump();
  auto seen = p.b.open<zen::Vec3>("unit/1/pos");
  CHECK_OK(seen);
  CHECK((seen->get().value() == zen::Vec3{4, 5, 6}));
  CHECK(p.b.metrics().value().updates_applied >= 1);
}

ZEN_TEST(a_saved_context_loads_rejoins_and_catches_up) {
  Pair p;
  auto hp = p.b.create<std::int64_t>("hp", {zen::Mode::FastLocal, zen::Policy::Max}).value();
  CHECK_OK(hp.set(70));
  auto name = p.a.create<std::string>("name", {zen::Mode::WaitForSync}).value();
  CHECK_OK(name.set("ada"));
  p.pump(20);
  auto saved = p.b.save();
  CHECK_OK(saved);
  CHECK(saved->size() > 16);
  // b stops; a writes on alone; b comes back from its save under its own id.
  p.b.close();
  CHECK_OK(p.a.remove_peer(2));
  CHECK_OK(p.a.open<std::int64_t>("hp")->set(90));
  CHECK_OK(p.a.tick(p.now += 16));
  auto back = zen::Context::load(2, *saved);
  CHECK_OK(back);
  CHECK(back->open<std::int64_t>("hp")->get().value() == 70);
  int created = 0;
  for (const zen::Change& c : back->changes()) created += c.kind() == zen::ChangeKind::Created;
  CHECK(created == 2);
  p.b = std::move(*back);
  CHECK_OK(p.a.add_peer(2));
  CHECK_OK(p.b.add_peer(1));
  p.pump(30);
  CHECK(p.b.open<std::int64_t>("hp")->get().value() == 90);
  CHECK(p.b.open<std::string>("name")->get().value() == "ada");
  // Peer 1 wrote in that save without saving it: it cannot continue from it.
  CHECK_ERR(zen::Context::load(1, *saved), ZEN_ERR_INVALID_ARGUMENT);
  std::vector<std::uint8_t> cut(saved->begin(), saved->begin() + 20);
  auto bad = zen::Context::load(2, cut);
  CHECK_ERR(bad, ZEN_ERR_DECODE);
  CHECK(bad.error().message().find("truncated") != std::string::npos);
  zen::Context closed;
  CHECK_ERR(closed.save(), ZEN_ERR_INVALID_HANDLE);
}

ZEN_TEST(save_file_and_load_file) {
  Pair p;
  CHECK_OK(p.a.create<double>("t").value().set(2.5));
  p.pump();
  std::string path = "/tmp/zen_cpp_save_" + std::to_string(getpid()) + ".zen";
  CHECK_OK(p.a.save_file(path));
  auto back = zen::Context::load_file(1, path, zen::Options().max_values(8));
  CHECK_OK(back);
  CHECK(back->open<double>("t")->get().value() == 2.5);
  CHECK(unlink(path.c_str()) == 0);
  CHECK_ERR(zen::Context::load_file(1, path), ZEN_ERR_IO);
  CHECK_ERR(p.a.save_file("/nonexistent-dir/x.zen"), ZEN_ERR_IO);
}

ZEN_TEST(receive_takes_any_contiguous_byte_container) {
  auto a = make(1);
  auto b = make(2);
  CHECK_OK(a.add_peer(2));
  CHECK_OK(b.add_peer(1));
  auto v = a.create<std::int64_t>("n").value();
  CHECK_OK(v.set(9));
  CHECK_OK(a.tick(16));
  std::vector<std::vector<std::uint8_t>> msgs;
  for (const zen::Message& m : a.outbound()) {
    CHECK(m.broadcast() == (m.to == 0));
    msgs.emplace_back(m.data(), m.data() + m.size());
  }
  CHECK(!msgs.empty());
  for (const auto& m : msgs) {
    CHECK_OK(b.receive(m));                                              // std::vector<uint8_t>
    CHECK_OK(b.receive(std::string(m.begin(), m.end())));                // std::string
    CHECK_OK(b.receive_from(1, std::string(m.begin(), m.end())));        // from a known sender
  }
  std::array<std::uint8_t, 3> junk{{1, 2, 3}};
  CHECK_ERR(b.receive(junk), ZEN_ERR_DECODE);
  CHECK_OK(b.tick(16));
  CHECK(b.open<std::int64_t>("n")->get().value() == 9);
}

ZEN_TEST(bad_messages_are_rejected_counted_and_change_nothing) {
  auto a = make(1);
  auto b = make(2);
  CHECK_OK(a.add_peer(2));
  CHECK_OK(b.add_peer(1));
  CHECK_OK(a.create<double>("x").value().set(1));
  CHECK_OK(a.tick(16));
  std::vector<std::uint8_t> msg;
  for (const zen::Message& m : a.outbound()) msg.assign(m.data(), m.data() + m.size());
  CHECK(!msg.empty());
  CHECK_ERR(b.receive_from(3, msg), ZEN_ERR_SENDER_MISMATCH);
  std::vector<std::uint8_t> truncated(msg.begin(), msg.begin() + static_cast<std::ptrdiff_t>(msg.size() / 2));
  CHECK_ERR(b.receive(truncated), ZEN_ERR_DECODE);
  CHECK_ERR(b.receive(nullptr, 10), ZEN_ERR_NULL_ARGUMENT);
  auto stranger = make(3);
  CHECK_ERR(stranger.receive(msg), ZEN_ERR_UNKNOWN_PEER);
  auto m = b.metrics().value();
  CHECK(m.messages_rejected == 2 && m.messages_forged == 1);  // NULL data is refused before counting
  CHECK(m.values == 0);
}

// Text that LZ4 cannot shrink much, so the message stays large.
std::string noise(std::size_t n, std::uint32_t seed) {
  std::string s(n, ' ');
  for (auto& ch : s) {
    seed = seed * 1664525u + 1013904223u;
    ch = static_cast<char>('a' + (seed >> 24) % 26);
  }
  return s;
}

ZEN_TEST(outbound_grows_its_buffer_for_large_messages_and_reuses_it) {
  Pair p;
  auto big = p.a.create<std::string>("chat").value();
  CHECK_OK(big.set(noise(20000, 1)));
  p.pump();
  CHECK(p.b.open<std::string>("chat")->get().value() == noise(20000, 1));
  std::size_t largest = 0;
  CHECK_OK(big.set(noise(30000, 2)));
  CHECK_OK(p.a.tick(p.now += 16));
  auto range = p.a.outbound();
  for (const zen::Message& m : range) largest = std::max(largest, m.size());
  CHECK_OK(range.status());
  CHECK(largest > 1024);
}

ZEN_TEST(ranges_on_a_closed_context_stop_and_say_why) {
  auto a = make(1);
  a.close();
  int n = 0;
  auto out = a.outbound();
  for (const zen::Message& m : out) n += static_cast<int>(m.size());
  CHECK(n == 0);
  CHECK_ERR(out.status(), ZEN_ERR_INVALID_HANDLE);
  auto changes = a.changes();
  for (const zen::Change& c : changes) n += static_cast<int>(c.time_ms());
  CHECK(n == 0);
  CHECK_ERR(changes.status(), ZEN_ERR_INVALID_HANDLE);
}

// ---- change events ------------------------------------------------------------------------

ZEN_TEST(changes_report_created_and_modified_with_old_and_new_values) {
  Pair p;
  auto hp = p.a.create<double>("hp").value();
  CHECK_OK(hp.set(10));
  p.pump();
  bool created = false;
  for (const zen::Change& c : p.b.changes()) created = created || c.kind() == zen::ChangeKind::Created;
  CHECK(created);
  CHECK_OK(hp.set(20));
  p.pump();
  bool modified = false;
  auto bhp = p.b.open<double>("hp").value();
  for (const zen::Change& c : p.b.changes()) {
    if (c.is(bhp) && c.kind() == zen::ChangeKind::Modified) {
      modified = c.old_value().as<double>() == 10.0 && c.new_value().as<double>() == 20.0 && c.origin() == 1 &&
                 c.time_ms() > 0 && !c.is_correction();
    }
  }
  CHECK(modified);
  // Local writes queue events too (at once for FastLocal), with this peer as origin.
  CHECK_OK(hp.set(30));
  bool local = false;
  for (const zen::Change& c : p.a.changes()) local = local || (c.is(hp) && c.origin() == 1);
  CHECK(local);
}

ZEN_TEST(what_was_already_there_is_initial_and_touches_reach_the_other_peer) {
  Pair p;
  auto door = p.a.create<bool>("door").value();
  CHECK_OK(door.set(true));
  for (const zen::Change& c : p.a.changes()) CHECK(!c.is_initial());  // our own write
  p.pump();
  auto bdoor = p.b.open<bool>("door").value();
  int initial = 0;
  for (const zen::Change& c : p.b.changes()) {
    if (c.is(bdoor) && c.is_initial()) initial += c.kind() == zen::ChangeKind::Created && c.new_value().as<bool>();
  }
  CHECK(initial == 1);
  CHECK_OK(bdoor.touch());
  zen::OwnedChange here{};
  for (const zen::Change& c : p.b.changes()) here = c.owned();
  CHECK(here.kind == zen::ChangeKind::Touched && here.origin == 2 && !here.is_initial);
  CHECK(std::get<bool>(here.new_value) && std::get<bool>(here.old_value));
  p.pump();
  int touched = 0;
  for (const zen::Change& c : p.a.changes()) {
    touched += c.is(door) && c.kind() == zen::ChangeKind::Touched && c.origin() == 2 && !c.is_initial();
  }
  CHECK(touched == 1);
  CHECK(door.get().value());
  CHECK_OK(door.remove());
  CHECK_ERR(door.touch(), ZEN_ERR_REMOVED);
  auto never = p.a.create<std::int64_t>("never").value();
  CHECK_ERR(never.touch(), ZEN_ERR_INVALID_ARGUMENT);
}

ZEN_TEST(local_only_values_stay_here) {
  Pair p;
  zen::ValueOptions local;
  local.local_only = true;
  auto ui = p.a.create<std::string>("ui", local).value();
  CHECK(ui.is_local_only().value());
  CHECK_OK(ui.set(std::string("inventory open")));
  p.pump(10);
  CHECK(ui.get().value() == "inventory open");
  CHECK(ui.info().value().state == zen::SyncState::LocalOnly);
  CHECK_ERR(p.b.open<std::string>("ui"), ZEN_ERR_UNKNOWN_VALUE);
  // Not a byte of it on the wire: a pair that wrote nothing sent exactly as much.
  Pair idle;
  idle.pump(10);
  CHECK(p.a.metrics().value().bytes_out == idle.a.metrics().value().bytes_out);
  // The choice is made once: opened as shared it is refused.
  CHECK_ERR(p.a.create<std::string>("ui"), ZEN_ERR_INVALID_ARGUMENT);
  zen::Context closed = make(7);
  auto v = closed.create<std::int64_t>("x").value();
  closed.close();
  CHECK_ERR(v.is_local_only(), ZEN_ERR_INVALID_HANDLE);
  CHECK_ERR(v.touch(), ZEN_ERR_INVALID_HANDLE);
}

ZEN_TEST(only_the_owner_writes_and_a_transfer_moves_the_right) {
  Pair p;
  zen::ValueOptions mine;
  mine.owner = 1;
  auto ball = p.a.create<std::int64_t>("ball", mine).value();
  CHECK(ball.owner().value() == std::optional<std::uint64_t>(1));
  CHECK_OK(ball.set(5));
  p.pump();
  auto bball = p.b.open<std::int64_t>("ball").value();
  CHECK(bball.owner().value() == std::optional<std::uint64_t>(1));
  CHECK_ERR(bball.set(6), ZEN_ERR_NOT_OWNER);
  CHECK_ERR(bball.transfer(2), ZEN_ERR_NOT_OWNER);
  p.drain();
  CHECK_OK(ball.transfer(2));
  zen::OwnedChange here{};
  for (const zen::Change& c : p.a.changes()) here = c.owned();
  CHECK(here.kind == zen::ChangeKind::OwnerChanged && here.owner_changed && here.origin == 2);
  CHECK_ERR(ball.set(7), ZEN_ERR_NOT_OWNER);
  p.pump();
  int told = 0;
  for (const zen::Change& c : p.b.changes()) told += c.is(bball) && c.owner_changed() && c.origin() == 2;
  CHECK(told == 1);
  CHECK_OK(bball.set(8));
  p.pump();
  CHECK(ball.get().value() == 8);
  // A value anyone may write has no owner and cannot be transferred.
  auto free_v = p.a.create<std::int64_t>("free").value();
  CHECK(!free_v.owner().value().has_value());
  CHECK_ERR(free_v.transfer(2), ZEN_ERR_INVALID_ARGUMENT);
}

ZEN_TEST(tables_insert_update_remove_with_events_on_both_peers) {
  Pair p;
  auto blocks = p.a.table<std::int64_t>("blocks").value();
  auto bblocks = p.b.table<std::int64_t>("blocks").value();
  CHECK_OK(blocks.set(zen::Key(std::int64_t{7}), 70));
  CHECK_OK(blocks.set(zen::Key(std::string("door")), 1));
  CHECK(blocks.get(std::int64_t{7}).value() == std::optional<std::int64_t>(70));
  std::vector<zen::OwnedTableChange> here;
  for (const zen::TableChange& c : p.a.table_changes()) here.push_back(c.owned());
  CHECK(here.size() == 2 && here[0].kind == zen::TableChangeKind::Added && here[0].origin == 1);
  CHECK(std::get<std::int64_t>(here[0].key) == 7 && std::get<std::int64_t>(here[0].new_value) == 70);
  p.pump();
  int added = 0;
  bool door = false;
  for (const zen::TableChange& c : p.b.table_changes()) {
    added += c.is(bblocks) && c.kind() == zen::TableChangeKind::Added && !c.is_initial();
    door |= c.str_key() == "door" && c.new_value().as<std::int64_t>() == std::optional<std::int64_t>(1);
  }
  CHECK(added == 2 && door);
  CHECK(bblocks.size().value() == 2);
  CHECK(blocks.state().value() == zen::SyncState::Converged);
  CHECK(p.a.collection_kind(blocks.handle()).value() == zen::CollectionKind::Table);
  auto all = bblocks.entries().value();
  CHECK(all.size() == 2 && std::get<std::int64_t>(all[0].first) == 7 && all[0].second == 70);
  CHECK(std::get<std::string>(all[1].first) == "door");
  CHECK_OK(bblocks.set(std::int64_t{7}, 71));
  CHECK(bblocks.remove(std::string("door")).value());
  CHECK(!bblocks.remove(std::string("nothing")).value());
  p.pump();
  int modified = 0, removed = 0;
  for (const zen::TableChange& c : p.a.table_changes()) {
    modified += c.kind() == zen::TableChangeKind::Modified && c.int_key() == std::optional<std::int64_t>(7) &&
                c.old_value().as<std::int64_t>() == std::optional<std::int64_t>(70) && c.origin() == 2;
    removed += c.kind() == zen::TableChangeKind::Removed && c.new_value().empty();
  }
  CHECK(modified == 1 && removed == 1);
  CHECK(!blocks.get(std::string("door")).value().has_value());
  CHECK(p.a.metrics().value().table_entries == 1);
}

ZEN_TEST(tables_of_your_own_types_and_their_errors) {
  Pair p;
  auto units = p.a.table<glm_like::vec3>("units").value();
  CHECK_OK(units.set(std::int64_t{1}, glm_like::vec3{1, 2, 3}));
  p.pump();
  auto bunits = p.b.table<glm_like::vec3>("units").value();
  auto got = bunits.get(std::int64_t{1}).value();
  CHECK(got.has_value() && got->z == 3);
  // The same table as another type is refused; so is a key too long for an id.
  CHECK_ERR(p.b.table<std::string>("units"), ZEN_ERR_WRONG_TYPE);
  CHECK_ERR(units.set(std::string(400, 'k'), glm_like::vec3{}), ZEN_ERR_TOO_LARGE);
  zen::TableOptions bad;
  bad.policy = zen::Policy::TakeAverage;
  CHECK_ERR(p.a.table<std::string>("names", bad), ZEN_ERR_INVALID_ARGUMENT);
  zen::Context closed = make(7);
  auto t = closed.table<std::int64_t>("t").value();
  closed.close();
  CHECK_ERR(t.set(std::int64_t{1}, 1), ZEN_ERR_INVALID_HANDLE);
  CHECK_ERR(t.size(), ZEN_ERR_INVALID_HANDLE);
  CHECK_ERR(t.entries(), ZEN_ERR_INVALID_HANDLE);
}

ZEN_TEST(sets_add_wins_and_report_members_as_table_changes) {
  Pair p;
  auto flags = p.a.open_set<std::string>("flags").value();
  auto bflags = p.b.open_set<std::string>("flags").value();
  CHECK_OK(flags.add("door_open"));
  CHECK(flags.contains("door_open").value());
  p.pump();
  CHECK(bflags.members().value() == std::vector<std::string>{"door_open"});
  for (const zen::TableChange& c : p.a.table_changes()) (void)c;
  // A removal here and a concurrent add there: the add wins on both.
  CHECK(bflags.remove("door_open").value());
  CHECK_OK(flags.add("door_open"));
  p.pump(12);
  CHECK(flags.contains("door_open").value() && bflags.contains("door_open").value());
  CHECK(flags.size().value() == 1);
  CHECK_OK(flags.add("boss_dead"));
  CHECK(flags.remove("boss_dead").value());
  p.pump();
  int added = 0;
  for (const zen::TableChange& c : p.b.table_changes()) added += c.is(bflags) && c.kind() == zen::TableChangeKind::Added;
  CHECK(added >= 1);
  auto units = p.a.open_set<glm_like::vec3>("cells").value();
  CHECK_OK(units.add(glm_like::vec3{1, 2, 3}));
  CHECK(units.contains(glm_like::vec3{1, 2, 3}).value() && !units.contains(glm_like::vec3{3, 2, 1}).value());
  // A table of the same name is another object; each refuses the other's calls.
  auto table = p.a.table<std::string>("flags").value();
  CHECK_OK(table.set(std::string("k"), "v"));
  zen::Set<std::string> wrong(p.a.capi(), table.handle());
  CHECK_ERR(wrong.add("x"), ZEN_ERR_WRONG_TYPE);
  CHECK_ERR(p.a.open_set<std::int64_t>("flags"), ZEN_ERR_WRONG_TYPE);
}

ZEN_TEST(sequences_keep_one_order_with_indexes_in_events) {
  Pair p;
  auto units = p.a.open_seq<std::int64_t>("units").value();
  auto bunits = p.b.open_seq<std::int64_t>("units").value();
  for (std::int64_t x : {10, 20, 30}) CHECK_OK(units.push_back(x));
  CHECK_OK(units.insert(1, 15));
  zen::OwnedTableChange last{};
  for (const zen::TableChange& c : p.a.table_changes()) last = c.owned();
  CHECK(last.kind == zen::TableChangeKind::Added && last.index == 1);
  p.pump();
  CHECK(bunits.items().value() == (std::vector<std::int64_t>{10, 15, 20, 30}));
  // Both insert at the same place at once: both items, one order on both.
  CHECK_OK(units.insert(2, 17));
  CHECK_OK(bunits.insert(2, 18));
  p.pump(12);
  CHECK(units.items().value() == bunits.items().value() && units.size().value() == 6);
  for (const zen::TableChange& c : p.b.table_changes()) (void)c;
  CHECK_OK(units.set(0, 11));
  CHECK_OK(units.move(0, 5));
  CHECK_OK(units.erase(0));
  p.pump();
  CHECK(bunits.at(4).value() == 11 && bunits.size().value() == 5);
  bool removed_at_0 = false;
  for (const zen::TableChange& c : p.b.table_changes()) {
    removed_at_0 |= c.is(bunits) && c.kind() == zen::TableChangeKind::Removed && c.index() == std::optional<std::size_t>(0);
  }
  CHECK(removed_at_0);
  CHECK_ERR(units.insert(99, 1), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_ERR(units.at(5), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_ERR(p.a.open_seq<std::string>("units"), ZEN_ERR_WRONG_TYPE);
}

ZEN_TEST(owner_only_collections_refuse_others_and_transfer) {
  Pair p;
  zen::TableOptions owned;
  owned.owner = 1;
  auto blocks = p.a.table<std::int64_t>("blocks", owned).value();
  auto flags = p.a.open_set<std::string>("flags", owned).value();
  auto units = p.a.open_seq<std::int64_t>("units", owned).value();
  CHECK_OK(blocks.set(std::int64_t{1}, 10));
  CHECK_OK(flags.add("door"));
  CHECK_OK(units.push_back(5));
  p.pump();
  auto bblocks = p.b.table<std::int64_t>("blocks").value();
  auto bflags = p.b.open_set<std::string>("flags").value();
  auto bunits = p.b.open_seq<std::int64_t>("units", zen::Mode::FastLocal).value();
  CHECK(bblocks.owner().value() == std::optional<std::uint64_t>(1));
  CHECK(bflags.owner().value() == std::optional<std::uint64_t>(1));
  // Peer 2 may not write any of them, and its refused calls change nothing.
  CHECK_ERR(bblocks.set(std::int64_t{2}, 20), ZEN_ERR_NOT_OWNER);
  CHECK_ERR(bblocks.remove(std::int64_t{1}), ZEN_ERR_NOT_OWNER);
  CHECK_ERR(bflags.add("x"), ZEN_ERR_NOT_OWNER);
  CHECK_ERR(bunits.push_back(1), ZEN_ERR_NOT_OWNER);
  CHECK_ERR(bunits.transfer(2), ZEN_ERR_NOT_OWNER);
  CHECK(bblocks.get(std::int64_t{1}).value() == std::optional<std::int64_t>(10));
  CHECK(!p.b.table<std::int64_t>("free").value().owner().value().has_value());
  CHECK_ERR(p.b.table<std::int64_t>("free").value().transfer(1), ZEN_ERR_INVALID_ARGUMENT);
  // Peer 2 was told who owns each collection when it learned it.
  int initial = 0;
  for (const zen::TableChange& c : p.b.table_changes()) {
    initial += c.kind() == zen::TableChangeKind::OwnerChanged && c.is_initial() && c.origin() == 1;
  }
  CHECK(initial == 3);
  for (const zen::TableChange& c : p.a.table_changes()) (void)c;
  // Peer 1 gives the table to peer 2: both hear it, then peer 2 writes.
  CHECK_OK(blocks.transfer(2));
  std::optional<std::uint64_t> told;
  for (const zen::TableChange& c : p.a.table_changes()) {
    if (c.is(blocks) && c.kind() == zen::TableChangeKind::OwnerChanged) told = c.origin();
  }
  CHECK(told == std::optional<std::uint64_t>(2));
  CHECK_ERR(blocks.set(std::int64_t{3}, 30), ZEN_ERR_NOT_OWNER);
  p.pump();
  int heard = 0;
  for (const zen::TableChange& c : p.b.table_changes()) heard += c.kind() == zen::TableChangeKind::OwnerChanged;
  CHECK(heard == 1);
  CHECK_OK(bblocks.set(std::int64_t{2}, 20));
  p.pump();
  CHECK(blocks.get(std::int64_t{2}).value() == std::optional<std::int64_t>(20));
  CHECK(blocks.size().value() == 2);
}

ZEN_TEST(touches_of_a_table_set_and_sequence_are_heard_as_touched) {
  Pair p;
  auto blocks = p.a.table<std::int64_t>("blocks").value();
  auto flags = p.a.open_set<std::string>("flags").value();
  auto units = p.a.open_seq<std::int64_t>("units").value();
  CHECK_OK(blocks.set(std::int64_t{7}, 70));
  CHECK_OK(flags.add("door"));
  CHECK_OK(units.push_back(5));
  p.pump();
  for (const zen::TableChange& c : p.a.table_changes()) (void)c;
  for (const zen::TableChange& c : p.b.table_changes()) (void)c;
  CHECK_OK(blocks.touch(std::int64_t{7}, 70));
  CHECK_OK(flags.touch("door"));
  CHECK_OK(units.touch(0));
  p.pump();
  int touched = 0;
  for (const zen::TableChange& c : p.b.table_changes()) {
    touched += c.kind() == zen::TableChangeKind::Touched && c.origin() == 1;
  }
  CHECK(touched == 3);
  CHECK_OK(blocks.touch(std::int64_t{7}, 71));
  CHECK(blocks.get(std::int64_t{7}).value() == std::optional<std::int64_t>(71));
  CHECK_ERR(units.touch(3), ZEN_ERR_INVALID_ARGUMENT);
}

ZEN_TEST(a_contested_write_is_reported_as_a_correction) {
  Pair p;
  auto flag_a = p.a.create<std::int64_t>("flag").value();
  p.pump();
  auto flag_b = p.b.open<std::int64_t>("flag").value();
  p.drain();
  CHECK_OK(flag_a.set(1));
  CHECK_OK(flag_b.set(2));
  p.pump();
  int corrections = 0;
  for (const zen::Change& c : p.a.changes()) corrections += c.is_correction();
  for (const zen::Change& c : p.b.changes()) corrections += c.is_correction();
  CHECK(corrections == 1);  // exactly one of the two concurrent writes lost
  CHECK(flag_a.get().value() == flag_b.get().value());
}

ZEN_TEST(owned_changes_keep_their_values_after_the_loop) {
  Pair p;
  auto name = p.a.create<std::string>("name").value();
  CHECK_OK(name.set(std::string("first")));
  p.pump();
  p.drain();
  CHECK_OK(name.set(std::string("second, a longer string")));
  p.pump();
  std::vector<zen::OwnedChange> kept;
  for (const zen::Change& c : p.b.changes()) kept.push_back(c.owned());
  bool found = false;
  for (const auto& c : kept) {
    if (c.kind != zen::ChangeKind::Modified) continue;
    auto* now = std::get_if<std::string>(&c.new_value);
    auto* before = std::get_if<std::string>(&c.old_value);
    found = found || (now && before && *now == "second, a longer string" && *before == "first");
  }
  CHECK(found);
}

ZEN_TEST(value_views_convert_only_to_their_own_type) {
  zen_value_data_t d{};
  d.value_type = ZEN_TYPE_VEC3;
  d.data.vec[0] = 1, d.data.vec[1] = 2, d.data.vec[2] = 3;
  zen::ValueView v(d);
  CHECK(v.type() == zen::Type::Vec3 && !v.empty());
  CHECK(!v.as<double>());
  CHECK(!v.as<zen::Vec4>());
  CHECK((v.as<zen::Vec3>() == zen::Vec3{1, 2, 3}));
  CHECK(std::holds_alternative<zen::Vec3>(v.to_variant()));
  CHECK(v.text().empty());
  const char text[] = "hi";
  d.value_type = ZEN_TYPE_STRING;
  d.data.bytes = {reinterpret_cast<const std::uint8_t*>(text), 2};
  CHECK(v.text() == "hi" && v.as<std::string>() == std::string("hi"));
  CHECK(std::get<std::string>(v.to_variant()) == "hi");
  d.value_type = ZEN_TYPE_NONE;
  CHECK(v.empty() && std::holds_alternative<std::monostate>(v.to_variant()));
  d.value_type = ZEN_TYPE_QUAT;
  d.data.vec[3] = 1;
  CHECK(std::holds_alternative<zen::Quat>(v.to_variant()) && !v.as<zen::Vec4>());
}

// ---- custom merges ------------------------------------------------------------------------

namespace {
// Two peers with a "sum" merge of `F` each, a value of it written concurrently (3 and 4).
template <class F>
std::int64_t merged_after_concurrent_writes(F merge, std::uint64_t* fallbacks) {
  Pair p;
  p.a.register_merge<std::int64_t>("sum", merge).value();
  p.b.register_merge<std::int64_t>("sum", merge).value();
  auto va = p.a.create<std::int64_t>("v", {zen::Mode::FastLocal, zen::Policy::Custom, "sum"}).value();
  p.pump();
  auto vb = p.b.open<std::int64_t>("v").value();
  va.set(3).value();
  vb.set(4).value();
  p.pump(10);
  *fallbacks = p.a.metrics().value().merge_fallbacks + p.b.metrics().value().merge_fallbacks;
  std::int64_t x = va.get().value(), y = vb.get().value();
  return x == y ? x : -1;
}
}  // namespace

ZEN_TEST(a_custom_merge_decides_concurrent_writes) {
  std::uint64_t fallbacks = 9;
  auto sum = [](const std::vector<zen::Candidate<std::int64_t>>& c) -> std::optional<std::int64_t> {
    std::int64_t s = 0;
    for (const auto& k : c) s += k.value;
    return s;
  };
  CHECK(merged_after_concurrent_writes(sum, &fallbacks) == 7);
  CHECK(fallbacks == 0);
}

ZEN_TEST(a_merge_that_declines_falls_back_to_last_writer_wins) {
  std::uint64_t fallbacks = 0;
  auto none = [](const std::vector<zen::Candidate<std::int64_t>>&) -> std::optional<std::int64_t> { return {}; };
  std::int64_t v = merged_after_concurrent_writes(none, &fallbacks);
  CHECK(v == 3 || v == 4);
  CHECK(fallbacks > 0);
}

ZEN_TEST(a_merge_that_throws_is_a_failed_merge_not_a_crash) {
#ifdef ZEN_CRDT_HPP_EXCEPTIONS
  std::uint64_t fallbacks = 0;
  auto throws = [](const std::vector<zen::Candidate<std::int64_t>>&) -> std::optional<std::int64_t> {
    throw std::runtime_error("the merge failed");
  };
  std::int64_t v = merged_after_concurrent_writes(throws, &fallbacks);
  CHECK(v == 3 || v == 4);
  CHECK(fallbacks > 0);
#else
  std::puts("built without exceptions: a merge cannot throw");
#endif
}

ZEN_TEST(a_merge_of_another_type_falls_back) {
  Pair p;
  auto sum_f = [](const std::vector<zen::Candidate<double>>&) -> std::optional<double> { return 1.0; };
  p.a.register_merge<double>("sum", sum_f).value();
  p.b.register_merge<double>("sum", sum_f).value();
  auto va = p.a.create<std::int64_t>("v", {zen::Mode::FastLocal, zen::Policy::Custom, "sum"}).value();
  p.pump();
  auto vb = p.b.open<std::int64_t>("v").value();
  CHECK_OK(va.set(3));
  CHECK_OK(vb.set(4));
  p.pump(10);
  CHECK(va.get().value() == vb.get().value());
  CHECK(p.a.metrics().value().merge_fallbacks + p.b.metrics().value().merge_fallbacks > 0);
}

ZEN_TEST(merge_callables_are_destroyed_exactly_once) {
  auto alive = std::make_shared<int>(0);
  struct Merge {
    std::shared_ptr<int> token;
    std::optional<double> operator()(const std::vector<zen::Candidate<double>>&) const { return 0.0; }
  };
  {
    auto c = make(1);
    CHECK_OK(c.register_merge<double>("m", Merge{alive}));
    CHECK(alive.use_count() == 2);
    CHECK_OK(c.register_merge<double>("m", Merge{alive}));  // replaces: the first goes
    CHECK(alive.use_count() == 2);
    CHECK_OK(c.register_merge<double>("other", Merge{alive}));
    CHECK(alive.use_count() == 3);
  }
  CHECK(alive.use_count() == 1);  // the context took both with it
  auto c = make(1);
  CHECK_ERR(c.register_merge<double>("", Merge{alive}), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(alive.use_count() == 1);  // a refused registration keeps nothing
  c.close();
  CHECK_ERR(c.register_merge<double>("m", Merge{alive}), ZEN_ERR_INVALID_HANDLE);
  CHECK(alive.use_count() == 1);
}

ZEN_TEST(a_merge_calling_its_own_context_gets_reentrant) {
  Pair p;
  std::atomic<int> reentrant{0};
  zen_context_t self = p.a.capi();
  auto merge = [&reentrant, self](const std::vector<zen::Candidate<std::int64_t>>& c) -> std::optional<std::int64_t> {
    std::uint64_t id = 0;
    if (zen_context_peer_id(self, &id) == ZEN_ERR_REENTRANT) ++reentrant;
    return c.front().value;
  };
  auto plain = [](const std::vector<zen::Candidate<std::int64_t>>& c) -> std::optional<std::int64_t> {
    return c.front().value;
  };
  CHECK_OK(p.a.register_merge<std::int64_t>("first", merge));
  CHECK_OK(p.b.register_merge<std::int64_t>("first", plain));
  auto va = p.a.create<std::int64_t>("v", {zen::Mode::FastLocal, zen::Policy::Custom, "first"}).value();
  p.pump();
  auto vb = p.b.open<std::int64_t>("v").value();
  CHECK_OK(va.set(1));
  CHECK_OK(vb.set(2));
  p.pump(10);
  CHECK(reentrant.load() > 0);
  CHECK(va.get().value() == vb.get().value());
}

// ---- metrics ------------------------------------------------------------------------------

ZEN_TEST(metrics_and_peer_lag) {
  Pair p;
  CHECK_OK(p.a.create<double>("x").value().set(1));
  p.pump();
  auto m = p.a.metrics().value();
  CHECK(m.struct_size == sizeof(zen::Metrics));
  CHECK(m.peers == 1 && m.messages_out > 0 && m.values == 1 && m.rejected_updates == 0);
  auto lag = p.a.peer_lag(0);
  CHECK_OK(lag);
  CHECK(lag->peer == 2);
  CHECK_ERR(p.a.peer_lag(5), ZEN_ERR_INVALID_ARGUMENT);
}

ZEN_TEST(next_deadline) {
  auto lone = zen::Context::create(9).value();
  CHECK(lone.next_deadline_ms().value() == std::nullopt);
  Pair p;
  auto x = p.a.create<std::int64_t>("x").value();
  CHECK_OK(x.set(1));
  CHECK(p.a.next_deadline_ms().value() == std::optional<std::uint64_t>(0));  // a pending write
  p.pump();
  auto at = p.a.next_deadline_ms().value();
  CHECK(at.has_value());
  CHECK(*at >= p.now);  // never a time that has passed
  zen::Context gone;
  CHECK_ERR(gone.next_deadline_ms(), ZEN_ERR_INVALID_HANDLE);
}

// ---- Result and Status ------------------------------------------------------------------

ZEN_TEST(results_behave_like_expected) {
  zen::Result<int> ok(5);
  CHECK(ok.has_value() && static_cast<bool>(ok) && *ok == 5 && ok.value() == 5);
  CHECK(ok.error().code() == ZEN_OK && ok.code() == ZEN_OK);
  zen::Result<int> bad(zen::Error(ZEN_ERR_TIMEOUT, "took too long"));
  CHECK(!bad && bad.code() == ZEN_ERR_TIMEOUT && bad.value_or(7) == 7);
  CHECK(std::string(bad.error().name()) == "ZEN_ERR_TIMEOUT");
  CHECK(std::string(bad.error().what()) == "took too long");
  zen::Result<std::string> s(std::string("abc"));
  CHECK(s->size() == 3);
  zen::Status fine;
  CHECK(fine && fine.code() == ZEN_OK);
  fine.value();  // does nothing
}

ZEN_TEST(value_on_an_error_throws_or_aborts_with_the_message) {
  auto c = make(1);
  zen::Result<zen::Value<double>> missing = c.open<double>("nope");
  CHECK(!missing);
#ifdef ZEN_CRDT_HPP_EXCEPTIONS
  bool caught = false;
  try {
    (void)missing.value();
  } catch (const zen::Error& e) {
    caught = e.code() == ZEN_ERR_UNKNOWN_VALUE && std::string(e.what()).find("nope") != std::string::npos;
  }
  CHECK(caught);
  bool caught_status = false;
  try {
    c.add_peer(0).value();
  } catch (const std::exception& e) {  // zen::Error is a std::exception
    caught_status = std::string(e.what()).size() > 0;
  }
  CHECK(caught_status);
#else
  CHECK(aborts_saying([&] { (void)missing.value(); }, "ZEN_ERR_UNKNOWN_VALUE"));
  CHECK(aborts_saying([&] { c.add_peer(0).value(); }, "ZEN_ERR_INVALID_ARGUMENT"));
#endif
}

// ---- the in-process bus ---------------------------------------------------------------------

ZEN_TEST(contexts_on_threads_converge_over_a_bus) {
  auto bus = zen::Bus::create().value();
  std::vector<zen::Context> players;
  std::vector<zen::Endpoint> endpoints;
  for (std::uint64_t id = 1; id <= 3; ++id) {
    players.push_back(make(id));
    endpoints.push_back(bus.join(id, 64).value());
  }
  CHECK_ERR(bus.join(2), ZEN_ERR_INVALID_ARGUMENT);  // taken
  auto pos = players[0].create<zen::Vec3>("pos").value();
  CHECK_OK(pos.set(zen::Vec3{1, 2, 3}));
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < players.size(); ++i) {
    threads.emplace_back([&, i] {
      for (std::uint64_t f = 1; f <= 300; ++f) {
        if (!endpoints[i].pump(players[i], f * 16)) std::abort();
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& p : players) {
    auto v = p.open<zen::Vec3>("pos").value();
    CHECK(v.get().value().z == 3 && v.info().value().state == zen::SyncState::Converged);
  }
  auto st = endpoints[0].stats().value();
  CHECK(st.sent > 0 && st.received > 0 && st.dropped == 0);
  CHECK_ERR(endpoints[0].pump(players[1], 16), ZEN_ERR_INVALID_ARGUMENT);  // another peer's context
  zen::Endpoint moved = std::move(endpoints[2]);
  CHECK_ERR(endpoints[2].pump(players[2], 16), ZEN_ERR_INVALID_HANDLE);  // NOLINT(bugprone-use-after-move)
  moved.close();
  moved.close();
  CHECK_OK(endpoints[0].pump(players[0], 99'999));
  CHECK(players[0].metrics().value().peers == 1);  // player 3 left
  bus.close();
  CHECK_ERR(bus.join(4), ZEN_ERR_INVALID_HANDLE);
  CHECK_OK(endpoints[1].pump(players[1], 99'999));  // joined endpoints outlive the handle
}

ZEN_TEST(a_host_and_a_client_converge_over_enet_on_loopback) {
  auto host = make(1);
  auto client = make(2);
  auto eh = zen::Endpoint::enet_listen("127.0.0.1:0", 1, zen::EnetOptions().timeout_ms(2000)).value();
  std::uint16_t port = eh.local_port().value();
  CHECK(port != 0);
  auto ec = zen::Endpoint::enet_connect("127.0.0.1:" + std::to_string(port), 2).value();
  auto a = host.create<std::int64_t>("from_host").value();
  CHECK_OK(a.set(1));
  auto b = client.create<std::int64_t>("from_client").value();
  CHECK_OK(b.set(2));
  auto start = std::chrono::steady_clock::now();
  auto ms = [&] {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count());
  };
  while (ms() < 10'000) {
    CHECK_OK(eh.pump(host, ms()));
    CHECK_OK(ec.pump(client, ms()));
    if (a.info().value().state == zen::SyncState::Converged && b.info().value().state == zen::SyncState::Converged) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(client.open<std::int64_t>("from_host")->get().value() == 1);
  CHECK(host.open<std::int64_t>("from_client")->get().value() == 2);
  CHECK(ec.stats().value().rejected == 0);
  CHECK_ERR(zen::Endpoint::enet_listen("nowhere", 3), ZEN_ERR_INVALID_ARGUMENT);
  CHECK(zen::EnetOptions().max_messages_per_s(500).capi().max_messages_per_s == 500);
  CHECK_ERR(zen::Endpoint::enet_listen("127.0.0.1:0", 3, zen::EnetOptions().max_messages_per_s(0)),
            ZEN_ERR_INVALID_ARGUMENT);
  auto bus = zen::Bus::create().value();
  CHECK_ERR(bus.join(9).value().local_port(), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_ERR(eh.dial("127.0.0.1:9"), ZEN_ERR_INVALID_ARGUMENT);  // a host does not dial
}

ZEN_TEST(a_host_with_a_room_and_token_admits_its_players_only) {
  auto host = make(1);
  auto guest = make(2);
  auto intruder = make(3);
  auto session = zen::EnetOptions().timeout_ms(2000).room("arena").token("secret");
  auto eh = zen::Endpoint::enet_listen("127.0.0.1:0", 1, session).value();
  std::string at = "127.0.0.1:" + std::to_string(eh.local_port().value());
  auto eg = zen::Endpoint::enet_connect(at, 2, session).value();
  auto ei = zen::Endpoint::enet_connect(at, 3, zen::EnetOptions().room("arena").token("guess")).value();
  CHECK(session.capi().room_len == 5 && session.capi().token_len == 6);
  auto start = std::chrono::steady_clock::now();
  zen::Status refused;
  while (std::chrono::steady_clock::now() - start < std::chrono::seconds(10)) {
    std::uint64_t now = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count());
    CHECK_OK(eh.pump(host, now));
    CHECK_OK(eg.pump(guest, now));
    if (refused) refused = ei.pump(intruder, now);
    if (!refused && guest.metrics().value().peers == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK_ERR(refused, ZEN_ERR_TRANSPORT);
  CHECK(refused.error().message().find("token") != std::string::npos);
  CHECK(host.metrics().value().peers == 1);
  CHECK_ERR(zen::Endpoint::enet_connect(at, 4, zen::EnetOptions().room(std::string(65, 'r'))),
            ZEN_ERR_INVALID_ARGUMENT);
}

ZEN_TEST(two_mesh_peers_dial_each_other_and_converge) {
  auto a = make(1);
  auto b = make(2);
  auto ea = zen::Endpoint::enet_mesh("127.0.0.1:0", 1).value();
  auto eb = zen::Endpoint::enet_mesh("127.0.0.1:0", 2).value();
  CHECK_OK(ea.dial("127.0.0.1:" + std::to_string(eb.local_port().value())));
  CHECK_OK(eb.dial("127.0.0.1:" + std::to_string(ea.local_port().value())));  // both ways: one is kept
  CHECK_ERR(ea.dial("nowhere"), ZEN_ERR_INVALID_ARGUMENT);
  auto v = b.create<double>("speed", {zen::Mode::WaitForSync}).value();
  CHECK_OK(v.set(4.5));
  auto start = std::chrono::steady_clock::now();
  auto ms = [&] {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count());
  };
  while (ms() < 10'000) {
    CHECK_OK(ea.pump(a, ms()));
    CHECK_OK(eb.pump(b, ms()));
    auto seen = a.open<double>("speed");
    if (seen && seen->get().value_or(0) == 4.5 && v.info().value().state == zen::SyncState::Converged) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(a.open<double>("speed")->get().value() == 4.5);
  CHECK(a.metrics().value().peers == 1 && b.metrics().value().peers == 1);
}

ZEN_TEST(a_bridge_puts_two_bus_contexts_behind_one_enet_socket) {
  auto host = make(10);
  auto eh = zen::Endpoint::enet_listen("127.0.0.1:0", 10).value();
  std::string at = "127.0.0.1:" + std::to_string(eh.local_port().value());
  auto bus = zen::Bus::create().value();
  std::vector<zen::Context> game;
  std::vector<zen::Endpoint> eps;
  for (std::uint64_t id = 1; id <= 2; ++id) {
    game.push_back(make(id));
    eps.push_back(bus.join(id).value());
  }
  auto near = bus.join_relay().value();
  auto far = zen::Endpoint::enet_connect_relay(at).value();
  auto plain = bus.join(7).value();
  CHECK_ERR(zen::Bridge::start(near, plain), ZEN_ERR_INVALID_ARGUMENT);  // not a relay
  CHECK(near && plain);                                                   // still ours
  CHECK_ERR(near.pump(game[0], 16), ZEN_ERR_INVALID_ARGUMENT);            // a relay has no context
  plain.close();
  auto bridge = zen::Bridge::start(near, far).value();
  CHECK(!near && !far && bridge);
  auto door = game[0].create<bool>("door", {zen::Mode::WaitForSync}).value();
  CHECK_OK(door.set(true));
  auto start = std::chrono::steady_clock::now();
  auto ms = [&] {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count());
  };
  bool there = false;
  while (ms() < 10'000 && !there) {
    CHECK_OK(eh.pump(host, ms()));
    for (std::size_t i = 0; i < game.size(); ++i) CHECK_OK(eps[i].pump(game[i], ms()));
    auto seen = host.open<bool>("door");
    there = door.info().value().state == zen::SyncState::Converged && seen && seen->get().value_or(false) &&
            host.metrics().value().peers == 2 && game[1].metrics().value().peers == 2;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(there);
  auto st = bridge.stats().value();
  // 1 and 2 to ENet, 10 to the bus, and 7, whose join and leave waited in the relay's queue.
  CHECK(st.forwarded > 0 && st.carried == 4 && st.refused == 0);
  zen::Bridge moved = std::move(bridge);
  CHECK_ERR(bridge.stats(), ZEN_ERR_INVALID_HANDLE);  // NOLINT(bugprone-use-after-move)
  moved.close();
  moved.close();
  while (ms() < 15'000 && host.metrics().value().peers != 0) {
    CHECK_OK(eh.pump(host, ms()));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(host.metrics().value().peers == 0);  // the game's contexts left with the bridge
}

ZEN_TEST(drivers_pump_contexts_while_this_thread_writes_and_waits) {
  auto bus = zen::Bus::create().value();
  auto a = make(1);
  auto b = make(2);
  auto ea = bus.join(1).value();
  auto eb = bus.join(2).value();
  CHECK_ERR(zen::Driver::start(a, eb), ZEN_ERR_INVALID_ARGUMENT);  // b's endpoint
  CHECK(eb);                                                        // still ours
  CHECK_ERR(zen::Driver::start(a, ea, 0), ZEN_ERR_INVALID_ARGUMENT);
  auto da = zen::Driver::start(a, ea, 4).value();
  auto db = zen::Driver::start(b, eb, 4).value();
  CHECK(!ea && !eb && da && db);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (a.metrics().value().peers != 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto hp = a.create<std::int64_t>("hp", {zen::Mode::WaitForSync}).value();
  CHECK_OK(hp.set(77));
  CHECK_OK(hp.wait_converged(std::chrono::seconds(10)));
  CHECK_OK(da.check());
  std::optional<zen::Value<std::int64_t>> seen;
  while (!seen && std::chrono::steady_clock::now() < deadline) {
    auto r = b.open<std::int64_t>("hp");
    if (r) seen.emplace(std::move(*r));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(seen.has_value());
  if (seen) {
    CHECK_OK(seen->wait_converged(std::chrono::seconds(10)));
    CHECK(seen->get().value() == 77);
  }
  zen::Driver moved = std::move(db);
  CHECK_ERR(db.check(), ZEN_ERR_INVALID_HANDLE);  // NOLINT(bugprone-use-after-move)
  moved.close();
  while (a.metrics().value().peers != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(a.metrics().value().peers == 0);  // b's endpoint went with its driver
}

// ---- the simulator ------------------------------------------------------------------------

ZEN_TEST(four_players_converge_on_a_lossy_simulated_network) {
  auto link = zen::Link().latency_ms(20).jitter_ms(10).loss(0.05).duplicate(0.02).reorder(0.02);
  CHECK(link.bandwidth_bytes_per_s(1'000'000).capi().bandwidth_bytes_per_s == 1'000'000);
  CHECK(link.capi().duplicate == 0.02 && link.capi().reorder == 0.02);
  auto net = zen::Net::create(42, link).value();
  std::vector<zen::Context> players;
  for (std::uint64_t id = 1; id <= 4; ++id) players.push_back(make(id));
  for (const auto& p : players) CHECK_OK(net.attach(p));
  auto score = players[0].create<std::int64_t>("score", {zen::Mode::WaitForSync, zen::Policy::Max}).value();
  std::uint64_t now = 0;
  for (int t = 0; t < 20; ++t) CHECK_OK(net.step(now += 16));
  CHECK_OK(score.set(10));
  for (int t = 0; t < 100; ++t) CHECK_OK(net.step(now += 16));
  for (const auto& p : players) CHECK(p.open<std::int64_t>("score")->get().value() == 10);
  auto st = net.stats().value();
  CHECK(st.delivered > 0 && st.dropped > 0);
}

ZEN_TEST(partitions_and_leaving_hosts_through_the_simulator) {
  auto net = zen::Net::create(7).value();
  auto a = make(1);
  auto b = make(2);
  CHECK(net.attach(a).value() == 0);
  CHECK(net.attach(b).value() == 1);
  CHECK_ERR(net.set_partition({0}), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_OK(net.set_partition({0, 1}));
  auto v = a.create<double>("x").value();
  CHECK_OK(v.set(1));
  std::uint64_t now = 0;
  for (int t = 0; t < 20; ++t) CHECK_OK(net.step(now += 16));
  CHECK_ERR(b.open<double>("x"), ZEN_ERR_UNKNOWN_VALUE);
  CHECK_OK(net.set_partition({0, 0}));
  for (int t = 0; t < 30; ++t) CHECK_OK(net.step(now += 16));
  CHECK(b.open<double>("x")->get().value() == 1);
  CHECK_OK(net.set_online(1, false));
  CHECK_ERR(net.set_online(9, false), ZEN_ERR_INVALID_ARGUMENT);
  CHECK_ERR(net.attach(zen::Context()), ZEN_ERR_INVALID_HANDLE);
}

ZEN_TEST(a_moved_from_or_closed_net_is_safe) {
  auto net = zen::Net::create(1).value();
  zen::Net other = std::move(net);
  CHECK(!net && static_cast<bool>(other));  // NOLINT(bugprone-use-after-move)
  CHECK_ERR(net.step(16), ZEN_ERR_INVALID_HANDLE);
  other.close();
  other.close();
  CHECK_ERR(other.stats(), ZEN_ERR_INVALID_HANDLE);
  zen::Net assigned = zen::Net::create(2).value();
  assigned = zen::Net::create(3).value();
  CHECK_OK(assigned.step(16));
}

ZEN_TEST_MAIN

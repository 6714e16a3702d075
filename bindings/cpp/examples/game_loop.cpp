// Four players on a simulated network (30 +- 10 ms, 3 % loss), through the C++ wrapper:
// positions FastLocal (shown at once), a contested health with TakeAverage (concurrent
// hits are averaged; the player whose write lost sees a correction), a WaitForSync score
// (shown only once every player has it). Prints what each player sees; exits 1 if they
// do not agree at the end. Builds with -fno-exceptions: every error is checked.
#include <zen_crdt.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

constexpr int kPlayers = 4;

// Stops the example with the error's message (what a game would log).
template <class R>
auto must(R&& r, const char* what) -> decltype(std::forward<R>(r).value()) {
  if (!r) {
    std::fprintf(stderr, "game_loop: %s failed: %s (%s)\n", what, r.error().what(), r.error().name());
    std::exit(1);
  }
  return std::forward<R>(r).value();
}

struct Player {
  std::uint64_t id = 0;
  zen::Context ctx;
  zen::Value<zen::Vec3> pos;
  zen::Value<double> boss_hp;
  zen::Value<std::int64_t> score;
  int corrections = 0;
};

}  // namespace

int main() {
  zen::Net net = must(zen::Net::create(2026, zen::Link().latency_ms(30).jitter_ms(10).loss(0.03)), "net");
  std::vector<Player> players;
  for (std::uint64_t id = 1; id <= kPlayers; ++id) {
    Player p;
    p.id = id;
    p.ctx = must(zen::Context::create(id), "context");
    must(net.attach(p.ctx), "attach");
    p.pos = must(p.ctx.create<zen::Vec3>("player/" + std::to_string(id) + "/pos"), "create pos");
    p.boss_hp = must(p.ctx.create<double>("boss/hp", {zen::Mode::FastLocal, zen::Policy::TakeAverage}), "create hp");
    p.score = must(p.ctx.create<std::int64_t>("team/score", {zen::Mode::WaitForSync, zen::Policy::Max}), "score");
    players.push_back(std::move(p));
  }

  std::uint64_t now = 0;
  for (int tick = 1; tick <= 240; ++tick) {  // 4 s at 60 Hz
    now += 16;
    for (int i = 0; i < kPlayers; ++i) {
      Player& p = players[static_cast<std::size_t>(i)];
      float t = static_cast<float>(tick);
      must(p.pos.set({t, static_cast<float>(i), 0}), "set pos");  // x: the tick it was written
      // Every half second, players 1 and 2 hit the boss in the same tick.
      if (tick % 30 == 0 && i < 2) must(p.boss_hp.set(100.0 - tick / 3.0 - i * 5), "hit");
      if (tick == 120 && i == 3) must(p.score.set(42), "score");
    }
    must(net.step(now), "step");
    for (Player& p : players) {
      auto changes = p.ctx.changes();
      for (const zen::Change& c : changes) {
        if (c.is(p.boss_hp) && c.is_correction()) {
          ++p.corrections;
          std::printf("[%5llu ms] player %llu: boss hp corrected to %.1f (a concurrent hit was averaged in)\n",
                      static_cast<unsigned long long>(c.time_ms()), static_cast<unsigned long long>(p.id),
                      c.new_value().as<double>().value_or(-1));
        }
        if (c.is(p.score) && c.kind() == zen::ChangeKind::Modified) {
          std::printf("[%5llu ms] player %llu sees the score: %lld (acknowledged by everyone)\n",
                      static_cast<unsigned long long>(c.time_ms()), static_cast<unsigned long long>(p.id),
                      static_cast<long long>(c.new_value().as<std::int64_t>().value_or(-1)));
        }
      }
      must(changes.status(), "changes");
    }
  }
  for (int t = 0; t < 30; ++t) must(net.step(now += 16), "settle");

  bool agree = true;
  const double hp0 = must(players[0].boss_hp.get(), "hp");
  for (Player& p : players) {
    std::uint64_t id = must(p.ctx.peer_id(), "peer id");
    auto other = must(p.ctx.open<zen::Vec3>("player/" + std::to_string(id % kPlayers + 1) + "/pos"), "open");
    zen::Vec3 seen = must(other.get(), "get");
    double hp = must(p.boss_hp.get(), "hp");
    std::int64_t score = must(p.score.get(), "score");
    std::printf("player %llu: next player at (%.1f, %.1f), boss hp %.2f, score %lld, %d corrections\n",
                static_cast<unsigned long long>(id), static_cast<double>(seen.x), static_cast<double>(seen.y), hp,
                static_cast<long long>(score), p.corrections);
    agree = agree && hp == hp0 && score == 42 && seen.x == 240.0f;
  }
  auto st = must(net.stats(), "stats");
  std::printf("network: %llu messages delivered, %llu dropped\n", static_cast<unsigned long long>(st.delivered),
              static_cast<unsigned long long>(st.dropped));
  std::puts(agree ? "every player agrees" : "PLAYERS DISAGREE");
  return agree ? 0 : 1;
}

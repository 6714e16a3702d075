// A C++ game built against an *installed* zen-crdt through find_package and ZenCrdt::cpp.
#include <zen_crdt.hpp>

#include <cstdio>

int main() {
  auto a = zen::Context::create(1).value();
  auto b = zen::Context::create(2).value();
  a.add_peer(2).value();
  b.add_peer(1).value();
  auto pos = a.create<zen::Vec3>("unit/7/pos").value();
  pos.set({1, 2, 3}).value();
  for (std::uint64_t now = 16; now <= 160; now += 16) {
    a.tick(now).value();
    for (const zen::Message& m : a.outbound()) b.receive_from(1, m.data(), m.size()).value();
    b.tick(now).value();
    for (const zen::Message& m : b.outbound()) a.receive_from(2, m.data(), m.size()).value();
  }
  zen::Vec3 seen = b.open<zen::Vec3>("unit/7/pos").value().get().value();
  std::printf("C++ consumer: b sees (%.0f, %.0f, %.0f)\n", static_cast<double>(seen.x), static_cast<double>(seen.y),
              static_cast<double>(seen.z));
  return seen == zen::Vec3{1, 2, 3} ? 0 : 1;
}

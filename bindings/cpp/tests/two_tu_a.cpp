// With two_tu_b.cpp: the header in two translation units of one program (everything in
// it must be inline; the program links and runs).
#include <zen_crdt.hpp>

#include <cstdio>

std::uint64_t peer_of_b(const zen::Context& c);

int main() {
  auto c = zen::Context::create(5).value();
  auto v = c.create<zen::Vec3>("p").value();
  if (!v.set({1, 2, 3}) || peer_of_b(c) != 5) return 1;
  std::puts("two translation units: ok");
  return 0;
}

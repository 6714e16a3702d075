// See two_tu_a.cpp.
#include <zen_crdt.hpp>

std::uint64_t peer_of_b(const zen::Context& c) {
  auto v = c.open<zen::Vec3>("p").value();
  return v.get().value().z == 3 ? c.peer_id().value() : 0;
}

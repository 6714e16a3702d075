// Misuses of zen_crdt.hpp that must not compile (built with -Werror by ctest, one
// ZEN_MISUSE at a time); 0 is the same program used correctly, which must build.
#include <zen_crdt.hpp>

struct NotAZenType {
  int a;
};

void misuse() {
  auto ctx = zen::Context::create(1).value();
#if ZEN_MISUSE == 0
  auto v = ctx.create<zen::Vec3>("p").value();
  if (!v.set({1, 2, 3})) return;
  ctx.tick(16).value();
#elif ZEN_MISUSE == 1
  // A type without a value_traits specialisation: a static_assert that says what to write.
  auto v = ctx.create<NotAZenType>("p");
  (void)v;
#elif ZEN_MISUSE == 2
  // An ignored Status ([[nodiscard]]).
  ctx.tick(16);
#elif ZEN_MISUSE == 3
  // Contexts are move-only.
  zen::Context copy = ctx;
#elif ZEN_MISUSE == 4
  // A merge with the wrong signature.
  (void)ctx.register_merge<double>("m", [](int) { return 1; });
#endif
}

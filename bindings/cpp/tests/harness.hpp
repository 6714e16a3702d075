// A tiny test harness for the C++ wrapper's tests: `ZEN_TEST(name) { ... }` registers a
// case; the runner takes a case name (ctest runs one per process) or runs all and prints
// "N passed, M failed". Works without exceptions: a failed check returns from the case.
#ifndef ZEN_CPP_TEST_HARNESS_HPP
#define ZEN_CPP_TEST_HARNESS_HPP

#include <zen_crdt.hpp>

#include <cstdio>
#include <cstring>
#include <vector>

namespace zt {
struct Case {
  const char* name;
  void (*fn)();
};
inline std::vector<Case>& cases() {
  static std::vector<Case> all;
  return all;
}
inline int& failures() {
  static int n = 0;
  return n;
}
inline bool add(const char* name, void (*fn)()) {
  cases().push_back({name, fn});
  return true;
}
inline int run(int argc, char** argv) {
  int passed = 0, failed = 0;
  for (const Case& c : cases()) {
    if (argc > 1 && std::strcmp(argv[1], c.name) != 0) continue;
    int before = failures();
    c.fn();
    if (failures() == before) {
      ++passed;
    } else {
      ++failed;
      std::fprintf(stderr, "FAILED: %s\n", c.name);
    }
  }
  if (passed + failed == 0) {
    std::fprintf(stderr, "no test named %s\n", argc > 1 ? argv[1] : "(any)");
    return 2;
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
}  // namespace zt

#define ZEN_TEST(name)                                        \
  static void name();                                         \
  static const bool name##_registered = zt::add(#name, name); \
  static void name()

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++zt::failures();                                                             \
      return;                                                                       \
    }                                                                               \
  } while (0)

// `expr` (a zen::Status or zen::Result) succeeded; else prints its error.
#define CHECK_OK(expr)                                                                                    \
  do {                                                                                                    \
    const auto& zen_r_ = (expr);                                                                          \
    if (!zen_r_) {                                                                                        \
      std::fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #expr, zen_r_.error().name(), \
                   zen_r_.error().what());                                                                \
      ++zt::failures();                                                                                   \
      return;                                                                                             \
    }                                                                                                     \
  } while (0)

// `expr` failed with `code`, and says why.
#define CHECK_ERR(expr, expected)                                                                              \
  do {                                                                                                     \
    const auto& zen_r_ = (expr);                                                                           \
    if (zen_r_ || zen_r_.error().code() != (expected) || zen_r_.error().message().empty()) {                   \
      std::fprintf(stderr, "%s:%d: %s gave %s (%s), expected %s\n", __FILE__, __LINE__, #expr,              \
                   zen_r_.error().name(), zen_r_.error().what(), zen_status_name(expected));                   \
      ++zt::failures();                                                                                    \
      return;                                                                                              \
    }                                                                                                      \
  } while (0)

#define ZEN_TEST_MAIN \
  int main(int argc, char** argv) { return zt::run(argc, argv); }

#endif

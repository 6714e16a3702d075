// What the C++ wrapper adds to a write: `zen::Value<zen::Vec3>::set` beside the C call
// `zen_value_set_vec3` it wraps, on the same value, in interleaved samples, in thread CPU
// time per call (the machine is shared: the ratio is the figure to read).
//
//   zen_cpp_bench_set [calls per sample, default 200000] [samples, default 21]
#include <zen_crdt.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

namespace {

double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const long calls = argc > 1 ? std::atol(argv[1]) : 200000;
  const int samples = argc > 2 ? std::atoi(argv[2]) : 21;
  auto ctx = zen::Context::create(1).value();
  auto pos = ctx.create<zen::Vec3>("unit/7/pos").value();
  const zen_context_t c = ctx.capi();
  const zen_value_t h = pos.handle();
  std::vector<double> c_ns, cpp_ns;
  int failures = 0;
  for (int s = 0; s < samples; ++s) {
    // The tick between samples keeps the pending write set as small as in a game.
    ctx.tick(static_cast<std::uint64_t>(s + 1) * 16).value();
    double t0 = thread_cpu_ns();
    for (long i = 0; i < calls; ++i) {
      zen_vec3_t v{static_cast<float>(i), 1, 2};
      failures += zen_value_set_vec3(c, h, v) != ZEN_OK;
    }
    double t1 = thread_cpu_ns();
    for (long i = 0; i < calls; ++i) {
      failures += !pos.set({static_cast<float>(i), 1, 2});
    }
    double t2 = thread_cpu_ns();
    c_ns.push_back((t1 - t0) / static_cast<double>(calls));
    cpp_ns.push_back((t2 - t1) / static_cast<double>(calls));
  }
  if (failures != 0) {
    std::fprintf(stderr, "%d writes failed\n", failures);
    return 1;
  }
  const double mc = median(c_ns), mcpp = median(cpp_ns);
  std::printf("zen_crdt.hpp write cost (median of %d interleaved samples of %ld calls, thread CPU ns per call)\n",
              samples, calls);
  std::printf("| call                              | ns/call |\n|-----------------------------------|---------|\n");
  std::printf("| zen_value_set_vec3 (C)            | %7.1f |\n", mc);
  std::printf("| zen::Value<zen::Vec3>::set (C++)  | %7.1f |\n", mcpp);
  std::printf("| wrapper - C                       | %7.1f |\n", mcpp - mc);
  std::printf("| wrapper / C                       | %7.3f |\n", mcpp / mc);
  return 0;
}

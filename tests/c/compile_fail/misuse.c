/* Misuses the C API must reject at compile time. Built once per ZEN_MISUSE value by
 * ctest: 0 is the correct program (it must compile, so the others fail for the misuse
 * alone), every other value must fail to compile (WILL_FAIL). Also built as C++17. */
#include "zen_crdt.h"
#include "zen_crdt_sim.h"

int misuse(zen_context_t ctx, zen_value_t value, zen_net_t net);

int misuse(zen_context_t ctx, zen_value_t value, zen_net_t net) {
  int64_t out = 0;
#if ZEN_MISUSE == 0
  (void)net;
  return (int)zen_context_tick(ctx, 16) + (int)zen_value_get_i64(ctx, value, &out);
#elif ZEN_MISUSE == 1 /* a value handle where a context goes */
  (void)ctx;
  (void)net;
  return (int)zen_context_tick(value, 16) + (int)out;
#elif ZEN_MISUSE == 2 /* a context handle where a value goes */
  (void)value;
  (void)net;
  return (int)zen_value_get_i64(ctx, ctx, &out);
#elif ZEN_MISUSE == 3 /* a network handle where a context goes */
  (void)ctx;
  (void)value;
  return (int)zen_context_tick(net, 16) + (int)out;
#elif ZEN_MISUSE == 4 /* a context handle where a network goes */
  (void)value;
  (void)net;
  return (int)zen_net_step(ctx, 16) + (int)out;
#elif ZEN_MISUSE == 5 /* a status ignored (ZEN_NODISCARD, with -Werror) */
  (void)value;
  (void)net;
  zen_context_tick(ctx, 16);
  return (int)out;
#endif
}

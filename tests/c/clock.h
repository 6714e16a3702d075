/* Real time for the C tests that run sessions over real transports (ENet on 127.0.0.1,
 * library threads): a monotonic millisecond clock and a 1 ms nap. Include after defining
 * _POSIX_C_SOURCE (clock_gettime, nanosleep). */
#ifndef ZEN_TEST_CLOCK_H
#define ZEN_TEST_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline void nap(void) {
  struct timespec ts = {0, 1000000};
  nanosleep(&ts, NULL);
}

#endif

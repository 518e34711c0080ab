// Microsecond clocks for boot timing (the boot timer, boot-step logs, process start).
#pragma once

#include <time.h>

#include <cstdint>

namespace ember {

inline uint64_t ClockUs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}
inline uint64_t MonotonicUs() { return ClockUs(CLOCK_MONOTONIC); }
inline uint64_t ProcessCpuUs() { return ClockUs(CLOCK_PROCESS_CPUTIME_ID); }

}  // namespace ember

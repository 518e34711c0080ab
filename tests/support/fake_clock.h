// FakeClock: a RateLimiterClock that moves only when the test says so, so refill and block
// times are checked exactly and no test sleeps.
#pragma once

#include <cstdint>

#include "devices/rate_limiter.h"

namespace ember {

class FakeClock : public RateLimiterClock {
 public:
  // Starts well away from 0 so "now minus elapsed" never underflows in a restore.
  explicit FakeClock(uint64_t start_ns = 1'000'000'000'000) : now_ns_(start_ns) {}
  uint64_t NowNs() const override { return now_ns_; }
  void AdvanceNs(uint64_t ns) { now_ns_ += ns; }
  void AdvanceMs(uint64_t ms) { now_ns_ += ms * 1'000'000; }

 private:
  uint64_t now_ns_;
};

}  // namespace ember

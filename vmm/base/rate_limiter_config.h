// The rate limiter's configuration as plain data. It lives in base because both the config
// structs (vmm/config) and the devices that enforce it (devices/rate_limiter.h) use it, and
// neither layer may include the other.
#pragma once

#include <cstdint>
#include <optional>

namespace ember {

// Firecracker's TokenBucket: `size` tokens refilled every `refill_time` ms, plus a one-time
// burst spent first. size == 0 or refill_time == 0 disables the bucket.
struct TokenBucketConfig {
  uint64_t size = 0;
  uint64_t one_time_burst = 0;
  uint64_t refill_time_ms = 0;
  bool operator==(const TokenBucketConfig&) const = default;
};

// Firecracker's RateLimiter: bytes (bandwidth) and operations (ops), each optional.
struct RateLimiterConfig {
  std::optional<TokenBucketConfig> bandwidth;
  std::optional<TokenBucketConfig> ops;
  bool operator==(const RateLimiterConfig&) const = default;
};

}  // namespace ember

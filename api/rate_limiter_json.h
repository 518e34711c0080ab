// JSON <-> RateLimiterConfig: Firecracker's RateLimiter object as it appears in drives,
// network-interfaces, pmem and entropy bodies (facts 1.2; swagger `RateLimiter`, `TokenBucket`):
//   {"bandwidth": {"size": N, "one_time_burst": N, "refill_time": N}, "ops": {...}}
// Both buckets are optional (an explicit null is absent). Inside a bucket `size` and
// `refill_time` (ms) are required and `one_time_burst` is optional; all three are swagger int64,
// so integers from 0 to INT64_MAX. A bucket with size or refill_time 0 is accepted and disables
// limiting for its token type (facts 3.8), as in Firecracker.
#pragma once

#include <rapidjson/document.h>

#include <string>

#include "vmm/base/rate_limiter_config.h"
#include "vmm/base/result.h"

namespace ember {

// `path` names `value` in errors, e.g. "drives[0].rate_limiter", so a bad field reads
// "drives[0].rate_limiter.bandwidth.size: expected an integer from 0 to 9223372036854775807,
// got -1".
Result<RateLimiterConfig> ParseRateLimiter(const rapidjson::Value& value, const std::string& path);

// Writes the object ParseRateLimiter reads back to the same config: absent buckets are omitted,
// and so is a one_time_burst of 0 (which is what an absent one means).
void RateLimiterToJson(const RateLimiterConfig& config, rapidjson::Value* out,
                       rapidjson::Document::AllocatorType& allocator);

}  // namespace ember

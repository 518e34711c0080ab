#include "api/rate_limiter_json.h"

#include <cstdint>
#include <limits>
#include <optional>

#include "api/json_util.h"

namespace ember {
namespace {

// Swagger declares the TokenBucket fields int64.
constexpr uint64_t kMaxTokenBucketValue = std::numeric_limits<int64_t>::max();

Result<TokenBucketConfig> ParseTokenBucket(const rapidjson::Value& value, const std::string& path) {
  JsonFields f = TRY(JsonFields::Open(value, path, {"size", "one_time_burst", "refill_time"}));
  TokenBucketConfig bucket;
  bucket.size = TRY(f.Uint("size", 0, kMaxTokenBucketValue));
  bucket.refill_time_ms = TRY(f.Uint("refill_time", 0, kMaxTokenBucketValue));
  // serde's Option<u64>: absent and null both mean no burst.
  if (f.Find("one_time_burst"))
    bucket.one_time_burst = TRY(f.Uint("one_time_burst", 0, kMaxTokenBucketValue));
  return bucket;
}

Result<std::optional<TokenBucketConfig>> ParseOptionalBucket(const JsonFields& f, const char* key) {
  const rapidjson::Value* v = f.Find(key);
  if (!v) return std::optional<TokenBucketConfig>();
  TokenBucketConfig bucket = TRY(ParseTokenBucket(*v, f.FieldPath(key)));
  return std::optional<TokenBucketConfig>(bucket);
}

rapidjson::Value TokenBucketToJson(const TokenBucketConfig& bucket,
                                   rapidjson::Document::AllocatorType& allocator) {
  rapidjson::Value out(rapidjson::kObjectType);
  out.AddMember("size", rapidjson::Value(bucket.size), allocator);
  if (bucket.one_time_burst != 0)
    out.AddMember("one_time_burst", rapidjson::Value(bucket.one_time_burst), allocator);
  out.AddMember("refill_time", rapidjson::Value(bucket.refill_time_ms), allocator);
  return out;
}

}  // namespace

Result<RateLimiterConfig> ParseRateLimiter(const rapidjson::Value& value, const std::string& path) {
  JsonFields f = TRY(JsonFields::Open(value, path, {"bandwidth", "ops"}));
  RateLimiterConfig config;
  config.bandwidth = TRY(ParseOptionalBucket(f, "bandwidth"));
  config.ops = TRY(ParseOptionalBucket(f, "ops"));
  return config;
}

void RateLimiterToJson(const RateLimiterConfig& config, rapidjson::Value* out,
                       rapidjson::Document::AllocatorType& allocator) {
  out->SetObject();
  if (config.bandwidth)
    out->AddMember("bandwidth", TokenBucketToJson(*config.bandwidth, allocator), allocator);
  if (config.ops) out->AddMember("ops", TokenBucketToJson(*config.ops, allocator), allocator);
}

}  // namespace ember

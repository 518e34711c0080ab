// Firecracker's RateLimiter JSON object <-> RateLimiterConfig.
#include "api/rate_limiter_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>

#include "api/json_util.h"

namespace ember {
namespace {

using ::testing::HasSubstr;

constexpr const char* kPath = "drives[0].rate_limiter";

Result<RateLimiterConfig> Parse(const std::string& json) {
  auto doc = ParseJson(json);
  EXPECT_TRUE(doc.ok()) << json;
  if (!doc.ok()) return doc.error();
  return ParseRateLimiter(*doc, kPath);
}

std::string ErrorOf(const std::string& json) {
  auto r = Parse(json);
  EXPECT_FALSE(r.ok()) << "expected an error for " << json;
  return r.ok() ? "" : r.error().message;
}

std::string ToJsonText(const RateLimiterConfig& config) {
  rapidjson::Document doc;
  rapidjson::Value out;
  RateLimiterToJson(config, &out, doc.GetAllocator());
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  out.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

TEST(RateLimiterJsonTest, BothBuckets) {
  auto r = Parse(R"({"bandwidth": {"size": 1048576, "one_time_burst": 4096, "refill_time": 1000},
                     "ops": {"size": 100, "refill_time": 10}})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->bandwidth);
  EXPECT_EQ(*r->bandwidth, (TokenBucketConfig{1048576, 4096, 1000}));
  ASSERT_TRUE(r->ops);
  EXPECT_EQ(*r->ops, (TokenBucketConfig{100, 0, 10}));
}

TEST(RateLimiterJsonTest, AbsentAndNullBucketsAreAbsent) {
  auto empty = Parse("{}");
  ASSERT_TRUE(empty.ok()) << empty.error().message;
  EXPECT_EQ(*empty, RateLimiterConfig{});

  auto nulls = Parse(R"({"bandwidth": null, "ops": {"size": 1, "refill_time": 1,
                                                     "one_time_burst": null}})");
  ASSERT_TRUE(nulls.ok()) << nulls.error().message;
  EXPECT_FALSE(nulls->bandwidth);
  ASSERT_TRUE(nulls->ops);
  EXPECT_EQ(nulls->ops->one_time_burst, 0u);
}

TEST(RateLimiterJsonTest, ZeroSizedBucketIsAcceptedAsDisabled) {
  auto r = Parse(R"({"ops": {"size": 0, "refill_time": 0}})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->ops);
  EXPECT_EQ(*r->ops, (TokenBucketConfig{0, 0, 0}));
}

TEST(RateLimiterJsonTest, LimitsAreInt64) {
  auto max = Parse(R"({"bandwidth": {"size": 9223372036854775807,
                                     "one_time_burst": 9223372036854775807,
                                     "refill_time": 9223372036854775807}})");
  ASSERT_TRUE(max.ok()) << max.error().message;
  EXPECT_EQ(max->bandwidth->size, 9223372036854775807u);
  EXPECT_EQ(ErrorOf(R"({"bandwidth": {"size": 9223372036854775808, "refill_time": 1}})"),
            "drives[0].rate_limiter.bandwidth.size: expected an integer from 0 to "
            "9223372036854775807, got 9223372036854775808");
}

TEST(RateLimiterJsonTest, ErrorsNameTheFieldPath) {
  EXPECT_EQ(ErrorOf(R"({"bandwidth": {"size": -1, "refill_time": 1}})"),
            "drives[0].rate_limiter.bandwidth.size: expected an integer from 0 to "
            "9223372036854775807, got -1");
  EXPECT_THAT(ErrorOf(R"({"ops": {"size": 1, "refill_time": 2.5}})"),
              HasSubstr("drives[0].rate_limiter.ops.refill_time: expected an integer"));
  EXPECT_THAT(ErrorOf(R"({"ops": {"size": "1", "refill_time": 1}})"),
              HasSubstr("drives[0].rate_limiter.ops.size: expected an integer"));
  EXPECT_THAT(ErrorOf(R"({"ops": {"size": 1, "refill_time": 1, "one_time_burst": true}})"),
              HasSubstr("drives[0].rate_limiter.ops.one_time_burst: expected an integer"));
  EXPECT_EQ(ErrorOf(R"({"bandwidth": {"refill_time": 1}})"),
            "missing required field \"size\" in drives[0].rate_limiter.bandwidth");
  EXPECT_EQ(ErrorOf(R"({"ops": {"size": 1}})"),
            "missing required field \"refill_time\" in drives[0].rate_limiter.ops");
  EXPECT_EQ(ErrorOf(R"({"ops": {"size": 1, "refill_time": null}})"),
            "drives[0].rate_limiter.ops.refill_time: expected an integer from 0 to "
            "9223372036854775807, got null");
  EXPECT_EQ(ErrorOf(R"({"ops": 5})"), "drives[0].rate_limiter.ops: expected an object, got 5");
  EXPECT_EQ(ErrorOf("[]"), "drives[0].rate_limiter: expected an object, got an array");
}

TEST(RateLimiterJsonTest, UnknownKeysAreRejected) {
  EXPECT_EQ(ErrorOf(R"({"bandwidth": {"size": 1, "refill_time": 1, "refill_time_ms": 1}})"),
            "unknown field \"refill_time_ms\" in drives[0].rate_limiter.bandwidth");
  EXPECT_EQ(ErrorOf(R"({"iops": {"size": 1, "refill_time": 1}})"),
            "unknown field \"iops\" in drives[0].rate_limiter");
}

TEST(RateLimiterJsonTest, ToJsonWritesTheSameShapeAndRoundTrips) {
  RateLimiterConfig config;
  config.bandwidth = TokenBucketConfig{1000, 0, 100};
  EXPECT_EQ(ToJsonText(config), R"({"bandwidth":{"size":1000,"refill_time":100}})");
  EXPECT_EQ(ToJsonText(RateLimiterConfig{}), "{}");

  config.ops = TokenBucketConfig{5, 7, 9223372036854775807u};
  std::string text = ToJsonText(config);
  EXPECT_EQ(text, R"({"bandwidth":{"size":1000,"refill_time":100},)"
                  R"("ops":{"size":5,"one_time_burst":7,"refill_time":9223372036854775807}})");
  auto back = Parse(text);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, config);
}

}  // namespace
}  // namespace ember

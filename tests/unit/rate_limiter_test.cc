// The token-bucket rate limiter against a fake clock (facts 3.8): every rule is checked with
// exact token counts and block times, and no test sleeps.
#include "devices/rate_limiter.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <cstdint>
#include <limits>
#include <memory>

#include "tests/support/fake_clock.h"

namespace ember {
namespace {

constexpr uint64_t kMs = 1'000'000;  // ns
constexpr uint64_t kSec = 1000 * kMs;

TokenBucketConfig Bucket(uint64_t size, uint64_t burst, uint64_t refill_ms) {
  return TokenBucketConfig{size, burst, refill_ms};
}

std::unique_ptr<RateLimiter> MakeLimiter(const RateLimiterConfig& config, const FakeClock* clock) {
  auto r = RateLimiter::Create(config, clock);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? std::move(*r) : nullptr;
}

RateLimiterConfig BytesOnly(uint64_t size, uint64_t burst, uint64_t refill_ms) {
  RateLimiterConfig c;
  c.bandwidth = Bucket(size, burst, refill_ms);
  return c;
}

void ExpectSameBucket(const std::optional<TokenBucketState>& a,
                      const std::optional<TokenBucketState>& b) {
  ASSERT_EQ(a.has_value(), b.has_value());
  if (!a) return;
  EXPECT_EQ(a->size, b->size);
  EXPECT_EQ(a->refill_time_ms, b->refill_time_ms);
  EXPECT_EQ(a->initial_one_time_burst, b->initial_one_time_burst);
  EXPECT_EQ(a->one_time_burst, b->one_time_burst);
  EXPECT_EQ(a->budget, b->budget);
  EXPECT_EQ(a->elapsed_ns, b->elapsed_ns);
}

// --- TokenBucket arithmetic ----------------------------------------------------------------------

TEST(TokenBucketRateLimitTest, DisabledWhenSizeOrRefillIsZeroOrRefillOverflows) {
  EXPECT_FALSE(TokenBucket::Create(Bucket(0, 10, 100), 0));
  EXPECT_FALSE(TokenBucket::Create(Bucket(10, 10, 0), 0));
  // refill_time in ns must fit 64 bits (Firecracker's checked_mul in TokenBucket::new).
  EXPECT_FALSE(TokenBucket::Create(Bucket(10, 0, UINT64_MAX / 1'000'000 + 1), 0));
  EXPECT_TRUE(TokenBucket::Create(Bucket(10, 0, UINT64_MAX / 1'000'000), 0));
}

// Time that passes while the bucket is full is not banked: after a long idle spell and a
// drain, only what elapsed since the drain comes back (Firecracker would refill to full here).
TEST(TokenBucketRateLimitTest, IdleTimeWhileFullIsNotBanked) {
  uint64_t t = 0;
  auto b = TokenBucket::Create(Bucket(1000, 0, 1000), t);
  ASSERT_TRUE(b);
  t += 5 * kSec;
  EXPECT_EQ(b->Reduce(1000, t).outcome, TokenBucket::Outcome::kSuccess);
  t += 100 * kMs;
  EXPECT_EQ(b->Reduce(200, t).outcome, TokenBucket::Outcome::kFailure);
  EXPECT_EQ(b->budget(), 100u);
  EXPECT_EQ(b->Reduce(100, t).outcome, TokenBucket::Outcome::kSuccess);
  EXPECT_EQ(b->budget(), 0u);
}

TEST(TokenBucketRateLimitTest, StartsFull) {
  auto b = TokenBucket::Create(Bucket(1000, 0, 1000), 0);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->budget(), 1000u);
  EXPECT_EQ(b->Reduce(1000, 0).outcome, TokenBucket::Outcome::kSuccess);
  EXPECT_EQ(b->budget(), 0u);
  EXPECT_EQ(b->Reduce(1, 0).outcome, TokenBucket::Outcome::kFailure);
}

TEST(TokenBucketRateLimitTest, BurstIsSpentFirstAndNeverRefilled) {
  auto b = TokenBucket::Create(Bucket(100, 50, 100), 0);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->Reduce(30, 0).outcome, TokenBucket::Outcome::kSuccess);
  EXPECT_EQ(b->one_time_burst(), 20u);
  EXPECT_EQ(b->budget(), 100u);  // untouched while burst is left
  // 20 from the burst, 20 from the budget.
  EXPECT_EQ(b->Reduce(40, 0).outcome, TokenBucket::Outcome::kSuccess);
  EXPECT_EQ(b->one_time_burst(), 0u);
  EXPECT_EQ(b->budget(), 80u);
  // Many refill periods later the budget is full again and the burst is still gone.
  EXPECT_EQ(b->Reduce(100, 10 * kSec).outcome, TokenBucket::Outcome::kSuccess);
  EXPECT_EQ(b->one_time_burst(), 0u);
  EXPECT_EQ(b->budget(), 0u);
  EXPECT_EQ(b->Reduce(1, 10 * kSec).outcome, TokenBucket::Outcome::kFailure);
}

TEST(TokenBucketRateLimitTest, RefillIsProportionalToElapsedTime) {
  // 1000 tokens per second: one per millisecond.
  auto b = TokenBucket::Create(Bucket(1000, 0, 1000), 0);
  ASSERT_TRUE(b);
  ASSERT_EQ(b->Reduce(1000, 0).outcome, TokenBucket::Outcome::kSuccess);
  EXPECT_EQ(b->Reduce(251, 250 * kMs).outcome, TokenBucket::Outcome::kFailure);
  EXPECT_EQ(b->budget(), 250u);  // the refill happened, the failed request took nothing
  EXPECT_EQ(b->Reduce(250, 250 * kMs).outcome, TokenBucket::Outcome::kSuccess);
  // 0.9999 ms is not a whole token yet; the fraction is kept for the next refill.
  EXPECT_EQ(b->Reduce(1, 250 * kMs + 999'999).outcome, TokenBucket::Outcome::kFailure);
  EXPECT_EQ(b->Reduce(1, 251 * kMs).outcome, TokenBucket::Outcome::kSuccess);
}

TEST(TokenBucketRateLimitTest, NoDriftOverManySmallSteps) {
  // 3 tokens per 10 ms: one token every 3.333... ms, a period no step divides evenly. Taking
  // each token as soon as it exists, 125000 steps of 8 us (1 s) must yield exactly 300 tokens;
  // dropping the fraction of a token at each refill would yield fewer.
  auto b = TokenBucket::Create(Bucket(3, 0, 10), 0);
  ASSERT_TRUE(b);
  ASSERT_EQ(b->Reduce(3, 0).outcome, TokenBucket::Outcome::kSuccess);
  uint64_t now = 0;
  uint64_t got = 0;
  for (int i = 0; i < 125000; i++) {
    now += 8000;
    if (b->Reduce(1, now).outcome == TokenBucket::Outcome::kSuccess) got++;
  }
  EXPECT_EQ(now, kSec);
  EXPECT_EQ(got, 300u);
}

TEST(TokenBucketRateLimitTest, BudgetIsCappedAtSize) {
  auto b = TokenBucket::Create(Bucket(100, 0, 100), 0);
  ASSERT_TRUE(b);
  ASSERT_EQ(b->Reduce(10, 0).outcome, TokenBucket::Outcome::kSuccess);
  // 50 ms would add 50 tokens to a budget of 90: capped at 100, so 95 leaves 5.
  EXPECT_EQ(b->Reduce(95, 50 * kMs).outcome, TokenBucket::Outcome::kSuccess);
  EXPECT_EQ(b->budget(), 5u);
}

TEST(TokenBucketRateLimitTest, HugeBucketRefillsWithoutOverflow) {
  auto b = TokenBucket::Create(Bucket(UINT64_MAX, 0, 1000), 0);
  ASSERT_TRUE(b);
  ASSERT_EQ(b->Reduce(UINT64_MAX, 0).outcome, TokenBucket::Outcome::kSuccess);
  EXPECT_EQ(b->Reduce(UINT64_MAX, 500 * kMs).outcome, TokenBucket::Outcome::kFailure);
  EXPECT_EQ(b->budget(), UINT64_MAX / 2);
}

TEST(TokenBucketRateLimitTest, OverConsumptionEmptiesTheBucketAndReportsTheBlockTime) {
  auto b = TokenBucket::Create(Bucket(100, 0, 1000), 0);
  ASSERT_TRUE(b);
  ASSERT_EQ(b->Reduce(30, 0).outcome, TokenBucket::Outcome::kSuccess);
  // 370 asked, 70 in the budget: 300 beyond it = 3 buckets = 3 refill times.
  TokenBucket::Reduction r = b->Reduce(370, 0);
  EXPECT_EQ(r.outcome, TokenBucket::Outcome::kOverConsumption);
  EXPECT_EQ(r.block_ns, 3 * kSec);
  EXPECT_EQ(b->budget(), 0u);

  // A ratio that is not whole: 1 token beyond a 3-token bucket is a third of 10 ms, rounded up.
  auto c = TokenBucket::Create(Bucket(3, 0, 10), 0);
  ASSERT_TRUE(c);
  r = c->Reduce(4, 0);
  EXPECT_EQ(r.outcome, TokenBucket::Outcome::kOverConsumption);
  EXPECT_EQ(r.block_ns, 3'333'334u);
}

// --- RateLimiter -------------------------------------------------------------------------------

TEST(RateLimiterTest, FailureLeavesTheBudgetAndArmsThe100msTimer) {
  FakeClock clock;
  auto rl = MakeLimiter(BytesOnly(100, 0, 1000), &clock);
  ASSERT_TRUE(rl);
  EXPECT_TRUE(rl->Consume(60, TokenType::kBytes));
  EXPECT_FALSE(rl->blocked());
  EXPECT_EQ(rl->last_timer_ns(), 0u);
  EXPECT_FALSE(rl->Consume(50, TokenType::kBytes));
  EXPECT_EQ(rl->bandwidth()->budget(), 40u);
  EXPECT_TRUE(rl->blocked());
  EXPECT_EQ(rl->last_timer_ns(), RateLimiter::kRefillTimerNs);
  EXPECT_EQ(RateLimiter::kRefillTimerNs, 100 * kMs);
  EXPECT_EQ(rl->counters().throttled, 1u);
}

TEST(RateLimiterTest, OverConsumptionIsAllowedOnceThenBlocksProportionally) {
  FakeClock clock;
  auto rl = MakeLimiter(BytesOnly(100, 0, 1000), &clock);
  ASSERT_TRUE(rl);
  EXPECT_TRUE(rl->Consume(30, TokenType::kBytes));
  EXPECT_TRUE(rl->Consume(370, TokenType::kBytes));
  EXPECT_TRUE(rl->blocked());
  EXPECT_EQ(rl->last_timer_ns(), 3 * kSec);
  EXPECT_EQ(rl->counters().over_consumptions, 1u);
  EXPECT_EQ(rl->counters().throttled, 0u);
  EXPECT_FALSE(rl->Consume(1, TokenType::kBytes));
  EXPECT_EQ(rl->counters().throttled, 1u);
}

TEST(RateLimiterTest, BlockedLimiterRefusesUntilTheTimerEvent) {
  FakeClock clock;
  RateLimiterConfig config = BytesOnly(100, 0, 1000);
  config.ops = Bucket(10, 0, 1000);
  auto rl = MakeLimiter(config, &clock);
  ASSERT_TRUE(rl);
  // Block for 1000 s so the real timerfd cannot fire during the test.
  ASSERT_TRUE(rl->Consume(100 + 100 * 1000, TokenType::kBytes));
  ASSERT_EQ(rl->last_timer_ns(), 1000 * kSec);
  // Both token types are refused while blocked (Firecracker's consume checks the timer first).
  EXPECT_FALSE(rl->Consume(1, TokenType::kBytes));
  EXPECT_FALSE(rl->Consume(1, TokenType::kOps));
  // An event before the wait is over is spurious and changes nothing.
  clock.AdvanceNs(999 * kSec);
  EXPECT_FALSE(rl->OnTimerEvent());
  EXPECT_TRUE(rl->blocked());
  EXPECT_FALSE(rl->Consume(1, TokenType::kOps));
  // Time is up, but the limiter waits for the event, as the device does.
  clock.AdvanceNs(1 * kSec);
  EXPECT_FALSE(rl->Consume(1, TokenType::kOps));
  EXPECT_TRUE(rl->OnTimerEvent());
  EXPECT_FALSE(rl->blocked());
  EXPECT_TRUE(rl->Consume(1, TokenType::kOps));
  EXPECT_TRUE(rl->Consume(100, TokenType::kBytes));  // the bucket refilled meanwhile
  // A second event with nothing pending is spurious.
  EXPECT_FALSE(rl->OnTimerEvent());
  EXPECT_EQ(rl->counters().throttled, 4u);
}

TEST(RateLimiterTest, TheRealTimerFdFiresAndUnblocks) {
  FakeClock clock;  // never advanced: only the timerfd can end the wait
  auto rl = MakeLimiter(BytesOnly(100, 0, 1000), &clock);
  ASSERT_TRUE(rl);
  ASSERT_GE(rl->timer_fd(), 0);
  ASSERT_TRUE(rl->Consume(100, TokenType::kBytes));
  ASSERT_FALSE(rl->Consume(1, TokenType::kBytes));
  pollfd p{rl->timer_fd(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1) << "the 100 ms timer did not fire within 5 s";
  EXPECT_TRUE(rl->OnTimerEvent());
  EXPECT_FALSE(rl->blocked());
  EXPECT_EQ(poll(&p, 1, 0), 0) << "the event was drained";
}

TEST(RateLimiterTest, DisabledBucketsAlwaysAllow) {
  FakeClock clock;
  auto none = MakeLimiter(RateLimiterConfig{}, &clock);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->timer_fd(), -1);
  EXPECT_TRUE(none->Consume(UINT64_MAX, TokenType::kBytes));
  EXPECT_TRUE(none->Consume(UINT64_MAX, TokenType::kOps));
  EXPECT_FALSE(none->blocked());

  // Size 0 or refill_time 0 disables a bucket that is present.
  RateLimiterConfig zero;
  zero.bandwidth = Bucket(0, 0, 1000);
  zero.ops = Bucket(10, 0, 0);
  auto z = MakeLimiter(zero, &clock);
  ASSERT_TRUE(z);
  EXPECT_FALSE(z->bandwidth());
  EXPECT_FALSE(z->ops());
  EXPECT_EQ(z->timer_fd(), -1);
  EXPECT_TRUE(z->Consume(1'000'000, TokenType::kOps));

  // Only the bytes bucket: ops are unlimited, and the fd is there to watch.
  auto bytes = MakeLimiter(BytesOnly(10, 0, 1000), &clock);
  ASSERT_TRUE(bytes);
  EXPECT_GE(bytes->timer_fd(), 0);
  for (int i = 0; i < 1000; i++) ASSERT_TRUE(bytes->Consume(1'000'000, TokenType::kOps));
  EXPECT_FALSE(bytes->blocked());
}

TEST(RateLimiterTest, ManualReplenishRefundsUpToTheCap) {
  FakeClock clock;
  auto rl = MakeLimiter(BytesOnly(100, 0, 1000), &clock);
  ASSERT_TRUE(rl);
  ASSERT_TRUE(rl->Consume(80, TokenType::kBytes));
  rl->ManualReplenish(30, TokenType::kBytes);
  EXPECT_EQ(rl->bandwidth()->budget(), 50u);
  rl->ManualReplenish(1000, TokenType::kBytes);
  EXPECT_EQ(rl->bandwidth()->budget(), 100u);
  rl->ManualReplenish(5, TokenType::kOps);  // no ops bucket: nothing to refund

  // While burst is left (the budget is then full) a refund goes back to the burst, capped at
  // its initial value.
  auto burst = MakeLimiter(BytesOnly(100, 50, 1000), &clock);
  ASSERT_TRUE(burst);
  ASSERT_TRUE(burst->Consume(20, TokenType::kBytes));
  EXPECT_EQ(burst->bandwidth()->one_time_burst(), 30u);
  burst->ManualReplenish(10, TokenType::kBytes);
  EXPECT_EQ(burst->bandwidth()->one_time_burst(), 40u);
  burst->ManualReplenish(100, TokenType::kBytes);
  EXPECT_EQ(burst->bandwidth()->one_time_burst(), 50u);
  EXPECT_EQ(burst->bandwidth()->budget(), 100u);
}

TEST(RateLimiterTest, UpdateReplacesGivenBucketsAndKeepsAbsentOnes) {
  FakeClock clock;
  RateLimiterConfig config = BytesOnly(100, 0, 1000);
  config.ops = Bucket(10, 0, 1000);
  auto rl = MakeLimiter(config, &clock);
  ASSERT_TRUE(rl);
  ASSERT_TRUE(rl->Consume(100, TokenType::kBytes));
  ASSERT_TRUE(rl->Consume(3, TokenType::kOps));

  RateLimiterConfig patch;
  patch.bandwidth = Bucket(200, 20, 500);
  rl->Update(patch);
  ASSERT_TRUE(rl->bandwidth());
  EXPECT_EQ(rl->bandwidth()->size(), 200u);
  EXPECT_EQ(rl->bandwidth()->budget(), 200u);  // new and full
  EXPECT_EQ(rl->bandwidth()->one_time_burst(), 20u);
  EXPECT_EQ(rl->bandwidth()->refill_time_ms(), 500u);
  ASSERT_TRUE(rl->ops());
  EXPECT_EQ(rl->ops()->budget(), 7u);  // absent from the patch: untouched

  // A bucket given with size 0 disables that token type.
  RateLimiterConfig off;
  off.ops = Bucket(0, 0, 0);
  rl->Update(off);
  EXPECT_FALSE(rl->ops());
  EXPECT_TRUE(rl->bandwidth());
  off.bandwidth = Bucket(0, 0, 0);
  rl->Update(off);
  EXPECT_EQ(rl->timer_fd(), -1);

  // And a limiter created with nothing can be enabled later: its fd appears.
  rl->Update(BytesOnly(10, 0, 100));
  EXPECT_GE(rl->timer_fd(), 0);
  EXPECT_TRUE(rl->Consume(10, TokenType::kBytes));
  EXPECT_FALSE(rl->Consume(1, TokenType::kBytes));
}

TEST(RateLimiterTest, SaveRestoreRoundTrip) {
  FakeClock clock;
  RateLimiterConfig config = BytesOnly(1000, 500, 1000);
  config.ops = Bucket(10, 0, 100);
  auto rl = MakeLimiter(config, &clock);
  ASSERT_TRUE(rl);
  ASSERT_TRUE(rl->Consume(700, TokenType::kBytes));  // 500 burst + 200 budget
  ASSERT_TRUE(rl->Consume(4, TokenType::kOps));
  clock.AdvanceMs(30);
  RateLimiterState saved = rl->Save();
  ASSERT_TRUE(saved.bandwidth);
  EXPECT_EQ(saved.bandwidth->one_time_burst, 0u);
  EXPECT_EQ(saved.bandwidth->initial_one_time_burst, 500u);
  EXPECT_EQ(saved.bandwidth->budget, 800u);
  EXPECT_EQ(saved.bandwidth->elapsed_ns, 30 * kMs);
  EXPECT_FALSE(saved.blocked);

  // A different host: its clock reads something else entirely.
  FakeClock other(7'000'000'000'000);
  auto restored = MakeLimiter(RateLimiterConfig{}, &other);
  ASSERT_TRUE(restored);
  ASSERT_TRUE(restored->Restore(saved).ok());
  RateLimiterState again = restored->Save();
  ExpectSameBucket(saved.bandwidth, again.bandwidth);
  ExpectSameBucket(saved.ops, again.ops);
  EXPECT_EQ(again.blocked, saved.blocked);
  EXPECT_GE(restored->timer_fd(), 0);

  // The elapsed time carried over: both limiters refill identically from here.
  clock.AdvanceMs(70);
  other.AdvanceMs(70);
  EXPECT_FALSE(rl->Consume(901, TokenType::kBytes));
  EXPECT_FALSE(restored->Consume(901, TokenType::kBytes));
  EXPECT_EQ(rl->bandwidth()->budget(), restored->bandwidth()->budget());
  EXPECT_EQ(restored->bandwidth()->budget(), 900u);
}

TEST(RateLimiterTest, SaveRestoreKeepsAPendingWait) {
  FakeClock clock;
  auto rl = MakeLimiter(BytesOnly(100, 0, 1000), &clock);
  ASSERT_TRUE(rl);
  ASSERT_TRUE(rl->Consume(100 + 300, TokenType::kBytes));  // blocked for 3 s
  clock.AdvanceMs(1000);
  RateLimiterState saved = rl->Save();
  EXPECT_TRUE(saved.blocked);
  EXPECT_EQ(saved.block_remaining_ns, 2 * kSec);

  FakeClock other(5'000'000'000'000);
  auto restored = MakeLimiter(RateLimiterConfig{}, &other);
  ASSERT_TRUE(restored);
  ASSERT_TRUE(restored->Restore(saved).ok());
  EXPECT_TRUE(restored->blocked());
  EXPECT_EQ(restored->last_timer_ns(), 2 * kSec);
  EXPECT_FALSE(restored->Consume(1, TokenType::kBytes));
  other.AdvanceMs(2000);
  EXPECT_TRUE(restored->OnTimerEvent());
  EXPECT_TRUE(restored->Consume(100, TokenType::kBytes));
}

TEST(RateLimiterTest, RestoreRejectsADisabledBucketAndChangesNothing) {
  FakeClock clock;
  auto rl = MakeLimiter(BytesOnly(100, 0, 1000), &clock);
  ASSERT_TRUE(rl);
  ASSERT_TRUE(rl->Consume(40, TokenType::kBytes));
  RateLimiterState bad;
  bad.ops = TokenBucketState{};  // size 0
  Status s = rl->Restore(bad);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("ops bucket"), std::string::npos) << s.error().message;
  ASSERT_TRUE(rl->bandwidth());
  EXPECT_EQ(rl->bandwidth()->budget(), 60u);
}

}  // namespace
}  // namespace ember

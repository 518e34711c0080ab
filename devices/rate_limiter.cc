#include "devices/rate_limiter.h"

#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <numeric>

#include "vmm/base/log.h"
#include "vmm/base/strings.h"

namespace ember {
namespace {

using u128 = unsigned __int128;

constexpr uint64_t kNsPerMs = 1'000'000;
constexpr uint64_t kNsPerSec = 1'000'000'000;
constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

uint64_t SaturatingAdd(uint64_t a, uint64_t b) { return a > kU64Max - b ? kU64Max : a + b; }

// ceil(a × b / c) in 128 bits, saturated to 64.
uint64_t MulDivCeil(uint64_t a, uint64_t b, uint64_t c) {
  u128 product = static_cast<u128>(a) * b;
  u128 q = product / c + (product % c != 0 ? 1 : 0);
  return q > kU64Max ? kU64Max : static_cast<uint64_t>(q);
}

std::optional<uint64_t> RefillNs(uint64_t refill_time_ms) {
  if (refill_time_ms > kU64Max / kNsPerMs) return std::nullopt;
  return refill_time_ms * kNsPerMs;
}

Error DisabledBucketError(const char* which, const TokenBucketState& s) {
  return Error{
      StrFormat("rate limiter state: the %s bucket (size %llu, refill_time %llu ms) "
                "describes a disabled bucket",
                which, static_cast<unsigned long long>(s.size),
                static_cast<unsigned long long>(s.refill_time_ms))};
}

}  // namespace

uint64_t MonotonicRateLimiterClock::NowNs() const {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * kNsPerSec + static_cast<uint64_t>(ts.tv_nsec);
}

const MonotonicRateLimiterClock& MonotonicRateLimiterClock::Get() {
  static const MonotonicRateLimiterClock clock;
  return clock;
}

// --- TokenBucket --------------------------------------------------------------------------------

std::optional<TokenBucket> TokenBucket::Create(const TokenBucketConfig& config, uint64_t now_ns) {
  if (config.size == 0 || config.refill_time_ms == 0) return std::nullopt;
  std::optional<uint64_t> refill_ns = RefillNs(config.refill_time_ms);
  if (!refill_ns) return std::nullopt;
  return TokenBucket(config, *refill_ns, now_ns);
}

TokenBucket::TokenBucket(const TokenBucketConfig& config, uint64_t refill_ns, uint64_t now_ns)
    : size_(config.size),
      refill_time_ms_(config.refill_time_ms),
      refill_ns_(refill_ns),
      reduced_capacity_(config.size / std::gcd(config.size, refill_ns)),
      reduced_period_ns_(refill_ns / std::gcd(config.size, refill_ns)),
      initial_one_time_burst_(config.one_time_burst),
      one_time_burst_(config.one_time_burst),
      budget_(config.size),  // facts 3.8: a bucket starts full
      last_refill_ns_(now_ns) {}

void TokenBucket::Refill(uint64_t now_ns) {
  // A clock that went backwards (or a restore onto a younger clock) refills nothing.
  uint64_t elapsed = now_ns > last_refill_ns_ ? now_ns - last_refill_ns_ : 0;
  last_refill_ns_ = std::max(last_refill_ns_, now_ns);
  if (elapsed >= refill_ns_) {
    budget_ = size_;
    refill_remainder_ = 0;
    return;
  }
  // Exact: the part of a token not yet whole is kept (in 1/reduced_period_ns_ units) and counts
  // toward the next refill, so many small steps add up to exactly size per refill_time.
  // Firecracker instead moves its refill point by the time the whole tokens took, rounded up to
  // a nanosecond, which loses up to 1 ns per refill. elapsed < refill_ns bounds the product.
  u128 total = static_cast<u128>(elapsed) * reduced_capacity_ + refill_remainder_;
  uint64_t tokens = static_cast<uint64_t>(total / reduced_period_ns_);
  refill_remainder_ = static_cast<uint64_t>(total % reduced_period_ns_);
  budget_ = std::min(SaturatingAdd(budget_, tokens), size_);
  // A full bucket holds no part-token either.
  if (budget_ == size_) refill_remainder_ = 0;
}

TokenBucket::Reduction TokenBucket::Reduce(uint64_t tokens, uint64_t now_ns) {
  const uint64_t burst_before = one_time_burst_;
  if (one_time_burst_ > 0) {
    if (one_time_burst_ >= tokens) {
      one_time_burst_ -= tokens;
      // As Firecracker: the budget is still full while burst is left, so the refill clock
      // restarts here rather than banking time the full bucket could not use.
      last_refill_ns_ = now_ns;
      refill_remainder_ = 0;
      return {Outcome::kSuccess};
    }
    tokens -= one_time_burst_;
    one_time_burst_ = 0;
  }
  // Refilled before every reduction, not only when the budget runs short: time that passes
  // while the bucket is full must not be banked. Firecracker refills only on a shortfall, so
  // after an idle spell its first refill counts the idle time too and lets up to one extra
  // bucketful through at once (measured here: a drive limited to 8 MiB/s read at 9.7 MiB/s).
  Refill(now_ns);
  if (tokens > budget_) {
    if (tokens > size_) {
      // More than the bucket can ever hold: let it through (it could never succeed otherwise)
      // and make the device wait as long as refilling the excess would take.
      uint64_t excess = tokens - budget_;
      budget_ = 0;
      return {Outcome::kOverConsumption, MulDivCeil(excess, refill_ns_, size_)};
    }
    if (tokens > budget_) {
      // A failure takes nothing. While burst is left the budget is full, so a request that
      // spent burst cannot fail here; only a restored state with burst left and a partial budget
      // could, and Firecracker would then lose the burst it took.
      one_time_burst_ = burst_before;
      return {Outcome::kFailure};
    }
  }
  budget_ -= tokens;
  return {Outcome::kSuccess};
}

void TokenBucket::Replenish(uint64_t tokens) {
  if (one_time_burst_ > 0) {
    one_time_burst_ = std::min(SaturatingAdd(one_time_burst_, tokens), initial_one_time_burst_);
    return;
  }
  budget_ = std::min(SaturatingAdd(budget_, tokens), size_);
}

TokenBucketState TokenBucket::Save(uint64_t now_ns) const {
  TokenBucketState s;
  s.size = size_;
  s.refill_time_ms = refill_time_ms_;
  s.initial_one_time_burst = initial_one_time_burst_;
  s.one_time_burst = one_time_burst_;
  s.budget = budget_;
  // The part-token carried forward is kept as the (whole) nanoseconds it stands for.
  uint64_t carried_ns = refill_remainder_ / reduced_capacity_;
  s.elapsed_ns = SaturatingAdd(now_ns > last_refill_ns_ ? now_ns - last_refill_ns_ : 0, carried_ns);
  return s;
}

std::optional<TokenBucket> TokenBucket::Restore(const TokenBucketState& state, uint64_t now_ns) {
  TokenBucketConfig config{state.size, state.initial_one_time_burst, state.refill_time_ms};
  std::optional<TokenBucket> bucket = Create(config, now_ns);
  if (!bucket) return std::nullopt;
  bucket->initial_one_time_burst_ = std::max(state.initial_one_time_burst, state.one_time_burst);
  bucket->one_time_burst_ = state.one_time_burst;
  bucket->budget_ = std::min(state.budget, state.size);
  // Beyond one refill period the bucket is full anyway. On a clock younger than the elapsed time
  // (just after boot) the refill point is clamped to 0 and the earliest part of it is lost.
  uint64_t elapsed = std::min(state.elapsed_ns, bucket->refill_ns_);
  bucket->last_refill_ns_ = now_ns >= elapsed ? now_ns - elapsed : 0;
  return bucket;
}

// --- RateLimiter --------------------------------------------------------------------------------

Result<std::unique_ptr<RateLimiter>> RateLimiter::Create(const RateLimiterConfig& config,
                                                         const RateLimiterClock* clock) {
  UniqueFd timer(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!timer.valid()) return Error::Errno("timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK)");
  std::unique_ptr<RateLimiter> limiter(
      new RateLimiter(std::move(timer), clock ? clock : &MonotonicRateLimiterClock::Get()));
  uint64_t now = limiter->clock_->NowNs();
  if (config.bandwidth) limiter->bandwidth_ = TokenBucket::Create(*config.bandwidth, now);
  if (config.ops) limiter->ops_ = TokenBucket::Create(*config.ops, now);
  return limiter;
}

RateLimiter::RateLimiter(UniqueFd timer, const RateLimiterClock* clock)
    : timer_(std::move(timer)), clock_(clock) {}

Status RateLimiter::ArmTimer(uint64_t ns) {
  // A zero it_value would disarm the timer and leave the limiter blocked for good.
  ns = std::max<uint64_t>(ns, 1);
  itimerspec spec{};
  // time_t is 64-bit here; ~584 years of nanoseconds fit in it as seconds.
  spec.it_value.tv_sec = static_cast<time_t>(ns / kNsPerSec);
  spec.it_value.tv_nsec = static_cast<long>(ns % kNsPerSec);
  if (timerfd_settime(timer_.get(), 0, &spec, nullptr) != 0)
    return Error::Errno(StrFormat("timerfd_settime(fd %d, %llu ns)", timer_.get(),
                                  static_cast<unsigned long long>(ns)));
  last_timer_ns_ = ns;
  return Ok();
}

void RateLimiter::Block(uint64_t ns) {
  Status armed = ArmTimer(ns);
  if (!armed.ok()) {
    counters_.timer_errors++;
    LOG_ERROR("rate limiter: %s", armed.error().message.c_str());
    return;
  }
  blocked_ = true;
  block_deadline_ns_ = SaturatingAdd(clock_->NowNs(), last_timer_ns_);
}

bool RateLimiter::Consume(uint64_t tokens, TokenType type) {
  if (blocked_) {
    counters_.throttled++;
    return false;
  }
  std::optional<TokenBucket>& bucket = Bucket(type);
  if (!bucket) return true;
  TokenBucket::Reduction r = bucket->Reduce(tokens, clock_->NowNs());
  switch (r.outcome) {
    case TokenBucket::Outcome::kSuccess:
      return true;
    case TokenBucket::Outcome::kFailure:
      counters_.throttled++;
      Block(kRefillTimerNs);
      return false;
    case TokenBucket::Outcome::kOverConsumption:
      counters_.over_consumptions++;
      Block(r.block_ns);
      return true;
  }
  return true;
}

void RateLimiter::ManualReplenish(uint64_t tokens, TokenType type) {
  std::optional<TokenBucket>& bucket = Bucket(type);
  if (bucket) bucket->Replenish(tokens);
}

bool RateLimiter::OnTimerEvent() {
  uint64_t expirations = 0;
  // Non-blocking: EAGAIN means the timer has not fired, which the deadline check below covers.
  bool fired = read(timer_.get(), &expirations, sizeof(expirations)) ==
                   static_cast<ssize_t>(sizeof(expirations)) &&
               expirations > 0;
  if (!blocked_) return false;
  if (!fired && clock_->NowNs() < block_deadline_ns_) return false;
  // Disarm: when the wait ended by the clock (a fake one under test) the real timer may still be
  // pending, and a stale expiry would only cost a spurious wakeup later.
  itimerspec off{};
  timerfd_settime(timer_.get(), 0, &off, nullptr);
  blocked_ = false;
  return true;
}

int RateLimiter::timer_fd() const { return bandwidth_ || ops_ ? timer_.get() : -1; }

void RateLimiter::Update(const RateLimiterConfig& config) {
  uint64_t now = clock_->NowNs();
  if (config.bandwidth) bandwidth_ = TokenBucket::Create(*config.bandwidth, now);
  if (config.ops) ops_ = TokenBucket::Create(*config.ops, now);
}

RateLimiterState RateLimiter::Save() const {
  uint64_t now = clock_->NowNs();
  RateLimiterState s;
  if (bandwidth_) s.bandwidth = bandwidth_->Save(now);
  if (ops_) s.ops = ops_->Save(now);
  s.blocked = blocked_;
  s.block_remaining_ns = blocked_ && block_deadline_ns_ > now ? block_deadline_ns_ - now : 0;
  return s;
}

Status RateLimiter::Restore(const RateLimiterState& state) {
  uint64_t now = clock_->NowNs();
  std::optional<TokenBucket> bandwidth;
  std::optional<TokenBucket> ops;
  if (state.bandwidth) {
    bandwidth = TokenBucket::Restore(*state.bandwidth, now);
    if (!bandwidth) return DisabledBucketError("bandwidth", *state.bandwidth);
  }
  if (state.ops) {
    ops = TokenBucket::Restore(*state.ops, now);
    if (!ops) return DisabledBucketError("ops", *state.ops);
  }
  if (state.blocked) {
    // A wait already over when saved still goes through the timer (1 ns), so the device is
    // woken the same way it would have been.
    TRY_STATUS(ArmTimer(state.block_remaining_ns));
    block_deadline_ns_ = SaturatingAdd(now, last_timer_ns_);
  } else {
    itimerspec off{};
    timerfd_settime(timer_.get(), 0, &off, nullptr);
  }
  blocked_ = state.blocked;
  bandwidth_ = std::move(bandwidth);
  ops_ = std::move(ops);
  return Ok();
}

}  // namespace ember

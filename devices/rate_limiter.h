// Firecracker's token-bucket rate limiter (facts 3.8; src/vmm/src/rate_limiter/mod.rs): a bytes
// bucket and an ops bucket, each refilled lazily from the elapsed time, and a timerfd that tells
// the device when to try again after the limiter said no.
//
// The device's side of the contract:
//   - ask Consume() before serving a request; on false, stop processing the queue (leave the
//     request in it) and wait;
//   - watch timer_fd() for EPOLLIN (when it is >= 0) and call OnTimerEvent() when it is readable,
//     then resume processing;
//   - hand tokens back with ManualReplenish() when a request that consumed them is not served.
//
// Not thread-safe: like Firecracker's, a limiter belongs to one device on the VMM thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "vmm/base/rate_limiter_config.h"
#include "vmm/base/result.h"
#include "vmm/base/unique_fd.h"

namespace ember {

// Where the limiter reads the time. Production uses CLOCK_MONOTONIC (the clock its timerfd runs
// on, so "the timer fired" and "the wait is over" agree); tests substitute a fake.
class RateLimiterClock {
 public:
  virtual ~RateLimiterClock() = default;
  virtual uint64_t NowNs() const = 0;
};

class MonotonicRateLimiterClock : public RateLimiterClock {
 public:
  uint64_t NowNs() const override;
  // A process-wide instance; it has no state.
  static const MonotonicRateLimiterClock& Get();
};

enum class TokenType {
  kBytes,  // the bandwidth bucket
  kOps,    // the ops bucket (requests, frames)
};

// What a snapshot keeps of one bucket. The last refill is stored as the time elapsed since it,
// so it means the same thing against the restoring host's clock (Firecracker's elapsed_ns).
struct TokenBucketState {
  uint64_t size = 0;
  uint64_t refill_time_ms = 0;
  uint64_t initial_one_time_burst = 0;
  uint64_t one_time_burst = 0;  // burst credit left
  uint64_t budget = 0;
  uint64_t elapsed_ns = 0;  // since the last refill
};

struct RateLimiterState {
  std::optional<TokenBucketState> bandwidth;
  std::optional<TokenBucketState> ops;
  // Firecracker drops a pending wait on restore; keeping it means an over-consumption cannot be
  // escaped by snapshotting, and a device saved while throttled is woken by the timer as usual.
  bool blocked = false;
  uint64_t block_remaining_ns = 0;
};

struct RateLimiterCounters {
  uint64_t throttled = 0;          // Consume() calls refused
  uint64_t over_consumptions = 0;  // Consume() calls allowed past the bucket size
  uint64_t timer_errors = 0;       // timerfd_settime failures (logged)
};

// One bucket: `size` tokens per `refill_time_ms`, plus a one-time burst credit spent first and
// never refilled. Pure arithmetic: the caller passes the time, so it is exact under test.
class TokenBucket {
 public:
  enum class Outcome {
    kSuccess,          // the tokens were taken
    kFailure,          // not enough tokens; nothing was taken
    kOverConsumption,  // more than `size` asked: allowed, the bucket emptied, block for block_ns
  };
  struct Reduction {
    Outcome outcome;
    uint64_t block_ns = 0;  // kOverConsumption only: (tokens beyond the budget)/size × refill
  };

  // nullopt when the bucket is disabled: size or refill time 0, or a refill time whose
  // nanoseconds overflow 64 bits (Firecracker's TokenBucket::new returns None for all three).
  static std::optional<TokenBucket> Create(const TokenBucketConfig& config, uint64_t now_ns);

  Reduction Reduce(uint64_t tokens, uint64_t now_ns);
  // Gives tokens back, capped at what the bucket can hold. While burst credit is left the budget
  // is still full, so the refund goes to the burst (capped at its initial value), as Firecracker's
  // force_replenish does; otherwise to the budget.
  void Replenish(uint64_t tokens);

  TokenBucketState Save(uint64_t now_ns) const;
  // nullopt when the state describes a disabled bucket. The budget is clamped to size; an
  // initial burst below the burst left is raised to it.
  static std::optional<TokenBucket> Restore(const TokenBucketState& state, uint64_t now_ns);

  uint64_t size() const { return size_; }
  uint64_t refill_time_ms() const { return refill_time_ms_; }
  uint64_t initial_one_time_burst() const { return initial_one_time_burst_; }
  uint64_t one_time_burst() const { return one_time_burst_; }
  uint64_t budget() const { return budget_; }

 private:
  TokenBucket(const TokenBucketConfig& config, uint64_t refill_ns, uint64_t now_ns);
  void Refill(uint64_t now_ns);

  uint64_t size_;
  uint64_t refill_time_ms_;
  uint64_t refill_ns_;
  // size / refill_ns reduced by their gcd (facts 3.8): tokens = elapsed × capacity / period
  // in 128 bits without overflow.
  uint64_t reduced_capacity_;
  uint64_t reduced_period_ns_;
  // The fraction of a token earned but not yet whole, in 1/reduced_period_ns_ tokens; carried
  // forward so refills do not drift.
  uint64_t refill_remainder_ = 0;
  uint64_t initial_one_time_burst_;
  uint64_t one_time_burst_;
  uint64_t budget_;
  uint64_t last_refill_ns_;
};

class RateLimiter {
 public:
  // Firecracker's REFILL_TIMER_INTERVAL_MS: how long a refused consumer waits before retrying.
  static constexpr uint64_t kRefillTimerNs = 100'000'000;

  // Creates the timerfd even when both buckets are disabled, as Firecracker does: a later
  // Update() may enable one, and the seccomp filter may not allow timerfd_create by then.
  // `clock` (nullptr: CLOCK_MONOTONIC) must outlive the limiter.
  static Result<std::unique_ptr<RateLimiter>> Create(const RateLimiterConfig& config,
                                                     const RateLimiterClock* clock = nullptr);

  // Whether `tokens` of `type` may be used now. Refused while blocked, even for a type whose
  // bucket is disabled (Firecracker's consume checks the timer first). A refusal arms the
  // 100 ms timer; an over-consumption is allowed and arms the timer for its block time.
  bool Consume(uint64_t tokens, TokenType type);
  // Refunds tokens of a request that consumed them but was not served.
  void ManualReplenish(uint64_t tokens, TokenType type);

  // To be called when timer_fd() is readable: drains the timerfd and unblocks once the wait is
  // over. Returns false, and stays blocked, for a spurious call (the wait is not over), which
  // Firecracker reports as SpuriousRateLimiterEvent.
  bool OnTimerEvent();
  // The fd to watch for EPOLLIN, or -1 while both buckets are disabled (nothing to wait for). A
  // device that skipped it must register it if Update() enables a bucket.
  int timer_fd() const;
  bool blocked() const { return blocked_; }

  // A PATCH: a bucket given replaces the old one with a new, full bucket (disabling it when its
  // size or refill time is 0); a bucket absent keeps the old one and its state.
  void Update(const RateLimiterConfig& config);

  RateLimiterState Save() const;
  // Replaces both buckets and the pending wait with the saved ones. Fails, changing nothing, when
  // a saved bucket is disabled or the timer cannot be armed.
  Status Restore(const RateLimiterState& state);

  const std::optional<TokenBucket>& bandwidth() const { return bandwidth_; }
  const std::optional<TokenBucket>& ops() const { return ops_; }
  const RateLimiterCounters& counters() const { return counters_; }
  // How long the timer was last armed for (0: never), so tests can check the block time
  // without waiting for it.
  uint64_t last_timer_ns() const { return last_timer_ns_; }

 private:
  RateLimiter(UniqueFd timer, const RateLimiterClock* clock);
  std::optional<TokenBucket>& Bucket(TokenType type) {
    return type == TokenType::kBytes ? bandwidth_ : ops_;
  }
  Status ArmTimer(uint64_t ns);
  // Arms the timer and blocks; on failure logs, counts and stays unblocked, since a blocked
  // limiter without a timer would stall its device for good.
  void Block(uint64_t ns);

  UniqueFd timer_;
  const RateLimiterClock* clock_;
  std::optional<TokenBucket> bandwidth_;
  std::optional<TokenBucket> ops_;
  bool blocked_ = false;
  uint64_t block_deadline_ns_ = 0;
  uint64_t last_timer_ns_ = 0;
  RateLimiterCounters counters_;
};

}  // namespace ember

#include "devices/virtio/rng.h"

#include <sys/epoll.h>
#include <sys/random.h>

#include <cstring>

#include "vmm/base/log.h"

namespace ember::virtio {

Result<std::shared_ptr<Rng>> Rng::Create(const std::optional<RateLimiterConfig>& limiter) {
  std::shared_ptr<Rng> rng(new Rng());
  if (limiter) rng->limiter_ = TRY(RateLimiter::Create(*limiter));
  return rng;
}

Status Rng::AttachEvents(EventWatcher* watcher) {
  TRY_STATUS(VirtioDevice::AttachEvents(watcher));
  if (limiter_ && limiter_->timer_fd() >= 0) TRY_STATUS(watcher->Watch(limiter_->timer_fd(), EPOLLIN));
  return Ok();
}

void Rng::OnEventFd(int fd, uint32_t /*events*/) {
  if (!limiter_ || fd != limiter_->timer_fd()) return;
  limiter_->OnTimerEvent();
  if (active()) ProcessQueue(0);
}

void Rng::ProcessQueue(size_t index) {
  if (!active() || index != 0) return;
  Queue& queue = (*active_.queues)[0];
  bool used = false;
  DescriptorChain chain;
  while (true) {
    if (limiter_ && limiter_->blocked()) break;
    if (!NextChain(queue, &chain)) break;
    if (!chain.readable.empty()) {
      CountError("an entropy request with a device-readable buffer");
      queue.AddUsed(chain.head, 0);
      used = true;
      continue;
    }
    uint64_t want = std::min<uint64_t>(chain.writable_bytes, kRngMaxRequestBytes);
    if (limiter_) {
      if (!limiter_->Consume(1, TokenType::kOps)) {
        queue.UndoPop();
        break;
      }
      if (!limiter_->Consume(want, TokenType::kBytes)) {
        limiter_->ManualReplenish(1, TokenType::kOps);
        queue.UndoPop();
        break;
      }
    }
    queue.AddUsed(chain.head, Fill(chain));
    used = true;
  }
  if (used) MaybeSignal(queue);
}

uint32_t Rng::Fill(const DescriptorChain& chain) {
  uint64_t left = std::min<uint64_t>(chain.writable_bytes, kRngMaxRequestBytes);
  uint32_t done = 0;
  for (const Segment& s : chain.writable) {
    if (left == 0) break;
    size_t want = std::min<uint64_t>(s.len, left);
    size_t got = 0;
    while (got < want) {
      // getrandom never returns short for <= 256 bytes; larger requests may, and are retried.
      ssize_t n = getrandom(s.host + got, want - got, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        LOG_WARN("%s: getrandom: %s", name().c_str(), strerror(errno));
        return done + static_cast<uint32_t>(got);
      }
      got += static_cast<size_t>(n);
    }
    done += static_cast<uint32_t>(want);
    left -= want;
  }
  bytes_ += done;
  return done;
}

RngState Rng::Save() const {
  RngState s;
  if (limiter_) s.rate_limiter = limiter_->Save();
  return s;
}

Status Rng::Restore(const RngState& state) {
  if (state.rate_limiter && limiter_) TRY_STATUS(limiter_->Restore(*state.rate_limiter));
  return Ok();
}

}  // namespace ember::virtio

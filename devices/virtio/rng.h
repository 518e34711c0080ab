// virtio-rng (virtio 1.x section 5.4), Firecracker's `entropy` device: one queue whose
// device-writable buffers are filled from getrandom(2), at most 64 KiB per request, optionally
// rate limited.
#pragma once

#include <atomic>
#include <memory>
#include <optional>

#include "devices/rate_limiter.h"
#include "devices/virtio/virtio_device.h"
#include "vmm/base/rate_limiter_config.h"

namespace ember::virtio {

inline constexpr uint32_t kRngMaxRequestBytes = 64 * 1024;

struct RngState {
  std::optional<RateLimiterState> rate_limiter;
};

class Rng : public VirtioDevice {
 public:
  static Result<std::shared_ptr<Rng>> Create(const std::optional<RateLimiterConfig>& limiter);

  uint32_t device_id() const override { return kDeviceIdEntropy; }
  uint64_t offered_features() const override { return Bit(kFVersion1) | Bit(kFEventIdx); }
  size_t queue_count() const override { return 1; }
  void ProcessQueue(size_t index) override;
  Status AttachEvents(EventWatcher* watcher) override;
  void OnEventFd(int fd, uint32_t events) override;

  RngState Save() const;
  Status Restore(const RngState& state);
  uint64_t bytes() const { return bytes_; }

 private:
  Rng() : VirtioDevice("entropy") {}
  // Fills up to kRngMaxRequestBytes of the chain's writable part; returns the bytes written.
  uint32_t Fill(const DescriptorChain& chain);

  std::unique_ptr<RateLimiter> limiter_;
  std::atomic<uint64_t> bytes_{0};
};

}  // namespace ember::virtio

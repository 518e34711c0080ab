// virtio-block over a raw image file (virtio 1.x section 5.2), as Firecracker's `drives`: one
// queue of 256, requests IN, OUT, FLUSH and GET_ID (anything else UNSUPP), read-only drives
// opened without write access and offering VIRTIO_BLK_F_RO, FLUSH offered only for Writeback.
// Requests are served synchronously on the VMM thread with preadv/pwritev straight between the
// file and guest memory (no bounce buffer).
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "devices/rate_limiter.h"
#include "devices/virtio/virtio_device.h"
#include "vmm/base/rate_limiter_config.h"
#include "vmm/base/unique_fd.h"

namespace ember::virtio {

struct BlockOptions {
  std::string drive_id;
  std::string path;
  bool read_only = false;
  bool writeback = false;  // cache_type Writeback: offer FLUSH and fdatasync on it
  std::optional<RateLimiterConfig> rate_limiter;
};

// The device-specific part of a snapshot (the transport saves the queues).
struct BlockState {
  uint64_t capacity_sectors = 0;
  std::string path;
  bool read_only = false;
  bool writeback = false;
  std::optional<RateLimiterState> rate_limiter;
};

class Block : public VirtioDevice {
 public:
  // Opens the image: a missing file, a directory, or a size that is not a multiple of 512 is an
  // error naming the drive and the path.
  static Result<std::shared_ptr<Block>> Open(const BlockOptions& options);

  uint32_t device_id() const override { return kDeviceIdBlock; }
  uint64_t offered_features() const override;
  size_t queue_count() const override { return 1; }
  void ProcessQueue(size_t index) override;
  Status AttachEvents(EventWatcher* watcher) override;
  void OnEventFd(int fd, uint32_t events) override;

  // PATCH /drives, from the VMM thread while the guest runs; both take the transport's lock.
  // UpdateBackingFile opens `path` as the drive was opened (read-only or not; the same checks as
  // Open, whose errors it returns with the drive left on its old image), then serves every later
  // request from it: the capacity in config space and the GET_ID answer follow the new file, and
  // the driver is told through a configuration-change interrupt (Firecracker's
  // update_disk_image).
  Status UpdateBackingFile(const std::string& path);
  // Firecracker's update_rate_limiter: a bucket given replaces the old one with a new, full
  // bucket (size or refill time 0 disables it); a bucket absent keeps its state.
  void UpdateRateLimiter(const RateLimiterConfig& config);

  uint64_t capacity_sectors() const { return capacity_sectors_; }
  // The 20 bytes GET_ID answers (dev, rdev and inode of the image, as Firecracker derives it).
  const std::string& id() const { return id_; }

  BlockState Save() const;
  // Applies a saved state to a drive opened from the same configuration (before the transport
  // is restored): the image must have the saved size; the rate limiter's buckets come back.
  Status Restore(const BlockState& state);

  // Counters (read from any thread for metrics and logs).
  uint64_t read_bytes() const { return read_bytes_; }
  uint64_t write_bytes() const { return write_bytes_; }
  uint64_t requests() const { return requests_; }
  uint64_t throttled() const { return throttled_; }

 private:
  Block(const BlockOptions& options, UniqueFd fd, uint64_t capacity_sectors, std::string id,
        std::unique_ptr<RateLimiter> limiter);
  void SetCapacity(uint64_t sectors);
  void WatchLimiterTimer();
  // Serves one request; returns the bytes written to the driver's buffers (used length), or
  // nullopt when the chain is malformed past answering (no status byte) and must be dropped.
  std::optional<uint32_t> Execute(const DescriptorChain& chain);
  uint8_t DoIo(bool write, uint64_t sector, const DescriptorChain& chain, uint64_t data_offset,
               uint64_t data_len);

  BlockOptions options_;  // path and rate_limiter follow the updates
  UniqueFd fd_;
  uint64_t capacity_sectors_;
  std::string id_;
  // Always present, with no bucket when none is configured: as Firecracker's, so a later
  // UpdateRateLimiter needs no timerfd_create (which the seccomp filter may forbid by then).
  std::unique_ptr<RateLimiter> limiter_;
  int limiter_timer_fd_ = -1;  // the limiter's timer fd once it is in the event loop
  std::atomic<uint64_t> read_bytes_{0};
  std::atomic<uint64_t> write_bytes_{0};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> throttled_{0};
};

}  // namespace ember::virtio

// virtio-net over a TAP device (virtio 1.x section 5.1), as Firecracker's `network-interfaces`:
// queue 0 receives, queue 1 transmits, both 256 entries. The TAP (which the host created and
// configured; ember never touches host networking) is opened through /dev/net/tun with
// IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, so the 12-byte virtio_net_hdr_v1 passes through unchanged
// and the checksum and segmentation offloads the guest acks are mirrored with TUNSETOFFLOAD.
//
// RX is driven by the TAP's readability and stops (the TAP keeps the frames) while the guest
// has no buffers; TX writes straight from guest memory with writev and, when the TAP's queue is
// full, waits for EPOLLOUT instead of blocking the event loop.
#pragma once

#include <sys/uio.h>

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "devices/rate_limiter.h"
#include "devices/virtio/virtio_device.h"
#include "vmm/base/rate_limiter_config.h"
#include "vmm/base/unique_fd.h"

namespace ember::virtio {

struct NetOptions {
  std::string iface_id;
  std::string host_dev_name;
  std::optional<std::array<uint8_t, 6>> guest_mac;
  std::optional<uint16_t> mtu;
  std::optional<RateLimiterConfig> rx_rate_limiter;
  std::optional<RateLimiterConfig> tx_rate_limiter;
};

struct NetState {
  std::optional<std::array<uint8_t, 6>> guest_mac;
  std::optional<uint16_t> mtu;
  std::optional<RateLimiterState> rx_rate_limiter;
  std::optional<RateLimiterState> tx_rate_limiter;
};

struct NetCounters {
  uint64_t rx_frames = 0, rx_bytes = 0, tx_frames = 0, tx_bytes = 0;
  uint64_t rx_throttled = 0, tx_throttled = 0;
  uint64_t tx_dropped = 0;  // frames the TAP refused (not the guest's fault)
};

class Net : public VirtioDevice {
 public:
  // Opens the TAP named host_dev_name. It must exist (ember does not create host interfaces)
  // and not be attached to another process.
  static Result<std::shared_ptr<Net>> Open(const NetOptions& options);

  uint32_t device_id() const override { return kDeviceIdNet; }
  uint64_t offered_features() const override;
  size_t queue_count() const override { return 2; }
  void Activate(const ActiveQueues& active) override;
  void Reset() override;
  void ProcessQueue(size_t index) override;
  Status AttachEvents(EventWatcher* watcher) override;
  void OnEventFd(int fd, uint32_t events) override;

  // PATCH /network-interfaces, from the VMM thread while the guest runs (takes the transport's
  // lock). Each limiter given is updated as Firecracker's update_rate_limiter does (a bucket
  // given replaces the old one with a new, full bucket; size or refill time 0 disables it; a
  // bucket absent keeps its state); a limiter absent is unchanged. A queue that waits on a
  // limiter's timer keeps waiting for it, also when the update disabled every bucket, and then
  // resumes under the new buckets; a queue with nothing to wait for resumes at once.
  void UpdateRateLimiters(const std::optional<RateLimiterConfig>& rx,
                          const std::optional<RateLimiterConfig>& tx);

  NetState Save() const;
  Status Restore(const NetState& state);
  NetCounters counters() const;

 private:
  Net(const NetOptions& options, UniqueFd tap, std::unique_ptr<RateLimiter> rx_limiter,
      std::unique_ptr<RateLimiter> tx_limiter);
  // Puts each limiter's timer into the event loop once it has one (a bucket).
  Status WatchLimiterTimers();
  // Moves frames from the TAP into the guest's RX buffers while both have some, then
  // interrupts the guest if it asked for it.
  void ProcessRx();
  // One frame of ProcessRx (the one held back, or the TAP's next); false when RX has to wait
  // (for the TAP, for buffers, for the rate limiter) or the ring is broken.
  bool DeliverFrame();
  void ProcessTx();
  // Moves the pending frame into the guest's RX buffers (adding the used entries, without
  // interrupting); false when it has none (the frame stays pending).
  bool DeliverPending();
  enum class DirectRx { kDelivered, kNoBuffers, kNotPossible, kStop };
  DirectRx TryDirectRx();
  void UpdateTapEvents();

  NetOptions options_;  // the rate limiters follow the updates
  UniqueFd tap_;
  // Always present, with no bucket when none is configured, as Firecracker's: a later update
  // needs no timerfd_create (which the seccomp filter may forbid by then).
  std::unique_ptr<RateLimiter> rx_limiter_;
  std::unique_ptr<RateLimiter> tx_limiter_;
  // The limiters' timer fds once in the event loop. Kept rather than asked of the limiter: an
  // update may disable every bucket while a wait is armed, and that expiry must still arrive.
  int rx_timer_fd_ = -1;
  int tx_timer_fd_ = -1;
  bool mrg_rxbuf_ = false;
  // A frame read from the TAP that the guest had no room for yet (header included).
  std::vector<uint8_t> rx_frame_;
  size_t rx_frame_len_ = 0;
  bool rx_frame_charged_ = false;  // the rate limiter has been paid for the pending frame
  bool rx_waiting_for_buffers_ = false;
  bool tx_waiting_for_tap_ = false;
  uint32_t tap_events_ = 0;  // what the event loop watches the TAP for
  std::vector<iovec> iov_;  // scratch for TX and direct RX
  DescriptorChain rx_chain_;  // scratch for direct RX
  NetCounters counters_;
};

}  // namespace ember::virtio

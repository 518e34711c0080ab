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

  NetState Save() const;
  Status Restore(const NetState& state);
  NetCounters counters() const;

 private:
  explicit Net(const NetOptions& options, UniqueFd tap);
  void ProcessRx();
  void ProcessTx();
  // Moves the pending frame into the guest's RX buffers; false when it has none (the frame
  // stays pending).
  bool DeliverPending();
  enum class DirectRx { kDelivered, kNoBuffers, kNotPossible, kStop };
  DirectRx TryDirectRx();
  void UpdateTapEvents();

  NetOptions options_;
  UniqueFd tap_;
  std::unique_ptr<RateLimiter> rx_limiter_;
  std::unique_ptr<RateLimiter> tx_limiter_;
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

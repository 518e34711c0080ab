// VirtioDevice: what a virtio device (block, entropy, net, vsock) implements; MmioTransport
// (mmio_transport.h) owns the common state (features, status, queues, interrupt status) and calls
// the device, always with the transport's lock held. Device work (ProcessQueue, OnEventFd) runs
// on the VMM thread's event loop; register accesses come from vCPU threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "devices/virtio/queue.h"
#include "vmm/memory/guest_memory.h"

namespace ember::virtio {

// How a device talks back to its transport (and through it to the driver).
class DeviceCallbacks {
 public:
  virtual ~DeviceCallbacks() = default;
  // Raises the used-buffer interrupt (the caller has decided the driver wants one).
  virtual void SignalUsed() = 0;
  // The configuration space changed: bumps ConfigGeneration and, once the driver is live,
  // raises the configuration-change interrupt.
  virtual void SignalConfigChange() = 0;
  // The device hit a broken ring: set DEVICE_NEEDS_RESET and tell the driver (2.1.2).
  virtual void SetNeedsReset() = 0;
};

// The VMM thread's event loop as a device sees it: fds the device wants to hear about (rate
// limiter timers, a TAP, Unix sockets). Readiness calls the device's OnEventFd with the
// transport's lock held. Watch on an fd already watched changes its events.
class EventWatcher {
 public:
  virtual ~EventWatcher() = default;
  virtual Status Watch(int fd, uint32_t events) = 0;
  virtual void Unwatch(int fd) = 0;
};

struct ActiveQueues {
  const GuestMemory* memory = nullptr;
  std::vector<Queue>* queues = nullptr;
  uint64_t features = 0;  // acked by the driver
  DeviceCallbacks* callbacks = nullptr;
};

class VirtioDevice {
 public:
  explicit VirtioDevice(std::string name) : name_(std::move(name)) {}
  virtual ~VirtioDevice() = default;

  virtual uint32_t device_id() const = 0;
  virtual uint64_t offered_features() const = 0;
  virtual size_t queue_count() const = 0;
  virtual uint16_t queue_max_size() const { return kMaxQueueSize; }
  // Device-specific configuration space (offset 0 = register 0x100). Reads past the end give 0.
  virtual void ReadConfig(uint64_t offset, uint8_t* data, size_t len);
  virtual void WriteConfig(uint64_t offset, const uint8_t* data, size_t len);

  // DRIVER_OK with valid queues; the device may start processing.
  virtual void Activate(const ActiveQueues& active) { active_ = active; }
  // The driver wrote 0 to Status (or the device is being torn down): forget the queues.
  virtual void Reset() { active_ = ActiveQueues{}; }
  bool active() const { return active_.queues != nullptr; }
  // The driver notified queue `index` (through its ioeventfd).
  virtual void ProcessQueue(size_t index) = 0;
  // Called once, before the guest runs, with the VMM thread's event loop: the device watches
  // its fds (rate-limiter timers, a TAP, listening sockets) now, and others as they appear.
  virtual Status AttachEvents(EventWatcher* watcher) {
    watcher_ = watcher;
    return Ok();
  }
  // A watched fd is ready (`events` as epoll reports them).
  virtual void OnEventFd(int /*fd*/, uint32_t /*events*/) {}

  // The transport serving this device binds itself at its construction and unbinds in its
  // destructor: `mu` is the lock every transport call into the device holds, `callbacks` its
  // DeviceCallbacks, valid whether or not the driver has activated the device.
  void BindTransport(std::mutex* mu, DeviceCallbacks* callbacks) {
    transport_mu_ = mu;
    transport_ = callbacks;
  }
  // A no-op when another transport has bound the device since.
  void UnbindTransport(const DeviceCallbacks* callbacks) {
    if (transport_ != callbacks) return;
    transport_mu_ = nullptr;
    transport_ = nullptr;
  }

  const std::string& name() const { return name_; }
  // Hostile or malformed guest input detected by this device or its transport.
  uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }
  void CountError(const std::string& what);

 protected:
  // Answers what Queue::Pop reported: a chain error drops the chain (returned with length 0),
  // a ring error marks the device NEEDS_RESET. Returns true when the chain may be used.
  bool CheckPop(Queue& queue, QueueError error, const DescriptorChain& chain);
  // Takes the next chain to serve from `queue`. A malformed chain is answered through CheckPop
  // and skipped, a broken ring marks the device NEEDS_RESET, and an empty queue re-enables
  // notifications (and looks again for chains that raced in). False: nothing more to serve.
  bool NextChain(Queue& queue, DescriptorChain* chain);
  // Raises the interrupt if the driver wants one for what was added to `queue`.
  void MaybeSignal(Queue& queue);
  // For changes that come from the VMM thread rather than through the transport (PATCH
  // /drives): takes the lock the transport's calls hold, so they see the change whole. Owns no
  // lock when the device has no transport.
  std::unique_lock<std::mutex> LockLikeTransport() {
    return transport_mu_ ? std::unique_lock<std::mutex>(*transport_mu_)
                         : std::unique_lock<std::mutex>();
  }
  std::vector<uint8_t> config_space_;  // served by the default ReadConfig
  ActiveQueues active_;
  EventWatcher* watcher_ = nullptr;       // set by AttachEvents
  DeviceCallbacks* transport_ = nullptr;  // set by BindTransport

 private:
  std::string name_;
  std::atomic<uint64_t> errors_{0};
  std::mutex* transport_mu_ = nullptr;
};

}  // namespace ember::virtio

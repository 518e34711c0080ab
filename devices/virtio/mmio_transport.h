// MmioTransport: virtio over MMIO, version 2 (virtio 1.x section 4.2), for one device in one
// 4 KiB window. It implements the register file (feature negotiation, the status state machine,
// queue configuration, interrupt status and acknowledgement, config space and generation),
// activates the device on DRIVER_OK, and resets it when the driver writes 0 to Status.
//
// Threading: vCPU threads call Read/Write; the VMM thread calls OnQueueNotify/OnEventFd (queue
// notifications arrive through ioeventfds, so a notify write normally never reaches Write).
// One mutex covers the transport and its device.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "devices/bus.h"
#include "devices/irq_line.h"
#include "devices/virtio/virtio_device.h"

namespace ember::virtio {

// The transport's registers and queues: what a snapshot saves (with the device's own state).
struct MmioTransportState {
  uint32_t device_features_sel = 0;
  uint32_t driver_features_sel = 0;
  uint64_t acked_features = 0;
  uint32_t queue_sel = 0;
  uint32_t status = 0;
  uint32_t interrupt_status = 0;
  uint32_t config_generation = 0;
  bool activated = false;
  std::vector<QueueState> queues;
  bool operator==(const MmioTransportState&) const = default;
};

class MmioTransport : public BusDevice, private DeviceCallbacks {
 public:
  MmioTransport(std::shared_ptr<VirtioDevice> device, const GuestMemory* memory, IrqLine* irq);
  ~MmioTransport() override;
  MmioTransport(const MmioTransport&) = delete;
  MmioTransport& operator=(const MmioTransport&) = delete;

  void Read(uint64_t offset, uint8_t* data, size_t len) override;
  void Write(uint64_t offset, const uint8_t* data, size_t len) override;

  // The ioeventfd of queue `index` fired.
  void OnQueueNotify(uint32_t index);
  // Hands the device the VMM thread's event loop (once, before the guest runs).
  Status AttachEvents(EventWatcher* watcher);
  // An fd the device watches is ready.
  void OnEventFd(int fd, uint32_t events);
  // Announces a change of the device's configuration space (e.g. a resized drive): the
  // generation counter moves, and a live driver gets the configuration-change interrupt.
  void NotifyConfigChange();

  MmioTransportState Save();
  // Restores registers and queues and re-activates the device if it was active. The device's
  // own state must be restored first.
  Status Restore(const MmioTransportState& state);

  VirtioDevice& device() { return *device_; }
  std::mutex& mutex() { return mu_; }

 private:
  uint32_t ReadRegister(uint64_t offset);
  void WriteRegister(uint64_t offset, uint32_t value);
  void WriteStatus(uint32_t value);
  void ResetLocked();
  void TryActivate();
  Queue* SelectedQueue();
  bool QueueWritable();  // queue configuration is allowed (FEATURES_OK, not DRIVER_OK, not ready)

  // DeviceCallbacks (called by the device with mu_ held).
  void SignalUsed() override;
  void SignalConfigChange() override;
  void SetNeedsReset() override;

  std::mutex mu_;
  std::shared_ptr<VirtioDevice> device_;
  const GuestMemory* memory_;
  IrqLine* irq_;
  MmioTransportState regs_;  // `queues` is kept in queues_ below, not here
  std::vector<Queue> queues_;
};

}  // namespace ember::virtio

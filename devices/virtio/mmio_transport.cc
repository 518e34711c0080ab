#include "devices/virtio/mmio_transport.h"

#include <cstring>

#include "vmm/base/strings.h"

namespace ember::virtio {
namespace {

void SetLow(uint64_t* v, uint32_t lo) { *v = (*v & ~uint64_t{0xffffffff}) | lo; }
void SetHigh(uint64_t* v, uint32_t hi) { *v = (*v & 0xffffffff) | (uint64_t{hi} << 32); }

}  // namespace

MmioTransport::MmioTransport(std::shared_ptr<VirtioDevice> device, const GuestMemory* memory,
                             IrqLine* irq)
    : device_(std::move(device)), memory_(memory), irq_(irq) {
  for (size_t i = 0; i < device_->queue_count(); i++) queues_.emplace_back(device_->queue_max_size());
  device_->BindTransport(&mu_, this);
}

MmioTransport::~MmioTransport() { device_->UnbindTransport(this); }

void MmioTransport::Read(uint64_t offset, uint8_t* data, size_t len) {
  std::lock_guard<std::mutex> lock(mu_);
  if (offset >= kRegConfig) {
    device_->ReadConfig(offset - kRegConfig, data, len);
    return;
  }
  // 4.2.2.2: the driver uses 32-bit aligned accesses for the registers.
  if (len != 4 || offset % 4 != 0) {
    memset(data, 0, len);
    device_->CountError(StrFormat("a %zu-byte read of register 0x%llx", len,
                                  static_cast<unsigned long long>(offset)));
    return;
  }
  uint32_t v = ReadRegister(offset);
  memcpy(data, &v, 4);
}

void MmioTransport::Write(uint64_t offset, const uint8_t* data, size_t len) {
  std::lock_guard<std::mutex> lock(mu_);
  if (offset >= kRegConfig) {
    device_->WriteConfig(offset - kRegConfig, data, len);
    return;
  }
  if (len != 4 || offset % 4 != 0) {
    device_->CountError(StrFormat("a %zu-byte write of register 0x%llx", len,
                                  static_cast<unsigned long long>(offset)));
    return;
  }
  uint32_t v;
  memcpy(&v, data, 4);
  WriteRegister(offset, v);
}

Queue* MmioTransport::SelectedQueue() {
  return regs_.queue_sel < queues_.size() ? &queues_[regs_.queue_sel] : nullptr;
}

uint32_t MmioTransport::ReadRegister(uint64_t offset) {
  switch (offset) {
    case kRegMagic: return kMmioMagic;
    case kRegVersion: return kMmioVersion;
    case kRegDeviceId: return device_->device_id();
    case kRegVendorId: return kMmioVendorId;
    case kRegDeviceFeatures: {
      uint64_t f = device_->offered_features();
      if (regs_.device_features_sel == 0) return static_cast<uint32_t>(f);
      if (regs_.device_features_sel == 1) return static_cast<uint32_t>(f >> 32);
      return 0;
    }
    case kRegQueueNumMax: {
      Queue* q = SelectedQueue();
      return q ? q->state().max_size : 0;  // 0: the queue does not exist
    }
    case kRegQueueReady: {
      Queue* q = SelectedQueue();
      return q && q->state().ready ? 1 : 0;
    }
    case kRegInterruptStatus: return regs_.interrupt_status;
    case kRegStatus: return regs_.status;
    case kRegConfigGeneration: return regs_.config_generation;
    case kRegShmLenLow:
    case kRegShmLenHigh: return 0xffffffff;  // no shared memory regions
    case kRegShmBaseLow:
    case kRegShmBaseHigh: return 0xffffffff;
    default:
      device_->CountError(StrFormat("a read of register 0x%llx, which is write-only or unknown",
                                    static_cast<unsigned long long>(offset)));
      return 0;
  }
}

bool MmioTransport::QueueWritable() {
  Queue* q = SelectedQueue();
  // 4.2.3.2: queues are configured after FEATURES_OK and before DRIVER_OK, while not ready.
  return q && (regs_.status & kStatusFeaturesOk) && !(regs_.status & kStatusDriverOk) &&
         !q->state().ready;
}

void MmioTransport::WriteRegister(uint64_t offset, uint32_t value) {
  auto refused = [&](const char* why) {
    device_->CountError(StrFormat("a write of 0x%x to register 0x%llx %s", value,
                                  static_cast<unsigned long long>(offset), why));
  };
  switch (offset) {
    case kRegDeviceFeaturesSel: regs_.device_features_sel = value; return;
    case kRegDriverFeaturesSel: regs_.driver_features_sel = value; return;
    case kRegDriverFeatures:
      if (!(regs_.status & kStatusDriver) || (regs_.status & kStatusFeaturesOk)) {
        return refused("outside feature negotiation");
      }
      if (regs_.driver_features_sel == 0) {
        SetLow(&regs_.acked_features, value);
      } else if (regs_.driver_features_sel == 1) {
        SetHigh(&regs_.acked_features, value);
      } else if (value != 0) {
        refused("for a feature word that does not exist");
      }
      return;
    case kRegQueueSel: regs_.queue_sel = value; return;
    case kRegQueueNum:
    case kRegQueueDescLow:
    case kRegQueueDescHigh:
    case kRegQueueDriverLow:
    case kRegQueueDriverHigh:
    case kRegQueueDeviceLow:
    case kRegQueueDeviceHigh: {
      if (!QueueWritable()) return refused("while the selected queue cannot be configured");
      QueueState& q = SelectedQueue()->config();
      switch (offset) {
        case kRegQueueNum: q.size = static_cast<uint16_t>(value > 0xffff ? 0 : value); break;
        case kRegQueueDescLow: SetLow(&q.desc_addr, value); break;
        case kRegQueueDescHigh: SetHigh(&q.desc_addr, value); break;
        case kRegQueueDriverLow: SetLow(&q.avail_addr, value); break;
        case kRegQueueDriverHigh: SetHigh(&q.avail_addr, value); break;
        case kRegQueueDeviceLow: SetLow(&q.used_addr, value); break;
        case kRegQueueDeviceHigh: SetHigh(&q.used_addr, value); break;
      }
      return;
    }
    case kRegQueueReady: {
      Queue* q = SelectedQueue();
      if (!q) return refused("for a queue that does not exist");
      if (value == 0) {
        if (regs_.status & kStatusDriverOk) return refused("after DRIVER_OK");
        q->config().ready = false;
        return;
      }
      if (!QueueWritable()) return refused("while the selected queue cannot be configured");
      q->config().ready = true;
      return;
    }
    case kRegQueueNotify:
      // Valid queues notify through their ioeventfd and never get here (unless no ioeventfd is
      // registered, as in unit tests).
      if (!regs_.activated || value >= queues_.size() || !queues_[value].state().ready) {
        return refused("(a notification for a queue that is not live)");
      }
      if (!(regs_.status & kStatusNeedsReset)) device_->ProcessQueue(value);
      return;
    case kRegInterruptAck: regs_.interrupt_status &= ~value; return;
    case kRegStatus: WriteStatus(value); return;
    case kRegShmSel:
    case kRegQueueReset: return refused("(not offered)");
    default: return refused("(a read-only or unknown register)");
  }
}

void MmioTransport::WriteStatus(uint32_t value) {
  if (value == 0) {
    ResetLocked();
    return;
  }
  const uint32_t old = regs_.status;
  if (value & kStatusFailed) {
    // The driver gave up on the device; nothing to undo until it resets.
    regs_.status |= kStatusFailed;
    return;
  }
  // 2.1.1: the driver only ever adds bits, in this order (NEEDS_RESET is the device's own bit,
  // which a read-modify-write may echo back).
  const uint32_t driver_bits = value & ~kStatusNeedsReset;
  if (driver_bits & ~(kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk)) {
    return device_->CountError(StrFormat("status 0x%x sets unknown bits", value));
  }
  if ((old & ~kStatusNeedsReset) & ~driver_bits) {
    return device_->CountError(StrFormat("status 0x%x -> 0x%x clears bits", old, value));
  }
  uint32_t prefix = 0;
  for (uint32_t bit : {kStatusAcknowledge, kStatusDriver, kStatusFeaturesOk, kStatusDriverOk}) {
    if ((driver_bits & bit) && (driver_bits & prefix) != prefix) {
      return device_->CountError(StrFormat("status 0x%x -> 0x%x skips a step", old, value));
    }
    prefix |= bit;
  }
  const uint32_t added = driver_bits & ~old;
  if (added & kStatusFeaturesOk) {
    uint64_t offered = device_->offered_features();
    // 3.1.1 / 6.1: a modern device refuses a driver that did not accept VERSION_1 or accepted
    // what was not offered; the driver sees FEATURES_OK stay clear.
    if ((regs_.acked_features & ~offered) || !(regs_.acked_features & Bit(kFVersion1))) {
      device_->CountError(StrFormat("features 0x%llx refused (offered 0x%llx)",
                                    static_cast<unsigned long long>(regs_.acked_features),
                                    static_cast<unsigned long long>(offered)));
      regs_.status = old | (driver_bits & (kStatusAcknowledge | kStatusDriver));
      return;
    }
  }
  regs_.status = driver_bits | (old & kStatusNeedsReset);
  if (added & kStatusDriverOk) TryActivate();
}

void MmioTransport::TryActivate() {
  for (size_t i = 0; i < queues_.size(); i++) {
    Status s = queues_[i].Activate(memory_, regs_.acked_features);
    if (!s.ok()) {
      device_->CountError(StrFormat("queue %zu cannot be activated: %s", i,
                                    s.error().message.c_str()));
      for (Queue& q : queues_) q.Reset();
      SetNeedsReset();
      return;
    }
  }
  regs_.activated = true;
  device_->Activate(ActiveQueues{memory_, &queues_, regs_.acked_features, this});
  // Buffers made available before DRIVER_OK (allowed by 3.1.1 note) are served now.
  for (size_t i = 0; i < queues_.size(); i++) device_->ProcessQueue(i);
}

void MmioTransport::ResetLocked() {
  device_->Reset();
  for (Queue& q : queues_) q.Reset();
  uint32_t generation = regs_.config_generation;
  regs_ = MmioTransportState{};
  regs_.config_generation = generation;
}

void MmioTransport::OnQueueNotify(uint32_t index) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!regs_.activated || index >= queues_.size()) {
    device_->CountError(StrFormat("a notification for queue %u before the device is live", index));
    return;
  }
  if (regs_.status & kStatusNeedsReset) return;
  device_->ProcessQueue(index);
}

Status MmioTransport::AttachEvents(EventWatcher* watcher) {
  std::lock_guard<std::mutex> lock(mu_);
  return device_->AttachEvents(watcher);
}

void MmioTransport::OnEventFd(int fd, uint32_t events) {
  std::lock_guard<std::mutex> lock(mu_);
  device_->OnEventFd(fd, events);
}

void MmioTransport::NotifyConfigChange() {
  std::lock_guard<std::mutex> lock(mu_);
  SignalConfigChange();
}

void MmioTransport::SignalUsed() {
  regs_.interrupt_status |= kInterruptUsedBuffer;
  irq_->Trigger();
}

void MmioTransport::SignalConfigChange() {
  // 4.2.2: ConfigGeneration changes whenever the configuration does, so a driver reading a
  // multi-field config space across the change retries.
  regs_.config_generation++;
  // A driver that is not live reads the configuration when it comes up (as Firecracker, which
  // interrupts only an activated device).
  if (!regs_.activated) return;
  regs_.interrupt_status |= kInterruptConfigChange;
  irq_->Trigger();
}

void MmioTransport::SetNeedsReset() {
  if (regs_.status & kStatusNeedsReset) return;
  regs_.status |= kStatusNeedsReset;
  // 2.1.2: the device notifies the driver with a configuration-change interrupt.
  regs_.interrupt_status |= kInterruptConfigChange;
  irq_->Trigger();
}

MmioTransportState MmioTransport::Save() {
  std::lock_guard<std::mutex> lock(mu_);
  MmioTransportState s = regs_;
  s.queues.clear();
  for (const Queue& q : queues_) s.queues.push_back(q.state());
  return s;
}

Status MmioTransport::Restore(const MmioTransportState& state) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state.queues.size() != queues_.size()) {
    return Error{StrFormat("%s: the saved state has %zu queues, the device %zu",
                           device_->name().c_str(), state.queues.size(), queues_.size())};
  }
  for (size_t i = 0; i < queues_.size(); i++) {
    if (state.queues[i].max_size != queues_[i].state().max_size) {
      return Error{StrFormat("%s: queue %zu max size differs", device_->name().c_str(), i)};
    }
  }
  device_->Reset();
  regs_ = state;
  regs_.queues.clear();
  for (size_t i = 0; i < queues_.size(); i++) {
    queues_[i].Reset();
    QueueState saved = state.queues[i];
    queues_[i].config() = saved;
    if (state.activated) TRY_STATUS(queues_[i].Activate(memory_, state.acked_features));
    queues_[i].config() = saved;  // Activate recomputed event_idx/indirect from the same features
  }
  if (state.activated) {
    device_->Activate(ActiveQueues{memory_, &queues_, regs_.acked_features, this});
  }
  return Ok();
}

}  // namespace ember::virtio

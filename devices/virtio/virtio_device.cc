#include "devices/virtio/virtio_device.h"

#include <cstring>

#include "vmm/base/log.h"
#include "vmm/base/strings.h"

namespace ember::virtio {
namespace {
// Hostile input is logged for the first few occurrences per device only, so a guest cannot fill
// the host's disk through the log; the count goes on.
constexpr uint64_t kLoggedErrors = 10;
}  // namespace

void VirtioDevice::ReadConfig(uint64_t offset, uint8_t* data, size_t len) {
  for (size_t i = 0; i < len; i++) {
    data[i] = offset + i < config_space_.size() ? config_space_[offset + i] : 0;
  }
}

void VirtioDevice::WriteConfig(uint64_t offset, const uint8_t* /*data*/, size_t len) {
  CountError(StrFormat("a write of %zu bytes to read-only config space at 0x%llx", len,
                       static_cast<unsigned long long>(offset)));
}

void VirtioDevice::CountError(const std::string& what) {
  uint64_t n = errors_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n <= kLoggedErrors) {
    LOG_WARN("%s: %s%s", name_.c_str(), what.c_str(),
             n == kLoggedErrors ? " (further guest errors on this device are only counted)" : "");
  }
}

bool VirtioDevice::CheckPop(Queue& queue, QueueError error, const DescriptorChain& chain) {
  if (error == QueueError::kNone) return true;
  CountError(QueueErrorName(error));
  if (IsRingError(error)) {
    active_.callbacks->SetNeedsReset();
  } else {
    // Dropped: the descriptors go back to the driver, with nothing written.
    queue.AddUsed(chain.head, 0);
    MaybeSignal(queue);
  }
  return false;
}

bool VirtioDevice::NextChain(Queue& queue, DescriptorChain* chain) {
  while (true) {
    QueueError error;
    if (!queue.Pop(chain, &error)) {
      if (error != QueueError::kNone) {
        CheckPop(queue, error, *chain);
        return false;
      }
      if (queue.EnableNotification()) continue;
      return false;
    }
    if (CheckPop(queue, error, *chain)) return true;
  }
}

void VirtioDevice::MaybeSignal(Queue& queue) {
  if (queue.NeedsInterrupt()) active_.callbacks->SignalUsed();
}

}  // namespace ember::virtio

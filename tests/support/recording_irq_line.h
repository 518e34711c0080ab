// RecordingIrqLine: an IrqLine for tests that counts the edges a device raised.
#pragma once

#include <atomic>
#include <cstdint>

#include "devices/irq_line.h"

namespace ember {

class RecordingIrqLine : public IrqLine {
 public:
  void Trigger() override { count_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  // Returns the edges seen since the last call and starts counting afresh.
  uint64_t TakeCount() { return count_.exchange(0, std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> count_{0};
};

}  // namespace ember

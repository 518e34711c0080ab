// BootTimer: Firecracker's boot-time probe (facts 2.7). An MMIO page (0xC000_0000 on x86, with
// --boot-timer); when the guest's init writes the single byte 123 at offset 0, the time since
// the VMM started booting is logged at Info level:
//   "Guest-boot-time = <us> us <ms> ms, <cpu_us> CPU us <ms> CPU ms"
// Other writes are ignored and reads return 0.
//
// Thread safety: every public method takes the device's mutex (LOG_INFO is called with it held;
// the logger never calls back into devices).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>

#include "devices/bus.h"

namespace ember {

struct BootTime {
  uint64_t wall_us = 0;  // CLOCK_MONOTONIC since the start timestamp
  uint64_t cpu_us = 0;   // process CPU time (CLOCK_PROCESS_CPUTIME_ID) since the start
};

class BootTimer : public BusDevice {
 public:
  static constexpr uint8_t kMagicValue = 123;  // what the guest's init writes
  static constexpr uint64_t kLen = 0x1000;     // one MMIO page

  // `start_us`: CLOCK_MONOTONIC in microseconds when boot began; `start_cpu_us`: the process's
  // CLOCK_PROCESS_CPUTIME_ID in microseconds at the same moment.
  BootTimer(uint64_t start_us, uint64_t start_cpu_us);

  void Read(uint64_t offset, uint8_t* data, size_t len) override;
  void Write(uint64_t offset, const uint8_t* data, size_t len) override;

  // The last measurement, once the guest has written 123.
  std::optional<BootTime> Measured() const;


 private:
  const uint64_t start_us_;
  const uint64_t start_cpu_us_;
  mutable std::mutex mu_;
  std::optional<BootTime> measured_;
};

}  // namespace ember

#include "devices/legacy/boot_timer.h"

#include <cstring>

#include "vmm/base/clock.h"
#include "vmm/base/log.h"

namespace ember {

BootTimer::BootTimer(uint64_t start_us, uint64_t start_cpu_us)
    : start_us_(start_us), start_cpu_us_(start_cpu_us) {}

void BootTimer::Read(uint64_t /*offset*/, uint8_t* data, size_t len) {
  if (len) memset(data, 0, len);
}

void BootTimer::Write(uint64_t offset, const uint8_t* data, size_t len) {
  // Only the exact access Firecracker's init.c makes counts: one byte, 123, at offset 0.
  if (offset != 0 || len != 1 || data[0] != kMagicValue) return;
  const uint64_t now_us = MonotonicUs();
  const uint64_t now_cpu_us = ProcessCpuUs();
  BootTime t;
  t.wall_us = now_us > start_us_ ? now_us - start_us_ : 0;
  t.cpu_us = now_cpu_us > start_cpu_us_ ? now_cpu_us - start_cpu_us_ : 0;
  std::lock_guard<std::mutex> lock(mu_);
  measured_ = t;
  LOG_INFO(
      "Guest-boot-time = %llu us %llu ms, %llu CPU us %llu CPU ms",
      static_cast<unsigned long long>(t.wall_us), static_cast<unsigned long long>(t.wall_us / 1000),
      static_cast<unsigned long long>(t.cpu_us), static_cast<unsigned long long>(t.cpu_us / 1000));
}

std::optional<BootTime> BootTimer::Measured() const {
  std::lock_guard<std::mutex> lock(mu_);
  return measured_;
}

}  // namespace ember

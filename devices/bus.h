// Bus: maps address ranges (I/O ports or guest-physical MMIO addresses) to devices. The VMM keeps
// one for port I/O and one for MMIO; vCPU threads route every KVM_EXIT_IO / KVM_EXIT_MMIO here.
//
// Threading: all devices are inserted while the VM is built, before any vCPU thread starts;
// after that the map is read-only and Read/Write may be called from any number of threads with
// no bus-level lock. Concurrency inside a device is the device's business: every BusDevice in
// devices/ locks its own std::mutex in each public method, because vCPU threads and the VMM
// thread (e.g. console input to the UART) call it at the same time.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "vmm/base/result.h"

namespace ember {

class BusDevice {
 public:
  virtual ~BusDevice() = default;
  // `offset` is relative to the base the device was inserted at; [offset, offset + len) lies
  // inside the inserted range. `len` is whatever width the guest used (KVM passes 1, 2, 4 or 8;
  // a device must cope with any value, including 0). A read must fill all `len` bytes.
  virtual void Read(uint64_t offset, uint8_t* data, size_t len) = 0;
  virtual void Write(uint64_t offset, const uint8_t* data, size_t len) = 0;
};

class Bus {
 public:
  Bus() = default;
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;

  // Maps [base, base + len) to `device`. Fails on a null device, a zero length, a range that
  // wraps past 2^64, or an overlap with a range already mapped. Not thread-safe: call before
  // the vCPUs start.
  Status Insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t len);

  // Dispatch a guest access. Return false when no single range holds all of
  // [addr, addr + len) (an access straddling a range end counts as unmapped); an unmapped read
  // fills `data` with 0xff, as an absent ISA device floats the data lines high.
  bool Read(uint64_t addr, uint8_t* data, size_t len);
  bool Write(uint64_t addr, const uint8_t* data, size_t len);

  uint64_t unmapped_reads() const { return unmapped_reads_.load(std::memory_order_relaxed); }
  uint64_t unmapped_writes() const { return unmapped_writes_.load(std::memory_order_relaxed); }
  size_t size() const { return ranges_.size(); }

 private:
  struct Range {
    uint64_t base;
    uint64_t len;
    std::shared_ptr<BusDevice> device;
  };

  // The range holding all of [addr, addr + len), or null.
  const Range* Find(uint64_t addr, size_t len) const;

  std::vector<Range> ranges_;  // sorted by base, never overlapping
  std::atomic<uint64_t> unmapped_reads_{0};
  std::atomic<uint64_t> unmapped_writes_{0};
};

}  // namespace ember

// The kernel command line: space-separated tokens, at most kCmdlineMaxBytes including the NUL
// (Linux boot protocol, COMMAND_LINE_SIZE on x86; Firecracker CMDLINE_MAX_SIZE), written at
// kCmdlineAddr.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "vmm/base/result.h"
#include "vmm/memory/guest_memory.h"

namespace ember {

class KernelCmdline {
 public:
  // Appends `args` (one or more space-separated tokens) after a single space. Rejects an
  // embedded NUL and any growth beyond kCmdlineMaxBytes; on error nothing is appended.
  Status Append(std::string_view args);

  // "virtio_mmio.device=<size>@0x<base>:<irq>", the syntax of Linux's virtio_mmio module
  // parameter (drivers/virtio/virtio_mmio.c; facts 2.5), e.g. "virtio_mmio.device=4K@0xc0001000:5".
  Status AddVirtioMmioDevice(uint64_t base, uint64_t size, uint32_t irq);

  const std::string& str() const { return line_; }
  // Bytes the guest sees, including the NUL.
  uint32_t size_with_nul() const { return static_cast<uint32_t>(line_.size() + 1); }

  // Writes the line and its NUL at `addr` (kCmdlineAddr by default).
  Status WriteTo(const GuestMemory& memory, uint64_t addr) const;

 private:
  std::string line_;
};

// "4K", "2M", "1G" when the size is a whole multiple, else decimal bytes (Linux memparse).
std::string FormatMemSize(uint64_t bytes);

}  // namespace ember

// What a kernel loader reports after copying an image into guest memory.
#pragma once

#include <cstdint>
#include <vector>

#include "vmm/arch/x86_64/boot_protocol.h"

namespace ember {

enum class KernelFormat { kElf, kBzImage };

struct LoadedKernel {
  KernelFormat format = KernelFormat::kElf;
  BootProtocol protocol = BootProtocol::kLinux64;
  uint64_t entry = 0;       // guest-physical address of the first instruction
  uint64_t load_start = 0;  // lowest guest-physical byte written
  uint64_t load_end = 0;    // one past the highest byte the kernel owns (initrd goes above)
  // bzImage only: the setup header bytes from offset 0x1f1, to seed the zero page.
  std::vector<uint8_t> setup_header;
};

}  // namespace ember

// The initrd goes at the top of RAM below the MMIO gap, page-aligned down (Firecracker
// initrd_load_addr, facts 2.1), so it never collides with a kernel loaded low.
#pragma once

#include <cstdint>

#include "vmm/base/result.h"
#include "vmm/boot/image_source.h"
#include "vmm/memory/guest_memory.h"

namespace ember {

inline constexpr uint64_t kInitrdAlignment = 4096;

struct InitrdPlacement {
  uint64_t addr = 0;
  uint64_t size = 0;
};

// align_down(low_mem_end - size, 4096); error when it does not fit above `kernel_end`.
Result<uint64_t> InitrdAddress(uint64_t low_mem_end, uint64_t size, uint64_t kernel_end);

// Places and copies the initrd; `kernel_end` is LoadedKernel::load_end.
Result<InitrdPlacement> LoadInitrd(const GuestMemory& memory, const ImageSource& image,
                                   uint64_t kernel_end);

}  // namespace ember

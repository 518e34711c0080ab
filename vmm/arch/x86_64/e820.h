// The guest's physical memory map, shared by the zero page (boot_params.e820_table) and the PVH
// memmap (facts 2.1, Firecracker configure_64bit_boot; ACPI "Address Range Types").
#pragma once

#include <cstdint>
#include <vector>

#include "vmm/memory/guest_memory.h"

namespace ember {

inline constexpr uint32_t kE820Ram = 1;
inline constexpr uint32_t kE820Reserved = 2;

struct E820Entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
};

// In address order: [0, 0x9fc00) RAM, [0x9fc00, 0xe0000) reserved, each RAM range from
// max(1 MiB, start) RAM, and the PCIe MMCONFIG window reserved. [0xe0000, 1 MiB) is left out.
// `ram` is the guest's RAM (RamRanges / RamRangesOf), which must start at 0 and cover 1 MiB.
std::vector<E820Entry> BuildE820Map(const std::vector<GuestRange>& ram);

}  // namespace ember

// The Xen PVH start-of-day structures (xen/include/public/arch-x86/hvm/start_info.h, version 1;
// Firecracker docs/pvh.md): hvm_start_info at kPvhInfoAddr, the memory map at kPvhMemmapAddr,
// the module list (the initrd) at kPvhModlistAddr.
#pragma once

#include <cstdint>
#include <vector>

#include "vmm/arch/x86_64/e820.h"
#include "vmm/base/result.h"
#include "vmm/memory/guest_memory.h"

namespace ember {

inline constexpr uint32_t kPvhStartMagic = 0x336ec578;  // XEN_HVM_START_MAGIC_VALUE
inline constexpr uint32_t kPvhStartInfoVersion = 1;     // version 1 adds the memmap fields

struct HvmStartInfo {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;
  uint32_t memmap_entries;
  uint32_t reserved;
};
static_assert(sizeof(HvmStartInfo) == 56);

struct HvmModlistEntry {
  uint64_t paddr;
  uint64_t size;
  uint64_t cmdline_paddr;
  uint64_t reserved;
};
static_assert(sizeof(HvmModlistEntry) == 32);

struct HvmMemmapEntry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;  // E820 types
  uint32_t reserved;
};
static_assert(sizeof(HvmMemmapEntry) == 24);

// The memmap shares the zero page's 4 KiB page at 0x7000; the cap matches the zero page's e820.
inline constexpr size_t kPvhMaxMemmapEntries = 128;

struct PvhInput {
  uint64_t cmdline_addr = 0;
  uint64_t initrd_addr = 0;
  uint64_t initrd_size = 0;  // 0: no module
  uint64_t acpi_rsdp_addr = 0;
  std::vector<E820Entry> e820;
};

// Writes hvm_start_info, the memmap and (with an initrd) one module entry.
Status WritePvhStartInfo(const GuestMemory& memory, const PvhInput& input);

}  // namespace ember

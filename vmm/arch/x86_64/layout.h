// The x86-64 guest physical address map. Every address follows Firecracker's
// arch/x86_64/layout.rs (firecracker-facts.md section 2.1) so that guests see the same machine.
#pragma once

#include <cstdint>
#include <vector>

#include "vmm/memory/guest_memory.h"

namespace ember {

inline constexpr uint64_t kKiB = 1024;
inline constexpr uint64_t kMiB = 1024 * kKiB;
inline constexpr uint64_t kGiB = 1024 * kMiB;

// Low memory, below 1 MiB (facts 2.1).
inline constexpr uint64_t kBootGdtAddr = 0x500;      // 4-entry boot GDT (BOOT_GDT_OFFSET)
inline constexpr uint64_t kBootIdtAddr = 0x520;      // one zero u64, limit 7 (BOOT_IDT_OFFSET)
inline constexpr uint64_t kPvhInfoAddr = 0x6000;     // hvm_start_info; rbx points here
inline constexpr uint64_t kPvhModlistAddr = 0x6040;  // PVH module list (the initrd)
inline constexpr uint64_t kZeroPageAddr = 0x7000;    // boot_params; also the PVH memmap
inline constexpr uint64_t kPvhMemmapAddr = kZeroPageAddr;  // exclusive with the zero page
inline constexpr uint64_t kBootStackPointer = 0x8ff0;      // initial rsp/rbp
inline constexpr uint64_t kPml4Addr = 0x9000;
inline constexpr uint64_t kPdptAddr = 0xa000;
inline constexpr uint64_t kPdAddr = 0xb000;
inline constexpr uint64_t kCmdlineAddr = 0x20000;   // CMDLINE_START
inline constexpr uint64_t kCmdlineMaxBytes = 2048;  // CMDLINE_MAX_SIZE, including the NUL
inline constexpr uint64_t kEbdaStart = 0x9fc00;     // start of the reserved "system memory"
inline constexpr uint64_t kSystemMemEnd = 0xe0000;  // [kEbdaStart, here) reserved in e820
inline constexpr uint64_t kRsdpAddr = 0xe0000;      // ACPI RSDP (RSDP_ADDR)
inline constexpr uint64_t kHimemStart = 0x100000;   // 1 MiB: kernel load address

// The 32-bit MMIO gap: RAM that would fall in [3 GiB, 4 GiB) moves above 4 GiB.
inline constexpr uint64_t kMmioGapStart = 0xC000'0000;
inline constexpr uint64_t kMmioGapEnd = 0x1'0000'0000;
inline constexpr uint64_t kBootTimerAddr = 0xC000'0000;    // BOOT_DEVICE_MEM_START (facts 2.7)
inline constexpr uint64_t kVirtioMmioStart = 0xC000'1000;  // MEM_32BIT_DEVICES_START
inline constexpr uint64_t kMmioLen = 0x1000;               // MMIO_LEN: 4 KiB per device
inline constexpr uint64_t kPcieMmconfigStart = 0xEEC0'0000;
inline constexpr uint64_t kPcieMmconfigSize = 256 * kMiB;
inline constexpr uint64_t kIoapicAddr = 0xFEC0'0000;
inline constexpr uint64_t kLapicAddr = 0xFEE0'0000;
inline constexpr uint64_t kTssAddr = 0xFFFB'D000;  // KVM_SET_TSS_ADDR (3 pages)

// Guest RAM for `mem_bytes` of memory: [0, min(mem, 3 GiB)) and, when mem > 3 GiB, the rest at
// [4 GiB, 4 GiB + rest). Empty when mem_bytes is 0.
std::vector<GuestRange> RamRanges(uint64_t mem_bytes);

// End of the RAM that starts at address 0 (never beyond kMmioGapStart); 0 when there is none.
// This is where the initrd is placed below (Firecracker's initrd_load_addr).
uint64_t LowMemEnd(const GuestMemory& memory);
uint64_t LowMemEnd(const std::vector<GuestRange>& ram);

// The RAM ranges of an existing GuestMemory, in address order.
std::vector<GuestRange> RamRangesOf(const GuestMemory& memory);

}  // namespace ember

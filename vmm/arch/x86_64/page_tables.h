// Identity page tables for the Linux 64-bit entry (facts 2.1; Intel SDM vol. 3, 4.5 "4-level
// paging"): long mode needs paging on, and the kernel's startup_64 only needs its own image and
// the zero page mapped 1:1 until it builds its tables. 0-1 GiB with 2 MiB pages covers both.
#pragma once

#include <cstdint>

#include "vmm/memory/guest_memory.h"

namespace ember {

inline constexpr uint64_t kPtePresent = 1u << 0;
inline constexpr uint64_t kPteWritable = 1u << 1;
inline constexpr uint64_t kPtePageSize = 1u << 7;  // PDE maps a 2 MiB page
inline constexpr size_t kPageTableEntries = 512;

// PML4[0] -> PDPT | P|RW, PDPT[0] -> PD | P|RW, PD[i] = (i << 21) | P|RW|PS. CR3 = kPml4Addr.
Status WriteIdentityPageTables(const GuestMemory& memory);

}  // namespace ember

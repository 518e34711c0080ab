// The boot GDT and IDT (facts 2.3; Intel SDM vol. 3, 3.4.5 "Segment Descriptors"). The guest
// kernel installs its own tables early; these only have to carry it through the first
// instructions, and the kvm_segment values KVM gets must match the descriptors in memory.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <cstdint>

#include "vmm/arch/x86_64/boot_protocol.h"
#include "vmm/memory/guest_memory.h"

namespace ember {

inline constexpr size_t kBootGdtEntries = 4;  // NULL, CODE, DATA, TSS
using BootGdt = std::array<uint64_t, kBootGdtEntries>;

// Indices into BootGdt; the selector is index * 8 (TI = 0, RPL = 0).
inline constexpr size_t kGdtCodeIndex = 1;
inline constexpr size_t kGdtDataIndex = 2;
inline constexpr size_t kGdtTssIndex = 3;
inline constexpr uint16_t kBootIdtLimit = 7;  // one 8-byte zero entry

// Packs a descriptor from the 16-bit "flags" word Firecracker and Linux use: bits 0-7 are the
// access byte (P, DPL, S, type), bits 12-15 the G/DB/L/AVL nibble.
uint64_t GdtEntry(uint16_t flags, uint32_t base, uint32_t limit);

// Linux 64-bit: CODE 0xa09b (long mode), DATA 0xc093, TSS 0x808b, limits 0xfffff.
// PVH: CODE 0xc09b and DATA 0xc093 flat 4 GiB, TSS 0x008b limit 0x67.
BootGdt MakeBootGdt(BootProtocol protocol);

// The kvm_segment KVM must load for GDT entry `index` of `gdt` (selector = index * 8).
kvm_segment SegmentFromGdt(const BootGdt& gdt, size_t index);

// Writes the GDT at kBootGdtAddr and the zero IDT entry at kBootIdtAddr.
Status WriteGdtAndIdt(const GuestMemory& memory, const BootGdt& gdt);

}  // namespace ember

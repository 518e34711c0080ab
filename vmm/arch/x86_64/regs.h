// Initial vCPU register state (facts 2.3, Firecracker arch/x86_64/regs.rs). The same values go to
// every vCPU; the APs then wait for INIT/SIPI in KVM and never run from them.
#pragma once

#include <linux/kvm.h>

#include <cstdint>

#include "vmm/arch/x86_64/boot_protocol.h"

namespace ember {

// Control register and EFER bits (Intel SDM vol. 3, 2.5 and 2.2.1).
inline constexpr uint64_t kCr0Pe = 1u << 0;
inline constexpr uint64_t kCr0Et = 1u << 4;
inline constexpr uint64_t kCr0Pg = 1u << 31;
inline constexpr uint64_t kCr4Pae = 1u << 5;
inline constexpr uint64_t kEferLme = 1u << 8;
inline constexpr uint64_t kEferLma = 1u << 10;
inline constexpr uint64_t kRflagsReserved = 1u << 1;  // bit 1 always reads 1

// Linux 64-bit: rip = entry, rsp = rbp = kBootStackPointer, rsi = kZeroPageAddr, rflags = 2.
kvm_regs Linux64Regs(uint64_t entry);
// PVH: rip = entry, rbx = kPvhInfoAddr, rflags = 2.
kvm_regs PvhRegs(uint64_t entry);
kvm_regs BootRegs(BootProtocol protocol, uint64_t entry);

// Applies the boot state to sregs read from the vCPU (KVM_GET_SREGS), leaving the fields KVM
// owns (apic_base, interrupt bitmap) alone.
// Linux 64-bit: segments from the boot GDT, GDT/IDT registers, CR0 |= PE|PG, CR4 |= PAE,
// EFER |= LME|LMA, CR3 = kPml4Addr.
void ApplyLinux64Sregs(kvm_sregs* sregs);
// PVH: flat 32-bit segments, CR0 = PE|ET, CR4 = 0, paging and long mode off.
void ApplyPvhSregs(kvm_sregs* sregs);
void ApplyBootSregs(BootProtocol protocol, kvm_sregs* sregs);

// x87 and SSE state at reset: FCW 0x37f, MXCSR 0x1f80 (Intel SDM vol. 1, 8.1.5 and 10.2.3).
kvm_fpu DefaultFpu();

}  // namespace ember

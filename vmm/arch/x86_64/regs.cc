#include "vmm/arch/x86_64/regs.h"

#include "vmm/arch/x86_64/gdt.h"
#include "vmm/arch/x86_64/layout.h"

namespace ember {
namespace {

void ApplySegmentsAndTables(BootProtocol protocol, kvm_sregs* sregs) {
  const BootGdt gdt = MakeBootGdt(protocol);
  const kvm_segment code = SegmentFromGdt(gdt, kGdtCodeIndex);
  const kvm_segment data = SegmentFromGdt(gdt, kGdtDataIndex);
  sregs->cs = code;
  sregs->ds = data;
  sregs->es = data;
  sregs->fs = data;
  sregs->gs = data;
  sregs->ss = data;
  sregs->tr = SegmentFromGdt(gdt, kGdtTssIndex);
  sregs->gdt.base = kBootGdtAddr;
  sregs->gdt.limit = static_cast<uint16_t>(sizeof(BootGdt) - 1);
  sregs->idt.base = kBootIdtAddr;
  sregs->idt.limit = kBootIdtLimit;
}

}  // namespace

kvm_regs Linux64Regs(uint64_t entry) {
  kvm_regs r{};
  r.rip = entry;
  r.rsp = kBootStackPointer;
  r.rbp = kBootStackPointer;
  r.rsi = kZeroPageAddr;  // boot protocol: rsi holds the boot_params address
  r.rflags = kRflagsReserved;
  return r;
}

kvm_regs PvhRegs(uint64_t entry) {
  kvm_regs r{};
  r.rip = entry;
  r.rbx = kPvhInfoAddr;  // PVH ABI: ebx holds the hvm_start_info address
  r.rflags = kRflagsReserved;
  return r;
}

kvm_regs BootRegs(BootProtocol protocol, uint64_t entry) {
  return protocol == BootProtocol::kPvh ? PvhRegs(entry) : Linux64Regs(entry);
}

void ApplyLinux64Sregs(kvm_sregs* sregs) {
  ApplySegmentsAndTables(BootProtocol::kLinux64, sregs);
  sregs->cr0 |= kCr0Pe | kCr0Pg;
  sregs->cr3 = kPml4Addr;
  sregs->cr4 |= kCr4Pae;
  sregs->efer |= kEferLme | kEferLma;
}

void ApplyPvhSregs(kvm_sregs* sregs) {
  ApplySegmentsAndTables(BootProtocol::kPvh, sregs);
  // PVH ABI: 32-bit protected mode with paging disabled.
  sregs->cr0 = kCr0Pe | kCr0Et;
  sregs->cr3 = 0;
  sregs->cr4 = 0;
  sregs->efer &= ~(kEferLme | kEferLma);
}

void ApplyBootSregs(BootProtocol protocol, kvm_sregs* sregs) {
  if (protocol == BootProtocol::kPvh)
    ApplyPvhSregs(sregs);
  else
    ApplyLinux64Sregs(sregs);
}

kvm_fpu DefaultFpu() {
  kvm_fpu fpu{};
  fpu.fcw = 0x37f;
  fpu.mxcsr = 0x1f80;
  return fpu;
}

}  // namespace ember

// MSR values written before the first KVM_RUN (facts 2.3; Firecracker msr.rs
// create_boot_msr_entries, docs/cpu_templates/boot-protocol.md).
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

namespace ember {

// MSR indices (Intel SDM vol. 4, chapter 2).
inline constexpr uint32_t kMsrIa32Tsc = 0x10;
inline constexpr uint32_t kMsrIa32SysenterCs = 0x174;
inline constexpr uint32_t kMsrIa32SysenterEsp = 0x175;
inline constexpr uint32_t kMsrIa32SysenterEip = 0x176;
inline constexpr uint32_t kMsrIa32MiscEnable = 0x1a0;
inline constexpr uint32_t kMsrMtrrDefType = 0x2ff;
inline constexpr uint32_t kMsrStar = 0xc000'0081;
inline constexpr uint32_t kMsrLstar = 0xc000'0082;
inline constexpr uint32_t kMsrCstar = 0xc000'0083;
inline constexpr uint32_t kMsrSyscallMask = 0xc000'0084;
inline constexpr uint32_t kMsrKernelGsBase = 0xc000'0102;

inline constexpr uint64_t kMiscEnableFastString = 1u << 0;
inline constexpr uint64_t kMtrrEnable = 1u << 11;
inline constexpr uint64_t kMtrrTypeWriteBack = 6;

// SYSENTER_CS/ESP/EIP, STAR, CSTAR, KERNEL_GS_BASE, SYSCALL_MASK, LSTAR, TSC = 0;
// MISC_ENABLE = FAST_STRING; MTRRdefType = enabled, default write-back.
std::vector<kvm_msr_entry> BootMsrEntries();

}  // namespace ember

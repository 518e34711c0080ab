#include "vmm/arch/x86_64/msrs.h"

namespace ember {
namespace {

kvm_msr_entry Msr(uint32_t index, uint64_t data) {
  kvm_msr_entry e{};
  e.index = index;
  e.data = data;
  return e;
}

}  // namespace

std::vector<kvm_msr_entry> BootMsrEntries() {
  return {
      Msr(kMsrIa32SysenterCs, 0),
      Msr(kMsrIa32SysenterEsp, 0),
      Msr(kMsrIa32SysenterEip, 0),
      // The syscall MSRs start cleared; the guest kernel programs them.
      Msr(kMsrStar, 0),
      Msr(kMsrCstar, 0),
      Msr(kMsrKernelGsBase, 0),
      Msr(kMsrSyscallMask, 0),
      Msr(kMsrLstar, 0),
      Msr(kMsrIa32Tsc, 0),
      Msr(kMsrIa32MiscEnable, kMiscEnableFastString),
      // Without enabled MTRRs Linux treats all memory as uncached and boots very slowly.
      Msr(kMsrMtrrDefType, kMtrrEnable | kMtrrTypeWriteBack),
  };
}

}  // namespace ember

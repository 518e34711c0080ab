// SeccompFilterConfig -> classic BPF, with libseccomp, as Firecracker's seccompiler does
// (src/seccompiler/src/lib.rs): one seccomp_init per filter, one rule per JSON rule, the result
// exported as the program the kernel takes. Compiled at startup on the main thread; the programs
// are installed later, per thread (vmm/seccomp/seccomp.h).
#pragma once

#include <linux/filter.h>

#include <vector>

#include "vmm/base/result.h"
#include "vmm/config/seccomp_config.h"

namespace ember {

// The kernel's limit on one program (BPF_MAXINSNS, Firecracker's BPF_MAX_LEN).
inline constexpr size_t kMaxBpfInstructions = 4096;

struct BpfProgram {
  std::vector<sock_filter> instructions;
};

// x86_64 only: a syscall of another architecture (or x32) takes the kill-process action, as
// libseccomp's default for a foreign architecture. Errors name the rule and its syscall:
// "rule 3 (\"openat\"): unknown system call".
//
// Conditions: a "dword" eq compares the argument's low 32 bits (Firecracker does the same: musl
// leaves garbage in the upper half of ioctl's request); every other operator compares the
// whole 64-bit argument with the value, as libseccomp does (and Firecracker with it).
//
// Rules appear in the program in file order, first rule first: a profile lists the hot syscalls
// (KVM_RUN's ioctl on a vCPU, epoll on the VMM) first.
Result<BpfProgram> CompileSeccompFilter(const SeccompFilterConfig& config);

}  // namespace ember

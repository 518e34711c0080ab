// Per-thread seccomp filters, installed as Firecracker installs them (firecracker-facts §6,
// src/vmm/src/seccomp.rs): prctl(PR_SET_NO_NEW_PRIVS) then seccomp(SECCOMP_SET_MODE_FILTER) on
// the calling thread only (no TSYNC), at three points:
//   - api:  the API listen thread before it serves; its on-demand worker threads inherit it;
//   - vcpu: each vCPU thread before its first KVM_RUN;
//   - vmm:  the VMM (main) thread once the VM is built and its vCPUs started, before the event
//           loop. Pre-boot API requests are served on that thread before this, unfiltered.
//
// A syscall no rule allows traps (default_action "trap" -> SIGSYS): the handler writes one line
// naming the syscall and the thread to the log (and stderr), sets seccomp.num_faults, writes a
// last metrics line when metrics are configured (best effort: the flush takes a lock and
// allocates, as Firecracker's does), and _exits with 148 (Firecracker's BadSyscall).
#pragma once

#include <string>

#include "vmm/base/result.h"
#include "vmm/config/seccomp_config.h"
#include "vmm/seccomp/compiler.h"

namespace ember {

// Firecracker's FcExitCode::BadSyscall.
inline constexpr int kExitBadSyscall = 148;

struct SeccompFilters {
  BpfProgram vmm;
  BpfProgram api;
  BpfProgram vcpu;
  const BpfProgram& operator[](SeccompRole role) const {
    return role == SeccompRole::kVmm ? vmm : role == SeccompRole::kApi ? api : vcpu;
  }
};

Result<SeccompFilters> CompileSeccompProfiles(const SeccompProfiles& profiles);

// Installs `program` on the calling thread, after setting its no-new-privs bit.
Status InstallSeccompFilter(const BpfProgram& program);

// The process's filters. Set once on the main thread, before any thread that applies one
// starts; until then (and with --no-seccomp) Apply/Ensure do nothing. Also installs the SIGSYS
// handler.
Status EnableSeccompFilters(SeccompFilters filters);
bool SeccompFiltersEnabled();

// Installs the role's filter on the calling thread and records `thread_name` for the SIGSYS
// handler's line.
Status ApplySeccompFilter(SeccompRole role, const char* thread_name);
// The same for a thread that normally inherits its filter from the thread that created it (the
// API's worker threads): installs only when the thread runs unfiltered.
Status EnsureSeccompFilter(SeccompRole role, const char* thread_name);

// Where the SIGSYS handler writes its line besides stderr (the logger's fd, which can change
// before boot with PUT /logger) and the instance id it shows.
void SetSeccompViolationLog(int fd, const std::string& instance_id);

// Test builds only (tests/integration/seccomp_selftest_hook.cc): runs on each thread right
// after its filter is installed. Production binaries never set it.
using SeccompTestHook = void (*)(SeccompRole role);
void SetSeccompTestHook(SeccompTestHook hook);

// x86_64 syscall name for the SIGSYS line ("socket"), or nullptr. Async-signal-safe.
const char* SyscallName(long nr);

}  // namespace ember

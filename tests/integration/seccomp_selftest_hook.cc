// Linked only into bin/ember-seccomp-selftest (tests/integration/CMakeLists.txt), never into
// bin/ember: with EMBER_SECCOMP_SELFTEST=<role> (vmm, api or vcpu), the thread of that role calls
// socket(AF_INET, SOCK_STREAM, 0) right after its seccomp filter goes on. No profile allows it
// (vmm and vcpu allow AF_UNIX sockets only, api no socket at all), so the process must end with
// exit code 148 and a log line naming the syscall and the thread (seccomp_test.cc).
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "vmm/seccomp/seccomp.h"

namespace ember {
namespace {

void CallForbiddenSyscall(SeccompRole role) {
  const char* want = getenv("EMBER_SECCOMP_SELFTEST");
  if (want == nullptr || strcmp(want, SeccompRoleName(role)) != 0) return;
  syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
}

[[maybe_unused]] const bool kHookSet = (SetSeccompTestHook(CallForbiddenSyscall), true);

}  // namespace
}  // namespace ember

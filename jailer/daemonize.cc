#include "jailer/daemonize.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>

#include "jailer/syscall.h"

namespace ember::jailer {

Status OpenDevNullToDaemonize(const JailPlan& plan, UniqueFd* dev_null) {
  if (!plan.options.daemonize) return Ok();
  dev_null->reset(open("/dev/null", O_RDWR | O_CLOEXEC));
  return CheckSys(dev_null->get(), "open(/dev/null, O_RDWR)");
}

Status Daemonize(const JailPlan& plan, UniqueFd dev_null, Lineage* lineage, UndoLog* undo) {
  if (!plan.options.daemonize) return Ok();
  UniqueFd unused;
  const pid_t child = TRY(lineage->Fork(/*hold=*/false, &unused));
  // _exit: we may still be inside the jail (no /proc for a sanitizer's exit-time checks).
  if (child > 0) _exit(lineage->AwaitExec(undo));
  TRY_STATUS(CheckSys(setsid(), "setsid()"));
  const pid_t grandchild = TRY(lineage->Fork(/*hold=*/false, &unused));
  if (grandchild > 0) _exit(0);
  for (int fd = 0; fd <= 2; fd++) {
    TRY_STATUS(CheckSys(dup2(dev_null.get(), fd), "dup2(/dev/null, %d)", fd));
  }
  return Ok();
}

}  // namespace ember::jailer

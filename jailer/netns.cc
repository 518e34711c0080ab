#include "jailer/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include "jailer/syscall.h"

namespace ember::jailer {

Status JoinNetworkNamespace(const JailPlan& plan) {
  if (!plan.options.netns) return Ok();
  const char* path = plan.options.netns->c_str();
  UniqueFd fd(open(path, O_RDONLY | O_CLOEXEC));
  TRY_STATUS(CheckSys(fd.get(), "open(%s)", path));
  return CheckSys(setns(fd.get(), CLONE_NEWNET), "setns(%s, CLONE_NEWNET)", path);
}

}  // namespace ember::jailer

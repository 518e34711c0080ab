// Validation: every flag checked against the host before anything changes, so a bad invocation
// leaves no directory, cgroup or mount behind. The result is the JailPlan the steps carry out.
#pragma once

#include <sys/types.h>

#include <string>

#include "jailer/plan.h"
#include "vmm/base/result.h"

namespace ember::jailer {

Result<JailPlan> Validate(const JailerOptions& options, const StartTimes& start);

// The paths a jail of this id occupies (used by --cleanup too, which needs no uid or exec file).
void SetJailPaths(const std::string& base_dir, const std::string& exec_name, const std::string& id,
                  JailPlan* plan);

// Whether a jail's directory is taken: its pid file names a process whose root is the jail
// (live), or a process that is gone (left over by an earlier run).
struct JailOccupant {
  enum class State { kFree, kLive, kLeftOver } state = State::kFree;
  pid_t pid = 0;
};
JailOccupant InspectJail(const JailPlan& plan);

// An error when the jail is not free, naming the pid and what to do.
Status CheckJailFree(const JailPlan& plan);

// /dev/userfaultfd's minor from the text of /proc/misc ("257 userfaultfd").
std::optional<uint32_t> UserfaultfdMinor(const std::string& proc_misc);

}  // namespace ember::jailer

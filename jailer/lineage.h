// The processes between the jailer the caller started and ember. Without --daemonize and
// --new-pid-ns there is one: the jailer becomes ember by exec, keeping its pid. Each of those
// flags forks. The first process then waits until ember's exec happened (the close-on-exec end
// of a report pipe closes) and only then exits 0, so the caller's wait means "ember runs". A
// later process that fails writes its step and message into the pipe and exits; the first
// process, still privileged and holding the UndoLog, prints it, cleans up and exits with that
// step's code. It is a child subreaper, so it can reap every descendant before removing their
// cgroups.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "jailer/plan.h"
#include "jailer/steps.h"
#include "jailer/undo.h"
#include "vmm/base/result.h"
#include "vmm/base/unique_fd.h"

namespace ember::jailer {

class Lineage {
 public:
  explicit Lineage(const StartTimes& start);

  // The process the caller started: the one that cleans up.
  bool is_first() const;

  // fork(). In the child, with `hold`, blocks until the parent calls Release(*release) (and
  // exits quietly if the parent closes it instead: the parent reported the failure).
  Result<pid_t> Fork(bool hold, UniqueFd* release);
  static Status Release(UniqueFd release);

  // A descendant's failure, for the first process to print and clean up after.
  [[noreturn]] void ReportAndExit(Step step, const std::string& message);

  // In the first process once it forked: waits for ember's exec or a report; returns the exit
  // code (0: ember runs).
  int AwaitExec(UndoLog* undo);

  // CPU time this chain of processes has used before ember: the CPU clock restarts at 0 in each
  // child, so each adds what its parent had used at the fork. `own` is this process's clock now.
  uint64_t JailerCpuUs(uint64_t own) const;

 private:
  pid_t first_pid_;
  uint64_t ancestors_cpu_us_ = 0;
  uint64_t own_cpu_base_us_;
  UniqueFd report_read_;
  UniqueFd report_write_;
};

}  // namespace ember::jailer

// ember-jailer: runs ember as Firecracker's jailer runs Firecracker (docs/jailer.md), one tenant
// per jail. main() is the ordered list of steps (nsjail's containProc): each a named function
// returning success, each failure one line "ember-jailer: <step>: <what failed>: <errno>", the
// step's own exit code (steps.h), and everything the run changed on the host taken back.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "jailer/cgroup.h"
#include "jailer/cleanup.h"
#include "jailer/daemonize.h"
#include "jailer/exec.h"
#include "jailer/jail_devices.h"
#include "jailer/jail_dir.h"
#include "jailer/lineage.h"
#include "jailer/netns.h"
#include "jailer/options.h"
#include "jailer/pid_namespace.h"
#include "jailer/pivot.h"
#include "jailer/privileges.h"
#include "jailer/rlimits.h"
#include "jailer/sanitize.h"
#include "jailer/steps.h"
#include "jailer/undo.h"
#include "jailer/validate.h"
#include "vmm/base/clock.h"

#ifndef EMBER_VERSION
#error "EMBER_VERSION must be defined by the build (jailer/CMakeLists.txt)"
#endif

namespace ember::jailer {
namespace {

// What a failing step needs to report and clean up: a descendant process reports to the first
// one, which holds the undo log and the privileges to use it.
struct Run {
  JailPlan plan;
  UndoLog undo;
  Lineage lineage;

  [[noreturn]] void Fail(Step step, const Error& error) {
    if (!lineage.is_first()) lineage.ReportAndExit(step, error.message);
    fprintf(stderr, "ember-jailer: %s: %s\n", StepName(step), error.message.c_str());
    const std::vector<std::string> failures = undo.Run();
    for (const std::string& f : failures) fprintf(stderr, "ember-jailer: cleanup: %s\n", f.c_str());
    if (failures.empty()) exit(ExitCode(step));
    std::string hint = "ember-jailer --cleanup --id " + plan.options.id + " --exec-file " +
                       plan.exec_path + " --chroot-base-dir " + plan.base_dir;
    if (plan.options.parent_cgroup) hint += " --parent-cgroup " + *plan.options.parent_cgroup;
    fprintf(stderr, "ember-jailer: cleanup: remove what is left with %s\n", hint.c_str());
    // Possibly still inside the jail, without /proc: no exit handlers (a sanitizer's leak check
    // would fail there and replace the step's exit code).
    _exit(ExitCode(step));
  }
};

#define STEP(step, expr)                                          \
  do {                                                            \
    if (Status s_ = (expr); !s_.ok()) run.Fail(step, s_.error()); \
  } while (0)

int Main(int argc, char** argv) {
  const StartTimes start = {MonotonicUs(), ProcessCpuUs()};
  Result<JailerOptions> options = ParseJailerArgs(std::vector<std::string>(argv + 1, argv + argc));
  if (!options.ok()) {
    fprintf(stderr, "ember-jailer: %s: %s (see --help)\n", StepName(Step::kParseArguments),
            options.error().message.c_str());
    return ExitCode(Step::kParseArguments);
  }
  switch (options->command) {
    case JailerOptions::Command::kHelp:
      fputs(JailerUsage().c_str(), stdout);
      return 0;
    case JailerOptions::Command::kVersion:
      printf("ember-jailer %s\n", EMBER_VERSION);
      return 0;
    case JailerOptions::Command::kCleanup:
      if (Status s = CleanUpJail(*options); !s.ok()) {
        fprintf(stderr, "ember-jailer: %s: %s\n", StepName(Step::kCleanup),
                s.error().message.c_str());
        return ExitCode(Step::kCleanup);
      }
      return 0;
    case JailerOptions::Command::kRun:
      break;
  }

  Run run{JailPlan{}, UndoLog{}, Lineage(start)};
  run.plan.options = *options;
  Result<JailPlan> plan = Validate(*options, start);
  if (!plan.ok()) run.Fail(Step::kValidate, plan.error());
  run.plan = std::move(*plan);
  const JailPlan& p = run.plan;
  UniqueFd base_lock, claim, dev_null;

  STEP(Step::kClaimJail, CheckJailFree(p));
  STEP(Step::kSanitizeProcess, SanitizeProcess());
  STEP(Step::kClaimJail, LockBaseDirectory(p, &base_lock));
  STEP(Step::kCreateJailDirectory, CreateJailDirectory(p, &run.undo));
  STEP(Step::kClaimJail, ClaimJail(p, &claim));
  base_lock.reset();
  run.undo.RemoveFile(p.pid_file, /*if_present=*/true);  // written by a later step or process
  STEP(Step::kCopyExecFile, CopyExecFile(p, &run.undo));
  STEP(Step::kJoinNetworkNamespace, JoinNetworkNamespace(p));
  STEP(Step::kSetResourceLimits, SetResourceLimits(p));
  STEP(Step::kJoinCgroups, JoinCgroups(p.cgroups, &run.undo));
  STEP(Step::kDaemonize, OpenDevNullToDaemonize(p, &dev_null));
  STEP(Step::kPivotIntoJail, PivotIntoJail(p, &run.undo));
  STEP(Step::kPopulateJail, PopulateJail(p, &run.undo));
  STEP(Step::kDaemonize, Daemonize(p, std::move(dev_null), &run.lineage, &run.undo));
  STEP(Step::kNewPidNamespace, EnterNewPidNamespace(p, &run.lineage, &run.undo));
  STEP(Step::kWritePidFile, WritePidFile(p));
  STEP(Step::kDropPrivileges, DropPrivileges(p));
  STEP(Step::kExec, ExecEmber(p, run.lineage));
  return 0;  // not reached: ExecEmber returns only with an error
}

}  // namespace
}  // namespace ember::jailer

int main(int argc, char** argv) { return ember::jailer::Main(argc, argv); }

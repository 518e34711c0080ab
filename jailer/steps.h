// The jailer's steps in the order main.cc runs them, each with its own exit code, so a caller
// can tell from the status alone which step failed. The codes (10-26) stay clear of ember's own
// (Firecracker's FcExitCode: 0, 1, 2, 148-157), which a caller sees once the exec happened.
#pragma once

namespace ember::jailer {

enum class Step : int {
  kParseArguments = 10,
  kValidate = 11,
  kClaimJail = 12,  // the id names a live jail, or one an earlier run left behind
  kSanitizeProcess = 13,
  kCreateJailDirectory = 14,
  kCopyExecFile = 15,
  kJoinNetworkNamespace = 16,
  kSetResourceLimits = 17,
  kJoinCgroups = 18,
  kPivotIntoJail = 19,
  kPopulateJail = 20,
  kDaemonize = 21,
  kNewPidNamespace = 22,
  kWritePidFile = 23,
  kDropPrivileges = 24,
  kExec = 25,
  kCleanup = 26,  // the --cleanup command
};

inline int ExitCode(Step step) { return static_cast<int>(step); }

inline const char* StepName(Step step) {
  switch (step) {
    case Step::kParseArguments:
      return "arguments";
    case Step::kValidate:
      return "validate";
    case Step::kClaimJail:
      return "claim jail";
    case Step::kSanitizeProcess:
      return "sanitize process";
    case Step::kCreateJailDirectory:
      return "create jail directory";
    case Step::kCopyExecFile:
      return "copy exec file";
    case Step::kJoinNetworkNamespace:
      return "join network namespace";
    case Step::kSetResourceLimits:
      return "set resource limits";
    case Step::kJoinCgroups:
      return "join cgroups";
    case Step::kPivotIntoJail:
      return "pivot into jail";
    case Step::kPopulateJail:
      return "populate jail";
    case Step::kDaemonize:
      return "daemonize";
    case Step::kNewPidNamespace:
      return "new pid namespace";
    case Step::kWritePidFile:
      return "write pid file";
    case Step::kDropPrivileges:
      return "drop privileges";
    case Step::kExec:
      return "exec";
    case Step::kCleanup:
      return "cleanup";
  }
  return "?";
}

}  // namespace ember::jailer

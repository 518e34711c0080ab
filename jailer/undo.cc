#include "jailer/undo.h"

#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "jailer/syscall.h"

namespace ember::jailer {

void UndoLog::RemoveFile(const std::string& path, bool if_present) {
  actions_.push_back([path, if_present]() -> Status {
    if (unlink(path.c_str()) == 0 || (if_present && errno == ENOENT)) return Ok();
    return CheckSys(-1, "unlink(%s)", path.c_str());
  });
}

void UndoLog::RemoveDirectory(const std::string& path) {
  actions_.push_back([path] { return CheckSys(rmdir(path.c_str()), "rmdir(%s)", path.c_str()); });
}

void UndoLog::RestoreOwnership(const std::string& path, uid_t uid, gid_t gid, mode_t mode) {
  actions_.push_back([=]() -> Status {
    TRY_STATUS(
        CheckSys(lchown(path.c_str(), uid, gid), "lchown(%s, %u, %u)", path.c_str(), uid, gid));
    return CheckSys(chmod(path.c_str(), mode), "chmod(%s, %04o)", path.c_str(), mode);
  });
}

void UndoLog::WriteFile(const std::string& path, const std::string& value) {
  actions_.push_back([path, value] { return WriteExistingFile(path, value); });
}

void UndoLog::SetHostMountNamespace(UniqueFd ns) { host_mount_ns_ = std::move(ns); }

std::vector<std::string> UndoLog::Run() {
  std::vector<std::string> failures;
  if (host_mount_ns_.valid()) {
    // setns to a mount namespace also sets our root and cwd to its root, leaving the jail.
    if (Status s = CheckSys(setns(host_mount_ns_.get(), CLONE_NEWNS), "setns(host mount ns)");
        !s.ok()) {
      failures.push_back(s.error().message + " (the host paths below are out of reach)");
      return failures;
    }
    host_mount_ns_.reset();
  }
  for (auto it = actions_.rbegin(); it != actions_.rend(); ++it) {
    if (Status s = (*it)(); !s.ok()) failures.push_back(s.error().message);
  }
  actions_.clear();
  return failures;
}

}  // namespace ember::jailer

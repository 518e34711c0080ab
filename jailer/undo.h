// What a run changed on the host, recorded as it happens, so that a run that fails at any step
// takes it all back in reverse order and leaves the host as it found it: directories and files
// it created, cgroups it created or joined, controllers it enabled, ownership it changed.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "vmm/base/result.h"
#include "vmm/base/unique_fd.h"

namespace ember::jailer {

class UndoLog {
 public:
  // Paths are host paths: Run() first returns to the host's mount namespace if the run left it.
  void RemoveFile(const std::string& path, bool if_present = false);
  void RemoveDirectory(const std::string& path);  // rmdir: a cgroup or a directory we made
  void RestoreOwnership(const std::string& path, uid_t uid, gid_t gid, mode_t mode);
  // Writes `value` to an existing file: "-memory" to a cgroup.subtree_control, our pid back to
  // the cgroup.procs we came from.
  void WriteFile(const std::string& path, const std::string& value);
  // The mount namespace to return to before any of the above (taken before unshare).
  void SetHostMountNamespace(UniqueFd ns);

  // Undoes everything, newest first; one message per action that failed (the rest still run).
  std::vector<std::string> Run();
  bool empty() const { return actions_.empty(); }

 private:
  std::vector<std::function<Status()>> actions_;
  UniqueFd host_mount_ns_;
};

}  // namespace ember::jailer

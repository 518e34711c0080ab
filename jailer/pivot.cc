#include "jailer/pivot.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jailer/syscall.h"

namespace ember::jailer {

Status PivotIntoJail(const JailPlan& plan, UndoLog* undo) {
  const char* root = plan.root_dir.c_str();
  UniqueFd host_ns(open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC));
  TRY_STATUS(CheckSys(host_ns.get(), "open(/proc/self/ns/mnt)"));
  TRY_STATUS(CheckSys(unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)"));
  undo->SetHostMountNamespace(std::move(host_ns));
  TRY_STATUS(CheckSys(mount(nullptr, "/", nullptr, MS_SLAVE | MS_REC, nullptr),
                      "mount(NULL, /, MS_SLAVE|MS_REC)"));
  TRY_STATUS(CheckSys(mount(root, root, nullptr, MS_BIND | MS_REC, nullptr),
                      "mount(%s, %s, MS_BIND|MS_REC)", root, root));
  TRY_STATUS(CheckSys(chdir(root), "chdir(%s)", root));
  TRY_STATUS(CheckSys(syscall(SYS_pivot_root, ".", "."), "pivot_root(., .) in %s", root));
  TRY_STATUS(CheckSys(umount2(".", MNT_DETACH), "umount2(old root, MNT_DETACH)"));
  return CheckSys(chdir("/"), "chdir(/) in the jail");
}

}  // namespace ember::jailer

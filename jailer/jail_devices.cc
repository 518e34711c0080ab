#include "jailer/jail_devices.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "jailer/syscall.h"

namespace ember::jailer {
namespace {

constexpr mode_t kJailDirMode = 0700;
constexpr mode_t kDeviceMode = 0600;

struct Device {
  const char* path;
  unsigned major;
  unsigned minor;
};
// Documentation/admin-guide/devices.txt.
constexpr Device kKvm = {"/dev/kvm", 10, 232};
constexpr Device kTun = {"/dev/net/tun", 10, 200};
constexpr Device kUrandom = {"/dev/urandom", 1, 9};
constexpr unsigned kMiscMajor = 10;  // /dev/userfaultfd's minor is dynamic (MISC_DYNAMIC_MINOR)

Status Own(const JailPlan& plan, const char* path, mode_t mode) {
  const uid_t uid = plan.options.uid;
  const gid_t gid = plan.options.gid;
  TRY_STATUS(CheckSys(lchown(path, uid, gid), "lchown(%s, %u, %u) in the jail", path, uid, gid));
  return CheckSys(chmod(path, mode), "chmod(%s, %04o) in the jail", path, mode);
}

Status MakeJailDirectory(const JailPlan& plan, const char* path, UndoLog* undo) {
  if (mkdir(path, kJailDirMode) == 0) {
    undo->RemoveDirectory(plan.root_dir + path);
  } else if (errno != EEXIST) {
    return CheckSys(-1, "mkdir(%s, 0700) in the jail", path);
  }
  return Own(plan, path, kJailDirMode);
}

Status MakeDevice(const JailPlan& plan, const Device& d, UndoLog* undo) {
  if (unlink(d.path) != 0 && errno != ENOENT) return CheckSys(-1, "unlink(%s) in the jail", d.path);
  TRY_STATUS(CheckSys(mknod(d.path, S_IFCHR | kDeviceMode, makedev(d.major, d.minor)),
                      "mknod(%s, S_IFCHR|0600, %u:%u) in the jail", d.path, d.major, d.minor));
  undo->RemoveFile(plan.root_dir + d.path);
  return Own(plan, d.path, kDeviceMode);
}

}  // namespace

Status PopulateJail(const JailPlan& plan, UndoLog* undo) {
  struct stat root;
  TRY_STATUS(CheckSys(stat("/", &root), "stat(/) in the jail"));
  undo->RestoreOwnership(plan.root_dir, root.st_uid, root.st_gid, root.st_mode & 07777);
  TRY_STATUS(Own(plan, "/", kJailDirMode));
  for (const char* dir : {"/dev", "/dev/net", "/run"}) {
    TRY_STATUS(MakeJailDirectory(plan, dir, undo));
  }
  TRY_STATUS(MakeDevice(plan, kKvm, undo));
  TRY_STATUS(MakeDevice(plan, kTun, undo));
  if (Status s = MakeDevice(plan, kUrandom, undo); !s.ok()) {
    fprintf(stderr, "ember-jailer: warning: %s: MMDS version 2 will not be available\n",
            s.error().message.c_str());
  }
  if (plan.userfaultfd_minor) {
    TRY_STATUS(MakeDevice(plan, {"/dev/userfaultfd", kMiscMajor, *plan.userfaultfd_minor}, undo));
  }
  return Ok();
}

}  // namespace ember::jailer

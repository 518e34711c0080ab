#include "jailer/cleanup.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>

#include "jailer/cgroup.h"
#include "jailer/syscall.h"
#include "jailer/validate.h"
#include "vmm/base/strings.h"

namespace ember::jailer {
namespace {

// Removes the entries of directory `fd` (named `path` in messages), staying on device `dev`.
Status EmptyDirectory(int fd, const std::string& path, dev_t dev) {
  DIR* d = fdopendir(fd);
  if (d == nullptr) {
    Status s = CheckSys(-1, "fdopendir(%s)", path.c_str());
    close(fd);
    return s;
  }
  Status result = Ok();
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    const std::string child = path + "/" + name;
    struct stat st;
    if (fstatat(dirfd(d), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      result = CheckSys(-1, "fstatat(%s)", child.c_str());
      break;
    }
    if (st.st_dev != dev) {
      result = Error{
          StrFormat("%s is on another filesystem (still mounted?): left alone", child.c_str())};
      break;
    }
    if (S_ISDIR(st.st_mode)) {
      int sub = openat(dirfd(d), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) {
        result = CheckSys(-1, "open(%s)", child.c_str());
        break;
      }
      result = EmptyDirectory(sub, child, dev);
      if (!result.ok()) break;
    }
    if (unlinkat(dirfd(d), name.c_str(), S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) != 0) {
      result = CheckSys(-1, "unlink(%s)", child.c_str());
      break;
    }
  }
  closedir(d);
  return result;
}

// Mounts at or below `dir` in this mount namespace, deepest first.
std::vector<std::string> MountsUnder(const std::string& mountinfo, const std::string& dir) {
  std::vector<std::string> out;
  for (std::string_view line : Split(mountinfo, '\n')) {
    std::vector<std::string_view> f;
    for (std::string_view w : Split(line, ' ')) f.push_back(w);
    if (f.size() < 5) continue;
    std::string mount_point(f[4]);
    if (mount_point == dir || mount_point.rfind(dir + "/", 0) == 0) out.push_back(mount_point);
  }
  std::sort(out.begin(), out.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return out;
}

}  // namespace

Status RemoveTree(const std::string& dir) {
  struct stat st;
  TRY_STATUS(CheckSys(lstat(dir.c_str(), &st), "lstat(%s)", dir.c_str()));
  if (!S_ISDIR(st.st_mode)) return Error{StrFormat("%s is not a directory", dir.c_str())};
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  TRY_STATUS(CheckSys(fd, "open(%s)", dir.c_str()));
  TRY_STATUS(EmptyDirectory(fd, dir, st.st_dev));
  return CheckSys(rmdir(dir.c_str()), "rmdir(%s)", dir.c_str());
}

Status CleanUpJail(const JailerOptions& options) {
  char base[PATH_MAX];
  if (realpath(options.chroot_base_dir.c_str(), base) == nullptr) {
    return Error::Errno(StrFormat("chroot base dir %s: realpath", options.chroot_base_dir.c_str()));
  }
  // Named as the run named it: after the resolved exec file (a symlink's target), if it still
  // exists.
  char exec[PATH_MAX];
  const std::string exec_path =
      realpath(options.exec_file.c_str(), exec) ? std::string(exec) : options.exec_file;
  const std::string exec_name = exec_path.substr(exec_path.rfind('/') + 1);
  JailPlan plan;
  plan.options = options;
  SetJailPaths(std::string(base) == "/" ? "" : base, exec_name, options.id, &plan);

  const JailOccupant occupant = InspectJail(plan);
  if (occupant.state == JailOccupant::State::kLive) {
    return Error{
        StrFormat("jail %s is in use by pid %d: stop it first", options.id.c_str(), occupant.pid)};
  }
  const std::string mountinfo = TRY(ReadSmallFile("/proc/self/mountinfo"));
  const std::vector<CgroupMount> mounts = ParseCgroupMounts(mountinfo);
  const std::string parent = options.parent_cgroup.value_or(exec_name);
  std::vector<std::string> removed;
  for (int version : {1, 2}) {
    TRY_STATUS(RemoveJailCgroups(version, parent, options.id, mounts, &removed));
  }
  if (!PathExists(plan.id_dir)) return Ok();
  for (const std::string& m : MountsUnder(mountinfo, plan.id_dir)) {
    TRY_STATUS(CheckSys(umount2(m.c_str(), MNT_DETACH), "umount2(%s, MNT_DETACH)", m.c_str()));
  }
  return RemoveTree(plan.id_dir);
}

}  // namespace ember::jailer

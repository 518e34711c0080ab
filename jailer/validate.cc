#include "jailer/validate.h"

#include <fcntl.h>
#include <linux/limits.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "jailer/syscall.h"
#include "vmm/base/strings.h"

namespace ember::jailer {
namespace {

Result<std::string> Resolve(const char* what, const std::string& path) {
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved) == nullptr) {
    return Error::Errno(StrFormat("%s %s: realpath", what, path.c_str()));
  }
  return std::string(resolved);
}

Status CheckExecFile(const std::string& path) {
  struct stat st;
  TRY_STATUS(CheckSys(stat(path.c_str(), &st), "exec file: stat(%s)", path.c_str()));
  if (!S_ISREG(st.st_mode))
    return Error{StrFormat("exec file %s is not a regular file", path.c_str())};
  if ((st.st_mode & 0111) == 0)
    return Error{StrFormat("exec file %s is not executable", path.c_str())};
  return Ok();
}

// The jail is built inside the base directory: it must take new directories, device nodes
// (a nodev mount would make /dev/kvm unopenable) and the exec file's copy (noexec).
Status CheckBaseDir(const std::string& dir) {
  struct stat st;
  TRY_STATUS(CheckSys(stat(dir.c_str(), &st), "chroot base dir: stat(%s)", dir.c_str()));
  if (!S_ISDIR(st.st_mode))
    return Error{StrFormat("chroot base dir %s is not a directory", dir.c_str())};
  TRY_STATUS(CheckSys(faccessat(AT_FDCWD, dir.c_str(), W_OK | X_OK, AT_EACCESS),
                      "chroot base dir: faccessat(%s, W_OK|X_OK)", dir.c_str()));
  struct statvfs vfs;
  TRY_STATUS(CheckSys(statvfs(dir.c_str(), &vfs), "chroot base dir: statvfs(%s)", dir.c_str()));
  if (vfs.f_flag & ST_RDONLY)
    return Error{StrFormat("chroot base dir %s is on a read-only mount", dir.c_str())};
  if (vfs.f_flag & ST_NODEV) {
    return Error{
        StrFormat("chroot base dir %s is on a nodev mount: /dev/kvm in the jail would not open",
                  dir.c_str())};
  }
  if (vfs.f_flag & ST_NOEXEC) {
    return Error{StrFormat("chroot base dir %s is on a noexec mount: the exec file could not run",
                           dir.c_str())};
  }
  return Ok();
}

Status CheckNetns(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  TRY_STATUS(CheckSys(fd.get(), "netns: open(%s)", path.c_str()));
  int type = ioctl(fd.get(), NS_GET_NSTYPE);
  TRY_STATUS(CheckSys(type, "netns: ioctl(%s, NS_GET_NSTYPE)", path.c_str()));
  if (type != CLONE_NEWNET)
    return Error{StrFormat("netns %s is not a network namespace", path.c_str())};
  return Ok();
}

// setrlimit(RLIMIT_NOFILE) above fs.nr_open fails with EPERM, after the jail was built.
Status CheckNoFileLimit(uint64_t limit) {
  Result<std::string> nr_open = ReadSmallFile("/proc/sys/fs/nr_open");
  if (!nr_open.ok()) return Ok();  // the kernel will say at setrlimit
  uint64_t max = 0;
  std::string text = *nr_open;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  if (ParseU64(text, &max) && limit > max) {
    return Error{StrFormat("--resource-limit no-file=%llu is above the kernel's fs.nr_open (%llu)",
                           static_cast<unsigned long long>(limit),
                           static_cast<unsigned long long>(max))};
  }
  return Ok();
}

}  // namespace

void SetJailPaths(const std::string& base_dir, const std::string& exec_name, const std::string& id,
                  JailPlan* plan) {
  plan->base_dir = base_dir;
  plan->exec_name = exec_name;
  plan->exec_dir = base_dir + "/" + exec_name;
  plan->id_dir = plan->exec_dir + "/" + id;
  plan->root_dir = plan->id_dir + "/root";
  plan->pid_file = plan->root_dir + "/" + exec_name + ".pid";
}

std::optional<uint32_t> UserfaultfdMinor(const std::string& proc_misc) {
  for (std::string_view line : Split(proc_misc, '\n')) {
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    const size_t sp = line.find(' ');
    uint64_t minor;
    if (sp != std::string_view::npos && line.substr(sp + 1) == "userfaultfd" &&
        ParseU64(line.substr(0, sp), &minor) && minor <= UINT32_MAX) {
      return static_cast<uint32_t>(minor);
    }
  }
  return std::nullopt;
}

JailOccupant InspectJail(const JailPlan& plan) {
  JailOccupant o;
  Result<std::string> text = ReadSmallFile(plan.pid_file);
  if (!text.ok()) {
    if (text.error().err == ENOENT) return o;
    o.state = JailOccupant::State::kLeftOver;  // unreadable: not ours to decide it is free
    return o;
  }
  std::string digits = *text;
  while (!digits.empty() && (digits.back() == '\n' || digits.back() == ' ')) digits.pop_back();
  uint64_t pid = 0;
  o.state = JailOccupant::State::kLeftOver;
  if (!ParseU64(digits, &pid) || pid == 0 || pid > INT_MAX) return o;
  o.pid = static_cast<pid_t>(pid);
  // The same pid may since belong to another process: live only if its root is this jail.
  struct stat proc_root, jail_root;
  const std::string proc = StrFormat("/proc/%d/root", o.pid);
  if (stat(proc.c_str(), &proc_root) == 0 && stat(plan.root_dir.c_str(), &jail_root) == 0 &&
      proc_root.st_dev == jail_root.st_dev && proc_root.st_ino == jail_root.st_ino) {
    o.state = JailOccupant::State::kLive;
  }
  return o;
}

Status CheckJailFree(const JailPlan& plan) {
  const JailOccupant o = InspectJail(plan);
  switch (o.state) {
    case JailOccupant::State::kFree:
      return Ok();
    case JailOccupant::State::kLive:
      return Error{StrFormat("jail %s is in use by pid %d (%s)", plan.options.id.c_str(), o.pid,
                             plan.root_dir.c_str())};
    case JailOccupant::State::kLeftOver:
      return Error{
          StrFormat("jail %s was left by an earlier run (%s names pid %d, which is gone): "
                    "remove it with ember-jailer --cleanup",
                    plan.options.id.c_str(), plan.pid_file.c_str(), o.pid)};
  }
  return Ok();
}

Result<JailPlan> Validate(const JailerOptions& options, const StartTimes& start) {
  JailPlan plan;
  plan.options = options;
  plan.start = start;
  plan.exec_path = TRY(Resolve("exec file", options.exec_file));
  TRY_STATUS(CheckExecFile(plan.exec_path));
  const std::string exec_name = plan.exec_path.substr(plan.exec_path.rfind('/') + 1);
  if (exec_name.size() + 4 > NAME_MAX) {
    return Error{StrFormat("exec file name %s is too long for its pid file", exec_name.c_str())};
  }
  const std::string base = TRY(Resolve("chroot base dir", options.chroot_base_dir));
  TRY_STATUS(CheckBaseDir(base));
  SetJailPaths(base == "/" ? "" : base, exec_name, options.id, &plan);
  if (options.netns) TRY_STATUS(CheckNetns(*options.netns));
  TRY_STATUS(CheckNoFileLimit(options.no_file_limit));
  if (Result<std::string> misc = ReadSmallFile("/proc/misc"); misc.ok()) {
    plan.userfaultfd_minor = UserfaultfdMinor(*misc);
  }
  const std::string mountinfo = TRY(ReadSmallFile("/proc/self/mountinfo"));
  const std::string self = TRY(ReadSmallFile("/proc/self/cgroup"));
  plan.cgroups = TRY(PlanCgroups(options, exec_name, ParseCgroupMounts(mountinfo),
                                 ParseProcCgroup(self), ReadSmallFile));
  return plan;
}

}  // namespace ember::jailer

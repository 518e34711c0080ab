#include "jailer/cgroup.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "jailer/syscall.h"
#include "vmm/base/strings.h"

namespace ember::jailer {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo (proc(5)).
std::string Unescape(std::string_view s) {
  auto octal = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && i + 3 < s.size() && octal(s[i + 1]) && octal(s[i + 2]) && octal(s[i + 3])) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string> Words(std::string_view line) {
  std::vector<std::string> out;
  for (std::string_view w : Split(line, ' ')) {
    if (!w.empty()) out.emplace_back(w);
  }
  return out;
}

bool Contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The full path of the cgroup a /proc/self/cgroup path names, under a mount whose root is
// `mount.root`; "" when that cgroup is not visible through this mount.
std::string CgroupPathUnder(const CgroupMount& mount, const std::string& path) {
  if (mount.root == "/") return path == "/" ? mount.mount_point : mount.mount_point + path;
  if (path == mount.root) return mount.mount_point;
  if (path.rfind(mount.root + "/", 0) == 0)
    return mount.mount_point + path.substr(mount.root.size());
  return "";
}

// v1 cpuset: cpus and mems of a new cgroup are empty, and no task can join until both are set
// (cpuset(7)); copy them from the parent, which we set up the same way just before.
Status InheritCpuset(const std::string& dir) {
  const std::string parent = dir.substr(0, dir.rfind('/'));
  for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
    std::string mine = Trim(TRY(ReadSmallFile(dir + "/" + file)));
    if (!mine.empty()) continue;
    std::string theirs = Trim(TRY(ReadSmallFile(parent + "/" + file)));
    TRY_STATUS(WriteExistingFile(dir + "/" + file, theirs));
  }
  return Ok();
}

// v2: controllers must be enabled in the parent's cgroup.subtree_control for a child to have
// their files.
Status EnableControllers(const std::string& dir, const std::vector<std::string>& controllers,
                         UndoLog* undo) {
  const std::string file = dir + "/cgroup.subtree_control";
  std::vector<std::string> enabled = Words(Trim(TRY(ReadSmallFile(file))));
  for (const std::string& c : controllers) {
    if (Contains(enabled, c)) continue;
    TRY_STATUS(WriteExistingFile(file, "+" + c));
    undo->WriteFile(file, "-" + c);
  }
  return Ok();
}

Status JoinCgroup(const CgroupTarget& t, UndoLog* undo) {
  const std::string dir = t.path();
  if (!t.create) {
    // Firecracker's v2 behaviour without --cgroup: join <parent> if someone prepared it.
    if (!PathExists(dir)) return Ok();
  } else {
    if (!t.enable_controllers.empty()) {
      TRY_STATUS(EnableControllers(t.hierarchy, t.enable_controllers, undo));
    }
    std::string at = t.hierarchy;
    const std::vector<std::string_view> parts = Split(t.relative, '/');
    for (size_t i = 0; i < parts.size(); i++) {
      at.append("/").append(parts[i]);
      if (mkdir(at.c_str(), 0755) == 0) {
        undo->RemoveDirectory(at);
        if (t.inherit_cpuset) TRY_STATUS(InheritCpuset(at));
      } else if (errno != EEXIST) {
        return CheckSys(-1, "mkdir(%s, 0755)", at.c_str());
      }
      if (i + 1 < parts.size() && !t.enable_controllers.empty()) {
        TRY_STATUS(EnableControllers(at, t.enable_controllers, undo));
      }
    }
    for (const CgroupSetting& s : t.settings) {
      TRY_STATUS(WriteExistingFile(dir + "/" + s.file, s.value));
    }
  }
  const std::string pid = std::to_string(getpid());
  TRY_STATUS(WriteExistingFile(dir + "/cgroup.procs", pid));
  if (!t.original.empty()) undo->WriteFile(t.original + "/cgroup.procs", pid);
  return Ok();
}

}  // namespace

std::vector<CgroupMount> ParseCgroupMounts(std::string_view mountinfo) {
  std::vector<CgroupMount> out;
  for (std::string_view line : Split(mountinfo, '\n')) {
    // id parent major:minor root mount-point options [optional fields] - fstype source super
    const size_t dash = line.find(" - ");
    if (dash == std::string_view::npos) continue;
    const std::vector<std::string> left = Words(line.substr(0, dash));
    const std::vector<std::string> right = Words(line.substr(dash + 3));
    if (left.size() < 5 || right.size() < 3) continue;
    if (right[0] != "cgroup" && right[0] != "cgroup2") continue;
    CgroupMount m;
    m.root = Unescape(left[3]);
    m.mount_point = Unescape(left[4]);
    m.v2 = right[0] == "cgroup2";
    for (std::string_view o : Split(right[2], ',')) m.options.emplace_back(o);
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<ProcCgroupLine> ParseProcCgroup(std::string_view text) {
  std::vector<ProcCgroupLine> out;
  for (std::string_view line : Split(text, '\n')) {
    const size_t a = line.find(':');
    const size_t b = a == std::string_view::npos ? a : line.find(':', a + 1);
    if (b == std::string_view::npos) continue;
    ProcCgroupLine l;
    for (std::string_view c : Split(line.substr(a + 1, b - a - 1), ',')) {
      if (!c.empty()) l.controllers.emplace_back(c);
    }
    l.path = std::string(line.substr(b + 1));
    out.push_back(std::move(l));
  }
  return out;
}

Result<CgroupPlan> PlanCgroups(
    const JailerOptions& options, const std::string& exec_name,
    const std::vector<CgroupMount>& mounts, const std::vector<ProcCgroupLine>& self,
    const std::function<Result<std::string>(const std::string&)>& read_file) {
  CgroupPlan plan;
  plan.version = options.cgroup_version;
  const std::string parent = options.parent_cgroup.value_or(exec_name);
  if (plan.version == 1) {
    for (const CgroupSetting& s : options.cgroups) {
      auto mount = std::find_if(mounts.begin(), mounts.end(), [&](const CgroupMount& m) {
        return !m.v2 && Contains(m.options, s.controller);
      });
      if (mount == mounts.end()) {
        return Error{
            StrFormat("--cgroup %s: no cgroup v1 hierarchy has the %s controller (none "
                      "in /proc/self/mountinfo)",
                      s.file.c_str(), s.controller.c_str())};
      }
      auto target =
          std::find_if(plan.targets.begin(), plan.targets.end(),
                       [&](const CgroupTarget& t) { return t.hierarchy == mount->mount_point; });
      if (target == plan.targets.end()) {
        CgroupTarget t;
        t.hierarchy = mount->mount_point;
        t.relative = parent + "/" + options.id;
        t.inherit_cpuset = Contains(mount->options, "cpuset");
        for (const ProcCgroupLine& l : self) {
          if (Contains(l.controllers, s.controller)) t.original = CgroupPathUnder(*mount, l.path);
        }
        plan.targets.push_back(std::move(t));
        target = plan.targets.end() - 1;
      }
      target->settings.push_back(s);
    }
    return plan;
  }

  auto unified =
      std::find_if(mounts.begin(), mounts.end(), [](const CgroupMount& m) { return m.v2; });
  if (unified == mounts.end()) {
    return Error{
        "--cgroup-version 2: no cgroup2 hierarchy is mounted (none in /proc/self/mountinfo)"};
  }
  CgroupTarget t;
  t.hierarchy = unified->mount_point;
  for (const ProcCgroupLine& l : self) {
    if (l.controllers.empty()) t.original = CgroupPathUnder(*unified, l.path);
  }
  if (options.cgroups.empty()) {
    t.relative = parent;
    t.create = false;
    plan.targets.push_back(std::move(t));
    return plan;
  }
  const std::string list_file = t.hierarchy + "/cgroup.controllers";
  Result<std::string> list = read_file(list_file);
  if (!list.ok()) return list.error();
  const std::vector<std::string> available = Words(Trim(*list));
  t.relative = parent + "/" + options.id;
  for (const CgroupSetting& s : options.cgroups) {
    // "cgroup.*" files belong to the core, not to a controller.
    if (s.controller == "cgroup") {
      t.settings.push_back(s);
      continue;
    }
    if (!Contains(available, s.controller)) {
      return Error{StrFormat(
          "--cgroup %s: the cgroup v2 hierarchy at %s has no %s controller "
          "(cgroup.controllers: \"%s\")",
          s.file.c_str(), t.hierarchy.c_str(), s.controller.c_str(), Trim(*list).c_str())};
    }
    if (!Contains(t.enable_controllers, s.controller)) t.enable_controllers.push_back(s.controller);
    t.settings.push_back(s);
  }
  plan.targets.push_back(std::move(t));
  return plan;
}

Status JoinCgroups(const CgroupPlan& plan, UndoLog* undo) {
  for (const CgroupTarget& t : plan.targets) TRY_STATUS(JoinCgroup(t, undo));
  return Ok();
}

Status RemoveJailCgroups(int version, const std::string& parent, const std::string& id,
                         const std::vector<CgroupMount>& mounts,
                         std::vector<std::string>* removed) {
  for (const CgroupMount& m : mounts) {
    if (m.v2 != (version == 2)) continue;
    const std::string dir = m.mount_point + "/" + parent + "/" + id;
    if (!PathExists(dir)) continue;
    if (rmdir(dir.c_str()) != 0) {
      if (errno == EBUSY) {
        return Error{
            StrFormat("rmdir(%s): EBUSY: processes are still in this cgroup", dir.c_str())};
      }
      return CheckSys(-1, "rmdir(%s)", dir.c_str());
    }
    removed->push_back(dir);
  }
  return Ok();
}

}  // namespace ember::jailer

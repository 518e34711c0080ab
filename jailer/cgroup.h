// The jail's cgroups, as Firecracker's jailer makes them (src/jailer/src/cgroup.rs,
// docs/jailer.md): v1, <hierarchy>/<parent>/<id> in the hierarchy of each controller a --cgroup
// names; v2, <unified>/<parent>/<id> with those controllers enabled in every ancestor's
// cgroup.subtree_control; v2 without --cgroup, <unified>/<parent> joined if it exists. Planned
// from /proc/self/mountinfo and /proc/self/cgroup before anything changes; joined with every
// change recorded in the UndoLog.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "jailer/options.h"
#include "jailer/undo.h"
#include "vmm/base/result.h"

namespace ember::jailer {

// A mounted cgroup hierarchy (one line of /proc/self/mountinfo).
struct CgroupMount {
  std::string root;         // the part of the hierarchy mounted there, usually "/"
  std::string mount_point;  // e.g. /sys/fs/cgroup/memory
  bool v2 = false;
  std::vector<std::string> options;  // super options: a v1 hierarchy's controllers
};
std::vector<CgroupMount> ParseCgroupMounts(std::string_view mountinfo);

// One line of /proc/self/cgroup: "4:memory:/user.slice" or "0::/" (v2).
struct ProcCgroupLine {
  std::vector<std::string> controllers;  // empty for v2
  std::string path;
};
std::vector<ProcCgroupLine> ParseProcCgroup(std::string_view text);

// One cgroup to create (or join) and write.
struct CgroupTarget {
  std::string hierarchy;  // the mount point
  std::string relative;   // "<parent>/<id>"; "<parent>" when only joining
  std::vector<CgroupSetting> settings;
  bool create = true;           // false: join `relative` only if it exists (v2, no --cgroup)
  bool inherit_cpuset = false;  // v1 cpuset: a new cgroup starts with empty cpus and mems
  std::vector<std::string> enable_controllers;  // v2: in each ancestor's subtree_control
  std::string original;  // the cgroup we are in now, to return to on failure ("" unknown)

  std::string path() const { return hierarchy + "/" + relative; }
};

struct CgroupPlan {
  int version = 1;
  std::vector<CgroupTarget> targets;
};

// `read_file` reads a v2 hierarchy's cgroup.controllers (injected for the unit tests).
Result<CgroupPlan> PlanCgroups(
    const JailerOptions& options, const std::string& exec_name,
    const std::vector<CgroupMount>& mounts, const std::vector<ProcCgroupLine>& self,
    const std::function<Result<std::string>(const std::string&)>& read_file);

// Creates the cgroups, writes the values and moves this process in.
Status JoinCgroups(const CgroupPlan& plan, UndoLog* undo);

// --cleanup: removes <hierarchy>/<parent>/<id> from every hierarchy of `version` that has it;
// `removed` lists what went.
Status RemoveJailCgroups(int version, const std::string& parent, const std::string& id,
                         const std::vector<CgroupMount>& mounts, std::vector<std::string>* removed);

}  // namespace ember::jailer

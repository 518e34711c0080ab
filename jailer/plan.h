// Everything a run will do, decided by validation before anything on the host changes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "jailer/cgroup.h"
#include "jailer/options.h"

namespace ember::jailer {

// When the jailer started: ember's --start-time-us (CLOCK_MONOTONIC) and the CPU time it had
// used then, so ember's start-up metrics include the jailer (Firecracker's env.rs).
struct StartTimes {
  uint64_t wall_us = 0;
  uint64_t cpu_us = 0;
};

struct JailPlan {
  JailerOptions options;
  StartTimes start;
  std::string exec_path;                      // the exec file, resolved
  std::string exec_name;                      // its file name: /<exec_name> inside the jail
  std::string base_dir;                       // --chroot-base-dir, resolved
  std::string exec_dir;                       // <base>/<exec_name>
  std::string id_dir;                         // <base>/<exec_name>/<id>
  std::string root_dir;                       // <base>/<exec_name>/<id>/root: the jail's /
  std::string pid_file;                       // <root>/<exec_name>.pid (host path)
  std::optional<uint32_t> userfaultfd_minor;  // /dev/userfaultfd's minor when the host has it
  CgroupPlan cgroups;
};

}  // namespace ember::jailer

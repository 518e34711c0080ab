// ember-jailer's command line: Firecracker's jailer flags (docs/jailer.md; firecracker-facts §5)
// plus --cleanup, parsed into plain values. Parsing looks at nothing on the host; validate.h
// checks the values against it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vmm/base/result.h"

namespace ember::jailer {

// Firecracker's jailer defaults (src/jailer/src/main.rs, resource_limits.rs).
inline constexpr char kDefaultChrootBaseDir[] = "/srv/jailer";
inline constexpr uint64_t kDefaultNoFileLimit = 2048;
// Firecracker's validate_instance_id (src/utils/src/validators.rs): 1-64 of [A-Za-z0-9-].
inline constexpr size_t kMaxIdChars = 64;

// One --cgroup <file>=<value>.
struct CgroupSetting {
  std::string file;        // "memory.limit_in_bytes"
  std::string value;       // "64M"
  std::string controller;  // "memory": the file name up to its first '.'
};

struct JailerOptions {
  enum class Command { kRun, kCleanup, kHelp, kVersion };
  Command command = Command::kRun;

  std::string id;
  std::string exec_file;  // as given; validation resolves it
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string chroot_base_dir = kDefaultChrootBaseDir;
  std::optional<std::string> netns;  // a namespace file such as /var/run/netns/<name>
  bool daemonize = false;
  bool new_pid_ns = false;
  std::vector<CgroupSetting> cgroups;
  int cgroup_version = 1;
  std::optional<std::string> parent_cgroup;      // relative; default: the exec file's name
  std::optional<uint64_t> fsize_limit;           // RLIMIT_FSIZE, bytes
  uint64_t no_file_limit = kDefaultNoFileLimit;  // RLIMIT_NOFILE
  std::vector<std::string> exec_args;            // everything after "--", passed to ember
};

// args excludes argv[0]. Errors are one line naming the flag and the value.
Result<JailerOptions> ParseJailerArgs(const std::vector<std::string>& args);

bool IsValidJailId(const std::string& id);

// The --help text: every flag the parser accepts.
std::string JailerUsage();

}  // namespace ember::jailer

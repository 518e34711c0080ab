#include "jailer/options.h"

#include <algorithm>
#include <functional>
#include <set>
#include <string_view>

#include "vmm/base/strings.h"

namespace ember::jailer {
namespace {

Error Invalid(const char* flag, std::string_view value, const char* expected) {
  return Error{StrFormat("invalid value for --%s: %s (%s)", flag, QuoteForMessage(value).c_str(),
                         expected)};
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A uid or gid: decimal, and not (uid_t)-1, which setresuid(2) reads as "leave unchanged".
Status ParseId(const char* flag, const std::string& value, uint32_t* out) {
  uint64_t n;
  if (!AllDigits(value) || !ParseU64(value, &n) || n >= UINT32_MAX) {
    return Invalid(flag, value, "expected a decimal number below 4294967295");
  }
  *out = static_cast<uint32_t>(n);
  return Ok();
}

bool IsControllerChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

// <controller>.<property>=<value>, split at the first '=' (io.max values contain '=' too).
Status ParseCgroup(const std::string& value, std::vector<CgroupSetting>* out) {
  const size_t eq = value.find('=');
  if (eq == std::string::npos) return Invalid("cgroup", value, "expected <file>=<value>");
  CgroupSetting s;
  s.file = value.substr(0, eq);
  s.value = value.substr(eq + 1);
  const size_t dot = s.file.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == s.file.size() ||
      !std::all_of(s.file.begin(), s.file.begin() + static_cast<long>(dot), IsControllerChar) ||
      s.file.find('/') != std::string::npos) {
    return Invalid("cgroup", value,
                   "expected <controller>.<property>=<value>, e.g. memory.limit_in_bytes=64M");
  }
  if (s.value.empty() || s.value.find_first_of(std::string("\n\0", 2)) != std::string::npos) {
    return Invalid("cgroup", value, "the value must be non-empty and one line");
  }
  for (const CgroupSetting& other : *out) {
    if (other.file == s.file) return Invalid("cgroup", value, "this file is set twice");
  }
  s.controller = s.file.substr(0, dot);
  out->push_back(std::move(s));
  return Ok();
}

// A relative path of plain components: no leading '/', no empty, "." or ".." component, so the
// cgroup it names stays under the hierarchy's root (Firecracker's CgroupInvalidParentPath).
Status ParseParentCgroup(const std::string& value, std::optional<std::string>* out) {
  bool ok = !value.empty() && value.front() != '/';
  for (std::string_view part : Split(value, '/')) {
    if (part.empty() || part == "." || part == "..") ok = false;
  }
  if (!ok || value.find('\n') != std::string::npos) {
    return Invalid("parent-cgroup", value,
                   "expected a relative path without empty, '.' or '..' components");
  }
  *out = value;
  return Ok();
}

Status ParseResourceLimit(const std::string& value, JailerOptions* o) {
  const size_t eq = value.find('=');
  const std::string name = value.substr(0, eq);
  uint64_t n;
  if (eq == std::string::npos || (name != "fsize" && name != "no-file") ||
      !AllDigits(value.substr(eq + 1)) || !ParseU64(value.substr(eq + 1), &n)) {
    return Invalid("resource-limit", value, "expected fsize=<bytes> or no-file=<count>");
  }
  if (name == "fsize") {
    o->fsize_limit = n;
  } else {
    if (n == 0) return Invalid("resource-limit", value, "no-file must be at least 1");
    o->no_file_limit = n;
  }
  return Ok();
}

// ember's flags that the jailer itself passes (Firecracker's exec_command); given again after
// "--" they would make ember refuse its command line after the jail was built.
constexpr const char* kFlagsTheJailerPasses[] = {"id", "start-time-us", "start-time-cpu-us",
                                                 "parent-cpu-time-us"};

struct Flag {
  const char* name;
  const char* value_name;  // nullptr: a switch
  bool repeatable;
  const char* help;
  std::function<Status(JailerOptions&, const std::string&)> apply;
};

const std::vector<Flag>& Flags() {
  static const std::vector<Flag> flags = {
      {"id", "ID", false, "The jail's id: 1-64 characters of [A-Za-z0-9-] (required)",
       [](JailerOptions& o, const std::string& v) -> Status {
         if (!IsValidJailId(v)) {
           return Invalid("id", v, "expected 1-64 characters, each alphanumeric or '-'");
         }
         o.id = v;
         return Ok();
       }},
      {"exec-file", "PATH", false, "The binary to jail and exec, e.g. build/bin/ember (required)",
       [](JailerOptions& o, const std::string& v) -> Status {
         if (v.empty() || v.back() == '/') return Invalid("exec-file", v, "expected a file path");
         o.exec_file = v;
         return Ok();
       }},
      {"uid", "UID", false, "The user id ember runs as (required)",
       [](JailerOptions& o, const std::string& v) { return ParseId("uid", v, &o.uid); }},
      {"gid", "GID", false, "The group id ember runs as (required)",
       [](JailerOptions& o, const std::string& v) { return ParseId("gid", v, &o.gid); }},
      {"chroot-base-dir", "DIR", false, "Where jails are built (default /srv/jailer)",
       [](JailerOptions& o, const std::string& v) -> Status {
         if (v.empty()) return Invalid("chroot-base-dir", v, "expected a directory");
         o.chroot_base_dir = v;
         return Ok();
       }},
      {"netns", "PATH", false, "A network namespace file to join, e.g. /var/run/netns/NAME",
       [](JailerOptions& o, const std::string& v) -> Status {
         if (v.empty()) return Invalid("netns", v, "expected a path");
         o.netns = v;
         return Ok();
       }},
      {"daemonize", nullptr, false, "setsid() and stdin/stdout/stderr to /dev/null before exec",
       [](JailerOptions& o, const std::string&) {
         o.daemonize = true;
         return Ok();
       }},
      {"new-pid-ns", nullptr, false, "Exec ember as pid 1 of a new PID namespace",
       [](JailerOptions& o, const std::string&) {
         o.new_pid_ns = true;
         return Ok();
       }},
      {"cgroup", "FILE=VALUE", true,
       "A cgroup file to write in the jail's cgroup, e.g. memory.limit_in_bytes=64M (repeatable)",
       [](JailerOptions& o, const std::string& v) { return ParseCgroup(v, &o.cgroups); }},
      {"cgroup-version", "1|2", false, "cgroup v1 (per controller) or v2 (unified); default 1",
       [](JailerOptions& o, const std::string& v) -> Status {
         if (v != "1" && v != "2") return Invalid("cgroup-version", v, "expected 1 or 2");
         o.cgroup_version = v == "1" ? 1 : 2;
         return Ok();
       }},
      {"parent-cgroup", "PATH", false,
       "The jail's cgroup is <hierarchy>/PATH/<id> (default: the exec file's name)",
       [](JailerOptions& o, const std::string& v) {
         return ParseParentCgroup(v, &o.parent_cgroup);
       }},
      {"resource-limit", "fsize=N|no-file=N", true,
       "An rlimit for ember (repeatable); no-file defaults to 2048",
       [](JailerOptions& o, const std::string& v) { return ParseResourceLimit(v, &o); }},
      {"cleanup", nullptr, false,
       "Remove the finished jail <base>/<exec-name>/<id> and its cgroups, then exit (needs "
       "--id, --exec-file and the --chroot-base-dir, --cgroup-version and --parent-cgroup it ran "
       "with)",
       [](JailerOptions& o, const std::string&) {
         o.command = JailerOptions::Command::kCleanup;
         return Ok();
       }},
      {"version", nullptr, false, "Print the version and exit",
       [](JailerOptions& o, const std::string&) {
         if (o.command == JailerOptions::Command::kRun)
           o.command = JailerOptions::Command::kVersion;
         return Ok();
       }},
      {"help", nullptr, false, "Print this help and exit",
       [](JailerOptions& o, const std::string&) {
         o.command = JailerOptions::Command::kHelp;
         return Ok();
       }},
  };
  return flags;
}

Status CheckExecArgs(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    for (const char* flag : kFlagsTheJailerPasses) {
      const std::string dashed = std::string("--") + flag;
      if (a == dashed || a.rfind(dashed + "=", 0) == 0) {
        return Error{
            StrFormat("%s after \"--\": the jailer passes it to ember itself", dashed.c_str())};
      }
    }
  }
  return Ok();
}

}  // namespace

bool IsValidJailId(const std::string& id) {
  if (id.empty() || id.size() > kMaxIdChars) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

Result<JailerOptions> ParseJailerArgs(const std::vector<std::string>& args) {
  JailerOptions o;
  std::set<std::string> seen;
  for (size_t i = 0; i < args.size(); i++) {
    const std::string& arg = args[i];
    if (arg == "--") {
      o.exec_args.assign(args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (arg.rfind("--", 0) != 0) {
      return Error{StrFormat("unexpected argument %s (ember's arguments go after \"--\")",
                             QuoteForMessage(arg).c_str())};
    }
    std::string name = arg.substr(2);
    std::optional<std::string> inline_value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name.resize(eq);
    }
    auto flag =
        std::find_if(Flags().begin(), Flags().end(), [&](const Flag& f) { return name == f.name; });
    if (flag == Flags().end()) return Error{StrFormat("unknown flag --%s", name.c_str())};
    if (!flag->repeatable && !seen.insert(name).second) {
      return Error{StrFormat("--%s given more than once", name.c_str())};
    }
    std::string value;
    if (flag->value_name == nullptr) {
      if (inline_value) return Error{StrFormat("--%s takes no value", name.c_str())};
    } else if (inline_value) {
      value = *inline_value;
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return Error{StrFormat("--%s needs a value (%s)", name.c_str(), flag->value_name)};
    }
    TRY_STATUS(flag->apply(o, value));
  }
  if (o.command == JailerOptions::Command::kHelp || o.command == JailerOptions::Command::kVersion) {
    return o;
  }
  std::vector<const char*> required = {"id", "exec-file"};
  if (o.command == JailerOptions::Command::kRun) {
    required.push_back("uid");
    required.push_back("gid");
  }
  for (const char* flag : required) {
    if (!seen.count(flag)) return Error{StrFormat("--%s is required", flag)};
  }
  TRY_STATUS(CheckExecArgs(o.exec_args));
  return o;
}

std::string JailerUsage() {
  std::string out =
      "usage: ember-jailer --id ID --exec-file PATH --uid UID --gid GID [OPTIONS] [-- EMBER ARGS]\n"
      "       ember-jailer --cleanup --id ID --exec-file PATH [--chroot-base-dir DIR]\n"
      "                    [--cgroup-version 1|2] [--parent-cgroup PATH]\n\n"
      "Builds <chroot-base-dir>/<exec-file name>/<id>/root, copies the exec file there, joins the\n"
      "network namespace, rlimits and cgroups, pivots into the jail in a new mount namespace,\n"
      "creates /dev/kvm, /dev/net/tun and /dev/urandom, drops to UID:GID with no capabilities\n"
      "and execs /<exec-file name> --id ID --start-time-us .. --start-time-cpu-us ..\n"
      "--parent-cpu-time-us .. [EMBER ARGS]. Exit codes 10-26 name the step that failed.\n\n";
  for (const Flag& f : Flags()) {
    std::string left = std::string("--") + f.name;
    if (f.value_name) left += std::string(" ") + f.value_name;
    out += StrFormat("  %-30s %s\n", left.c_str(), f.help);
  }
  return out;
}

}  // namespace ember::jailer

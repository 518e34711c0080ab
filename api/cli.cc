#include "api/cli.h"

#include <sys/un.h>

#include <algorithm>
#include <cstring>
#include <string_view>

#include "vmm/base/strings.h"

namespace ember {

#ifndef EMBER_VERSION
#error "EMBER_VERSION must be defined by the build (api/CMakeLists.txt)"
#endif
const char kEmberVersion[] = EMBER_VERSION;

namespace {

// Firecracker's validate_instance_id (src/utils/src/validators.rs).
constexpr size_t kMaxInstanceIdChars = 64;
// sun_path holds the path and its terminating NUL.
constexpr size_t kMaxSocketPathBytes = sizeof(sockaddr_un::sun_path) - 1;

Error InvalidValue(const char* flag, std::string_view value, const char* expected) {
  return Error{
      StrFormat("ember: invalid value for --%s: %s (%s)", flag, QuoteForMessage(value).c_str(),
                expected)};
}

Status SetPath(const char* flag, const std::string& value, std::string* out) {
  if (value.empty()) return InvalidValue(flag, value, "expected a path");
  *out = value;
  return Ok();
}

Status SetNumber(const char* flag, const std::string& value, uint64_t* out) {
  if (!ParseU64(value, out)) return InvalidValue(flag, value, "expected a non-negative integer");
  return Ok();
}

Status SetOptionalNumber(const char* flag, const std::string& value, std::optional<uint64_t>* out) {
  uint64_t n;
  TRY_STATUS(SetNumber(flag, value, &n));
  *out = n;
  return Ok();
}

bool IsValidInstanceId(std::string_view id) {
  if (id.empty() || id.size() > kMaxInstanceIdChars) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

Error Unsupported(const char* flag, const char* why) {
  return Error{StrFormat("ember: --%s is not supported: %s", flag, why)};
}

// One row per flag: the parser and UsageText both read this table, so --help lists every flag
// the parser accepts.
struct Flag {
  const char* name;        // without the leading "--"
  const char* value_name;  // nullptr: a switch, which takes no value
  const char* help;
  Status (*apply)(CliOptions& o, const std::string& value);  // value is "" for a switch
};

constexpr Flag kFlags[] = {
    {"api-sock", "PATH", "Unix socket for the REST API (default /run/ember.socket)",
     [](CliOptions& o, const std::string& v) -> Status {
       if (v.empty() || v.size() > kMaxSocketPathBytes)
         return InvalidValue(
             "api-sock", v, StrFormat("a socket path of 1-%zu bytes", kMaxSocketPathBytes).c_str());
       o.api_sock = v;
       return Ok();
     }},
    {"config-file", "FILE", "Boot the microVM from this Firecracker-format JSON file",
     [](CliOptions& o, const std::string& v) { return SetPath("config-file", v, &o.config_file); }},
    {"no-api", nullptr, "Run without the API socket (requires --config-file)",
     [](CliOptions& o, const std::string&) -> Status {
       o.no_api = true;
       return Ok();
     }},
    {"id", "ID",
     "Instance id for logs and metrics, 1-64 of A-Z a-z 0-9 - (default anonymous-instance)",
     [](CliOptions& o, const std::string& v) -> Status {
       if (!IsValidInstanceId(v))
         return InvalidValue("id", v, "1-64 characters of A-Z, a-z, 0-9 and '-'");
       o.id = v;
       return Ok();
     }},
    {"boot-timer", nullptr, "Add the boot-timer device, which logs when the guest signals boot",
     [](CliOptions& o, const std::string&) -> Status {
       o.boot_timer = true;
       return Ok();
     }},
    {"log-path", "PATH", "Write log lines to this file or FIFO instead of stderr",
     [](CliOptions& o, const std::string& v) { return SetPath("log-path", v, &o.log_path); }},
    {"level", "LEVEL", "Log level: Error, Warning, Info, Debug, Trace or Off (default Info)",
     [](CliOptions& o, const std::string& v) -> Status {
       o.level = ParseLogLevel(v);
       if (!o.level)
         return InvalidValue("level", v, "one of Error, Warning, Info, Debug, Trace, Off");
       return Ok();
     }},
    {"module", "NAME", "Log only the lines of this module",
     [](CliOptions& o, const std::string& v) -> Status {
       if (v.empty()) return InvalidValue("module", v, "expected a module name");
       o.module = v;
       return Ok();
     }},
    {"show-level", nullptr, "Show the level in log lines",
     [](CliOptions& o, const std::string&) -> Status {
       o.show_level = true;
       return Ok();
     }},
    {"show-log-origin", nullptr, "Show the source file and line in log lines",
     [](CliOptions& o, const std::string&) -> Status {
       o.show_log_origin = true;
       return Ok();
     }},
    {"metrics-path", "PATH", "Write metrics to this file or FIFO, one JSON object per line",
     [](CliOptions& o, const std::string& v) {
       return SetPath("metrics-path", v, &o.metrics_path);
     }},
    {"metadata", "FILE", "JSON file that preloads the MMDS data store",
     [](CliOptions& o, const std::string& v) { return SetPath("metadata", v, &o.metadata); }},
    {"http-api-max-payload-size", "BYTES", "Largest accepted API request body (default 51200)",
     [](CliOptions& o, const std::string& v) -> Status {
       TRY_STATUS(SetNumber("http-api-max-payload-size", v, &o.http_api_max_payload_size));
       if (o.http_api_max_payload_size == 0)
         return InvalidValue("http-api-max-payload-size", v, "must be at least 1");
       return Ok();
     }},
    {"mmds-size-limit", "BYTES", "Largest MMDS data store (default: the API payload limit)",
     [](CliOptions& o, const std::string& v) {
       return SetOptionalNumber("mmds-size-limit", v, &o.mmds_size_limit);
     }},
    {"seccomp-filter", "FILE",
     "Seccomp filters from this JSON file (Firecracker's seccompiler format, roles vmm, api "
     "and vcpu) instead of the built-in ones",
     [](CliOptions& o, const std::string& v) {
       return SetPath("seccomp-filter", v, &o.seccomp_filter);
     }},
    {"no-seccomp", nullptr, "Disable seccomp filtering",
     [](CliOptions& o, const std::string&) -> Status {
       o.no_seccomp = true;
       return Ok();
     }},
    {"start-time-us", "US", "Launcher's start time, monotonic clock (for the startup metrics)",
     [](CliOptions& o, const std::string& v) {
       return SetOptionalNumber("start-time-us", v, &o.start_time_us);
     }},
    {"start-time-cpu-us", "US",
     "Launcher's start time, process CPU clock (for the startup metrics)",
     [](CliOptions& o, const std::string& v) {
       return SetOptionalNumber("start-time-cpu-us", v, &o.start_time_cpu_us);
     }},
    {"parent-cpu-time-us", "US", "CPU time the launcher spent before starting ember",
     [](CliOptions& o, const std::string& v) {
       return SetOptionalNumber("parent-cpu-time-us", v, &o.parent_cpu_time_us);
     }},
    {"version", nullptr, "Print the version and exit",
     [](CliOptions& o, const std::string&) -> Status {
       o.version = true;
       return Ok();
     }},
    {"help", nullptr, "Print this help and exit",
     [](CliOptions& o, const std::string&) -> Status {
       o.help = true;
       return Ok();
     }},
    {"snapshot-version", nullptr, "Not supported: ember has no snapshots yet",
     [](CliOptions&, const std::string&) -> Status {
       return Unsupported("snapshot-version", "ember has no snapshots yet");
     }},
    {"describe-snapshot", "FILE", "Not supported: ember has no snapshots yet",
     [](CliOptions&, const std::string&) -> Status {
       return Unsupported("describe-snapshot", "ember has no snapshots yet");
     }},
    {"enable-pci", nullptr, "Not supported: ember has only the virtio-mmio transport",
     [](CliOptions&, const std::string&) -> Status {
       return Unsupported("enable-pci", "ember has only the virtio-mmio transport");
     }},
};

const Flag* FindFlag(std::string_view name) {
  for (const Flag& f : kFlags) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

// Rules that involve more than one flag (Firecracker's main.rs). --help and --version skip them:
// they print and exit before anything is used.
Status CheckCombinations(const CliOptions& o) {
  if (o.help || o.version) return Ok();
  if (o.no_api && o.config_file.empty()) return Error{"ember: --no-api requires --config-file"};
  if (o.no_seccomp && !o.seccomp_filter.empty())
    return Error{"ember: --seccomp-filter and --no-seccomp cannot be used together"};
  return Ok();
}

}  // namespace

Result<CliOptions> ParseCommandLine(const std::vector<std::string>& args) {
  CliOptions options;
  bool seen[std::size(kFlags)] = {};
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.size() <= 2 || arg.compare(0, 2, "--") != 0)
      return Error{StrFormat("ember: unexpected argument %s (flags start with --; see --help)",
                             QuoteForMessage(arg).c_str())};
    std::string_view body = std::string_view(arg).substr(2);
    size_t eq = body.find('=');
    std::string_view name = body.substr(0, eq);
    const Flag* flag = FindFlag(name);
    if (!flag)
      return Error{StrFormat("ember: unknown flag %s (see --help)",
                             QuoteForMessage(arg.substr(0, 2 + name.size())).c_str())};
    bool& flag_seen = seen[flag - kFlags];
    if (flag_seen) return Error{StrFormat("ember: --%s given more than once", flag->name)};
    flag_seen = true;

    std::string value;
    if (!flag->value_name) {
      if (eq != std::string_view::npos)
        return Error{StrFormat("ember: --%s takes no value", flag->name)};
    } else if (eq != std::string_view::npos) {
      value = body.substr(eq + 1);
    } else {
      // As Firecracker's parser: a following flag is not taken as the value. A value that starts
      // with "--" can still be given as --flag=--value.
      if (i + 1 >= args.size() || args[i + 1].compare(0, 2, "--") == 0)
        return Error{StrFormat("ember: missing value for --%s %s", flag->name, flag->value_name)};
      value = args[++i];
    }
    TRY_STATUS(flag->apply(options, value));
  }
  TRY_STATUS(CheckCombinations(options));
  return options;
}

Result<CliOptions> ParseCommandLine(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return ParseCommandLine(args);
}

std::string UsageText() {
  std::string text = StrFormat(
      "ember v%s: a microVM monitor with Firecracker's command line and config file.\n\n"
      "Usage: ember --config-file FILE [--no-api] [OPTIONS]\n"
      "       ember [--api-sock PATH] [OPTIONS]\n\n"
      "Flags (--flag VALUE and --flag=VALUE are both accepted):\n",
      kEmberVersion);
  size_t width = 0;
  for (const Flag& f : kFlags) {
    size_t w = 2 + strlen(f.name) + (f.value_name ? 1 + strlen(f.value_name) : 0);
    width = std::max(width, w);
  }
  for (const Flag& f : kFlags) {
    std::string left = std::string("--") + f.name;
    if (f.value_name) left += std::string(" ") + f.value_name;
    text += StrFormat("  %-*s  %s\n", static_cast<int>(width), left.c_str(), f.help);
  }
  text +=
      "\nExit codes: 0 the guest shut down or reset, 1 a VMM error, 152 bad configuration, "
      "153 bad arguments.\n";
  return text;
}

}  // namespace ember

// ember's command line: Firecracker's flags (firecracker-facts §1.4), so launchers written for
// Firecracker (go-sdk, firectl, Kata, flintlock, the jailer) start ember unchanged. Flags that
// ember does not act on yet (MMDS sizes) are still validated and stored, because launchers pass
// them on every start.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vmm/base/log.h"
#include "vmm/base/result.h"

namespace ember {

// The project version (CMake's project(VERSION)), printed by --version.
extern const char kEmberVersion[];

inline constexpr const char* kDefaultApiSock = "/run/ember.socket";
inline constexpr const char* kDefaultInstanceId = "anonymous-instance";
// Firecracker's HTTP_MAX_PAYLOAD_SIZE (src/vmm/src/lib.rs).
inline constexpr uint64_t kDefaultHttpApiMaxPayloadBytes = 51200;

struct CliOptions {
  std::string api_sock = kDefaultApiSock;
  std::string config_file;  // empty: none
  bool no_api = false;
  std::string id = kDefaultInstanceId;
  bool boot_timer = false;

  // Logger and metrics set at startup.
  std::string log_path;  // empty: stderr
  std::optional<LogLevel> level;
  std::string module;  // empty: no module filter
  bool show_level = false;
  bool show_log_origin = false;
  std::string metrics_path;  // empty: no metrics

  std::string metadata;  // --metadata: a JSON file preloading the MMDS store; empty: none
  uint64_t http_api_max_payload_size = kDefaultHttpApiMaxPayloadBytes;
  std::optional<uint64_t> mmds_size_limit;  // absent: the payload limit

  // Passed by launchers and the jailer.
  // Firecracker's flag takes BPF compiled by seccompiler-bin; ember's takes the JSON itself
  // (api/seccomp_json.h). Empty: the built-in profiles (seccomp-profiles/).
  std::string seccomp_filter;
  bool no_seccomp = false;
  std::optional<uint64_t> start_time_us;
  std::optional<uint64_t> start_time_cpu_us;
  std::optional<uint64_t> parent_cpu_time_us;

  bool version = false;
  bool help = false;
};

// Parses the arguments after the program name. Both "--flag value" and "--flag=value" are
// accepted. Every error is one line naming the flag, starting "ember: "; the caller prints it
// and exits with 153 (Firecracker's argument-parsing exit code).
Result<CliOptions> ParseCommandLine(const std::vector<std::string>& args);
Result<CliOptions> ParseCommandLine(int argc, char** argv);

// The --help text: a usage line and every flag with a one-line description.
std::string UsageText();

}  // namespace ember

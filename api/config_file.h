// Firecracker's config file (--config-file, firecracker-facts §1.3): one JSON object with
// kebab-case keys whose values are the REST API bodies. Parsed here, once, into VmConfig.
//
// Handled: "boot-source" (required), "machine-config", "logger", "metrics". The device keys that
// later issues implement ("drives", "network-interfaces", "pmem", "vsock", "entropy", "balloon",
// "mmds-config", "cpu-config", "memory-hotplug") are recognised and rejected with
// "<key> is not supported yet" unless they configure nothing (null, or an empty array).
#pragma once

#include <string>
#include <string_view>

#include "vmm/base/result.h"
#include "vmm/config/vm_config.h"

namespace ember {

// Firecracker's guest memory limit on x86_64 (firecracker-facts §2.1: "about 1022 GiB").
inline constexpr uint64_t kMaxMemSizeMib = 1022ull * 1024;

// Errors name the field's path: "machine-config.vcpu_count: expected an integer from 1 to 32,
// got 0", `unknown field "vcpus" in machine-config`, "JSON syntax error at byte 17: ...".
Result<VmConfig> ParseConfigFile(std::string_view json);

// Reads and parses the file; errors start with the path ("vm.json: boot-source...") or read
// "cannot read config file vm.json: ENOENT (No such file or directory)".
Result<VmConfig> LoadConfigFile(const std::string& path);

// The config-file format again (what GET /vm/config returns); ParseConfigFile accepts it.
// Sections ember does not implement yet appear as Firecracker shows them when unset: null, or
// an empty array.
std::string VmConfigToJson(const VmConfig& config);

}  // namespace ember

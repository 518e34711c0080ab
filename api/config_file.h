// Firecracker's config file (--config-file, firecracker-facts §1.3): one JSON object with
// kebab-case keys whose values are the REST API bodies. Parsed here, once, into VmConfig.
//
// Handled: "boot-source" (required), "machine-config", "logger", "metrics", "drives",
// "network-interfaces", "vsock", "entropy". The keys that later issues implement ("pmem",
// "balloon", "mmds-config", "cpu-config", "memory-hotplug") are recognised and rejected with
// "<key> is not supported yet" unless they configure nothing (null, or an empty array).
#pragma once

#include <rapidjson/document.h>

#include <string>
#include <string_view>

#include "vmm/base/result.h"
#include "vmm/config/vm_config.h"
#include "vmm/config/vmm_action.h"

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

// The machine-config object alone, as GET /machine-config returns it.
std::string MachineConfigToJson(const MachineConfig& machine);

// --- One body at a time ---
// The file's sections and the REST API's bodies are the same objects, so the API (api/routes.h)
// parses a body with these, under the same rules and with the same words. `value` is the object,
// `path` names it in errors: "machine-config" gives "machine-config.vcpu_count: expected an
// integer from 1 to 32, got 0". Each result is valid on its own; rules that need other state
// (one root drive, unique IDs, pre- or post-boot) belong to the caller.

Result<BootSourceConfig> ParseBootSource(const rapidjson::Value& value, const std::string& path);
// PUT /machine-config: vcpu_count and mem_size_mib are required.
Result<MachineConfig> ParseMachineConfig(const rapidjson::Value& value, const std::string& path);
// PATCH /machine-config: any subset, each field checked alone.
Result<MachineConfigUpdate> ParseMachineConfigUpdate(const rapidjson::Value& value,
                                                     const std::string& path);
Result<DriveConfig> ParseDrive(const rapidjson::Value& value, const std::string& path);
// PATCH /drives/{drive_id}: drive_id, path_on_host and rate_limiter only.
Result<DriveUpdate> ParseDriveUpdate(const rapidjson::Value& value, const std::string& path);
Result<NetworkInterfaceConfig> ParseNetworkInterface(const rapidjson::Value& value,
                                                     const std::string& path);
// PATCH /network-interfaces/{iface_id}: iface_id and the two rate limiters only.
Result<NetworkInterfaceUpdate> ParseNetworkInterfaceUpdate(const rapidjson::Value& value,
                                                           const std::string& path);
Result<VsockConfig> ParseVsock(const rapidjson::Value& value, const std::string& path);
Result<EntropyConfig> ParseEntropy(const rapidjson::Value& value, const std::string& path);
Result<LoggerConfigFile> ParseLogger(const rapidjson::Value& value, const std::string& path);
Result<MetricsConfig> ParseMetrics(const rapidjson::Value& value, const std::string& path);

}  // namespace ember

// What an API request asks of the VMM, as plain structs: api/ parses HTTP and JSON into a
// VmmAction, the controller (vmm/controller.h) applies it on the VMM thread and answers with a
// VmmData or an error message (Firecracker's VmmAction / VmmData, firecracker-facts §1).
#pragma once

#include <optional>
#include <string>
#include <variant>

#include "vmm/base/rate_limiter_config.h"
#include "vmm/config/vm_config.h"

namespace ember {

// PATCH /machine-config: only the fields given change.
struct MachineConfigUpdate {
  std::optional<uint32_t> vcpu_count;
  std::optional<uint64_t> mem_size_mib;
  std::optional<bool> smt;
  std::optional<bool> track_dirty_pages;
  std::optional<HugePages> huge_pages;
};

// PATCH /drives/{drive_id} (post-boot): a new backing file and/or a new rate limiter.
struct DriveUpdate {
  std::string drive_id;
  std::optional<std::string> path_on_host;
  std::optional<RateLimiterConfig> rate_limiter;
};

// PATCH /network-interfaces/{iface_id} (post-boot): new rate limiters.
struct NetworkInterfaceUpdate {
  std::string iface_id;
  std::optional<RateLimiterConfig> rx_rate_limiter;
  std::optional<RateLimiterConfig> tx_rate_limiter;
};

// PUT /serial.
struct SerialConfig {
  std::optional<std::string> serial_out_path;
};

struct GetInstanceInfo {};
struct GetVersion {};
struct GetMachineConfig {};
struct GetVmConfig {};
struct InstanceStart {};
struct SendCtrlAltDel {};
struct FlushMetrics {};
struct PauseVm {};
struct ResumeVm {};

using VmmAction =
    std::variant<GetInstanceInfo, GetVersion, GetMachineConfig, GetVmConfig, BootSourceConfig,
                 MachineConfig, MachineConfigUpdate, DriveConfig, DriveUpdate,
                 NetworkInterfaceConfig, NetworkInterfaceUpdate, VsockConfig, EntropyConfig,
                 SerialConfig, LoggerConfigFile, MetricsConfig, InstanceStart, SendCtrlAltDel,
                 FlushMetrics, PauseVm, ResumeVm>;

enum class InstanceState { kNotStarted, kRunning, kPaused };

// GET / (Firecracker's InstanceInfo).
struct InstanceInfo {
  std::string id;
  InstanceState state = InstanceState::kNotStarted;
  std::string vmm_version;
};

struct VersionInfo {
  std::string firecracker_version;  // Firecracker's field name; ember reports its own version
};

struct NoData {};

using VmmData = std::variant<NoData, InstanceInfo, VersionInfo, MachineConfig, VmConfig>;

}  // namespace ember

// The VM's configuration as plain structs. Parsed once at the edge (api/: the config file and,
// later, the REST API) and consumed by the builder; nothing below api/ sees JSON.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vmm/base/log.h"
#include "vmm/base/rate_limiter_config.h"

namespace ember {

// Firecracker's default when boot_args is absent (vmm_config/boot_source.rs).
inline constexpr const char* kDefaultBootArgs =
    "reboot=k panic=1 nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.dumbkbd "
    "swiotlb=noforce";

inline constexpr uint32_t kMaxVcpus = 32;  // Firecracker's MAX_SUPPORTED_VCPUS

struct BootSourceConfig {
  std::string kernel_image_path;
  std::optional<std::string> boot_args;  // absent: kDefaultBootArgs
  std::optional<std::string> initrd_path;
};

enum class HugePages { kNone, k2M };

struct MachineConfig {
  uint32_t vcpu_count = 1;
  uint64_t mem_size_mib = 128;
  bool smt = false;
  bool track_dirty_pages = false;
  HugePages huge_pages = HugePages::kNone;
};

// The config file's "logger" object (Firecracker's PUT /logger body). Absent fields leave the
// command line's (or the default) setting in place.
struct LoggerConfigFile {
  std::optional<std::string> log_path;
  std::optional<LogLevel> level;
  bool show_level = false;
  bool show_log_origin = false;
  std::optional<std::string> module;
};

// The config file's "metrics" object (Firecracker's PUT /metrics body).
struct MetricsConfig {
  std::string metrics_path;
};

enum class CacheType { kUnsafe, kWriteback };
enum class IoEngine { kSync, kAsync };

// One of the config file's "drives" (Firecracker's PUT /drives/{drive_id} body).
struct DriveConfig {
  std::string drive_id;
  std::string path_on_host;
  bool is_root_device = false;
  bool is_read_only = false;
  std::optional<std::string> partuuid;
  CacheType cache_type = CacheType::kUnsafe;
  IoEngine io_engine = IoEngine::kSync;
  std::optional<RateLimiterConfig> rate_limiter;
};

// One of the config file's "network-interfaces" (PUT /network-interfaces/{iface_id}).
struct NetworkInterfaceConfig {
  std::string iface_id;
  std::string host_dev_name;
  std::optional<std::array<uint8_t, 6>> guest_mac;
  std::optional<uint16_t> mtu;
  std::optional<RateLimiterConfig> rx_rate_limiter;
  std::optional<RateLimiterConfig> tx_rate_limiter;
};

// The config file's "vsock" object (PUT /vsock).
struct VsockConfig {
  uint64_t guest_cid = 0;
  std::string uds_path;
};

// The config file's "entropy" object (PUT /entropy).
struct EntropyConfig {
  std::optional<RateLimiterConfig> rate_limiter;
};

struct VmConfig {
  std::optional<BootSourceConfig> boot_source;
  MachineConfig machine;
  std::optional<LoggerConfigFile> logger;
  std::optional<MetricsConfig> metrics;
  std::vector<DriveConfig> drives;  // in the order given; the root device is attached first
  std::optional<EntropyConfig> entropy;
  std::vector<NetworkInterfaceConfig> network_interfaces;
  std::optional<VsockConfig> vsock;
};

}  // namespace ember

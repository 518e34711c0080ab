#include "vmm/controller.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <type_traits>
#include <utility>

#include "vmm/base/clock.h"
#include "vmm/base/log.h"
#include "vmm/base/metrics.h"
#include "vmm/base/strings.h"

namespace ember {
namespace {

constexpr int kExitBadConfiguration = 152;

// Firecracker's wording for requests made at the wrong time (rpc_interface.rs).
constexpr const char* kNotAllowedBeforeBoot =
    "The requested operation is not supported before starting the microVM.";
constexpr const char* kNotAllowedAfterBoot =
    "The requested operation is not supported after starting the microVM.";

// Firecracker opens the files named in a configuration request when the request arrives, so a
// typo fails the request, not the later InstanceStart.
Status CheckReadableFile(const std::string& what, const std::string& path, bool writable) {
  UniqueFd fd(open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC));
  if (!fd.valid()) return Error::Errno(StrFormat("cannot open %s %s", what.c_str(), path.c_str()));
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return Error::Errno(StrFormat("fstat %s", path.c_str()));
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
    return Error{StrFormat("%s %s is not a regular file", what.c_str(), path.c_str())};
  return Ok();
}

size_t VirtioDeviceCount(const VmConfig& c) {
  return c.drives.size() + c.network_interfaces.size() + (c.vsock ? 1 : 0) +
         (c.entropy ? 1 : 0);
}

Status CheckDeviceCount(const VmConfig& c) {
  if (VirtioDeviceCount(c) > kMaxVirtioDevices) {
    return Error{StrFormat("too many virtio devices: at most %u fit the interrupt lines",
                           kMaxVirtioDevices)};
  }
  return Ok();
}

template <typename T>
constexpr bool kIsRuntimeAction =
    std::is_same_v<T, DriveUpdate> || std::is_same_v<T, NetworkInterfaceUpdate> ||
    std::is_same_v<T, SendCtrlAltDel> || std::is_same_v<T, FlushMetrics> ||
    std::is_same_v<T, PauseVm> || std::is_same_v<T, ResumeVm>;

template <typename T>
constexpr bool kIsAlwaysAllowed =
    std::is_same_v<T, GetInstanceInfo> || std::is_same_v<T, GetVersion> ||
    std::is_same_v<T, GetMachineConfig> || std::is_same_v<T, GetVmConfig>;

}  // namespace

Controller::Controller(std::string instance_id, std::string vmm_version, VmmOptions options,
                       ControllerHooks hooks)
    : instance_id_(std::move(instance_id)),
      vmm_version_(std::move(vmm_version)),
      options_(options),
      hooks_(std::move(hooks)) {}

Controller::~Controller() = default;

Result<VmmData> Controller::Handle(const VmmAction& action) {
  return std::visit(
      [this, &action](const auto& a) -> Result<VmmData> {
        using T = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<T, GetInstanceInfo>) {
          return VmmData{InstanceInfo{instance_id_, state_, vmm_version_}};
        } else if constexpr (std::is_same_v<T, GetVersion>) {
          return VmmData{VersionInfo{vmm_version_}};
        } else if constexpr (std::is_same_v<T, GetMachineConfig>) {
          return VmmData{config_.machine};
        } else if constexpr (std::is_same_v<T, GetVmConfig>) {
          return VmmData{config_};
        } else if constexpr (kIsRuntimeAction<T>) {
          if (state_ == InstanceState::kNotStarted) return Error{kNotAllowedBeforeBoot};
          return HandleRuntime(action);
        } else {
          static_assert(!kIsAlwaysAllowed<T>);
          if (state_ != InstanceState::kNotStarted) return Error{kNotAllowedAfterBoot};
          return HandlePreBoot(action);
        }
      },
      action);
}

Result<VmmData> Controller::HandlePreBoot(const VmmAction& action) {
  Status s = std::visit(
      [this](const auto& a) -> Status {
        using T = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<T, BootSourceConfig>) return PutBootSource(a);
        if constexpr (std::is_same_v<T, MachineConfig>) return PutMachineConfig(a);
        if constexpr (std::is_same_v<T, MachineConfigUpdate>) return PatchMachineConfig(a);
        if constexpr (std::is_same_v<T, DriveConfig>) return PutDrive(a);
        if constexpr (std::is_same_v<T, NetworkInterfaceConfig>) return PutNetworkInterface(a);
        if constexpr (std::is_same_v<T, VsockConfig>) return PutVsock(a);
        if constexpr (std::is_same_v<T, EntropyConfig>) return PutEntropy(a);
        if constexpr (std::is_same_v<T, SerialConfig>) return PutSerial(a);
        if constexpr (std::is_same_v<T, LoggerConfigFile>) {
          if (hooks_.configure_logger) TRY_STATUS(hooks_.configure_logger(a));
          config_.logger = a;
          return Ok();
        }
        if constexpr (std::is_same_v<T, MetricsConfig>) return PutMetrics(a);
        if constexpr (std::is_same_v<T, InstanceStart>) {
          int exit_code = 0;
          if (Status s = Start(&exit_code); !s.ok())
            return s.error().Wrap("cannot start the microVM");
          return Ok();
        }
        return Error{"internal error: unhandled pre-boot request"};
      },
      action);
  if (!s.ok()) return s.error();
  return VmmData{NoData{}};
}

Result<VmmData> Controller::HandleRuntime(const VmmAction& action) {
  Status s = std::visit(
      [this](const auto& a) -> Status {
        using T = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<T, PauseVm>) {
          const uint64_t start_us = MonotonicUs();
          TRY_STATUS(vmm_->Pause());
          state_ = InstanceState::kPaused;
          metrics().latencies_us.pause_vm.Set(MonotonicUs() - start_us);
          return Ok();
        }
        if constexpr (std::is_same_v<T, ResumeVm>) {
          const uint64_t start_us = MonotonicUs();
          TRY_STATUS(vmm_->Resume());
          state_ = InstanceState::kRunning;
          metrics().latencies_us.resume_vm.Set(MonotonicUs() - start_us);
          return Ok();
        }
        if constexpr (std::is_same_v<T, SendCtrlAltDel>) return vmm_->SendCtrlAltDel();
        if constexpr (std::is_same_v<T, FlushMetrics>) {
          if (!hooks_.flush_metrics) return Error{"metrics are not configured"};
          return hooks_.flush_metrics();
        }
        if constexpr (std::is_same_v<T, DriveUpdate>) {
          auto it = std::find_if(config_.drives.begin(), config_.drives.end(),
                                 [&](const DriveConfig& d) { return d.drive_id == a.drive_id; });
          if (it == config_.drives.end())
            return Error{StrFormat("no drive with drive_id \"%s\"", a.drive_id.c_str())};
          TRY_STATUS(vmm_->UpdateDrive(a));
          if (a.path_on_host) it->path_on_host = *a.path_on_host;
          if (a.rate_limiter) it->rate_limiter = *a.rate_limiter;
          return Ok();
        }
        if constexpr (std::is_same_v<T, NetworkInterfaceUpdate>) {
          auto it = std::find_if(
              config_.network_interfaces.begin(), config_.network_interfaces.end(),
              [&](const NetworkInterfaceConfig& n) { return n.iface_id == a.iface_id; });
          if (it == config_.network_interfaces.end())
            return Error{StrFormat("no network interface with iface_id \"%s\"", a.iface_id.c_str())};
          TRY_STATUS(vmm_->UpdateNetworkInterface(a));
          if (a.rx_rate_limiter) it->rx_rate_limiter = *a.rx_rate_limiter;
          if (a.tx_rate_limiter) it->tx_rate_limiter = *a.tx_rate_limiter;
          return Ok();
        }
        return Error{"internal error: unhandled runtime request"};
      },
      action);
  if (!s.ok()) return s.error();
  return VmmData{NoData{}};
}

Status Controller::PutBootSource(const BootSourceConfig& boot) {
  TRY_STATUS(CheckReadableFile("kernel image", boot.kernel_image_path, false));
  if (boot.initrd_path) TRY_STATUS(CheckReadableFile("initrd", *boot.initrd_path, false));
  config_.boot_source = boot;
  return Ok();
}

Status Controller::PutMachineConfig(const MachineConfig& machine) {
  config_.machine = machine;
  return Ok();
}

Status Controller::PatchMachineConfig(const MachineConfigUpdate& u) {
  MachineConfig m = config_.machine;
  if (u.vcpu_count) m.vcpu_count = *u.vcpu_count;
  if (u.mem_size_mib) m.mem_size_mib = *u.mem_size_mib;
  if (u.smt) m.smt = *u.smt;
  if (u.track_dirty_pages) m.track_dirty_pages = *u.track_dirty_pages;
  if (u.huge_pages) m.huge_pages = *u.huge_pages;
  config_.machine = m;
  return Ok();
}

Status Controller::PutDrive(const DriveConfig& drive) {
  TRY_STATUS(CheckReadableFile("drive " + drive.drive_id + ": path_on_host", drive.path_on_host,
                               !drive.is_read_only));
  VmConfig next = config_;
  auto it = std::find_if(next.drives.begin(), next.drives.end(),
                         [&](const DriveConfig& d) { return d.drive_id == drive.drive_id; });
  if (it != next.drives.end()) {
    *it = drive;
  } else {
    next.drives.push_back(drive);
  }
  int roots = 0;
  for (const DriveConfig& d : next.drives) roots += d.is_root_device ? 1 : 0;
  if (roots > 1) return Error{"A root block device already exists!"};
  TRY_STATUS(CheckDeviceCount(next));
  config_ = std::move(next);
  return Ok();
}

Status Controller::PutNetworkInterface(const NetworkInterfaceConfig& iface) {
  VmConfig next = config_;
  auto& nets = next.network_interfaces;
  auto it = std::find_if(nets.begin(), nets.end(), [&](const NetworkInterfaceConfig& n) {
    return n.iface_id == iface.iface_id;
  });
  if (it != nets.end()) {
    *it = iface;
  } else {
    nets.push_back(iface);
  }
  for (const NetworkInterfaceConfig& other : nets) {
    if (other.iface_id == iface.iface_id) continue;
    if (other.host_dev_name == iface.host_dev_name) {
      return Error{StrFormat("host_dev_name \"%s\" is already used by network interface \"%s\"",
                             iface.host_dev_name.c_str(), other.iface_id.c_str())};
    }
    if (iface.guest_mac && other.guest_mac == iface.guest_mac) {
      return Error{StrFormat("guest_mac is already used by network interface \"%s\"",
                             other.iface_id.c_str())};
    }
  }
  TRY_STATUS(CheckDeviceCount(next));
  config_ = std::move(next);
  return Ok();
}

Status Controller::PutVsock(const VsockConfig& vsock) {
  VmConfig next = config_;
  next.vsock = vsock;
  TRY_STATUS(CheckDeviceCount(next));
  config_ = std::move(next);
  return Ok();
}

Status Controller::PutEntropy(const EntropyConfig& entropy) {
  VmConfig next = config_;
  next.entropy = entropy;
  TRY_STATUS(CheckDeviceCount(next));
  config_ = std::move(next);
  return Ok();
}

Status Controller::PutSerial(const SerialConfig& serial) {
  UniqueFd out;
  if (serial.serial_out_path) {
    // Non-blocking as Firecracker: a full FIFO drops console output instead of stalling a vCPU.
    out.reset(open(serial.serial_out_path->c_str(),
                   O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0600));
    if (!out.valid())
      return Error::Errno("cannot open serial_out_path " + *serial.serial_out_path);
  }
  serial_ = serial;
  serial_out_ = std::move(out);
  return Ok();
}

Status Controller::PutMetrics(const MetricsConfig& metrics) {
  if (metrics_configured_) return Error{"Reinitialization of metrics not allowed."};
  if (hooks_.configure_metrics) TRY_STATUS(hooks_.configure_metrics(metrics));
  metrics_configured_ = true;
  config_.metrics = metrics;
  return Ok();
}

Status Controller::StartFromConfig(const VmConfig& config, int* exit_code) {
  config_ = config;
  metrics_configured_ = config.metrics.has_value();
  return Start(exit_code);
}

Status Controller::Start(int* exit_code) {
  *exit_code = kExitBadConfiguration;
  if (!config_.boot_source) return Error{"Cannot start microvm without kernel configuration."};
  VmmOptions options = options_;
  if (options.boot_start_us == 0) {
    // Over the API the boot timer counts from InstanceStart, as Firecracker's does.
    options.boot_start_us = MonotonicUs();
    options.boot_start_cpu_us = ProcessCpuUs();
  }
  if (serial_out_.valid()) options.serial_out_fd = serial_out_.get();
  auto vmm = Vmm::Build(config_, options, exit_code);
  if (!vmm.ok()) return vmm.error();
  vmm_ = std::move(*vmm);
  state_ = InstanceState::kRunning;
  *exit_code = 0;
  if (hooks_.vmm_built) hooks_.vmm_built(*vmm_);
  return Ok();
}

}  // namespace ember

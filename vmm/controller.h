// Controller: the microVM's lifecycle as a state machine, on the VMM thread. Before boot it
// collects configuration (Firecracker's VmResources); InstanceStart builds the Vmm; after boot it
// forwards runtime requests (pause, resume, Ctrl-Alt-Del, drive and interface updates) to it.
//
// Every configuration request is validated completely before anything changes, so a rejected
// request leaves the configuration exactly as it was. Requests made at the wrong time get
// Firecracker's messages (firecracker-facts §1.1).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "vmm/base/result.h"
#include "vmm/config/vm_config.h"
#include "vmm/config/vmm_action.h"
#include "vmm/vmm.h"

namespace ember {

// What the controller cannot do itself: process-wide logger and metrics live above the VMM.
struct ControllerHooks {
  std::function<Status(const LoggerConfigFile&)> configure_logger;
  std::function<Status(const MetricsConfig&)> configure_metrics;
  std::function<Status()> flush_metrics;
  // Called once the Vmm is built, before the API answers InstanceStart.
  std::function<void(Vmm&)> vmm_built;
};

class Controller {
 public:
  Controller(std::string instance_id, std::string vmm_version, VmmOptions options,
             ControllerHooks hooks);
  ~Controller();

  Result<VmmData> Handle(const VmmAction& action);

  // Config-file mode: takes the whole configuration and starts. On failure *exit_code is 152
  // (the configuration) or 1 (the host).
  Status StartFromConfig(const VmConfig& config, int* exit_code);

  InstanceState state() const { return state_; }
  Vmm* vmm() { return vmm_.get(); }
  const VmConfig& config() const { return config_; }

 private:
  Result<VmmData> HandlePreBoot(const VmmAction& action);
  Result<VmmData> HandleRuntime(const VmmAction& action);

  Status PutBootSource(const BootSourceConfig& boot);
  Status PutMachineConfig(const MachineConfig& machine);
  Status PatchMachineConfig(const MachineConfigUpdate& update);
  Status PutDrive(const DriveConfig& drive);
  Status PutNetworkInterface(const NetworkInterfaceConfig& iface);
  Status PutVsock(const VsockConfig& vsock);
  Status PutEntropy(const EntropyConfig& entropy);
  Status PutSerial(const SerialConfig& serial);
  Status PutMetrics(const MetricsConfig& metrics);
  Status Start(int* exit_code);

  std::string instance_id_;
  std::string vmm_version_;
  VmmOptions options_;
  ControllerHooks hooks_;
  VmConfig config_;
  std::optional<SerialConfig> serial_;
  UniqueFd serial_out_;
  bool metrics_configured_ = false;
  InstanceState state_ = InstanceState::kNotStarted;
  std::unique_ptr<Vmm> vmm_;
};

}  // namespace ember

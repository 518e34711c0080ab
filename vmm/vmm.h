// Vmm: a built, running microVM. It owns KVM, guest memory, the devices and the vCPU threads, and
// runs the epoll event loop on the thread that calls Run() (the VMM thread): stdin to the UART,
// the exit doorbell, and (later) virtio queues. Build() is the ordered list of boot steps.
#pragma once

#include <termios.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "devices/bus.h"
#include "devices/legacy/boot_timer.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/serial.h"
#include "devices/virtio/block.h"
#include "devices/virtio/mmio_transport.h"
#include "devices/virtio/net.h"
#include "vmm/base/event_loop.h"
#include "vmm/boot/boot.h"
#include "vmm/config/vm_config.h"
#include "vmm/config/vmm_action.h"
#include "vmm/kvm/kvm.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/vcpu.h"

namespace ember {

// virtio-mmio devices take GSIs 5..23, one each (Firecracker's IRQ_BASE..IRQ_MAX).
inline constexpr uint32_t kMaxVirtioDevices = 19;

struct VmmOptions {
  bool boot_timer = false;
  uint64_t boot_start_us = 0;      // CLOCK_MONOTONIC at the start of boot (boot-timer origin)
  uint64_t boot_start_cpu_us = 0;  // process CPU time at the same moment
  int serial_in_fd = 0;            // guest console input (used when a terminal, pipe or socket)
  int serial_out_fd = 1;           // guest console output
};

class Vmm {
 public:
  // On failure *exit_code says whether the configuration was at fault (152: a missing or
  // malformed kernel, initrd, command line) or the host (1: KVM, memory).
  static Result<std::unique_ptr<Vmm>> Build(const VmConfig& config, const VmmOptions& options,
                                            int* exit_code);
  ~Vmm();

  // Starts the vCPUs and runs the event loop until the guest ends or a vCPU fails; then stops
  // and joins every vCPU. Returns the process exit code: 0 when the guest reset or shut down,
  // 1 on a VMM or vCPU error.
  int Run();
  // Run() in two halves, for a caller that runs event_loop() itself (the API server shares it).
  void Start();
  int Finish();
  EventLoop& event_loop() { return *loop_; }

  // Runtime requests, from the VMM thread (vmm_runtime.cc). Pause parks every vCPU outside
  // KVM_RUN and takes the devices' fds out of the event loop; Resume undoes both, and the guest
  // continues exactly where it stopped.
  Status Pause();
  Status Resume();
  bool paused() const { return paused_; }
  Status SendCtrlAltDel();
  Status UpdateDrive(const DriveUpdate& update);
  Status UpdateNetworkInterface(const NetworkInterfaceUpdate& update);

  // Ends the VM from any thread (the i8042 reset line, a vCPU's fatal exit).
  void RequestExit(const VmExit& exit);
  void RegisterMetricsSources();  // devices and vCPUs feed metrics_system() (vmm_metrics.cc)

 private:
  Vmm() = default;
  class TransportEvents;

  // Boot steps, in order (see Build()).
  Status CreateGuestMemory(const MachineConfig& machine);
  Status LoadGuest(const VmConfig& config);
  Status OpenKvmAndCreateVm();
  Status RegisterGuestMemory(const MachineConfig& machine);
  Status CreateInterruptControllers();
  Status CreateLegacyDevices();
  Status CreateVirtioDevices(const VmConfig& config);
  Status AttachVirtioDevices();
  Status CreateVcpus(const MachineConfig& machine);
  Status SetUpEventLoop();

  Status WatchVirtioDevices();
  void LogVirtioCounters();
  void WatchSerialInput();
  void OnSerialInput();
  void StopVcpus();

  VmmOptions options_;
  std::optional<Kvm> kvm_;
  VmFd vm_;
  std::optional<GuestMemory> memory_;
  BootSetup boot_;
  Bus pio_bus_;
  Bus mmio_bus_;
  std::vector<std::unique_ptr<IrqLine>> irq_lines_;
  std::shared_ptr<Serial> serial_;
  std::shared_ptr<I8042> i8042_;
  std::shared_ptr<BootTimer> boot_timer_;
  // One virtio-mmio device per 4 KiB window from kVirtioMmioStart, GSI 5 upward.
  struct VirtioSlot {
    std::shared_ptr<virtio::VirtioDevice> device;
    std::shared_ptr<virtio::MmioTransport> transport;
    uint64_t base = 0;
    uint32_t gsi = 0;
    std::vector<EventFd> queue_events;  // ioeventfds, one per queue (datamatch = index)
    std::unique_ptr<virtio::EventWatcher> events;  // the event loop, as this device sees it
  };
  std::vector<VirtioSlot> virtio_;
  // For PATCH /drives and /network-interfaces: the devices by their configuration ids.
  std::map<std::string, virtio::Block*> drives_by_id_;
  std::map<std::string, virtio::Net*> nets_by_id_;
  std::string root_cmdline_;  // "root=/dev/vda rw" when a drive is the root device
  std::vector<std::unique_ptr<Vcpu>> vcpus_;
  std::optional<EventLoop> loop_;
  std::optional<EventFd> exit_event_;
  std::mutex exit_mu_;
  std::optional<VmExit> exit_;  // first reported exit wins
  std::optional<EventFd> serial_space_;
  bool serial_in_watched_ = false;
  bool serial_in_closed_ = false;
  std::optional<termios> saved_termios_;
  bool paused_ = false;
};

}  // namespace ember

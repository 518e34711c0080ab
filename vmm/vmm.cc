#include "vmm/vmm.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/arch/x86_64/cpuid.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/arch/x86_64/msrs.h"
#include "vmm/arch/x86_64/regs.h"
#include "vmm/base/clock.h"
#include "vmm/base/log.h"
#include "vmm/base/metrics.h"
#include "vmm/base/strings.h"
#include "vmm/boot/boot.h"
#include "devices/virtio/block.h"
#include "devices/virtio/net.h"
#include "devices/virtio/vsock.h"
#include "devices/virtio/rng.h"

namespace ember {
namespace {

constexpr int kExitGeneric = 1;
constexpr int kExitBadConfiguration = 152;

// Legacy IRQ lines (ISA numbering, routed 1:1 to IOAPIC pins by KVM's default routing).
constexpr uint32_t kI8042Gsi = 1;
constexpr uint32_t kSerialGsi = 4;
constexpr uint64_t kSerialPort = 0x3f8;
constexpr uint64_t kSerialPortLen = 8;
constexpr uint64_t kI8042Port = 0x60;
constexpr uint64_t kI8042PortLen = 5;  // 0x60..0x64
// virtio-mmio devices take GSIs from 5 up to the last IOAPIC pin (Firecracker's IRQ_BASE 5).
constexpr uint32_t kFirstVirtioGsi = 5;
constexpr uint32_t kLastVirtioGsi = kFirstVirtioGsi + kMaxVirtioDevices - 1;

// LAPIC local vector table entries (Intel SDM vol. 3, 10.5.1).
constexpr size_t kApicLvtLint0 = 0x350;
constexpr size_t kApicLvtLint1 = 0x360;
constexpr uint32_t kApicDeliveryModeExtInt = 0x7;
constexpr uint32_t kApicDeliveryModeNmi = 0x4;

// An IrqLine backed by an eventfd registered with KVM_IRQFD: Trigger() is one write(2), and KVM
// injects the edge on the GSI without a trip through the VMM.
class IrqfdLine : public IrqLine {
 public:
  explicit IrqfdLine(EventFd fd) : fd_(std::move(fd)) {}
  void Trigger() override { (void)fd_.Signal(); }
  int fd() const { return fd_.fd(); }

 private:
  EventFd fd_;
};

}  // namespace

// The event loop as one virtio device sees it: readiness of the fds it watches goes to its
// transport (which takes the device's lock).
class Vmm::TransportEvents : public virtio::EventWatcher {
 public:
  TransportEvents(EventLoop* loop, virtio::MmioTransport* transport)
      : loop_(loop), transport_(transport) {}
  Status Watch(int fd, uint32_t events) override {
    if (loop_->Watching(fd)) return loop_->Modify(fd, events);
    virtio::MmioTransport* t = transport_;
    return loop_->Add(
        fd, events, [t, fd](uint32_t ready) { t->OnEventFd(fd, ready); }, EventLoop::kDevices);
  }
  void Unwatch(int fd) override {
    if (loop_->Watching(fd)) (void)loop_->Remove(fd);
  }

 private:
  EventLoop* loop_;
  virtio::MmioTransport* transport_;
};

namespace {

Result<std::unique_ptr<IrqfdLine>> CreateIrqLine(const VmFd& vm, uint32_t gsi) {
  EventFd fd = TRY(EventFd::Create(EFD_NONBLOCK));
  TRY_STATUS(vm.RegisterIrqfd(fd.fd(), gsi));
  return std::make_unique<IrqfdLine>(std::move(fd));
}

uint32_t SetLvtDeliveryMode(uint32_t reg, uint32_t mode) { return (reg & ~0x700u) | (mode << 8); }

void PatchLapicReg(kvm_lapic_state* lapic, size_t offset, uint32_t mode) {
  uint32_t v;
  memcpy(&v, lapic->regs + offset, sizeof(v));
  v = SetLvtDeliveryMode(v, mode);
  memcpy(lapic->regs + offset, &v, sizeof(v));
}

bool IsStreamInput(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return false;
  // epoll refuses regular files and /dev/null; a terminal, pipe or socket is what an operator
  // attaches.
  return (S_ISCHR(st.st_mode) && isatty(fd)) || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode);
}

// Logs each boot step's duration at Debug level: the boot path is ember's headline number, and
// `--level Debug` shows where it goes.
class BootStepTimer {
 public:
  Status Step(const char* name, Status result) {
    uint64_t now = MonotonicUs();
    LOG_DEBUG("boot step: %s: %llu us", name, static_cast<unsigned long long>(now - last_));
    last_ = now;
    return result;
  }

 private:
  uint64_t last_ = MonotonicUs();
};

}  // namespace

Result<std::unique_ptr<Vmm>> Vmm::Build(const VmConfig& config, const VmmOptions& options,
                                        int* exit_code) {
  *exit_code = kExitGeneric;
  if (!config.boot_source) {
    *exit_code = kExitBadConfiguration;
    return Error{"boot-source is missing"};
  }
  std::unique_ptr<Vmm> vmm(new Vmm());
  vmm->options_ = options;
  // Guest memory is filled before KVM is touched, so a bad kernel or initrd is reported as a
  // configuration error without creating a VM; and it is registered before the in-kernel
  // irqchip exists (measured here: 0.2 ms instead of 6-7 ms for 256 MiB).
  BootStepTimer timer;
  TRY_STATUS(timer.Step("create guest memory", vmm->CreateGuestMemory(config.machine)));
  // Device backends (image files) are opened before the kernel is loaded: their windows and
  // GSIs go on the command line, and a bad drive is a configuration error.
  if (Status s = timer.Step("create virtio devices", vmm->CreateVirtioDevices(config)); !s.ok()) {
    *exit_code = kExitBadConfiguration;
    return s.error();
  }
  if (Status s = timer.Step("load kernel, initrd and tables", vmm->LoadGuest(config)); !s.ok()) {
    *exit_code = kExitBadConfiguration;
    return s.error();
  }
  TRY_STATUS(timer.Step("open KVM, create VM", vmm->OpenKvmAndCreateVm()));
  TRY_STATUS(timer.Step("register guest memory", vmm->RegisterGuestMemory(config.machine)));
  TRY_STATUS(timer.Step("create irqchip and PIT", vmm->CreateInterruptControllers()));
  TRY_STATUS(timer.Step("create legacy devices", vmm->CreateLegacyDevices()));
  TRY_STATUS(timer.Step("attach virtio devices", vmm->AttachVirtioDevices()));
  TRY_STATUS(timer.Step("create and configure vCPUs", vmm->CreateVcpus(config.machine)));
  TRY_STATUS(timer.Step("set up the event loop", vmm->SetUpEventLoop()));
  return vmm;
}

Status Vmm::OpenKvmAndCreateVm() {
  kvm_ = TRY(Kvm::Open());
  vm_ = TRY(kvm_->CreateVm());
  TRY_STATUS(vm_.SetTssAddress(kTssAddr));
  return Ok();
}

Status Vmm::CreateGuestMemory(const MachineConfig& machine) {
  MemoryOptions mem_options;
  mem_options.huge_pages_2m = machine.huge_pages == HugePages::k2M;
  memory_ = TRY(GuestMemory::Create(RamRanges(machine.mem_size_mib << 20), mem_options));
  return Ok();
}

Status Vmm::RegisterGuestMemory(const MachineConfig& machine) {
  uint32_t slot = 0;
  for (const GuestRegion& region : memory_->regions()) {
    TRY_STATUS(vm_.SetUserMemoryRegion(slot++, region.range.gpa, region.range.size, region.host,
                                       machine.track_dirty_pages));
  }
  return Ok();
}

Status Vmm::CreateInterruptControllers() {
  TRY_STATUS(vm_.CreateIrqchip());
  TRY_STATUS(vm_.CreatePit2());
  return Ok();
}

Status Vmm::LoadGuest(const VmConfig& config) {
  const BootSourceConfig& boot = *config.boot_source;
  BootInput input;
  input.kernel_path = boot.kernel_image_path;
  input.initrd_path = boot.initrd_path;
  input.cmdline = boot.boot_args.value_or(kDefaultBootArgs);
  if (!root_cmdline_.empty()) input.cmdline += (input.cmdline.empty() ? "" : " ") + root_cmdline_;
  for (const VirtioSlot& slot : virtio_) {
    input.virtio_mmio_devices.push_back(VirtioMmioDeviceInfo{slot.base, kMmioLen, slot.gsi});
  }
  input.vcpu_count = config.machine.vcpu_count;
  input.acpi_rsdp_addr = TRY(WriteAcpiTablesForBoot(*memory_, input));
  boot_ = TRY(ConfigureBoot(*memory_, input));
  return Ok();
}

Status Vmm::CreateLegacyDevices() {
  auto serial_irq = TRY(CreateIrqLine(vm_, kSerialGsi));
  auto i8042_irq = TRY(CreateIrqLine(vm_, kI8042Gsi));
  serial_ = std::make_shared<Serial>(serial_irq.get(), options_.serial_out_fd);
  i8042_ = std::make_shared<I8042>(i8042_irq.get(), [this] {
    RequestExit(VmExit{VmExitKind::kReset, "the guest reset the machine through the i8042"});
  });
  irq_lines_.push_back(std::move(serial_irq));
  irq_lines_.push_back(std::move(i8042_irq));
  TRY_STATUS(pio_bus_.Insert(serial_, kSerialPort, kSerialPortLen));
  TRY_STATUS(pio_bus_.Insert(i8042_, kI8042Port, kI8042PortLen));
  if (options_.boot_timer) {
    boot_timer_ =
        std::make_shared<BootTimer>(options_.boot_start_us, options_.boot_start_cpu_us);
    TRY_STATUS(mmio_bus_.Insert(boot_timer_, kBootTimerAddr, kMmioLen));
  }
  return Ok();
}

Status Vmm::CreateVirtioDevices(const VmConfig& config) {
  std::vector<std::shared_ptr<virtio::VirtioDevice>> devices;
  for (const DriveConfig& drive : config.drives) {
    virtio::BlockOptions options;
    options.drive_id = drive.drive_id;
    options.path = drive.path_on_host;
    options.read_only = drive.is_read_only;
    options.writeback = drive.cache_type == CacheType::kWriteback;
    options.rate_limiter = drive.rate_limiter;
    if (drive.io_engine == IoEngine::kAsync) {
      LOG_WARN("drive %s: io_engine Async is served by the Sync engine", drive.drive_id.c_str());
    }
    std::shared_ptr<virtio::Block> block = TRY(virtio::Block::Open(options));
    drives_by_id_[drive.drive_id] = block.get();
    devices.push_back(std::move(block));
    if (drive.is_root_device) {
      // Firecracker's append_root_device_cmdline. The root drive is first, so it is /dev/vda.
      root_cmdline_ = drive.partuuid ? "root=PARTUUID=" + *drive.partuuid : "root=/dev/vda";
      root_cmdline_ += drive.is_read_only ? " ro" : " rw";
    }
  }
  // Firecracker's attach order: block devices, then network, then vsock and entropy.
  for (const NetworkInterfaceConfig& net : config.network_interfaces) {
    virtio::NetOptions options;
    options.iface_id = net.iface_id;
    options.host_dev_name = net.host_dev_name;
    options.guest_mac = net.guest_mac;
    options.mtu = net.mtu;
    options.rx_rate_limiter = net.rx_rate_limiter;
    options.tx_rate_limiter = net.tx_rate_limiter;
    std::shared_ptr<virtio::Net> device = TRY(virtio::Net::Open(options));
    nets_by_id_[net.iface_id] = device.get();
    devices.push_back(std::move(device));
  }
  if (config.vsock) {
    virtio::VsockOptions options;
    options.guest_cid = config.vsock->guest_cid;
    options.uds_path = config.vsock->uds_path;
    devices.push_back(TRY(virtio::Vsock::Create(options)));
  }
  if (config.entropy) devices.push_back(TRY(virtio::Rng::Create(config.entropy->rate_limiter)));
  if (devices.size() > kLastVirtioGsi - kFirstVirtioGsi + 1) {
    return Error{StrFormat("%zu virtio devices configured; at most %u fit the interrupt lines",
                           devices.size(), kLastVirtioGsi - kFirstVirtioGsi + 1)};
  }
  for (size_t i = 0; i < devices.size(); i++) {
    VirtioSlot slot;
    slot.device = devices[i];
    slot.base = kVirtioMmioStart + i * kMmioLen;
    slot.gsi = kFirstVirtioGsi + static_cast<uint32_t>(i);
    virtio_.push_back(std::move(slot));
  }
  return Ok();
}

Status Vmm::AttachVirtioDevices() {
  for (VirtioSlot& slot : virtio_) {
    auto irq = TRY(CreateIrqLine(vm_, slot.gsi));
    slot.transport = std::make_shared<virtio::MmioTransport>(slot.device, &*memory_, irq.get());
    irq_lines_.push_back(std::move(irq));
    for (size_t q = 0; q < slot.device->queue_count(); q++) {
      EventFd fd = TRY(EventFd::Create(EFD_NONBLOCK));
      TRY_STATUS(vm_.RegisterIoeventfd(fd.fd(), slot.base + virtio::kRegQueueNotify, 4, q));
      slot.queue_events.push_back(std::move(fd));
    }
    TRY_STATUS(mmio_bus_.Insert(slot.transport, slot.base, kMmioLen));
  }
  return Ok();
}

Status Vmm::WatchVirtioDevices() {
  for (VirtioSlot& slot : virtio_) {
    virtio::MmioTransport* transport = slot.transport.get();
    for (size_t q = 0; q < slot.queue_events.size(); q++) {
      const EventFd* fd = &slot.queue_events[q];
      TRY_STATUS(loop_->Add(fd->fd(), EPOLLIN, [fd, transport, q](uint32_t) {
        fd->Consume();
        transport->OnQueueNotify(static_cast<uint32_t>(q));
      }));
    }
    slot.events = std::make_unique<TransportEvents>(&*loop_, transport);
    TRY_STATUS(transport->AttachEvents(slot.events.get()));
  }
  return Ok();
}

void Vmm::LogVirtioCounters() {
  for (const VirtioSlot& slot : virtio_) {
    if (uint64_t errors = slot.device->errors()) {
      LOG_INFO("%s: %llu invalid requests or register accesses from the guest",
               slot.device->name().c_str(), static_cast<unsigned long long>(errors));
    }
    if (auto* net = dynamic_cast<const virtio::Net*>(slot.device.get())) {
      virtio::NetCounters c = net->counters();
      LOG_DEBUG("%s: rx %llu frames %llu bytes, tx %llu frames %llu bytes, %llu dropped by the "
                "TAP, throttled rx %llu tx %llu",
                net->name().c_str(), static_cast<unsigned long long>(c.rx_frames),
                static_cast<unsigned long long>(c.rx_bytes),
                static_cast<unsigned long long>(c.tx_frames),
                static_cast<unsigned long long>(c.tx_bytes),
                static_cast<unsigned long long>(c.tx_dropped),
                static_cast<unsigned long long>(c.rx_throttled),
                static_cast<unsigned long long>(c.tx_throttled));
    }
    if (auto* block = dynamic_cast<const virtio::Block*>(slot.device.get())) {
      LOG_DEBUG("%s: %llu requests, %llu bytes read, %llu written, %llu throttled",
                block->name().c_str(), static_cast<unsigned long long>(block->requests()),
                static_cast<unsigned long long>(block->read_bytes()),
                static_cast<unsigned long long>(block->write_bytes()),
                static_cast<unsigned long long>(block->throttled()));
    }
  }
}

Status Vmm::CreateVcpus(const MachineConfig& machine) {
  TRY_STATUS(Vcpu::InstallKickSignalHandler());
  const std::vector<kvm_cpuid_entry2> host_cpuid = TRY(kvm_->SupportedCpuid());
  const std::vector<kvm_msr_entry> boot_msrs = BootMsrEntries();
  for (uint32_t i = 0; i < machine.vcpu_count; i++) {
    VcpuFd fd = TRY(vm_.CreateVcpu(i));
    CpuidOptions cpuid_options;
    cpuid_options.vcpu_index = i;
    cpuid_options.vcpu_count = machine.vcpu_count;
    cpuid_options.smt = machine.smt;
    TRY_STATUS(fd.SetCpuid(NormalizeCpuid(host_cpuid, cpuid_options)));
    TRY_STATUS(fd.SetMsrs(boot_msrs));
    TRY_STATUS(fd.SetRegs(boot_.regs));
    kvm_sregs sregs = TRY(fd.GetSregs());
    boot_.ApplySregs(&sregs);
    TRY_STATUS(fd.SetSregs(sregs));
    TRY_STATUS(fd.SetFpu(DefaultFpu()));
    kvm_lapic_state lapic = TRY(fd.GetLapic());
    PatchLapicReg(&lapic, kApicLvtLint0, kApicDeliveryModeExtInt);
    PatchLapicReg(&lapic, kApicLvtLint1, kApicDeliveryModeNmi);
    TRY_STATUS(fd.SetLapic(lapic));
    vcpus_.push_back(std::make_unique<Vcpu>(std::move(fd), &pio_bus_, &mmio_bus_,
                                            [this](const VmExit& e) { RequestExit(e); }));
  }
  return Ok();
}

Status Vmm::SetUpEventLoop() {
  loop_ = TRY(EventLoop::Create());
  exit_event_ = TRY(EventFd::Create(EFD_NONBLOCK));
  TRY_STATUS(loop_->Add(exit_event_->fd(), EPOLLIN, [this](uint32_t) {
    exit_event_->Consume();
    loop_->Stop();
  }));
  TRY_STATUS(WatchVirtioDevices());
  if (IsStreamInput(options_.serial_in_fd)) {
    if (isatty(options_.serial_in_fd)) {
      // Raw mode so keystrokes reach the guest one by one, as Firecracker does; restored on exit.
      termios t;
      if (tcgetattr(options_.serial_in_fd, &t) == 0) {
        saved_termios_ = t;
        cfmakeraw(&t);
        t.c_oflag |= OPOST;  // keep the host's newline translation for the console output
        tcsetattr(options_.serial_in_fd, TCSANOW, &t);
      }
    }
    // The UART tells us (from a vCPU thread) when the guest drained a full FIFO; the doorbell
    // brings that to this thread, which starts reading stdin again.
    serial_space_ = TRY(EventFd::Create(EFD_NONBLOCK));
    serial_->SetInputSpaceCallback([this] { (void)serial_space_->Signal(); });
    TRY_STATUS(loop_->Add(serial_space_->fd(), EPOLLIN, [this](uint32_t) {
      serial_space_->Consume();
      WatchSerialInput();
    }));
    WatchSerialInput();
  }
  return Ok();
}

void Vmm::WatchSerialInput() {
  if (serial_in_watched_ || serial_in_closed_) return;
  Status s = loop_->Add(
      options_.serial_in_fd, EPOLLIN, [this](uint32_t) { OnSerialInput(); }, EventLoop::kDevices);
  if (!s.ok()) {
    LOG_WARN("console input disabled: %s", s.error().message.c_str());
    serial_in_closed_ = true;
    return;
  }
  serial_in_watched_ = true;
}

void Vmm::OnSerialInput() {
  // Back-pressure: when the UART's FIFO is full, stop reading until the guest drains it, so no
  // byte typed on stdin is dropped.
  uint8_t buf[64];
  size_t room = serial_->InputRoom();
  if (room == 0) {
    (void)loop_->Remove(options_.serial_in_fd);
    serial_in_watched_ = false;
    return;
  }
  ssize_t n = read(options_.serial_in_fd, buf, std::min(room, sizeof(buf)));
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    // EOF or error: the console input is gone; the guest keeps running.
    (void)loop_->Remove(options_.serial_in_fd);
    serial_in_watched_ = false;
    serial_in_closed_ = true;
    return;
  }
  serial_->EnqueueInput(buf, static_cast<size_t>(n));
}

void Vmm::RequestExit(const VmExit& exit) {
  {
    std::lock_guard<std::mutex> lock(exit_mu_);
    if (exit_) return;
    exit_ = exit;
  }
  if (exit_event_) (void)exit_event_->Signal();
}

void Vmm::StopVcpus() {
  for (auto& v : vcpus_) v->Stop();
  for (auto& v : vcpus_) v->Join();
}

int Vmm::Run() {
  Start();
  Status s = loop_->Run();
  if (!s.ok()) {
    LOG_ERROR("event loop failed: %s", s.error().message.c_str());
    RequestExit(VmExit{VmExitKind::kError, "event loop failed"});
  }
  return Finish();
}

void Vmm::Start() {
  SetThreadLogName("vmm");
  for (auto& v : vcpus_) v->Start();
}

int Vmm::Finish() {
  StopVcpus();
  if (saved_termios_) tcsetattr(options_.serial_in_fd, TCSANOW, &*saved_termios_);
  LogVirtioCounters();
  uint64_t unhandled = 0;
  for (auto& v : vcpus_) unhandled += v->unhandled_exits();
  LOG_DEBUG("port I/O and MMIO accesses to nothing: %llu (ignored)",
            static_cast<unsigned long long>(unhandled));
  std::lock_guard<std::mutex> lock(exit_mu_);
  if (!exit_) return kExitGeneric;
  if (exit_->kind == VmExitKind::kError) {
    LOG_ERROR("the microVM stopped: %s", exit_->reason.c_str());
    return kExitGeneric;
  }
  LOG_INFO("the microVM stopped: %s", exit_->reason.c_str());
  return 0;
}

Vmm::~Vmm() {
  // The vCPU metrics source reads vcpus_ through this.
  UnregisterMetricsSources(this);
  StopVcpus();
  if (saved_termios_) tcsetattr(options_.serial_in_fd, TCSANOW, &*saved_termios_);
}

}  // namespace ember

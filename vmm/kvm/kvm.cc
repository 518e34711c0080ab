#include "vmm/kvm/kvm.h"

#include <fcntl.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>

#include "vmm/kvm/ioctl.h"

namespace ember {
namespace {

constexpr int kKvmApiVersion = 12;  // KVM_GET_API_VERSION has been 12 since Linux 2.6.22
constexpr size_t kMaxCpuidEntries = 256;
constexpr size_t kMaxMsrEntries = 256;

struct RequiredCap {
  int cap;
  const char* name;
};
// Firecracker's list (arch/x86_64/kvm.rs) less XSAVE and XCRS: a host CPU without XSAVE (e.g.
// QEMU's qemu64 model, our nested test host) lacks them, and only snapshots of guests that use
// XSAVE need them; those ioctls fail with their own named errors there.
constexpr RequiredCap kRequiredCaps[] = {
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},         {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},             {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"}, {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
    {KVM_CAP_PIT_STATE2, "KVM_CAP_PIT_STATE2"},   {KVM_CAP_ADJUST_CLOCK, "KVM_CAP_ADJUST_CLOCK"},
    {KVM_CAP_DEBUGREGS, "KVM_CAP_DEBUGREGS"},     {KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE"},
    {KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS"}, {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
};


// The kernel's kvm_cpuid2 and kvm_msrs are a u32 count, a u32 pad and the entries at offset 8.
// <linux/kvm.h> declares the entries with __DECLARE_FLEX_ARRAY, which in C++ (GCC 12, Debian's
// 6.1 headers) puts them at offset 12 or 16, so the C++ structs cannot be used to talk to KVM:
// this buffer lays the ABI out by hand.
template <typename Entry>
class CountedEntries {
 public:
  static constexpr size_t kHeaderBytes = 8;
  explicit CountedEntries(size_t capacity)
      : storage_((kHeaderBytes + capacity * sizeof(Entry) + 7) / 8) {}
  CountedEntries(const std::vector<Entry>& entries) : CountedEntries(entries.size()) {
    set_count(static_cast<uint32_t>(entries.size()));
    if (!entries.empty()) memcpy(bytes() + kHeaderBytes, entries.data(), entries.size() * sizeof(Entry));
  }
  void* data() { return storage_.data(); }
  uint32_t count() const {
    uint32_t n;
    memcpy(&n, storage_.data(), sizeof(n));
    return n;
  }
  void set_count(uint32_t n) { memcpy(storage_.data(), &n, sizeof(n)); }
  std::vector<Entry> entries(size_t n) const {
    std::vector<Entry> out(n);
    if (n) memcpy(out.data(), reinterpret_cast<const uint8_t*>(storage_.data()) + kHeaderBytes, n * sizeof(Entry));
    return out;
  }

 private:
  uint8_t* bytes() { return reinterpret_cast<uint8_t*>(storage_.data()); }
  std::vector<uint64_t> storage_;  // 8-byte aligned, zeroed (KVM checks padding in places)
};

}  // namespace

Result<Kvm> Kvm::Open(const char* path) {
  Kvm kvm;
  kvm.fd_.reset(open(path, O_RDWR | O_CLOEXEC));
  if (!kvm.fd_.valid()) return Error::Errno(StrFormat("open %s", path));
  int version = TRY(CheckedIoctl(kvm.fd(), KVM_GET_API_VERSION, "KVM_GET_API_VERSION"));
  if (version != kKvmApiVersion)
    return Error{StrFormat("KVM API version %d, expected %d", version, kKvmApiVersion)};
  for (const auto& c : kRequiredCaps) {
    int have = TRY(kvm.CheckExtension(c.cap));
    if (have <= 0) return Error{StrFormat("KVM lacks the required capability %s", c.name)};
  }
  kvm.vcpu_mmap_size_ =
      TRY(CheckedIoctl(kvm.fd(), KVM_GET_VCPU_MMAP_SIZE, "KVM_GET_VCPU_MMAP_SIZE"));
  return kvm;
}

Result<int> Kvm::CheckExtension(int cap) const {
  return CheckedIoctl(fd(), KVM_CHECK_EXTENSION, "KVM_CHECK_EXTENSION",
                      static_cast<unsigned long>(cap));
}

Result<VmFd> Kvm::CreateVm() const {
  int vm = TRY(CheckedIoctl(fd(), KVM_CREATE_VM, "KVM_CREATE_VM", 0ul));
  return VmFd(UniqueFd(vm), vcpu_mmap_size_);
}

Result<std::vector<kvm_cpuid_entry2>> Kvm::SupportedCpuid() const {
  CountedEntries<kvm_cpuid_entry2> buf(kMaxCpuidEntries);
  buf.set_count(kMaxCpuidEntries);
  TRY(CheckedIoctl(fd(), kvm_ioctl::kGetSupportedCpuid, "KVM_GET_SUPPORTED_CPUID", buf.data()));
  return buf.entries(std::min<size_t>(buf.count(), kMaxCpuidEntries));
}

Status VmFd::SetTssAddress(uint64_t addr) const {
  TRY(CheckedIoctl(fd(), KVM_SET_TSS_ADDR, "KVM_SET_TSS_ADDR", static_cast<unsigned long>(addr)));
  return Ok();
}

Status VmFd::SetIdentityMapAddress(uint64_t addr) const {
  TRY(CheckedIoctl(fd(), KVM_SET_IDENTITY_MAP_ADDR, "KVM_SET_IDENTITY_MAP_ADDR", &addr));
  return Ok();
}

Status VmFd::SetUserMemoryRegion(uint32_t slot, uint64_t gpa, uint64_t size, void* host,
                                 bool log_dirty) const {
  kvm_userspace_memory_region region = {};
  region.slot = slot;
  region.flags = log_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0;
  region.guest_phys_addr = gpa;
  region.memory_size = size;
  region.userspace_addr = reinterpret_cast<uint64_t>(host);
  auto r = CheckedIoctl(fd(), KVM_SET_USER_MEMORY_REGION, "KVM_SET_USER_MEMORY_REGION", &region);
  if (!r.ok())
    return r.error().Wrap(StrFormat("slot %u (%llu MiB at 0x%llx)", slot,
                                    static_cast<unsigned long long>(size >> 20),
                                    static_cast<unsigned long long>(gpa)));
  return Ok();
}

Status VmFd::CreateIrqchip() const {
  TRY(CheckedIoctl(fd(), KVM_CREATE_IRQCHIP, "KVM_CREATE_IRQCHIP", 0ul));
  return Ok();
}

Status VmFd::CreatePit2() const {
  kvm_pit_config config = {};
  // The PC speaker port 0x61 is not emulated: a dummy keeps guests that poke it quiet.
  config.flags = KVM_PIT_SPEAKER_DUMMY;
  TRY(CheckedIoctl(fd(), KVM_CREATE_PIT2, "KVM_CREATE_PIT2", &config));
  return Ok();
}

Status VmFd::RegisterIrqfd(int eventfd, uint32_t gsi) const {
  kvm_irqfd irqfd = {};
  irqfd.fd = static_cast<uint32_t>(eventfd);
  irqfd.gsi = gsi;
  auto r = CheckedIoctl(fd(), KVM_IRQFD, "KVM_IRQFD", &irqfd);
  if (!r.ok()) return r.error().Wrap(StrFormat("gsi %u", gsi));
  return Ok();
}

Status VmFd::RegisterIoeventfd(int eventfd, uint64_t addr, uint32_t len,
                               uint64_t datamatch) const {
  kvm_ioeventfd io = {};
  io.datamatch = datamatch;
  io.addr = addr;
  io.len = len;
  io.fd = eventfd;
  io.flags = KVM_IOEVENTFD_FLAG_DATAMATCH;
  auto r = CheckedIoctl(fd(), KVM_IOEVENTFD, "KVM_IOEVENTFD", &io);
  if (!r.ok())
    return r.error().Wrap(StrFormat("addr 0x%llx", static_cast<unsigned long long>(addr)));
  return Ok();
}

Status VmFd::SetIrqLine(uint32_t irq, bool level) const {
  kvm_irq_level l = {};
  l.irq = irq;
  l.level = level ? 1 : 0;
  TRY(CheckedIoctl(fd(), KVM_IRQ_LINE, "KVM_IRQ_LINE", &l));
  return Ok();
}

Result<VcpuFd> VmFd::CreateVcpu(uint32_t id) const {
  int vcpu = TRY(CheckedIoctl(fd(), KVM_CREATE_VCPU, "KVM_CREATE_VCPU", static_cast<unsigned long>(id)));
  UniqueFd vcpu_fd(vcpu);
  void* run = mmap(nullptr, static_cast<size_t>(vcpu_mmap_size_), PROT_READ | PROT_WRITE,
                   MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) return Error::Errno(StrFormat("mmap kvm_run of vCPU %u", id));
  return VcpuFd(std::move(vcpu_fd), Mapping(run, static_cast<size_t>(vcpu_mmap_size_)), id);
}

Result<VmState> VmFd::GetState() const {
  VmState s;
  s.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
  s.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
  s.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
  TRY(CheckedIoctl(fd(), KVM_GET_IRQCHIP, "KVM_GET_IRQCHIP (PIC master)", &s.pic_master));
  TRY(CheckedIoctl(fd(), KVM_GET_IRQCHIP, "KVM_GET_IRQCHIP (PIC slave)", &s.pic_slave));
  TRY(CheckedIoctl(fd(), KVM_GET_IRQCHIP, "KVM_GET_IRQCHIP (IOAPIC)", &s.ioapic));
  TRY(CheckedIoctl(fd(), KVM_GET_PIT2, "KVM_GET_PIT2", &s.pit));
  TRY(CheckedIoctl(fd(), KVM_GET_CLOCK, "KVM_GET_CLOCK", &s.clock));
  return s;
}

Status VmFd::SetState(const VmState& state) const {
  VmState s = state;  // the ioctls take non-const pointers
  TRY(CheckedIoctl(fd(), KVM_SET_IRQCHIP, "KVM_SET_IRQCHIP (PIC master)", &s.pic_master));
  TRY(CheckedIoctl(fd(), KVM_SET_IRQCHIP, "KVM_SET_IRQCHIP (PIC slave)", &s.pic_slave));
  TRY(CheckedIoctl(fd(), KVM_SET_IRQCHIP, "KVM_SET_IRQCHIP (IOAPIC)", &s.ioapic));
  TRY(CheckedIoctl(fd(), KVM_SET_PIT2, "KVM_SET_PIT2", &s.pit));
  // Only the clock value is restored; flags such as KVM_CLOCK_TSC_STABLE are output-only.
  s.clock.flags = 0;
  TRY(CheckedIoctl(fd(), KVM_SET_CLOCK, "KVM_SET_CLOCK", &s.clock));
  return Ok();
}

Status VcpuFd::SetCpuid(const std::vector<kvm_cpuid_entry2>& entries) const {
  CountedEntries<kvm_cpuid_entry2> buf(entries);
  TRY(CheckedIoctl(fd(), kvm_ioctl::kSetCpuid2, "KVM_SET_CPUID2", buf.data()));
  return Ok();
}

Result<std::vector<kvm_cpuid_entry2>> VcpuFd::GetCpuid() const {
  CountedEntries<kvm_cpuid_entry2> buf(kMaxCpuidEntries);
  buf.set_count(kMaxCpuidEntries);
  TRY(CheckedIoctl(fd(), kvm_ioctl::kGetCpuid2, "KVM_GET_CPUID2", buf.data()));
  return buf.entries(std::min<size_t>(buf.count(), kMaxCpuidEntries));
}

Status VcpuFd::SetMsrs(const std::vector<kvm_msr_entry>& entries) const {
  if (entries.size() > kMaxMsrEntries) return Error{"too many MSRs for KVM_SET_MSRS"};
  CountedEntries<kvm_msr_entry> buf(entries);
  int n = TRY(CheckedIoctl(fd(), kvm_ioctl::kSetMsrs, "KVM_SET_MSRS", buf.data()));
  // KVM_SET_MSRS returns how many it set; it stops at the first one it refuses.
  if (static_cast<size_t>(n) != entries.size())
    return Error{StrFormat("KVM_SET_MSRS: set %d of %zu, refused MSR 0x%x", n, entries.size(),
                           entries[static_cast<size_t>(n)].index)};
  return Ok();
}

Status VcpuFd::GetMsrs(std::vector<kvm_msr_entry>* entries) const {
  if (entries->size() > kMaxMsrEntries) return Error{"too many MSRs for KVM_GET_MSRS"};
  CountedEntries<kvm_msr_entry> buf(*entries);
  int n = TRY(CheckedIoctl(fd(), kvm_ioctl::kGetMsrs, "KVM_GET_MSRS", buf.data()));
  if (static_cast<size_t>(n) != entries->size())
    return Error{StrFormat("KVM_GET_MSRS: read %d of %zu, refused MSR 0x%x", n, entries->size(),
                           (*entries)[static_cast<size_t>(n)].index)};
  *entries = buf.entries(entries->size());
  return Ok();
}

#define EMBER_VCPU_GET_SET(Type, Name, GET, SET)                      \
  Result<Type> VcpuFd::Get##Name() const {                            \
    Type v{};                                                          \
    TRY(CheckedIoctl(fd(), GET, #GET, &v));                            \
    return v;                                                          \
  }                                                                    \
  Status VcpuFd::Set##Name(const Type& v) const {                      \
    Type copy = v;                                                     \
    TRY(CheckedIoctl(fd(), SET, #SET, &copy));                         \
    return Ok();                                                       \
  }

EMBER_VCPU_GET_SET(kvm_regs, Regs, KVM_GET_REGS, KVM_SET_REGS)
EMBER_VCPU_GET_SET(kvm_sregs, Sregs, KVM_GET_SREGS, KVM_SET_SREGS)
EMBER_VCPU_GET_SET(kvm_fpu, Fpu, KVM_GET_FPU, KVM_SET_FPU)
EMBER_VCPU_GET_SET(kvm_lapic_state, Lapic, KVM_GET_LAPIC, KVM_SET_LAPIC)
EMBER_VCPU_GET_SET(kvm_mp_state, MpState, KVM_GET_MP_STATE, KVM_SET_MP_STATE)
#undef EMBER_VCPU_GET_SET

Result<VcpuState> VcpuFd::GetState(const std::vector<uint32_t>& msr_indices) const {
  VcpuState s;
  // Order as Firecracker's save_state: MP state first (it may flush pending events), then the
  // rest; events last but before the LAPIC so nothing pending is lost.
  s.mp_state = TRY(GetMpState());
  s.regs = TRY(GetRegs());
  s.sregs = TRY(GetSregs());
  TRY(CheckedIoctl(fd(), kvm_ioctl::kGetXsave, "KVM_GET_XSAVE", s.xsave.data()));
  TRY(CheckedIoctl(fd(), KVM_GET_XCRS, "KVM_GET_XCRS", &s.xcrs));
  TRY(CheckedIoctl(fd(), KVM_GET_DEBUGREGS, "KVM_GET_DEBUGREGS", &s.debugregs));
  s.lapic = TRY(GetLapic());
  s.fpu = TRY(GetFpu());
  for (uint32_t index : msr_indices) s.msrs.push_back(kvm_msr_entry{index, 0, 0});
  TRY_STATUS(GetMsrs(&s.msrs));
  TRY(CheckedIoctl(fd(), KVM_GET_VCPU_EVENTS, "KVM_GET_VCPU_EVENTS", &s.events));
  s.cpuid = TRY(GetCpuid());
  return s;
}

Status VcpuFd::SetState(const VcpuState& state) const {
  VcpuState s = state;
  TRY_STATUS(SetCpuid(s.cpuid));
  TRY_STATUS(SetMpState(s.mp_state));
  TRY_STATUS(SetRegs(s.regs));
  TRY_STATUS(SetSregs(s.sregs));
  TRY(CheckedIoctl(fd(), kvm_ioctl::kSetXsave, "KVM_SET_XSAVE", s.xsave.data()));
  TRY(CheckedIoctl(fd(), KVM_SET_XCRS, "KVM_SET_XCRS", &s.xcrs));
  TRY(CheckedIoctl(fd(), KVM_SET_DEBUGREGS, "KVM_SET_DEBUGREGS", &s.debugregs));
  TRY_STATUS(SetLapic(s.lapic));
  TRY_STATUS(SetFpu(s.fpu));
  TRY_STATUS(SetMsrs(s.msrs));
  TRY(CheckedIoctl(fd(), KVM_SET_VCPU_EVENTS, "KVM_SET_VCPU_EVENTS", &s.events));
  return Ok();
}

Status VcpuFd::Run() const {
  // No EINTR retry here: an interrupted KVM_RUN is how a vCPU is kicked.
  if (ioctl(fd(), KVM_RUN, 0) < 0) return Error::Errno("KVM_RUN");
  return Ok();
}

}  // namespace ember

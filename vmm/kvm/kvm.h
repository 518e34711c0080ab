// RAII handles for KVM: Kvm (/dev/kvm), VmFd, VcpuFd. This layer is the only code that issues KVM
// ioctls; everything it reads or writes is a plain struct from <linux/kvm.h> so the snapshot work
// can save and restore it.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "vmm/base/result.h"
#include "vmm/base/unique_fd.h"

namespace ember {

class VmFd;
class VcpuFd;

class Kvm {
 public:
  // Opens /dev/kvm, checks the API version and the capabilities ember relies on.
  static Result<Kvm> Open(const char* path = "/dev/kvm");

  Result<VmFd> CreateVm() const;
  Result<int> CheckExtension(int cap) const;
  // KVM_GET_SUPPORTED_CPUID: the host's CPUID as KVM can offer it to guests.
  Result<std::vector<kvm_cpuid_entry2>> SupportedCpuid() const;
  int vcpu_mmap_size() const { return vcpu_mmap_size_; }
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  int vcpu_mmap_size_ = 0;
};

// VM-wide state a snapshot needs (KVM_GET_IRQCHIP for PIC master/slave and IOAPIC, PIT2, clock).
struct VmState {
  kvm_irqchip pic_master{};
  kvm_irqchip pic_slave{};
  kvm_irqchip ioapic{};
  kvm_pit_state2 pit{};
  kvm_clock_data clock{};
};

class VmFd {
 public:
  VmFd() = default;
  explicit VmFd(UniqueFd fd, int vcpu_mmap_size) : fd_(std::move(fd)), vcpu_mmap_size_(vcpu_mmap_size) {}

  Status SetTssAddress(uint64_t addr) const;
  Status SetIdentityMapAddress(uint64_t addr) const;
  Status SetUserMemoryRegion(uint32_t slot, uint64_t gpa, uint64_t size, void* host,
                             bool log_dirty) const;
  Status CreateIrqchip() const;
  Status CreatePit2() const;
  // Edge-triggered interrupt on `gsi` whenever `eventfd` is written.
  Status RegisterIrqfd(int eventfd, uint32_t gsi) const;
  // Guest writes of `datamatch` (4 bytes) to MMIO `addr` signal `eventfd` without a VM exit.
  Status RegisterIoeventfd(int eventfd, uint64_t addr, uint32_t len, uint64_t datamatch) const;
  Status SetIrqLine(uint32_t irq, bool level) const;
  Result<VcpuFd> CreateVcpu(uint32_t id) const;

  Result<VmState> GetState() const;
  Status SetState(const VmState& state) const;

  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  int vcpu_mmap_size_ = 0;
};

// Every piece of architectural vCPU state KVM keeps, as plain data.
struct VcpuState {
  std::vector<kvm_cpuid_entry2> cpuid;
  std::vector<kvm_msr_entry> msrs;
  kvm_regs regs{};
  kvm_sregs sregs{};
  kvm_fpu fpu{};
  kvm_lapic_state lapic{};
  // kvm_xsave ends in a flexible array (for KVM_GET_XSAVE2); the legacy 4 KiB area is what
  // KVM_GET_XSAVE fills.
  std::array<uint32_t, 1024> xsave{};
  kvm_xcrs xcrs{};
  kvm_debugregs debugregs{};
  kvm_vcpu_events events{};
  kvm_mp_state mp_state{};
};

class VcpuFd {
 public:
  VcpuFd() = default;
  VcpuFd(UniqueFd fd, Mapping run, uint32_t id) : fd_(std::move(fd)), run_(std::move(run)), id_(id) {}

  Status SetCpuid(const std::vector<kvm_cpuid_entry2>& entries) const;
  Result<std::vector<kvm_cpuid_entry2>> GetCpuid() const;
  Status SetMsrs(const std::vector<kvm_msr_entry>& entries) const;
  // Reads the MSRs whose indices are given in `entries` (values are filled in).
  Status GetMsrs(std::vector<kvm_msr_entry>* entries) const;
  Result<kvm_regs> GetRegs() const;
  Status SetRegs(const kvm_regs& regs) const;
  Result<kvm_sregs> GetSregs() const;
  Status SetSregs(const kvm_sregs& sregs) const;
  Result<kvm_fpu> GetFpu() const;
  Status SetFpu(const kvm_fpu& fpu) const;
  Result<kvm_lapic_state> GetLapic() const;
  Status SetLapic(const kvm_lapic_state& lapic) const;
  Result<kvm_mp_state> GetMpState() const;
  Status SetMpState(const kvm_mp_state& state) const;

  // The whole state (MSR indices to save are given by the caller).
  Result<VcpuState> GetState(const std::vector<uint32_t>& msr_indices) const;
  Status SetState(const VcpuState& state) const;

  // KVM_RUN; returns errno-style Error on failure (EINTR/EAGAIN come back as err == EINTR ...).
  Status Run() const;
  kvm_run* run() const { return static_cast<kvm_run*>(run_.addr()); }
  uint32_t id() const { return id_; }
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  Mapping run_;
  uint32_t id_ = 0;
};

}  // namespace ember

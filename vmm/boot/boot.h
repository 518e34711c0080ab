// ConfigureBoot: everything the guest needs in memory before the first KVM_RUN, and the register
// state the vCPUs start from. The VMM calls it once, after creating GuestMemory (RamRanges) and
// before creating vCPUs; it issues no ioctls. Then, for every vCPU:
//
//   KVM_SET_CPUID2 NormalizeCpuid(...)    (vmm/arch/x86_64/cpuid.h)
//   KVM_SET_MSRS   BootMsrEntries()       (vmm/arch/x86_64/msrs.h)
//   KVM_SET_REGS   setup.regs
//   KVM_GET_SREGS, setup.ApplySregs(&sregs), KVM_SET_SREGS
//   KVM_SET_FPU    DefaultFpu()           (vmm/arch/x86_64/regs.h)
//   LAPIC LINT0 = ExtINT, LINT1 = NMI
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vmm/arch/x86_64/boot_protocol.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/arch/x86_64/regs.h"
#include "vmm/base/result.h"
#include "vmm/boot/image_source.h"
#include "vmm/boot/initrd.h"
#include "vmm/boot/loaded_kernel.h"
#include "vmm/memory/guest_memory.h"

namespace ember {

// A virtio-mmio device announced on the command line ("virtio_mmio.device=4K@0xc0001000:5").
struct VirtioMmioDeviceInfo {
  uint64_t base = 0;
  uint64_t size = kMmioLen;
  uint32_t irq = 0;
};

struct BootInput {
  std::string kernel_path;  // ELF vmlinux (Linux 64-bit or PVH) or bzImage
  std::optional<std::string> initrd_path;
  std::string cmdline;      // boot_args as given (e.g. kDefaultBootArgs)
  uint32_t vcpu_count = 1;  // one MP-table processor entry each
  std::vector<VirtioMmioDeviceInfo> virtio_mmio_devices;  // appended to cmdline, in order
  uint64_t acpi_rsdp_addr = 0;  // kRsdpAddr when ACPI tables were written, else 0
};

struct BootSetup {
  BootProtocol protocol = BootProtocol::kLinux64;
  KernelFormat format = KernelFormat::kElf;
  uint64_t entry = 0;
  kvm_regs regs{};            // for KVM_SET_REGS on every vCPU
  uint64_t kernel_start = 0;  // guest-physical range the kernel occupies
  uint64_t kernel_end = 0;
  InitrdPlacement initrd;  // size 0 without an initrd
  std::string cmdline;     // the final command line written at kCmdlineAddr

  // Sets segments, GDT/IDT registers, CR0/CR3/CR4 and EFER for the protocol on sregs read
  // with KVM_GET_SREGS.
  void ApplySregs(kvm_sregs* sregs) const { ApplyBootSregs(protocol, sregs); }
};

// Writes the ACPI tables (vmm/arch/x86_64/acpi.h) for input.vcpu_count and
// input.virtio_mmio_devices: the RSDP at kRsdpAddr, the others in the reserved system memory
// right after the MP table, as Firecracker places them. Returns the RSDP address, for
// input.acpi_rsdp_addr. Call before ConfigureBoot, which writes the MP table next to them.
Result<uint64_t> WriteAcpiTablesForBoot(const GuestMemory& memory, const BootInput& input);

// Opens the kernel and initrd files and calls the overload below.
Result<BootSetup> ConfigureBoot(const GuestMemory& memory, const BootInput& input);

// The same with the images already open (files or buffers); input.kernel_path and
// input.initrd_path are ignored. `initrd` may be null. Writes, in order: kernel, initrd, command
// line, zero page or PVH start info, GDT and IDT, page tables (Linux 64-bit only), MP table.
Result<BootSetup> ConfigureBoot(const GuestMemory& memory, const ImageSource& kernel,
                                const ImageSource* initrd, const BootInput& input);

}  // namespace ember

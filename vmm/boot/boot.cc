#include "vmm/boot/boot.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "vmm/arch/x86_64/acpi.h"
#include "vmm/arch/x86_64/boot_params.h"
#include "vmm/arch/x86_64/e820.h"
#include "vmm/arch/x86_64/gdt.h"
#include "vmm/arch/x86_64/mptable.h"
#include "vmm/arch/x86_64/page_tables.h"
#include "vmm/arch/x86_64/pvh.h"
#include "vmm/boot/cmdline.h"
#include "vmm/boot/kernel_loader.h"

namespace ember {
namespace {

using ull = unsigned long long;

Status CheckInput(const GuestMemory& memory, const BootInput& input) {
  if (input.vcpu_count == 0) return Error{"boot: the vCPU count is 0"};
  if (input.vcpu_count > MpTableMaxVcpus())
    return Error{StrFormat("boot: %u vCPUs do not fit in the MP table (at most %u)",
                           input.vcpu_count, MpTableMaxVcpus())};
  // Everything below 1 MiB (tables, command line) plus a kernel at 1 MiB needs RAM from 0 on.
  if (LowMemEnd(memory) <= kHimemStart)
    return Error{
        StrFormat("boot: guest memory below 3 GiB ends at 0x%llx; more than 1 MiB is "
                  "needed",
                  static_cast<ull>(LowMemEnd(memory)))};
  return Ok();
}

Result<KernelCmdline> BuildCmdline(const BootInput& input) {
  KernelCmdline cmdline;
  TRY_STATUS(cmdline.Append(input.cmdline));
  for (const VirtioMmioDeviceInfo& d : input.virtio_mmio_devices)
    TRY_STATUS(cmdline.AddVirtioMmioDevice(d.base, d.size, d.irq));
  return cmdline;
}

// boot.rst: cmdline_size (protocol 2.06+) is the longest line the kernel accepts, without NUL.
Status CheckCmdlineFitsKernel(const LoadedKernel& kernel, const KernelCmdline& cmdline) {
  constexpr size_t kAt = offsetof(SetupHeader, cmdline_size);
  if (kernel.setup_header.size() < kAt + sizeof(uint32_t)) return Ok();
  uint32_t max = 0;
  memcpy(&max, kernel.setup_header.data() + kAt, sizeof(max));
  if (max != 0 && cmdline.str().size() > max)
    return Error{
        StrFormat("kernel command line of %zu bytes is longer than the kernel's "
                  "cmdline_size %u",
                  cmdline.str().size(), max)};
  return Ok();
}

Status WriteLinuxZeroPage(const GuestMemory& memory, const LoadedKernel& kernel,
                          const KernelCmdline& cmdline, const InitrdPlacement& initrd,
                          const BootInput& input) {
  ZeroPageInput zp;
  zp.setup_header = kernel.setup_header;
  zp.cmdline_addr = kCmdlineAddr;
  zp.cmdline_size = cmdline.size_with_nul();
  zp.initrd_addr = initrd.addr;
  zp.initrd_size = initrd.size;
  zp.acpi_rsdp_addr = input.acpi_rsdp_addr;
  zp.e820 = BuildE820Map(RamRangesOf(memory));
  const BootParams params = TRY(BuildZeroPage(zp));
  return WriteZeroPage(memory, params);
}

Status WritePvhInfo(const GuestMemory& memory, const InitrdPlacement& initrd,
                    const BootInput& input) {
  PvhInput pvh;
  pvh.cmdline_addr = kCmdlineAddr;
  pvh.initrd_addr = initrd.addr;
  pvh.initrd_size = initrd.size;
  pvh.acpi_rsdp_addr = input.acpi_rsdp_addr;
  pvh.e820 = BuildE820Map(RamRangesOf(memory));
  return WritePvhStartInfo(memory, pvh);
}

}  // namespace

Result<uint64_t> WriteAcpiTablesForBoot(const GuestMemory& memory, const BootInput& input) {
  TRY_STATUS(CheckInput(memory, input));
  AcpiInput acpi;
  acpi.vcpu_count = input.vcpu_count;
  for (const VirtioMmioDeviceInfo& d : input.virtio_mmio_devices)
    acpi.virtio_mmio.push_back({d.base, d.size, d.irq});
  return WriteAcpiTables(memory, acpi, kEbdaStart + MpTableBytes(input.vcpu_count));
}

Result<BootSetup> ConfigureBoot(const GuestMemory& memory, const BootInput& input) {
  FdImage kernel = TRY(FdImage::Open(input.kernel_path, "kernel"));
  std::optional<FdImage> initrd;
  if (input.initrd_path) initrd.emplace(TRY(FdImage::Open(*input.initrd_path, "initrd")));
  return ConfigureBoot(memory, kernel, initrd ? &*initrd : nullptr, input);
}

Result<BootSetup> ConfigureBoot(const GuestMemory& memory, const ImageSource& kernel_image,
                                const ImageSource* initrd_image, const BootInput& input) {
  TRY_STATUS(CheckInput(memory, input));
  const KernelCmdline cmdline = TRY(BuildCmdline(input));

  Result<LoadedKernel> loaded = LoadKernel(memory, kernel_image);
  if (!loaded.ok()) return loaded.error().Wrap("loading kernel");
  const LoadedKernel& kernel = *loaded;
  TRY_STATUS(CheckCmdlineFitsKernel(kernel, cmdline));

  InitrdPlacement initrd;
  if (initrd_image) {
    Result<InitrdPlacement> placed = LoadInitrd(memory, *initrd_image, kernel.load_end);
    if (!placed.ok()) return placed.error().Wrap("loading initrd");
    initrd = *placed;
  }

  TRY_STATUS(cmdline.WriteTo(memory, kCmdlineAddr));
  if (kernel.protocol == BootProtocol::kPvh) {
    TRY_STATUS(WritePvhInfo(memory, initrd, input));
  } else {
    TRY_STATUS(WriteLinuxZeroPage(memory, kernel, cmdline, initrd, input));
  }
  TRY_STATUS(WriteGdtAndIdt(memory, MakeBootGdt(kernel.protocol)));
  if (kernel.protocol == BootProtocol::kLinux64) TRY_STATUS(WriteIdentityPageTables(memory));
  TRY_STATUS(WriteMpTable(memory, input.vcpu_count));

  BootSetup setup;
  setup.protocol = kernel.protocol;
  setup.format = kernel.format;
  setup.entry = kernel.entry;
  setup.regs = BootRegs(kernel.protocol, kernel.entry);
  setup.kernel_start = kernel.load_start;
  setup.kernel_end = kernel.load_end;
  setup.initrd = initrd;
  setup.cmdline = cmdline.str();
  return setup;
}

}  // namespace ember

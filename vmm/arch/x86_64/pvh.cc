#include "vmm/arch/x86_64/pvh.h"

#include "vmm/arch/x86_64/layout.h"

namespace ember {

Status WritePvhStartInfo(const GuestMemory& memory, const PvhInput& in) {
  if (in.e820.size() > kPvhMaxMemmapEntries)
    return Error{StrFormat("the PVH memory map has %zu entries; at most %zu fit", in.e820.size(),
                           kPvhMaxMemmapEntries)};
  std::vector<HvmMemmapEntry> memmap;
  for (const E820Entry& e : in.e820) memmap.push_back({e.addr, e.size, e.type, 0});
  if (!memmap.empty()) {
    if (Status s =
            memory.Write(kPvhMemmapAddr, memmap.data(), memmap.size() * sizeof(HvmMemmapEntry));
        !s.ok())
      return s.error().Wrap("PVH memmap");
  }

  HvmStartInfo info{};
  info.magic = kPvhStartMagic;
  info.version = kPvhStartInfoVersion;
  info.cmdline_paddr = in.cmdline_addr;
  info.rsdp_paddr = in.acpi_rsdp_addr;
  info.memmap_paddr = kPvhMemmapAddr;
  info.memmap_entries = static_cast<uint32_t>(memmap.size());
  if (in.initrd_size > 0) {
    const HvmModlistEntry module{in.initrd_addr, in.initrd_size, 0, 0};
    if (Status s = memory.WriteObj(kPvhModlistAddr, module); !s.ok())
      return s.error().Wrap("PVH module list");
    info.nr_modules = 1;
    info.modlist_paddr = kPvhModlistAddr;
  }
  if (Status s = memory.WriteObj(kPvhInfoAddr, info); !s.ok())
    return s.error().Wrap("PVH start info");
  return Ok();
}

}  // namespace ember

#include "vmm/arch/x86_64/boot_params.h"

#include <cstring>

#include "vmm/arch/x86_64/layout.h"

namespace ember {

Result<BootParams> BuildZeroPage(const ZeroPageInput& in) {
  BootParams p;
  memset(&p, 0, sizeof(p));
  if (in.setup_header.size() > sizeof(SetupHeader))
    return Error{StrFormat("setup header of %zu bytes is larger than the %zu the zero page holds",
                           in.setup_header.size(), sizeof(SetupHeader))};
  if (!in.setup_header.empty()) {
    memcpy(&p.hdr, in.setup_header.data(), in.setup_header.size());
  } else {
    p.hdr.kernel_alignment = kElfKernelAlignment;
  }
  p.hdr.type_of_loader = kLoaderTypeUndefined;
  p.hdr.boot_flag = kBootFlagMagic;
  p.hdr.header = kSetupHeaderMagic;
  p.hdr.cmd_line_ptr = static_cast<uint32_t>(in.cmdline_addr);
  p.ext_cmd_line_ptr = static_cast<uint32_t>(in.cmdline_addr >> 32);
  p.hdr.cmdline_size = in.cmdline_size;
  p.hdr.ramdisk_image = static_cast<uint32_t>(in.initrd_addr);
  p.ext_ramdisk_image = static_cast<uint32_t>(in.initrd_addr >> 32);
  p.hdr.ramdisk_size = static_cast<uint32_t>(in.initrd_size);
  p.ext_ramdisk_size = static_cast<uint32_t>(in.initrd_size >> 32);
  p.acpi_rsdp_addr = in.acpi_rsdp_addr;

  if (in.e820.size() > kE820MaxEntries)
    return Error{StrFormat("the e820 map has %zu entries; the zero page holds at most %zu",
                           in.e820.size(), kE820MaxEntries)};
  for (size_t i = 0; i < in.e820.size(); i++)
    p.e820_table[i] = {in.e820[i].addr, in.e820[i].size, in.e820[i].type};
  p.e820_entries = static_cast<uint8_t>(in.e820.size());
  return p;
}

Status WriteZeroPage(const GuestMemory& memory, const BootParams& params) {
  if (Status s = memory.WriteObj(kZeroPageAddr, params); !s.ok())
    return s.error().Wrap("zero page");
  return Ok();
}

}  // namespace ember

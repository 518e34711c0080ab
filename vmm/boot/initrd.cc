#include "vmm/boot/initrd.h"

#include "vmm/arch/x86_64/layout.h"

namespace ember {

using ull = unsigned long long;

Result<uint64_t> InitrdAddress(uint64_t low_mem_end, uint64_t size, uint64_t kernel_end) {
  if (size > low_mem_end)
    return Error{StrFormat("initrd of %llu bytes is larger than the %llu MiB of RAM below 3 GiB",
                           static_cast<ull>(size), static_cast<ull>(low_mem_end >> 20))};
  const uint64_t addr = (low_mem_end - size) & ~(kInitrdAlignment - 1);
  if (addr < kernel_end)
    return Error{
        StrFormat("initrd of %llu bytes at 0x%llx would overlap the kernel, which ends "
                  "at 0x%llx: not enough guest memory",
                  static_cast<ull>(size), static_cast<ull>(addr), static_cast<ull>(kernel_end))};
  return addr;
}

Result<InitrdPlacement> LoadInitrd(const GuestMemory& memory, const ImageSource& image,
                                   uint64_t kernel_end) {
  InitrdPlacement p;
  p.size = image.size();
  p.addr = TRY(InitrdAddress(LowMemEnd(memory), p.size, kernel_end));
  uint8_t* host = TRY(memory.HostAddress(p.addr, p.size));
  if (Status s = image.ReadAt(0, host, p.size); !s.ok()) return s.error().Wrap("initrd");
  return p;
}

}  // namespace ember

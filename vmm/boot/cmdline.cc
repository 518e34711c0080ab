#include "vmm/boot/cmdline.h"

#include "vmm/arch/x86_64/layout.h"

namespace ember {

Status KernelCmdline::Append(std::string_view args) {
  if (args.find('\0') != std::string_view::npos)
    return Error{"kernel command line: argument contains a NUL byte"};
  // Surrounding blanks would only produce empty tokens.
  while (!args.empty() && args.front() == ' ') args.remove_prefix(1);
  while (!args.empty() && args.back() == ' ') args.remove_suffix(1);
  if (args.empty()) return Ok();
  const size_t sep = line_.empty() ? 0 : 1;
  const size_t total = line_.size() + sep + args.size() + 1;
  if (total > kCmdlineMaxBytes)
    return Error{
        StrFormat("kernel command line would be %zu bytes including the NUL; the limit "
                  "is %llu",
                  total, static_cast<unsigned long long>(kCmdlineMaxBytes))};
  if (sep) line_ += ' ';
  line_.append(args);
  return Ok();
}

std::string FormatMemSize(uint64_t bytes) {
  if (bytes != 0 && bytes % kGiB == 0)
    return StrFormat("%lluG", static_cast<unsigned long long>(bytes / kGiB));
  if (bytes != 0 && bytes % kMiB == 0)
    return StrFormat("%lluM", static_cast<unsigned long long>(bytes / kMiB));
  if (bytes != 0 && bytes % kKiB == 0)
    return StrFormat("%lluK", static_cast<unsigned long long>(bytes / kKiB));
  return StrFormat("%llu", static_cast<unsigned long long>(bytes));
}

Status KernelCmdline::AddVirtioMmioDevice(uint64_t base, uint64_t size, uint32_t irq) {
  if (size == 0) return Error{"virtio-mmio device with a size of 0"};
  return Append(StrFormat("virtio_mmio.device=%s@0x%llx:%u", FormatMemSize(size).c_str(),
                          static_cast<unsigned long long>(base), irq));
}

Status KernelCmdline::WriteTo(const GuestMemory& memory, uint64_t addr) const {
  if (Status s = memory.Write(addr, line_.c_str(), line_.size() + 1); !s.ok())
    return s.error().Wrap("kernel command line");
  return Ok();
}

}  // namespace ember

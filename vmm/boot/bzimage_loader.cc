#include "vmm/boot/bzimage_loader.h"

#include <algorithm>
#include <cstring>

#include "vmm/arch/x86_64/layout.h"

namespace ember {
namespace {

using ull = unsigned long long;

Error BzError(const std::string& what) { return Error{"bzImage kernel: " + what}; }

constexpr uint64_t kHeaderMagicOffset = 0x202;
// The setup header must reach at least init_size (protocol 2.10+) for what we read.
constexpr uint64_t kMinHeaderEnd = 0x264;

}  // namespace

bool HasBzImageMagic(const ImageSource& image) {
  uint32_t magic = 0;
  return image.ReadAt(kHeaderMagicOffset, &magic, sizeof(magic)).ok() && magic == kSetupHeaderMagic;
}

uint64_t BzImageSetupBytes(const SetupHeader& hdr) {
  const uint64_t sects = hdr.setup_sects ? hdr.setup_sects : kDefaultSetupSects;
  return (sects + 1) * kSectorBytes;
}

Result<SetupHeader> ReadBzImageHeader(const ImageSource& image) {
  if (image.size() < kMinHeaderEnd)
    return BzError(StrFormat("truncated: %llu bytes is too small for a setup header",
                             static_cast<ull>(image.size())));
  SetupHeader hdr{};
  const uint64_t len = std::min<uint64_t>(sizeof(hdr), image.size() - kSetupHeaderOffset);
  TRY_STATUS(image.ReadAt(kSetupHeaderOffset, &hdr, len));
  if (hdr.header != kSetupHeaderMagic) return BzError("no \"HdrS\" magic at 0x202");
  if (hdr.boot_flag != kBootFlagMagic)
    return BzError(StrFormat("boot flag 0x%x is not 0xaa55", hdr.boot_flag));
  if (hdr.version < kMinBootProtocol)
    return BzError(StrFormat("boot protocol %u.%02u is older than 2.12", hdr.version >> 8,
                             hdr.version & 0xff));
  if (!(hdr.xloadflags & kXlfKernel64))
    return BzError("no 64-bit entry point (XLF_KERNEL_64 is clear)");
  if (!(hdr.loadflags & kLoadedHigh))
    return BzError("LOADED_HIGH is clear (a zImage cannot load at 1 MiB)");
  if (BzImageSetupBytes(hdr) >= image.size())
    return BzError(StrFormat("setup code of %llu bytes leaves no kernel in the %llu-byte file",
                             static_cast<ull>(BzImageSetupBytes(hdr)),
                             static_cast<ull>(image.size())));
  return hdr;
}

Result<LoadedKernel> LoadBzImage(const GuestMemory& memory, const ImageSource& image) {
  const SetupHeader hdr = TRY(ReadBzImageHeader(image));
  const uint64_t setup_bytes = BzImageSetupBytes(hdr);
  const uint64_t kernel_bytes = image.size() - setup_bytes;
  if (kernel_bytes > kMmioGapStart || !memory.Contains(kHimemStart, kernel_bytes) ||
      kHimemStart + kernel_bytes > LowMemEnd(memory))
    return BzError(StrFormat("the %llu-byte kernel does not fit in guest RAM at 1 MiB",
                             static_cast<ull>(kernel_bytes)));

  // boot.rst: the header ends at 0x202 + the byte at 0x201 (the jump's offset).
  uint8_t jump_offset = 0;
  TRY_STATUS(image.ReadAt(0x201, &jump_offset, 1));
  const uint64_t header_end = std::min<uint64_t>(
      {kHeaderMagicOffset + jump_offset, kSetupHeaderOffset + sizeof(SetupHeader), image.size()});

  LoadedKernel k;
  k.format = KernelFormat::kBzImage;
  k.protocol = BootProtocol::kLinux64;
  k.entry = kHimemStart + kBzImageEntryOffset;
  k.load_start = kHimemStart;
  // The decompressor (arch/x86/boot/compressed/head_64.S) extracts to the load address aligned
  // up, but no lower than the kernel's link address (pref_address), and needs init_size bytes
  // from there: the initrd must stay clear of all of it.
  const uint64_t extract_at = std::max<uint64_t>(hdr.pref_address, kHimemStart);
  k.load_end = std::max<uint64_t>(kHimemStart + kernel_bytes,
                                  extract_at > kMmioGapStart ? 0 : extract_at + hdr.init_size);
  k.setup_header.resize(header_end - kSetupHeaderOffset);
  TRY_STATUS(image.ReadAt(kSetupHeaderOffset, k.setup_header.data(), k.setup_header.size()));

  uint8_t* host = TRY(memory.HostAddress(kHimemStart, kernel_bytes));
  TRY_STATUS(image.ReadAt(setup_bytes, host, kernel_bytes));
  return k;
}

}  // namespace ember

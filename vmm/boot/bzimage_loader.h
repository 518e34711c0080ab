// Loads a bzImage through the Linux boot protocol's 64-bit entry (Documentation/arch/x86/
// boot.rst; facts 2.2): the protected-mode kernel after the setup sectors goes to 1 MiB and runs
// from load address + 0x200. The setup header seeds the zero page.
#pragma once

#include <cstdint>

#include "vmm/arch/x86_64/boot_params.h"
#include "vmm/base/result.h"
#include "vmm/boot/image_source.h"
#include "vmm/boot/loaded_kernel.h"
#include "vmm/memory/guest_memory.h"

namespace ember {

inline constexpr uint16_t kMinBootProtocol = 0x020c;  // 2.12: xloadflags, XLF_KERNEL_64
inline constexpr uint16_t kXlfKernel64 = 1u << 0;     // has the 64-bit entry at +0x200
inline constexpr uint8_t kLoadedHigh = 1u << 0;       // loadflags: protected mode part at 1 MiB
inline constexpr uint64_t kBzImageEntryOffset = 0x200;
inline constexpr uint32_t kDefaultSetupSects = 4;  // setup_sects == 0 means 4 (boot.rst)
inline constexpr uint64_t kSectorBytes = 512;

// True when the image carries "HdrS" at 0x202 (a Linux boot-protocol kernel of any version).
bool HasBzImageMagic(const ImageSource& image);

// The validated setup header (magic, boot flag, protocol >= 2.12, XLF_KERNEL_64, LOADED_HIGH,
// setup sectors inside the file). Tools use payload_offset/payload_length from it.
Result<SetupHeader> ReadBzImageHeader(const ImageSource& image);

// Bytes of the protected-mode kernel image that precede it in the file: (setup_sects + 1) * 512.
uint64_t BzImageSetupBytes(const SetupHeader& hdr);

// Validates the image and copies the protected-mode kernel to kHimemStart.
Result<LoadedKernel> LoadBzImage(const GuestMemory& memory, const ImageSource& image);

}  // namespace ember

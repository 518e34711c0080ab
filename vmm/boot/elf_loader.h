// Loads an ELF64 x86-64 vmlinux (facts 2.2; System V gABI "Program Loading"). Every PT_LOAD goes
// to its p_paddr; a Xen PHYS32_ENTRY note selects the PVH entry. The file is untrusted: each
// size and offset is checked before it is used, and each rejection says which rule failed.
#pragma once

#include <cstdint>
#include <optional>

#include "vmm/base/result.h"
#include "vmm/boot/image_source.h"
#include "vmm/boot/loaded_kernel.h"
#include "vmm/memory/guest_memory.h"

namespace ember {

inline constexpr uint16_t kElfMaxProgramHeaders = 128;  // vmlinux has ~5; anything near 64K is junk
inline constexpr uint64_t kElfMaxNoteBytes = 64 * 1024;
inline constexpr uint32_t kXenElfNotePhys32Entry = 18;  // xen/include/public/elfnote.h

// True when the image starts with "\x7fELF".
bool HasElfMagic(const ImageSource& image);

// The PVH 32-bit entry from the image's PT_NOTE segments, if there is one. Checks only the
// ELF header and program headers, loads nothing.
Result<std::optional<uint32_t>> FindPvhEntry(const ImageSource& image);

// Validates the image and loads its PT_LOAD segments into `memory`. Segments must lie in guest
// RAM at or above 1 MiB and outside the 32-bit MMIO gap.
Result<LoadedKernel> LoadElfKernel(const GuestMemory& memory, const ImageSource& image);

}  // namespace ember

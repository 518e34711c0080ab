// Kernel format detection, as Firecracker's load_kernel (facts 2.2): an image with the ELF magic
// is a vmlinux (PVH when it has the Xen note), anything else must be a bzImage.
#pragma once

#include "vmm/base/result.h"
#include "vmm/boot/image_source.h"
#include "vmm/boot/loaded_kernel.h"
#include "vmm/memory/guest_memory.h"

namespace ember {

Result<LoadedKernel> LoadKernel(const GuestMemory& memory, const ImageSource& image);

}  // namespace ember

#include "vmm/boot/kernel_loader.h"

#include "vmm/boot/bzimage_loader.h"
#include "vmm/boot/elf_loader.h"

namespace ember {

Result<LoadedKernel> LoadKernel(const GuestMemory& memory, const ImageSource& image) {
  if (HasElfMagic(image)) return LoadElfKernel(memory, image);
  if (HasBzImageMagic(image)) return LoadBzImage(memory, image);
  return Error{StrFormat("kernel image (%llu bytes) is neither an ELF vmlinux nor a bzImage",
                         static_cast<unsigned long long>(image.size()))};
}

}  // namespace ember

#include "vmm/boot/elf_loader.h"

#include <elf.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "vmm/arch/x86_64/layout.h"

namespace ember {
namespace {

using ull = unsigned long long;

Error ElfError(const std::string& what) { return Error{"ELF kernel: " + what}; }

Result<Elf64_Ehdr> ReadHeader(const ImageSource& image) {
  Elf64_Ehdr eh;
  if (image.size() < sizeof(eh))
    return ElfError(StrFormat("truncated: %llu bytes is smaller than the %zu-byte ELF header",
                              static_cast<ull>(image.size()), sizeof(eh)));
  TRY_STATUS(image.ReadAt(0, &eh, sizeof(eh)));
  if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) return ElfError("bad magic (not an ELF file)");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64)
    return ElfError(StrFormat("class %u is not ELFCLASS64", eh.e_ident[EI_CLASS]));
  if (eh.e_ident[EI_DATA] != ELFDATA2LSB)
    return ElfError(StrFormat("data encoding %u is not little-endian", eh.e_ident[EI_DATA]));
  if (eh.e_machine != EM_X86_64)
    return ElfError(StrFormat("machine %u is not EM_X86_64", eh.e_machine));
  if (eh.e_type != ET_EXEC) return ElfError(StrFormat("type %u is not ET_EXEC", eh.e_type));
  if (eh.e_phentsize != sizeof(Elf64_Phdr))
    return ElfError(
        StrFormat("program header size %u is not %zu", eh.e_phentsize, sizeof(Elf64_Phdr)));
  if (eh.e_phnum == 0) return ElfError("no program headers");
  if (eh.e_phnum > kElfMaxProgramHeaders)
    return ElfError(
        StrFormat("%u program headers exceed the limit of %u", eh.e_phnum, kElfMaxProgramHeaders));
  if (!image.Covers(eh.e_phoff, uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr)))
    return ElfError(StrFormat("program header table at 0x%llx (%u entries) is outside the file",
                              static_cast<ull>(eh.e_phoff), eh.e_phnum));
  return eh;
}

Result<std::vector<Elf64_Phdr>> ReadProgramHeaders(const ImageSource& image, const Elf64_Ehdr& eh) {
  std::vector<Elf64_Phdr> ph(eh.e_phnum);
  TRY_STATUS(image.ReadAt(eh.e_phoff, ph.data(), ph.size() * sizeof(Elf64_Phdr)));
  return ph;
}

Status CheckLoadSegment(const GuestMemory& memory, const ImageSource& image, size_t i,
                        const Elf64_Phdr& p) {
  if (!image.Covers(p.p_offset, p.p_filesz))
    return ElfError(StrFormat("segment %zu: file range 0x%llx+0x%llx is outside the %llu-byte file",
                              i, static_cast<ull>(p.p_offset), static_cast<ull>(p.p_filesz),
                              static_cast<ull>(image.size())));
  if (p.p_memsz < p.p_filesz)
    return ElfError(StrFormat("segment %zu: memsz 0x%llx is smaller than filesz 0x%llx", i,
                              static_cast<ull>(p.p_memsz), static_cast<ull>(p.p_filesz)));
  if (p.p_paddr + p.p_memsz < p.p_paddr)
    return ElfError(StrFormat("segment %zu: address 0x%llx + size 0x%llx overflows", i,
                              static_cast<ull>(p.p_paddr), static_cast<ull>(p.p_memsz)));
  const uint64_t end = p.p_paddr + p.p_memsz;
  if (p.p_paddr < kHimemStart)
    return ElfError(
        StrFormat("segment %zu: loads at 0x%llx, below 1 MiB", i, static_cast<ull>(p.p_paddr)));
  if (p.p_paddr < kMmioGapEnd && end > kMmioGapStart)
    return ElfError(StrFormat("segment %zu: [0x%llx, 0x%llx) overlaps the MMIO gap", i,
                              static_cast<ull>(p.p_paddr), static_cast<ull>(end)));
  if (!memory.Contains(p.p_paddr, p.p_memsz))
    return ElfError(StrFormat("segment %zu: [0x%llx, 0x%llx) is outside guest RAM", i,
                              static_cast<ull>(p.p_paddr), static_cast<ull>(end)));
  return Ok();
}

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

// Walks one PT_NOTE segment (gABI "Note Section"): namesz, descsz, type, then name and desc each
// padded to the segment's alignment.
Result<std::optional<uint32_t>> ScanNotes(const ImageSource& image, size_t i, const Elf64_Phdr& p) {
  if (p.p_filesz > kElfMaxNoteBytes)
    return ElfError(StrFormat("note segment %zu of %llu bytes exceeds %llu", i,
                              static_cast<ull>(p.p_filesz), static_cast<ull>(kElfMaxNoteBytes)));
  if (!image.Covers(p.p_offset, p.p_filesz))
    return ElfError(StrFormat("note segment %zu: file range 0x%llx+0x%llx is outside the file", i,
                              static_cast<ull>(p.p_offset), static_cast<ull>(p.p_filesz)));
  std::vector<uint8_t> buf(p.p_filesz);
  TRY_STATUS(image.ReadAt(p.p_offset, buf.data(), buf.size()));
  const uint64_t align = p.p_align == 8 ? 8 : 4;
  uint64_t pos = 0;
  while (buf.size() - pos >= sizeof(Elf64_Nhdr)) {
    Elf64_Nhdr nh;
    memcpy(&nh, buf.data() + pos, sizeof(nh));
    const uint64_t name_at = pos + sizeof(nh);
    const uint64_t desc_at = name_at + AlignUp(nh.n_namesz, align);
    const uint64_t next = desc_at + AlignUp(nh.n_descsz, align);
    if (desc_at + nh.n_descsz > buf.size() || name_at + nh.n_namesz > buf.size())
      return ElfError(StrFormat("note segment %zu: note at 0x%llx runs past the segment", i,
                                static_cast<ull>(pos)));
    if (nh.n_type == kXenElfNotePhys32Entry && nh.n_namesz == 4 &&
        memcmp(buf.data() + name_at, "Xen", 4) == 0) {
      if (nh.n_descsz < 4)
        return ElfError(StrFormat("PVH entry note has a %u-byte descriptor, needs 4", nh.n_descsz));
      uint32_t entry;
      memcpy(&entry, buf.data() + desc_at, 4);
      return std::optional<uint32_t>(entry);
    }
    pos = std::min<uint64_t>(next, buf.size());
  }
  return std::optional<uint32_t>();
}

Result<std::optional<uint32_t>> ScanAllNotes(const ImageSource& image,
                                             const std::vector<Elf64_Phdr>& phdrs) {
  for (size_t i = 0; i < phdrs.size(); i++) {
    if (phdrs[i].p_type != PT_NOTE) continue;
    std::optional<uint32_t> entry = TRY(ScanNotes(image, i, phdrs[i]));
    if (entry) return entry;
  }
  return std::optional<uint32_t>();
}

}  // namespace

bool HasElfMagic(const ImageSource& image) {
  uint8_t magic[SELFMAG];
  return image.size() >= SELFMAG && image.ReadAt(0, magic, SELFMAG).ok() &&
         memcmp(magic, ELFMAG, SELFMAG) == 0;
}

Result<std::optional<uint32_t>> FindPvhEntry(const ImageSource& image) {
  const Elf64_Ehdr eh = TRY(ReadHeader(image));
  const std::vector<Elf64_Phdr> phdrs = TRY(ReadProgramHeaders(image, eh));
  return ScanAllNotes(image, phdrs);
}

Result<LoadedKernel> LoadElfKernel(const GuestMemory& memory, const ImageSource& image) {
  const Elf64_Ehdr eh = TRY(ReadHeader(image));
  const std::vector<Elf64_Phdr> phdrs = TRY(ReadProgramHeaders(image, eh));

  LoadedKernel k;
  k.format = KernelFormat::kElf;
  k.load_start = UINT64_MAX;
  size_t loads = 0;
  for (size_t i = 0; i < phdrs.size(); i++) {
    if (phdrs[i].p_type != PT_LOAD) continue;
    TRY_STATUS(CheckLoadSegment(memory, image, i, phdrs[i]));
    loads++;
    k.load_start = std::min<uint64_t>(k.load_start, phdrs[i].p_paddr);
    k.load_end = std::max<uint64_t>(k.load_end, phdrs[i].p_paddr + phdrs[i].p_memsz);
  }
  if (loads == 0) return ElfError("no PT_LOAD segment");

  const std::optional<uint32_t> pvh_entry = TRY(ScanAllNotes(image, phdrs));
  k.protocol = pvh_entry ? BootProtocol::kPvh : BootProtocol::kLinux64;
  k.entry = pvh_entry ? *pvh_entry : eh.e_entry;
  const bool entry_loaded = std::any_of(phdrs.begin(), phdrs.end(), [&](const Elf64_Phdr& p) {
    return p.p_type == PT_LOAD && k.entry >= p.p_paddr && k.entry - p.p_paddr < p.p_memsz;
  });
  if (!entry_loaded)
    return ElfError(StrFormat("%s entry point 0x%llx is not inside a loaded segment",
                              BootProtocolName(k.protocol), static_cast<ull>(k.entry)));

  for (const Elf64_Phdr& p : phdrs) {
    if (p.p_type != PT_LOAD) continue;
    uint8_t* host = TRY(memory.HostAddress(p.p_paddr, p.p_memsz));
    TRY_STATUS(image.ReadAt(p.p_offset, host, p.p_filesz));
    memset(host + p.p_filesz, 0, p.p_memsz - p.p_filesz);
  }
  return k;
}

}  // namespace ember

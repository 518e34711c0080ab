// mkbzimage: wraps the probe's flat image (objcopy -O binary of probe-linux64.elf) in a bzImage,
// so the VMM's bzImage loader and the 64-bit entry at load address + 0x200 are tested end to end.
//
// Layout (Documentation/arch/x86/boot.rst): the real-mode part is the boot sector plus
// setup_sects sectors, with the setup header at 0x1f1; the protected-mode image follows, flat,
// loaded at code32_start = pref_address = 0x100000, uncompressed. A VMM uses the 64-bit boot
// protocol (XLF_KERNEL_64: entry at 0x100200). The setup sectors also carry a small real-mode
// stub (arch/bzimage_setup.S, placed right after the header where the jump at 0x200 lands) that
// takes a traditional 16-bit loader such as QEMU's into that same 64-bit entry.
//
// The ELF is read only for its entry point (checked to be 0x100200) and its memory size with
// .bss, which becomes init_size.
//
// Usage: mkbzimage <probe-linux64.elf> <flat.bin> <setup-stub.bin> <output.bzImage>
#include <elf.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

namespace {

constexpr uint64_t kLoadAddr = 0x100000;       // code32_start, pref_address
constexpr uint64_t kEntry64Offset = 0x200;     // boot.rst: 64-bit entry at load address + 0x200
constexpr size_t kSectorSize = 512;
constexpr uint8_t kSetupSects = 4;
constexpr uint16_t kBootProtocol = 0x020c;     // 2.12: xloadflags, pref_address, init_size
constexpr uint8_t kLoadedHigh = 0x01;          // loadflags bit 0: protected-mode code at 1 MiB
constexpr uint16_t kXlfKernel64 = 0x0001;      // xloadflags bit 0: 64-bit entry at +0x200
constexpr uint32_t kKernelAlignment = 0x200000;
constexpr uint8_t kMinAlignmentLog2 = 21;
constexpr uint32_t kCmdlineSize = 2047;        // Firecracker: 2048 bytes including the NUL
constexpr uint32_t kHdrS = 0x53726448;         // "HdrS"

// Setup header field offsets (boot.rst, "The Real-Mode Kernel Header").
enum : size_t {
  kOffSetupSects = 0x1f1,
  kOffSyssize = 0x1f4,
  kOffVidMode = 0x1fa,
  kOffBootFlag = 0x1fe,
  kOffJump = 0x200,
  kOffHeader = 0x202,
  kOffVersion = 0x206,
  kOffKernelVersion = 0x20e,
  kOffLoadflags = 0x211,
  kOffCode32Start = 0x214,
  kOffInitrdAddrMax = 0x22c,
  kOffKernelAlignment = 0x230,
  kOffRelocatable = 0x234,
  kOffMinAlignment = 0x235,
  kOffXloadflags = 0x236,
  kOffCmdlineSize = 0x238,
  kOffPrefAddress = 0x258,
  kOffInitSize = 0x260,
  kHeaderEnd = 0x268,  // end of the 2.12 header; the real-mode stub starts here
  kOffVersionString = 0x980,
};

using Bytes = std::vector<uint8_t>;

bool Fail(const std::string& what) {
  std::fprintf(stderr, "mkbzimage: %s\n", what.c_str());
  return false;
}

std::optional<Bytes> ReadFile(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    Fail(std::string("cannot read ") + path);
    return std::nullopt;
  }
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

template <typename T>
void Put(Bytes& b, size_t off, T v) {
  std::memcpy(b.data() + off, &v, sizeof v);
}

// The highest p_paddr + p_memsz over the PT_LOAD segments, minus kLoadAddr.
std::optional<uint64_t> ElfMemorySize(const Bytes& elf) {
  Elf64_Ehdr eh;
  if (elf.size() < sizeof eh) return Fail("ELF too small"), std::nullopt;
  std::memcpy(&eh, elf.data(), sizeof eh);
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_machine != EM_X86_64) {
    return Fail("not an x86-64 ELF64 file"), std::nullopt;
  }
  if (eh.e_entry != kLoadAddr + kEntry64Offset) {
    return Fail("ELF entry is not 0x100200"), std::nullopt;
  }
  if (eh.e_phentsize != sizeof(Elf64_Phdr) ||
      eh.e_phoff + uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr) > elf.size()) {
    return Fail("bad program header table"), std::nullopt;
  }
  uint64_t end = 0;
  for (unsigned i = 0; i < eh.e_phnum; i++) {
    Elf64_Phdr ph;
    std::memcpy(&ph, elf.data() + eh.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_type != PT_LOAD) continue;
    if (ph.p_paddr < kLoadAddr) return Fail("PT_LOAD below 1 MiB"), std::nullopt;
    end = std::max(end, ph.p_paddr + ph.p_memsz);
  }
  if (end == 0) return Fail("no PT_LOAD segment"), std::nullopt;
  return end - kLoadAddr;
}

std::optional<Bytes> SetupSectors(const Bytes& stub, uint64_t flat_size, uint64_t mem_size) {
  Bytes setup((kSetupSects + 1) * kSectorSize, 0);
  if (stub.size() > kOffVersionString - kHeaderEnd) {
    return Fail("setup stub too large"), std::nullopt;
  }
  Put<uint8_t>(setup, kOffSetupSects, kSetupSects);
  Put<uint32_t>(setup, kOffSyssize, static_cast<uint32_t>((flat_size + 15) / 16));  // paragraphs
  Put<uint16_t>(setup, kOffVidMode, 0xffff);  // "normal"
  Put<uint16_t>(setup, kOffBootFlag, 0xaa55);
  // Real-mode entry (setup segment + 0x20 : 0): a short jump past the header to the stub.
  Put<uint8_t>(setup, kOffJump, 0xeb);
  Put<uint8_t>(setup, kOffJump + 1, static_cast<uint8_t>(kHeaderEnd - (kOffJump + 2)));
  std::memcpy(setup.data() + kHeaderEnd, stub.data(), stub.size());
  Put<uint32_t>(setup, kOffHeader, kHdrS);
  Put<uint16_t>(setup, kOffVersion, kBootProtocol);
  Put<uint16_t>(setup, kOffKernelVersion, static_cast<uint16_t>(kOffVersionString - 0x200));
  Put<uint8_t>(setup, kOffLoadflags, kLoadedHigh);
  Put<uint32_t>(setup, kOffCode32Start, static_cast<uint32_t>(kLoadAddr));
  Put<uint32_t>(setup, kOffInitrdAddrMax, 0x7fffffff);
  Put<uint32_t>(setup, kOffKernelAlignment, kKernelAlignment);
  Put<uint8_t>(setup, kOffRelocatable, 0);
  Put<uint8_t>(setup, kOffMinAlignment, kMinAlignmentLog2);
  Put<uint16_t>(setup, kOffXloadflags, kXlfKernel64);
  Put<uint32_t>(setup, kOffCmdlineSize, kCmdlineSize);
  Put<uint64_t>(setup, kOffPrefAddress, kLoadAddr);
  Put<uint32_t>(setup, kOffInitSize, static_cast<uint32_t>((mem_size + 0xfff) & ~uint64_t{0xfff}));
  static constexpr char kVersionString[] = "ember probe";
  std::memcpy(setup.data() + kOffVersionString, kVersionString, sizeof kVersionString);
  return setup;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr,
                 "usage: mkbzimage <probe-linux64.elf> <flat.bin> <setup-stub.bin> "
                 "<output.bzImage>\n");
    return 2;
  }
  std::optional<Bytes> elf = ReadFile(argv[1]);
  if (!elf) return 1;
  std::optional<uint64_t> mem_size = ElfMemorySize(*elf);
  if (!mem_size) return 1;
  std::optional<Bytes> flat = ReadFile(argv[2]);
  std::optional<Bytes> stub = ReadFile(argv[3]);
  if (!flat || !stub) return 1;
  if (flat->size() <= kEntry64Offset || flat->size() > *mem_size) {
    Fail("flat image size does not match the ELF");
    return 1;
  }
  std::optional<Bytes> setup = SetupSectors(*stub, flat->size(), *mem_size);
  if (!setup) return 1;
  std::ofstream out(argv[4], std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(setup->data()), static_cast<std::streamsize>(setup->size()));
  out.write(reinterpret_cast<const char*>(flat->data()), static_cast<std::streamsize>(flat->size()));
  out.close();
  if (!out) {
    Fail(std::string("cannot write ") + argv[4]);
    return 1;
  }
  return 0;
}

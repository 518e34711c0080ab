// Offline tests of the kernel loaders, the command line, the initrd placement and ConfigureBoot,
// fed with synthetic (and hostile) images built in memory.
#include "vmm/boot/boot.h"

#include <elf.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <set>

#include "vmm/arch/x86_64/boot_params.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/arch/x86_64/pvh.h"
#include "vmm/boot/bzimage_loader.h"
#include "vmm/boot/cmdline.h"
#include "vmm/boot/elf_loader.h"
#include "vmm/boot/initrd.h"
#include "vmm/boot/kernel_loader.h"

namespace ember {
namespace {

GuestMemory MakeMemory(uint64_t bytes = 128 * kMiB) {
  auto mem = GuestMemory::Create(RamRanges(bytes));
  EXPECT_TRUE(mem.ok());
  return std::move(mem).value();
}

// ---- synthetic ELF images ----

struct Segment {
  uint32_t type = PT_LOAD;
  uint64_t paddr = 0;
  std::vector<uint8_t> data;
  uint64_t memsz = 0;  // 0: data.size()
  uint64_t align = 4;
};

std::vector<uint8_t> PvhNote(uint32_t entry, uint32_t descsz = 4) {
  std::vector<uint8_t> n;
  auto u32 = [&](uint32_t v) {
    n.insert(n.end(), reinterpret_cast<uint8_t*>(&v), reinterpret_cast<uint8_t*>(&v) + 4);
  };
  // A GNU build-id note first, so the scan has to step over it.
  u32(4);
  u32(8);
  u32(3);
  n.insert(n.end(), {'G', 'N', 'U', 0});
  n.insert(n.end(), 8, 0xab);
  u32(4);
  u32(descsz);
  u32(kXenElfNotePhys32Entry);
  n.insert(n.end(), {'X', 'e', 'n', 0});
  u32(entry);
  n.resize(n.size() + (descsz > 4 ? (descsz - 4 + 3) / 4 * 4 : 0), 0);
  return n;
}

std::vector<uint8_t> BuildElf(uint64_t entry, const std::vector<Segment>& segs) {
  const size_t data_start = sizeof(Elf64_Ehdr) + segs.size() * sizeof(Elf64_Phdr);
  std::vector<uint8_t> out(data_start);
  Elf64_Ehdr eh{};
  memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_EXEC;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_entry = entry;
  eh.e_phoff = sizeof(Elf64_Ehdr);
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = static_cast<uint16_t>(segs.size());
  memcpy(out.data(), &eh, sizeof(eh));
  for (size_t i = 0; i < segs.size(); i++) {
    Elf64_Phdr ph{};
    ph.p_type = segs[i].type;
    ph.p_offset = out.size();
    ph.p_paddr = segs[i].paddr;
    ph.p_vaddr = segs[i].paddr + 0xffffffff80000000ull;
    ph.p_filesz = segs[i].data.size();
    ph.p_memsz = segs[i].memsz ? segs[i].memsz : segs[i].data.size();
    ph.p_align = segs[i].align;
    memcpy(out.data() + sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr), &ph, sizeof(ph));
    out.insert(out.end(), segs[i].data.begin(), segs[i].data.end());
  }
  return out;
}

constexpr uint64_t kKernelAddr = 0x1000000;  // 16 MiB, where vmlinux links

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; i++) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

std::vector<uint8_t> LinuxElf() {
  return BuildElf(kKernelAddr, {{PT_LOAD, kKernelAddr, Pattern(8192, 1), 8192 + 4096},
                                {PT_LOAD, kKernelAddr + 0x10000, Pattern(100, 9), 0}});
}

std::vector<uint8_t> PvhElf(uint32_t pvh_entry = kKernelAddr + 0x40) {
  return BuildElf(kKernelAddr, {{PT_LOAD, kKernelAddr, Pattern(8192, 1), 0},
                                {PT_NOTE, 0, PvhNote(pvh_entry), 0}});
}

Elf64_Ehdr* Ehdr(std::vector<uint8_t>& elf) { return reinterpret_cast<Elf64_Ehdr*>(elf.data()); }
Elf64_Phdr* Phdr(std::vector<uint8_t>& elf, size_t i) {
  return reinterpret_cast<Elf64_Phdr*>(elf.data() + sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr));
}

std::string LoadElfError(std::vector<uint8_t> elf, uint64_t mem_bytes = 128 * kMiB) {
  GuestMemory mem = MakeMemory(mem_bytes);
  BufferImage image(elf.data(), elf.size());
  auto r = LoadElfKernel(mem, image);
  return r.ok() ? "accepted" : r.error().message;
}

TEST(ElfLoaderTest, LoadsSegmentsAndZeroesTheTail) {
  GuestMemory mem = MakeMemory();
  ASSERT_TRUE(mem.Fill(kKernelAddr, 0xcc, 8192 + 4096).ok());
  auto elf = LinuxElf();
  BufferImage image(elf.data(), elf.size());
  auto k = LoadElfKernel(mem, image);
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->protocol, BootProtocol::kLinux64);
  EXPECT_EQ(k->format, KernelFormat::kElf);
  EXPECT_EQ(k->entry, kKernelAddr);
  EXPECT_EQ(k->load_start, kKernelAddr);
  EXPECT_EQ(k->load_end, kKernelAddr + 0x10000 + 100);
  std::vector<uint8_t> got(8192 + 4096);
  ASSERT_TRUE(mem.Read(kKernelAddr, got.data(), got.size()).ok());
  auto want = Pattern(8192, 1);
  EXPECT_EQ(memcmp(got.data(), want.data(), 8192), 0);
  for (size_t i = 8192; i < got.size(); i++) ASSERT_EQ(got[i], 0) << i;
  auto want2 = Pattern(100, 9);
  std::vector<uint8_t> got2(100);
  ASSERT_TRUE(mem.Read(kKernelAddr + 0x10000, got2.data(), 100).ok());
  EXPECT_EQ(got2, want2);
}

TEST(ElfLoaderTest, DetectsPvhNote) {
  GuestMemory mem = MakeMemory();
  auto elf = PvhElf(kKernelAddr + 0x40);
  BufferImage image(elf.data(), elf.size());
  auto entry = FindPvhEntry(image);
  ASSERT_TRUE(entry.ok());
  ASSERT_TRUE(entry->has_value());
  EXPECT_EQ(**entry, kKernelAddr + 0x40);
  auto k = LoadElfKernel(mem, image);
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->protocol, BootProtocol::kPvh);
  EXPECT_EQ(k->entry, kKernelAddr + 0x40);

  auto plain = LinuxElf();
  BufferImage plain_image(plain.data(), plain.size());
  EXPECT_FALSE(FindPvhEntry(plain_image)->has_value());
}

TEST(ElfLoaderTest, PvhNoteWithEightByteDescriptor) {
  // Linux emits the entry with _ASM_PTR, 8 bytes on x86-64; the low 4 bytes are the address.
  GuestMemory mem = MakeMemory();
  auto elf = BuildElf(kKernelAddr, {{PT_LOAD, kKernelAddr, Pattern(4096, 1), 0},
                                    {PT_NOTE, 0, PvhNote(kKernelAddr + 8, 8), 0}});
  BufferImage image(elf.data(), elf.size());
  auto k = LoadElfKernel(mem, image);
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->protocol, BootProtocol::kPvh);
  EXPECT_EQ(k->entry, kKernelAddr + 8);
}

struct HostileElf {
  const char* name;
  std::function<void(std::vector<uint8_t>&)> mutate;
  const char* message;
};

TEST(ElfLoaderTest, RejectsHostileImagesWithDistinctMessages) {
  const std::vector<HostileElf> cases = {
      {"truncated", [](auto& e) { e.resize(40); }, "truncated"},
      {"class32", [](auto& e) { Ehdr(e)->e_ident[EI_CLASS] = ELFCLASS32; }, "not ELFCLASS64"},
      {"bigendian", [](auto& e) { Ehdr(e)->e_ident[EI_DATA] = ELFDATA2MSB; }, "not little-endian"},
      {"machine", [](auto& e) { Ehdr(e)->e_machine = EM_386; }, "not EM_X86_64"},
      {"type", [](auto& e) { Ehdr(e)->e_type = ET_DYN; }, "not ET_EXEC"},
      {"phentsize", [](auto& e) { Ehdr(e)->e_phentsize = 32; }, "program header size 32"},
      {"phnum0", [](auto& e) { Ehdr(e)->e_phnum = 0; }, "no program headers"},
      {"phnum_huge", [](auto& e) { Ehdr(e)->e_phnum = 0xffff; }, "exceed the limit"},
      {"phoff", [](auto& e) { Ehdr(e)->e_phoff = e.size() - 10; }, "program header table"},
      {"phoff_wrap", [](auto& e) { Ehdr(e)->e_phoff = ~0ull - 8; }, "program header table"},
      {"seg_outside_file", [](auto& e) { Phdr(e, 0)->p_offset = e.size() - 100; }, "file range"},
      {"seg_filesz_huge", [](auto& e) { Phdr(e, 0)->p_filesz = ~0ull; }, "file range"},
      {"memsz_lt_filesz", [](auto& e) { Phdr(e, 0)->p_memsz = 10; }, "smaller than filesz"},
      {"overflow", [](auto& e) { Phdr(e, 1)->p_paddr = ~0ull - 50; }, "overflows"},
      {"below_himem", [](auto& e) { Phdr(e, 0)->p_paddr = 0x8000; }, "below 1 MiB"},
      {"mmio_gap", [](auto& e) { Phdr(e, 1)->p_paddr = kMmioGapStart - 50; },
       "overlaps the MMIO gap"},
      {"outside_ram", [](auto& e) { Phdr(e, 1)->p_paddr = 200 * kMiB; }, "outside guest RAM"},
      {"no_load",
       [](auto& e) {
         Phdr(e, 0)->p_type = PT_NULL;
         Phdr(e, 1)->p_type = PT_NULL;
       },
       "no PT_LOAD segment"},
      {"entry_outside", [](auto& e) { Ehdr(e)->e_entry = 0x5000000; },
       "not inside a loaded segment"},
  };
  std::set<std::string> messages;
  for (const auto& c : cases) {
    auto elf = LinuxElf();
    c.mutate(elf);
    std::string msg = LoadElfError(elf);
    EXPECT_NE(msg.find(c.message), std::string::npos) << c.name << ": " << msg;
    EXPECT_EQ(msg.rfind("ELF kernel: ", 0), 0u) << c.name << ": " << msg;
    messages.insert(msg);
  }
  EXPECT_EQ(messages.size(), cases.size());  // every rejection says something different
}

TEST(ElfLoaderTest, RejectsHostileNotes) {
  auto short_desc = BuildElf(kKernelAddr, {{PT_LOAD, kKernelAddr, Pattern(4096, 1), 0},
                                           {PT_NOTE, 0, PvhNote(kKernelAddr, 2), 0}});
  EXPECT_NE(LoadElfError(short_desc).find("2-byte descriptor"), std::string::npos);

  auto past_end = PvhElf();
  Phdr(past_end, 1)->p_filesz -= 2;  // cut the Xen note's descriptor
  EXPECT_NE(LoadElfError(past_end).find("runs past the segment"), std::string::npos);

  auto huge_note = PvhElf();
  Phdr(huge_note, 1)->p_filesz = 1ull << 40;
  EXPECT_NE(LoadElfError(huge_note).find("exceeds"), std::string::npos);

  auto note_outside = PvhElf();
  Phdr(note_outside, 1)->p_offset = note_outside.size() - 4;
  EXPECT_NE(LoadElfError(note_outside).find("note segment 1: file range"), std::string::npos);

  auto pvh_entry_outside = PvhElf(0x300000);
  EXPECT_NE(LoadElfError(pvh_entry_outside).find("PVH entry point 0x300000"), std::string::npos);
}

TEST(ElfLoaderTest, SegmentAboveTheGapLoadsWhenRamIsThere) {
  auto elf = BuildElf(4 * kGiB, {{PT_LOAD, 4 * kGiB, Pattern(4096, 1), 0}});
  EXPECT_EQ(LoadElfError(elf, 4 * kGiB + 16 * kMiB), "accepted");
}

// ---- synthetic bzImages ----

constexpr size_t kSetupSects = 1;
constexpr size_t kBzKernelBytes = 16384;

template <typename T>
void Put(std::vector<uint8_t>& v, size_t off, T value) {
  memcpy(v.data() + off, &value, sizeof(T));
}

std::vector<uint8_t> BuildBzImage() {
  std::vector<uint8_t> img((kSetupSects + 1) * 512, 0);
  img[0x1f1] = kSetupSects;
  Put<uint16_t>(img, 0x1fe, 0xaa55);
  img[0x200] = 0xeb;
  img[0x201] = 0x66;  // header ends at 0x268
  memcpy(img.data() + 0x202, "HdrS", 4);
  Put<uint16_t>(img, 0x206, 0x020f);
  img[0x211] = 0x01;                     // LOADED_HIGH
  Put<uint32_t>(img, 0x230, 0x200000);   // kernel_alignment
  img[0x234] = 1;                        // relocatable
  Put<uint16_t>(img, 0x236, 0x03);       // XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G
  Put<uint32_t>(img, 0x238, 2047);       // cmdline_size
  Put<uint32_t>(img, 0x248, 0x3b4);      // payload_offset
  Put<uint32_t>(img, 0x24c, 0x1234);     // payload_length
  Put<uint64_t>(img, 0x258, 0x1000000);  // pref_address
  Put<uint32_t>(img, 0x260, 0x80000);    // init_size
  auto kernel = Pattern(kBzKernelBytes, 3);
  img.insert(img.end(), kernel.begin(), kernel.end());
  return img;
}

std::string LoadKernelError(std::vector<uint8_t> img, uint64_t mem_bytes = 128 * kMiB) {
  auto mem = GuestMemory::Create({{0, mem_bytes}});
  EXPECT_TRUE(mem.ok());
  BufferImage image(img.data(), img.size());
  auto r = LoadKernel(*mem, image);
  return r.ok() ? "accepted" : r.error().message;
}

TEST(BzImageLoaderTest, LoadsProtectedModeKernelAtOneMiB) {
  GuestMemory mem = MakeMemory();
  auto img = BuildBzImage();
  BufferImage image(img.data(), img.size());
  auto k = LoadKernel(mem, image);
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->format, KernelFormat::kBzImage);
  EXPECT_EQ(k->protocol, BootProtocol::kLinux64);
  EXPECT_EQ(k->entry, 0x100200u);
  EXPECT_EQ(k->load_start, 0x100000u);
  EXPECT_EQ(k->load_end, 0x1000000u + 0x80000u);  // pref_address + init_size
  EXPECT_EQ(k->setup_header.size(), 0x268u - 0x1f1u);
  EXPECT_EQ(memcmp(k->setup_header.data(), img.data() + 0x1f1, k->setup_header.size()), 0);
  std::vector<uint8_t> got(kBzKernelBytes);
  ASSERT_TRUE(mem.Read(kHimemStart, got.data(), got.size()).ok());
  EXPECT_EQ(got, Pattern(kBzKernelBytes, 3));
}

TEST(BzImageLoaderTest, HeaderExposesPayload) {
  auto img = BuildBzImage();
  BufferImage image(img.data(), img.size());
  auto hdr = ReadBzImageHeader(image);
  ASSERT_TRUE(hdr.ok());
  EXPECT_EQ(hdr->payload_offset, 0x3b4u);
  EXPECT_EQ(hdr->payload_length, 0x1234u);
  EXPECT_EQ(BzImageSetupBytes(*hdr), 1024u);
  img[0x1f1] = 0;  // 0 means 4 setup sectors
  BufferImage image4(img.data(), img.size());
  EXPECT_EQ(BzImageSetupBytes(*ReadBzImageHeader(image4)), 2560u);
}

TEST(BzImageLoaderTest, RejectsHostileImagesWithDistinctMessages) {
  struct Case {
    const char* name;
    std::function<void(std::vector<uint8_t>&)> mutate;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"truncated", [](auto& v) { v.resize(0x240); }, "truncated"},
      {"boot_flag", [](auto& v) { Put<uint16_t>(v, 0x1fe, 0x1234); }, "boot flag 0x1234"},
      {"old_protocol", [](auto& v) { Put<uint16_t>(v, 0x206, 0x020b); }, "older than 2.12"},
      {"no_64bit", [](auto& v) { Put<uint16_t>(v, 0x236, 0x02); }, "XLF_KERNEL_64"},
      {"zimage", [](auto& v) { v[0x211] = 0; }, "LOADED_HIGH"},
      {"setup_too_big", [](auto& v) { v[0x1f1] = 200; }, "leaves no kernel"},
      {"no_magic", [](auto& v) { memcpy(v.data() + 0x202, "XXXX", 4); },
       "neither an ELF vmlinux nor a bzImage"},
  };
  std::set<std::string> messages;
  for (const auto& c : cases) {
    auto img = BuildBzImage();
    c.mutate(img);
    std::string msg = LoadKernelError(img);
    EXPECT_NE(msg.find(c.message), std::string::npos) << c.name << ": " << msg;
    messages.insert(msg);
  }
  EXPECT_EQ(messages.size(), cases.size());

  // The same header check reports a missing magic on its own.
  std::vector<uint8_t> junk(4096, 0);
  BufferImage junk_image(junk.data(), junk.size());
  auto hdr = ReadBzImageHeader(junk_image);
  ASSERT_FALSE(hdr.ok());
  EXPECT_NE(hdr.error().message.find("no \"HdrS\" magic"), std::string::npos);
}

TEST(BzImageLoaderTest, KernelLargerThanRamIsRejected) {
  auto img = BuildBzImage();
  img.resize(img.size() + 2 * kMiB);
  EXPECT_NE(LoadKernelError(img, 2 * kMiB).find("does not fit in guest RAM"), std::string::npos);
}

TEST(KernelLoaderTest, TinyOrEmptyImagesAreNeitherFormat) {
  EXPECT_NE(LoadKernelError({}).find("neither"), std::string::npos);
  EXPECT_NE(LoadKernelError({0x7f, 'E', 'L'}).find("neither"), std::string::npos);
  EXPECT_NE(LoadKernelError({0x7f, 'E', 'L', 'F'}).find("ELF kernel: truncated"),
            std::string::npos);
}

// ---- command line ----

TEST(CmdlineTest, AppendsTokensWithSingleSpaces) {
  KernelCmdline c;
  ASSERT_TRUE(c.Append("console=ttyS0 reboot=k").ok());
  ASSERT_TRUE(c.Append("  panic=1 ").ok());
  ASSERT_TRUE(c.Append("").ok());
  EXPECT_EQ(c.str(), "console=ttyS0 reboot=k panic=1");
  EXPECT_EQ(c.size_with_nul(), c.str().size() + 1);
}

TEST(CmdlineTest, EnforcesTheLimitIncludingTheNul) {
  KernelCmdline c;
  ASSERT_TRUE(c.Append(std::string(2047, 'a')).ok());
  EXPECT_EQ(c.size_with_nul(), 2048u);
  auto s = c.Append("b");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("2050 bytes including the NUL; the limit is 2048"),
            std::string::npos)
      << s.error().message;
  EXPECT_EQ(c.str().size(), 2047u);  // nothing appended on error

  KernelCmdline d;
  EXPECT_FALSE(d.Append(std::string(2048, 'a')).ok());
}

TEST(CmdlineTest, RejectsEmbeddedNul) {
  KernelCmdline c;
  auto s = c.Append(std::string_view("root=/dev/vda\0evil", 18));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("NUL"), std::string::npos);
  EXPECT_TRUE(c.str().empty());
}

TEST(CmdlineTest, VirtioMmioDeviceSyntax) {
  KernelCmdline c;
  ASSERT_TRUE(c.Append("console=ttyS0").ok());
  ASSERT_TRUE(c.AddVirtioMmioDevice(0xc0001000, 0x1000, 5).ok());
  ASSERT_TRUE(c.AddVirtioMmioDevice(0xC0002000, 0x1000, 6).ok());
  EXPECT_EQ(c.str(),
            "console=ttyS0 virtio_mmio.device=4K@0xc0001000:5 virtio_mmio.device=4K@0xc0002000:6");
  EXPECT_EQ(FormatMemSize(0x200000), "2M");
  EXPECT_EQ(FormatMemSize(1ull << 30), "1G");
  EXPECT_EQ(FormatMemSize(100), "100");
}

TEST(CmdlineTest, WritesNulTerminatedLine) {
  GuestMemory mem = MakeMemory();
  ASSERT_TRUE(mem.Fill(kCmdlineAddr, 0xff, 64).ok());
  KernelCmdline c;
  ASSERT_TRUE(c.Append("panic=1").ok());
  ASSERT_TRUE(c.WriteTo(mem, kCmdlineAddr).ok());
  char buf[8];
  ASSERT_TRUE(mem.Read(kCmdlineAddr, buf, 8).ok());
  EXPECT_EQ(memcmp(buf, "panic=1\0", 8), 0);
}

// ---- initrd ----

TEST(InitrdTest, PlacedPageAlignedBelowLowMemEnd) {
  EXPECT_EQ(*InitrdAddress(128 * kMiB, 4097, 0x200000), 128 * kMiB - 8192);
  EXPECT_EQ(*InitrdAddress(128 * kMiB, 4096, 0x200000), 128 * kMiB - 4096);
  EXPECT_EQ(*InitrdAddress(kMmioGapStart, 1000, 0x200000), kMmioGapStart - 4096);
}

TEST(InitrdTest, ErrorsWhenItDoesNotFit) {
  auto overlap = InitrdAddress(128 * kMiB, 100 * kMiB, 30 * kMiB);
  ASSERT_FALSE(overlap.ok());
  EXPECT_NE(overlap.error().message.find("overlap the kernel"), std::string::npos);
  auto too_big = InitrdAddress(128 * kMiB, 129 * kMiB, 0);
  ASSERT_FALSE(too_big.ok());
  EXPECT_NE(too_big.error().message.find("larger than"), std::string::npos);
}

TEST(InitrdTest, LoadCopiesTheBytes) {
  GuestMemory mem = MakeMemory();
  auto bytes = Pattern(10000, 5);
  BufferImage image(bytes.data(), bytes.size());
  auto p = LoadInitrd(mem, image, 0x2000000);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->addr, (128 * kMiB - 10000) & ~4095ull);
  EXPECT_EQ(p->size, 10000u);
  std::vector<uint8_t> got(10000);
  ASSERT_TRUE(mem.Read(p->addr, got.data(), got.size()).ok());
  EXPECT_EQ(got, bytes);
}

// ---- ConfigureBoot ----

TEST(ConfigureBootTest, ElfLinuxBootWritesEverything) {
  GuestMemory mem = MakeMemory();
  auto elf = LinuxElf();
  auto initrd = Pattern(5000, 11);
  BufferImage kernel_image(elf.data(), elf.size());
  BufferImage initrd_image(initrd.data(), initrd.size());
  BootInput in;
  in.cmdline = "console=ttyS0 reboot=k panic=1";
  in.vcpu_count = 2;
  in.virtio_mmio_devices.push_back({kVirtioMmioStart, kMmioLen, 5});
  in.acpi_rsdp_addr = kRsdpAddr;
  auto setup = ConfigureBoot(mem, kernel_image, &initrd_image, in);
  ASSERT_TRUE(setup.ok()) << setup.error().message;
  EXPECT_EQ(setup->protocol, BootProtocol::kLinux64);
  EXPECT_EQ(setup->entry, kKernelAddr);
  EXPECT_EQ(setup->regs.rip, kKernelAddr);
  EXPECT_EQ(setup->regs.rsi, kZeroPageAddr);
  EXPECT_EQ(setup->cmdline, "console=ttyS0 reboot=k panic=1 virtio_mmio.device=4K@0xc0001000:5");
  EXPECT_EQ(setup->initrd.addr, 128 * kMiB - 8192);
  EXPECT_EQ(setup->initrd.size, 5000u);

  auto zp = *mem.ReadObj<BootParams>(kZeroPageAddr);
  EXPECT_EQ(zp.hdr.header, kSetupHeaderMagic);
  EXPECT_EQ(zp.hdr.boot_flag, 0xaa55);
  EXPECT_EQ(zp.hdr.type_of_loader, 0xff);
  EXPECT_EQ(zp.hdr.cmd_line_ptr, kCmdlineAddr);
  EXPECT_EQ(zp.hdr.cmdline_size, setup->cmdline.size() + 1);
  EXPECT_EQ(zp.hdr.ramdisk_image, 128 * kMiB - 8192);
  EXPECT_EQ(zp.hdr.ramdisk_size, 5000u);
  EXPECT_EQ(zp.hdr.kernel_alignment, 16u << 20);
  EXPECT_EQ(zp.acpi_rsdp_addr, kRsdpAddr);
  EXPECT_EQ(zp.e820_entries, 4);

  std::vector<char> line(setup->cmdline.size() + 1);
  ASSERT_TRUE(mem.Read(kCmdlineAddr, line.data(), line.size()).ok());
  EXPECT_STREQ(line.data(), setup->cmdline.c_str());
  EXPECT_EQ(*mem.ReadObj<uint64_t>(kPml4Addr), 0xa003u);
  EXPECT_EQ(*mem.ReadObj<uint64_t>(kBootGdtAddr + 8), 0x00af9b000000ffffull);
  char mp[4];
  ASSERT_TRUE(mem.Read(kEbdaStart, mp, 4).ok());
  EXPECT_EQ(memcmp(mp, "_MP_", 4), 0);

  kvm_sregs sregs{};
  setup->ApplySregs(&sregs);
  EXPECT_EQ(sregs.cr3, kPml4Addr);
  EXPECT_EQ(sregs.efer, 0x500u);
}

TEST(ConfigureBootTest, PvhBootWritesStartInfoAndNoPageTables) {
  GuestMemory mem = MakeMemory();
  auto elf = PvhElf(kKernelAddr + 0x40);
  auto initrd = Pattern(5000, 11);
  BufferImage kernel_image(elf.data(), elf.size());
  BufferImage initrd_image(initrd.data(), initrd.size());
  BootInput in;
  in.cmdline = "console=ttyS0";
  auto setup = ConfigureBoot(mem, kernel_image, &initrd_image, in);
  ASSERT_TRUE(setup.ok()) << setup.error().message;
  EXPECT_EQ(setup->protocol, BootProtocol::kPvh);
  EXPECT_EQ(setup->regs.rip, kKernelAddr + 0x40);
  EXPECT_EQ(setup->regs.rbx, kPvhInfoAddr);
  auto info = *mem.ReadObj<HvmStartInfo>(kPvhInfoAddr);
  EXPECT_EQ(info.magic, kPvhStartMagic);
  EXPECT_EQ(info.cmdline_paddr, kCmdlineAddr);
  EXPECT_EQ(info.nr_modules, 1u);
  EXPECT_EQ(mem.ReadObj<HvmModlistEntry>(kPvhModlistAddr)->paddr, setup->initrd.addr);
  EXPECT_EQ(*mem.ReadObj<uint64_t>(kPml4Addr), 0u);
  EXPECT_EQ(*mem.ReadObj<uint64_t>(kBootGdtAddr + 8), 0x00cf9b000000ffffull);
  kvm_sregs sregs{};
  setup->ApplySregs(&sregs);
  EXPECT_EQ(sregs.cr0, 0x11u);
}

TEST(ConfigureBootTest, BzImageSeedsTheZeroPage) {
  GuestMemory mem = MakeMemory();
  auto img = BuildBzImage();
  BufferImage kernel_image(img.data(), img.size());
  BootInput in;
  in.cmdline = "console=ttyS0";
  auto setup = ConfigureBoot(mem, kernel_image, nullptr, in);
  ASSERT_TRUE(setup.ok()) << setup.error().message;
  EXPECT_EQ(setup->format, KernelFormat::kBzImage);
  EXPECT_EQ(setup->regs.rip, 0x100200u);
  auto zp = *mem.ReadObj<BootParams>(kZeroPageAddr);
  EXPECT_EQ(zp.hdr.version, 0x020f);
  EXPECT_EQ(zp.hdr.setup_sects, kSetupSects);
  EXPECT_EQ(zp.hdr.kernel_alignment, 0x200000u);  // the kernel's, not the ELF default
  EXPECT_EQ(zp.hdr.init_size, 0x80000u);
  EXPECT_EQ(zp.hdr.type_of_loader, 0xff);
  EXPECT_EQ(zp.hdr.cmd_line_ptr, kCmdlineAddr);
  EXPECT_EQ(zp.hdr.ramdisk_image, 0u);
  EXPECT_EQ(zp.hdr.ramdisk_size, 0u);
}

TEST(ConfigureBootTest, CmdlineLongerThanTheKernelAcceptsIsRejected) {
  GuestMemory mem = MakeMemory();
  auto img = BuildBzImage();
  Put<uint32_t>(img, 0x238, 10);
  BufferImage kernel_image(img.data(), img.size());
  BootInput in;
  in.cmdline = "console=ttyS0 reboot=k";
  auto setup = ConfigureBoot(mem, kernel_image, nullptr, in);
  ASSERT_FALSE(setup.ok());
  EXPECT_NE(setup.error().message.find("cmdline_size 10"), std::string::npos);
}

TEST(ConfigureBootTest, RejectsBadInputs) {
  GuestMemory mem = MakeMemory();
  auto elf = LinuxElf();
  BufferImage kernel_image(elf.data(), elf.size());
  BootInput in;
  in.vcpu_count = 0;
  EXPECT_NE(ConfigureBoot(mem, kernel_image, nullptr, in).error().message.find("vCPU count is 0"),
            std::string::npos);
  in.vcpu_count = 64;
  EXPECT_NE(ConfigureBoot(mem, kernel_image, nullptr, in).error().message.find("MP table"),
            std::string::npos);
  in.vcpu_count = 1;
  in.cmdline = std::string(3000, 'x');
  EXPECT_NE(ConfigureBoot(mem, kernel_image, nullptr, in).error().message.find("limit is 2048"),
            std::string::npos);
  in.cmdline = "";
  std::vector<uint8_t> big_initrd(120 * kMiB);
  BufferImage initrd_image(big_initrd.data(), big_initrd.size());
  auto r = ConfigureBoot(mem, kernel_image, &initrd_image, in);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("loading initrd: initrd of"), std::string::npos)
      << r.error().message;
  std::vector<uint8_t> junk(100, 1);
  BufferImage junk_image(junk.data(), junk.size());
  EXPECT_NE(ConfigureBoot(mem, junk_image, nullptr, in).error().message.find("loading kernel:"),
            std::string::npos);
}

TEST(ConfigureBootTest, OpensFilesByPath) {
  GuestMemory mem = MakeMemory();
  auto elf = LinuxElf();
  int raw = memfd_create("vmlinux", MFD_CLOEXEC);
  ASSERT_GE(raw, 0);
  UniqueFd fd(raw);
  ASSERT_EQ(write(fd.get(), elf.data(), elf.size()), static_cast<ssize_t>(elf.size()));
  BootInput in;
  in.kernel_path = "/proc/self/fd/" + std::to_string(fd.get());
  in.cmdline = "panic=1";
  auto setup = ConfigureBoot(mem, in);
  ASSERT_TRUE(setup.ok()) << setup.error().message;
  EXPECT_EQ(setup->entry, kKernelAddr);

  in.initrd_path = "/nonexistent/initrd.img";
  auto missing = ConfigureBoot(mem, in);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("open initrd /nonexistent/initrd.img: ENOENT"),
            std::string::npos)
      << missing.error().message;
}

TEST(ImageSourceTest, FdImageReadsAreBounded) {
  int raw = memfd_create("img", MFD_CLOEXEC);
  ASSERT_GE(raw, 0);
  UniqueFd fd(raw);
  ASSERT_EQ(write(fd.get(), "abcdef", 6), 6);
  auto img = FdImage::FromFd(std::move(fd), "kernel");
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img->size(), 6u);
  char buf[4];
  ASSERT_TRUE(img->ReadAt(2, buf, 4).ok());
  EXPECT_EQ(memcmp(buf, "cdef", 4), 0);
  EXPECT_FALSE(img->ReadAt(3, buf, 4).ok());
  EXPECT_FALSE(img->ReadAt(~0ull, buf, 2).ok());
}

}  // namespace
}  // namespace ember

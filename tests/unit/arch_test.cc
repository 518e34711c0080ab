// Offline tests of the x86-64 boot tables: every structure's bytes and checksums.
#include <gtest/gtest.h>

#include <cstring>

#include "vmm/arch/x86_64/boot_params.h"
#include "vmm/arch/x86_64/cpuid.h"
#include "vmm/arch/x86_64/e820.h"
#include "vmm/arch/x86_64/gdt.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/arch/x86_64/mptable.h"
#include "vmm/arch/x86_64/msrs.h"
#include "vmm/arch/x86_64/page_tables.h"
#include "vmm/arch/x86_64/pvh.h"
#include "vmm/arch/x86_64/regs.h"

namespace ember {
namespace {

GuestMemory SmallMemory() {
  auto mem = GuestMemory::Create(RamRanges(128 * kMiB));
  EXPECT_TRUE(mem.ok());
  return std::move(mem).value();
}

// ---- layout and e820 ----

TEST(LayoutTest, RamBelowTheGapIsOneRange) {
  auto r = RamRanges(128 * kMiB);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].gpa, 0u);
  EXPECT_EQ(r[0].size, 128 * kMiB);
  EXPECT_EQ(LowMemEnd(r), 128 * kMiB);
}

TEST(LayoutTest, RamAboveThreeGibSplitsAroundTheMmioGap) {
  auto r = RamRanges(4 * kGiB);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].gpa, 0u);
  EXPECT_EQ(r[0].size, 3 * kGiB);
  EXPECT_EQ(r[1].gpa, 4 * kGiB);
  EXPECT_EQ(r[1].size, 1 * kGiB);
  EXPECT_EQ(LowMemEnd(r), kMmioGapStart);
  EXPECT_EQ(RamRanges(3 * kGiB).size(), 1u);
  EXPECT_TRUE(RamRanges(0).empty());
}

TEST(E820Test, MapFor128MiB) {
  auto map = BuildE820Map(RamRanges(128 * kMiB));
  ASSERT_EQ(map.size(), 4u);
  EXPECT_EQ(map[0].addr, 0u);
  EXPECT_EQ(map[0].size, 0x9fc00u);
  EXPECT_EQ(map[0].type, kE820Ram);
  EXPECT_EQ(map[1].addr, 0x9fc00u);
  EXPECT_EQ(map[1].size, 0xe0000u - 0x9fc00u);
  EXPECT_EQ(map[1].type, kE820Reserved);
  EXPECT_EQ(map[2].addr, 0x100000u);
  EXPECT_EQ(map[2].size, 128 * kMiB - 0x100000);
  EXPECT_EQ(map[2].type, kE820Ram);
  EXPECT_EQ(map[3].addr, 0xeec00000u);
  EXPECT_EQ(map[3].size, 256 * kMiB);
  EXPECT_EQ(map[3].type, kE820Reserved);
}

TEST(E820Test, MapFor4GiBHasThreeGibLowAndOneGibHigh) {
  auto map = BuildE820Map(RamRanges(4 * kGiB));
  ASSERT_EQ(map.size(), 5u);
  EXPECT_EQ(map[2].addr, kHimemStart);
  EXPECT_EQ(map[2].size, 3 * kGiB - kHimemStart);
  EXPECT_EQ(map[2].type, kE820Ram);
  EXPECT_EQ(map[3].addr, kPcieMmconfigStart);
  EXPECT_EQ(map[3].type, kE820Reserved);
  EXPECT_EQ(map[4].addr, 4 * kGiB);
  EXPECT_EQ(map[4].size, 1 * kGiB);
  EXPECT_EQ(map[4].type, kE820Ram);
}

// ---- GDT, IDT, page tables ----

TEST(GdtTest, Linux64EntriesMatchFirecracker) {
  BootGdt gdt = MakeBootGdt(BootProtocol::kLinux64);
  EXPECT_EQ(gdt[0], 0u);
  EXPECT_EQ(gdt[1], 0x00af9b000000ffffull);
  EXPECT_EQ(gdt[2], 0x00cf93000000ffffull);
  EXPECT_EQ(gdt[3], 0x008f8b000000ffffull);
}

TEST(GdtTest, PvhEntriesAreFlat32Bit) {
  BootGdt gdt = MakeBootGdt(BootProtocol::kPvh);
  EXPECT_EQ(gdt[1], 0x00cf9b000000ffffull);
  EXPECT_EQ(gdt[2], 0x00cf93000000ffffull);
  EXPECT_EQ(gdt[3], 0x00008b0000000067ull);
}

TEST(GdtTest, EntryPacksBaseAndLimit) {
  uint64_t e = GdtEntry(0xc093, 0x12345678, 0xabcde);
  BootGdt gdt{0, e, 0, 0};
  kvm_segment s = SegmentFromGdt(gdt, 1);
  EXPECT_EQ(s.base, 0x12345678u);
  EXPECT_EQ(s.limit, 0xabcdefffu);  // G set: pages to bytes
  EXPECT_EQ(s.selector, 8);
}

TEST(GdtTest, SegmentsFromLinux64Gdt) {
  BootGdt gdt = MakeBootGdt(BootProtocol::kLinux64);
  kvm_segment cs = SegmentFromGdt(gdt, kGdtCodeIndex);
  EXPECT_EQ(cs.selector, 0x08);
  EXPECT_EQ(cs.base, 0u);
  EXPECT_EQ(cs.limit, 0xffffffffu);
  EXPECT_EQ(cs.type, 0xb);
  EXPECT_EQ(cs.present, 1);
  EXPECT_EQ(cs.dpl, 0);
  EXPECT_EQ(cs.db, 0);
  EXPECT_EQ(cs.s, 1);
  EXPECT_EQ(cs.l, 1);
  EXPECT_EQ(cs.g, 1);
  EXPECT_EQ(cs.unusable, 0);
  kvm_segment ds = SegmentFromGdt(gdt, kGdtDataIndex);
  EXPECT_EQ(ds.selector, 0x10);
  EXPECT_EQ(ds.type, 3);
  EXPECT_EQ(ds.db, 1);
  EXPECT_EQ(ds.l, 0);
  kvm_segment tr = SegmentFromGdt(gdt, kGdtTssIndex);
  EXPECT_EQ(tr.selector, 0x18);
  EXPECT_EQ(tr.type, 0xb);
  EXPECT_EQ(tr.s, 0);
  kvm_segment null = SegmentFromGdt(gdt, 0);
  EXPECT_EQ(null.unusable, 1);
}

TEST(GdtTest, PvhTssSegmentHasByteLimit) {
  kvm_segment tr = SegmentFromGdt(MakeBootGdt(BootProtocol::kPvh), kGdtTssIndex);
  EXPECT_EQ(tr.limit, 0x67u);
  EXPECT_EQ(tr.g, 0);
  kvm_segment cs = SegmentFromGdt(MakeBootGdt(BootProtocol::kPvh), kGdtCodeIndex);
  EXPECT_EQ(cs.db, 1);
  EXPECT_EQ(cs.l, 0);
  EXPECT_EQ(cs.limit, 0xffffffffu);
}

TEST(GdtTest, WritesGdtAndZeroIdt) {
  GuestMemory mem = SmallMemory();
  ASSERT_TRUE(mem.Fill(kBootIdtAddr, 0xaa, 8).ok());
  BootGdt gdt = MakeBootGdt(BootProtocol::kLinux64);
  ASSERT_TRUE(WriteGdtAndIdt(mem, gdt).ok());
  EXPECT_EQ(*mem.ReadObj<BootGdt>(kBootGdtAddr), gdt);
  EXPECT_EQ(*mem.ReadObj<uint64_t>(kBootIdtAddr), 0u);
}

TEST(PageTablesTest, IdentityMapsFirstGibWith2MiBPages) {
  GuestMemory mem = SmallMemory();
  ASSERT_TRUE(WriteIdentityPageTables(mem).ok());
  EXPECT_EQ(*mem.ReadObj<uint64_t>(kPml4Addr), 0xa003u);
  EXPECT_EQ(*mem.ReadObj<uint64_t>(kPml4Addr + 8), 0u);
  EXPECT_EQ(*mem.ReadObj<uint64_t>(kPdptAddr), 0xb003u);
  for (uint64_t i = 0; i < 512; i++)
    ASSERT_EQ(*mem.ReadObj<uint64_t>(kPdAddr + i * 8), (i << 21) | 0x83) << i;
}

// ---- registers and MSRs ----

TEST(RegsTest, Linux64Registers) {
  kvm_regs r = Linux64Regs(0x1000000);
  EXPECT_EQ(r.rip, 0x1000000u);
  EXPECT_EQ(r.rsp, 0x8ff0u);
  EXPECT_EQ(r.rbp, 0x8ff0u);
  EXPECT_EQ(r.rsi, 0x7000u);
  EXPECT_EQ(r.rflags, 2u);
  EXPECT_EQ(r.rbx, 0u);
}

TEST(RegsTest, PvhRegisters) {
  kvm_regs r = PvhRegs(0x1000123);
  EXPECT_EQ(r.rip, 0x1000123u);
  EXPECT_EQ(r.rbx, 0x6000u);
  EXPECT_EQ(r.rflags, 2u);
  EXPECT_EQ(r.rsi, 0u);
}

TEST(RegsTest, Linux64Sregs) {
  kvm_sregs s{};
  s.cr0 = 0x60000010;  // reset value: CD|NW|ET
  s.apic_base = 0xfee00900;
  ApplyLinux64Sregs(&s);
  EXPECT_EQ(s.cr0, 0x60000010u | 1u | 0x80000000u);
  EXPECT_EQ(s.cr3, 0x9000u);
  EXPECT_EQ(s.cr4 & 0x20, 0x20u);
  EXPECT_EQ(s.efer, 0x500u);
  EXPECT_EQ(s.gdt.base, 0x500u);
  EXPECT_EQ(s.gdt.limit, 31);
  EXPECT_EQ(s.idt.base, 0x520u);
  EXPECT_EQ(s.idt.limit, 7);
  EXPECT_EQ(s.cs.selector, 0x08);
  EXPECT_EQ(s.cs.l, 1);
  for (const kvm_segment* seg : {&s.ds, &s.es, &s.fs, &s.gs, &s.ss}) EXPECT_EQ(seg->selector, 0x10);
  EXPECT_EQ(s.tr.selector, 0x18);
  EXPECT_EQ(s.apic_base, 0xfee00900u);
}

TEST(RegsTest, PvhSregs) {
  kvm_sregs s{};
  s.cr0 = 0x60000010;
  s.cr4 = 0x20;
  s.efer = 0x500;
  ApplyPvhSregs(&s);
  EXPECT_EQ(s.cr0, 0x11u);
  EXPECT_EQ(s.cr4, 0u);
  EXPECT_EQ(s.efer, 0u);
  EXPECT_EQ(s.cs.db, 1);
  EXPECT_EQ(s.cs.l, 0);
  EXPECT_EQ(s.cs.limit, 0xffffffffu);
  EXPECT_EQ(s.tr.limit, 0x67u);
  EXPECT_EQ(s.gdt.base, 0x500u);
}

TEST(RegsTest, FpuDefaults) {
  kvm_fpu f = DefaultFpu();
  EXPECT_EQ(f.fcw, 0x37f);
  EXPECT_EQ(f.mxcsr, 0x1f80u);
}

TEST(MsrsTest, BootMsrList) {
  auto msrs = BootMsrEntries();
  ASSERT_EQ(msrs.size(), 11u);
  auto value = [&](uint32_t index) -> int64_t {
    for (const auto& m : msrs)
      if (m.index == index) return static_cast<int64_t>(m.data);
    return -1;
  };
  for (uint32_t zero : {0x174u, 0x175u, 0x176u, 0xc0000081u, 0xc0000082u, 0xc0000083u, 0xc0000084u,
                        0xc0000102u, 0x10u})
    EXPECT_EQ(value(zero), 0) << std::hex << zero;
  EXPECT_EQ(value(0x1a0), 1);
  EXPECT_EQ(value(0x2ff), (1 << 11) | 6);
}

// ---- CPUID ----

kvm_cpuid_entry2 Leaf(uint32_t fn, uint32_t idx, uint32_t a, uint32_t b, uint32_t c, uint32_t d,
                      uint32_t flags = 0) {
  kvm_cpuid_entry2 e{};
  e.function = fn;
  e.index = idx;
  e.flags = flags;
  e.eax = a;
  e.ebx = b;
  e.ecx = c;
  e.edx = d;
  return e;
}

kvm_cpuid_entry2 VendorLeaf(uint32_t max, const char id[13]) {
  uint32_t b, d, c;
  memcpy(&b, id, 4);
  memcpy(&d, id + 4, 4);
  memcpy(&c, id + 8, 4);
  return Leaf(0, 0, max, b, c, d);
}

constexpr uint32_t kSig = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;

std::vector<kvm_cpuid_entry2> IntelHost() {
  return {
      VendorLeaf(0x1f, "GenuineIntel"),
      // Host leaf 1: APIC ID 7, 16 logical, CLFLUSH 0, PDCM set, HTT clear.
      Leaf(1, 0, 0x000906ea, 0x07100000, (1u << 15) | 1u, 1u << 0),
      Leaf(4, 0, 0x1c004121, 0, 0, 0, kSig),  // L1d
      Leaf(4, 1, 0x1c004143, 0, 0, 0, kSig),  // L2
      Leaf(4, 2, 0x1c03c163, 0, 0, 0, kSig),  // L3
      Leaf(4, 3, 0, 0, 0, 0, kSig),           // end
      Leaf(6, 0, 0x77, 0, 0x9, 0),
      Leaf(7, 0, 0, 0, (1u << 5) | (1u << 2), 0, kSig),
      Leaf(0xa, 0, 0x07300404, 0, 0, 0x603),
      Leaf(0xb, 0, 1, 2, 0x100, 7, kSig),
      Leaf(0xb, 1, 4, 16, 0x201, 7, kSig),
      Leaf(0x1f, 0, 1, 2, 0x100, 7, kSig),
      Leaf(0x1f, 1, 4, 16, 0x201, 7, kSig),
      Leaf(0x40000000, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d),
      Leaf(0x40000001, 0, 0x01007afb, 0, 0, 0),
      Leaf(0x80000000, 0, 0x80000008, 0, 0, 0),
      Leaf(0x80000008, 0, 0x3027, 0, 0, 0),
  };
}

std::vector<kvm_cpuid_entry2> AmdHost() {
  return {
      VendorLeaf(0x10, "AuthenticAMD"),
      Leaf(1, 0, 0x00a20f10, 0x03100800, 1u << 15, 0),
      Leaf(7, 0, 0, 0, 1u << 5, 1u << 29, kSig),
      Leaf(0x40000000, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d),
      Leaf(0x80000000, 0, 0x80000021, 0, 0, 0),
      Leaf(0x80000001, 0, 0, 0, 0, 0),
      Leaf(0x80000008, 0, 0x3030, 0, 0x700f, 0),  // host: 16 threads, ApicIdSize 7
      Leaf(0x8000001d, 0, 0x00000121, 0, 0, 0, kSig),
      Leaf(0x8000001d, 1, 0x00000143, 0, 0, 0, kSig),
      Leaf(0x8000001d, 2, 0x00000163, 0, 0, 0, kSig),
      Leaf(0x8000001e, 0, 0x10, 0x0105, 0x0300, 0),
  };
}

const kvm_cpuid_entry2& Get(const std::vector<kvm_cpuid_entry2>& t, uint32_t fn, uint32_t idx = 0) {
  const kvm_cpuid_entry2* e = FindCpuid(t, fn, idx);
  EXPECT_NE(e, nullptr) << std::hex << fn << "/" << idx;
  static kvm_cpuid_entry2 none{};
  return e ? *e : none;
}

TEST(CpuidTest, DetectsVendor) {
  EXPECT_EQ(DetectCpuVendor(IntelHost()), CpuVendor::kIntel);
  EXPECT_EQ(DetectCpuVendor(AmdHost()), CpuVendor::kAmd);
  EXPECT_EQ(DetectCpuVendor({}), CpuVendor::kOther);
}

TEST(CpuidTest, IntelOneVcpu) {
  auto t = NormalizeCpuid(IntelHost(), {0, 1, false});
  const auto& l1 = Get(t, 1);
  EXPECT_EQ(l1.ebx >> 24, 0u);
  EXPECT_EQ((l1.ebx >> 16) & 0xff, 1u);
  EXPECT_EQ((l1.ebx >> 8) & 0xff, 8u);
  EXPECT_EQ(l1.ecx & (1u << 15), 0u);
  EXPECT_NE(l1.ecx & (1u << 24), 0u);
  EXPECT_NE(l1.ecx & (1u << 31), 0u);
  EXPECT_EQ(l1.ecx & 1u, 1u);  // other bits pass through
  EXPECT_EQ(l1.edx & (1u << 28), 0u);
  EXPECT_EQ(l1.eax, 0x000906eau);
  const auto& b0 = Get(t, 0xb, 0);
  EXPECT_EQ(b0.eax, 0u);
  EXPECT_EQ(b0.ebx, 1u);
  EXPECT_EQ(b0.ecx, 0x100u);
  EXPECT_EQ(b0.edx, 0u);
  const auto& b1 = Get(t, 0xb, 1);
  EXPECT_EQ(b1.eax, 0u);
  EXPECT_EQ(b1.ebx, 1u);
  EXPECT_EQ(b1.ecx, 0x201u);
  const auto& b2 = Get(t, 0xb, 2);
  EXPECT_EQ(b2.ebx, 0u);
  EXPECT_EQ((b2.ecx >> 8) & 0xff, 0u);
  const auto& l6 = Get(t, 6);
  EXPECT_EQ(l6.eax & 2u, 0u);
  EXPECT_EQ(l6.ecx & 8u, 0u);
  const auto& l7 = Get(t, 7);
  EXPECT_EQ(l7.ecx & (1u << 5), 0u);
  EXPECT_NE(l7.ecx & (1u << 2), 0u);
  EXPECT_NE(l7.ebx & (1u << 6), 0u);
  EXPECT_NE(l7.ebx & (1u << 13), 0u);
  const auto& la = Get(t, 0xa);
  EXPECT_EQ(la.eax | la.ebx | la.ecx | la.edx, 0u);
  EXPECT_EQ(Get(t, 4, 0).eax >> 26, 0u);  // one core
  // KVM's paravirt leaves pass through.
  EXPECT_EQ(Get(t, 0x40000000).ebx, 0x4b4d564bu);
  EXPECT_EQ(Get(t, 0x40000001).eax, 0x01007afbu);
}

TEST(CpuidTest, IntelFourVcpus) {
  for (uint32_t i = 0; i < 4; i++) {
    auto t = NormalizeCpuid(IntelHost(), {i, 4, false});
    const auto& l1 = Get(t, 1);
    EXPECT_EQ(l1.ebx >> 24, i);
    EXPECT_EQ((l1.ebx >> 16) & 0xff, 4u);
    EXPECT_NE(l1.edx & (1u << 28), 0u);
    const auto& b1 = Get(t, 0xb, 1);
    EXPECT_EQ(b1.eax, 2u);
    EXPECT_EQ(b1.ebx, 4u);
    EXPECT_EQ(b1.edx, i);
    EXPECT_EQ(Get(t, 0xb, 0).edx, i);
    EXPECT_EQ(Get(t, 0xb, 2).edx, i);
    EXPECT_EQ(Get(t, 0x1f, 1).ebx, 4u);
    EXPECT_EQ(Get(t, 4, 0).eax >> 26, 3u);            // 4 cores
    EXPECT_EQ((Get(t, 4, 2).eax >> 14) & 0xfff, 3u);  // L3 shared by 4
    EXPECT_EQ((Get(t, 4, 0).eax >> 14) & 0xfff, 0u);  // L1 private
  }
}

TEST(CpuidTest, IntelSmtTopology) {
  auto t = NormalizeCpuid(IntelHost(), {3, 4, true});
  EXPECT_EQ(Get(t, 0xb, 0).eax, 1u);
  EXPECT_EQ(Get(t, 0xb, 0).ebx, 2u);
  EXPECT_EQ(Get(t, 0xb, 1).eax, 2u);
  EXPECT_EQ(Get(t, 4, 0).eax >> 26, 1u);  // 2 cores of 2 threads
}

TEST(CpuidTest, AmdOneAndFourVcpus) {
  auto t1 = NormalizeCpuid(AmdHost(), {0, 1, false});
  EXPECT_EQ(Get(t1, 0x80000008).ecx & 0xff, 0u);
  EXPECT_EQ((Get(t1, 0x80000008).ecx >> 12) & 0xf, 0u);
  EXPECT_EQ(Get(t1, 7).edx & (1u << 29), 0u);
  EXPECT_EQ(Get(t1, 7).ecx & (1u << 5), 0u);
  EXPECT_EQ(Get(t1, 0xb, 0).ecx, 0x100u);  // leaf 0xB added: max basic leaf is 0x10
  EXPECT_EQ(Get(t1, 1).edx & (1u << 28), 0u);
  EXPECT_EQ(Get(t1, 0x40000000).ecx, 0x564b4d56u);

  for (uint32_t i = 0; i < 4; i++) {
    auto t = NormalizeCpuid(AmdHost(), {i, 4, false});
    const auto& l1 = Get(t, 1);
    EXPECT_EQ(l1.ebx >> 24, i);
    EXPECT_NE(l1.edx & (1u << 28), 0u);
    const auto& sz = Get(t, 0x80000008);
    EXPECT_EQ(sz.ecx & 0xff, 3u);
    EXPECT_EQ((sz.ecx >> 12) & 0xf, 2u);
    const auto& ext = Get(t, 0x8000001e);
    EXPECT_EQ(ext.eax, i);
    EXPECT_EQ(ext.ebx & 0xff, i);
    EXPECT_EQ((ext.ebx >> 8) & 0xff, 0u);
    EXPECT_EQ(ext.ecx, 0u);
    EXPECT_NE(Get(t, 0x80000001).ecx & (1u << 22), 0u);
    EXPECT_EQ((Get(t, 0x8000001d, 2).eax >> 14) & 0xfff, 3u);
    EXPECT_EQ(Get(t, 0xb, 1).ebx, 4u);
    EXPECT_EQ(Get(t, 0xb, 1).edx, i);
  }
}

// ---- zero page ----

TEST(BootParamsTest, ElfZeroPageFields) {
  ZeroPageInput in;
  in.cmdline_addr = kCmdlineAddr;
  in.cmdline_size = 42;
  in.initrd_addr = 0x7f00000;
  in.initrd_size = 0x100000;
  in.acpi_rsdp_addr = kRsdpAddr;
  in.e820 = BuildE820Map(RamRanges(128 * kMiB));
  auto p = BuildZeroPage(in);
  ASSERT_TRUE(p.ok()) << p.error().message;
  const auto* raw = reinterpret_cast<const uint8_t*>(&*p);
  auto u32 = [&](size_t off) {
    uint32_t v;
    memcpy(&v, raw + off, 4);
    return v;
  };
  auto u16 = [&](size_t off) {
    uint16_t v;
    memcpy(&v, raw + off, 2);
    return v;
  };
  EXPECT_EQ(memcmp(raw + 0x202, "HdrS", 4), 0);
  EXPECT_EQ(u16(0x1fe), 0xaa55);
  EXPECT_EQ(raw[0x210], 0xff);
  EXPECT_EQ(u32(0x228), 0x20000u);
  EXPECT_EQ(u32(0x238), 42u);
  EXPECT_EQ(u32(0x218), 0x7f00000u);
  EXPECT_EQ(u32(0x21c), 0x100000u);
  EXPECT_EQ(u32(0x230), 16u << 20);
  EXPECT_EQ(u32(0x070), 0xe0000u);
  EXPECT_EQ(raw[0x1e8], 4);
  uint64_t addr;
  memcpy(&addr, raw + 0x2d0 + 2 * 20, 8);
  EXPECT_EQ(addr, 0x100000u);
  EXPECT_EQ(u32(0x2d0 + 2 * 20 + 16), 1u);
  EXPECT_EQ(u32(0x2d0 + 1 * 20 + 16), 2u);

  GuestMemory mem = SmallMemory();
  ASSERT_TRUE(WriteZeroPage(mem, *p).ok());
  EXPECT_EQ(*mem.ReadObj<uint32_t>(kZeroPageAddr + 0x202), kSetupHeaderMagic);
}

TEST(BootParamsTest, SetupHeaderSeedsThePage) {
  ZeroPageInput in;
  in.setup_header.assign(0x202 + 4 - 0x1f1, 0);
  in.setup_header[0] = 27;  // setup_sects
  in.setup_header.resize(0x234 - 0x1f1, 0);
  uint32_t align = 2 << 20;
  memcpy(in.setup_header.data() + (0x230 - 0x1f1), &align, 4);
  auto p = BuildZeroPage(in);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->hdr.setup_sects, 27);
  EXPECT_EQ(p->hdr.kernel_alignment, 2u << 20);  // the kernel's own value, not 16 MiB
  EXPECT_EQ(p->hdr.header, kSetupHeaderMagic);
}

TEST(BootParamsTest, TooManyE820EntriesIsAnError) {
  ZeroPageInput in;
  in.e820.assign(129, E820Entry{0, 4096, kE820Ram});
  auto p = BuildZeroPage(in);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("129 entries"), std::string::npos);
  in.e820.resize(128);
  EXPECT_TRUE(BuildZeroPage(in).ok());
}

// ---- PVH ----

TEST(PvhTest, StartInfoMemmapAndModule) {
  GuestMemory mem = SmallMemory();
  PvhInput in;
  in.cmdline_addr = kCmdlineAddr;
  in.initrd_addr = 0x7000000;
  in.initrd_size = 12345;
  in.e820 = BuildE820Map(RamRanges(128 * kMiB));
  ASSERT_TRUE(WritePvhStartInfo(mem, in).ok());
  auto info = *mem.ReadObj<HvmStartInfo>(kPvhInfoAddr);
  EXPECT_EQ(info.magic, 0x336ec578u);
  EXPECT_EQ(info.version, 1u);
  EXPECT_EQ(info.cmdline_paddr, 0x20000u);
  EXPECT_EQ(info.memmap_paddr, 0x7000u);
  EXPECT_EQ(info.memmap_entries, 4u);
  EXPECT_EQ(info.nr_modules, 1u);
  EXPECT_EQ(info.modlist_paddr, 0x6040u);
  auto mod = *mem.ReadObj<HvmModlistEntry>(kPvhModlistAddr);
  EXPECT_EQ(mod.paddr, 0x7000000u);
  EXPECT_EQ(mod.size, 12345u);
  auto e2 = *mem.ReadObj<HvmMemmapEntry>(kPvhMemmapAddr + 2 * sizeof(HvmMemmapEntry));
  EXPECT_EQ(e2.addr, 0x100000u);
  EXPECT_EQ(e2.size, 127 * kMiB);
  EXPECT_EQ(e2.type, 1u);
  EXPECT_EQ(e2.reserved, 0u);
}

TEST(PvhTest, NoInitrdNoModule) {
  GuestMemory mem = SmallMemory();
  PvhInput in;
  in.e820 = BuildE820Map(RamRanges(128 * kMiB));
  ASSERT_TRUE(WritePvhStartInfo(mem, in).ok());
  auto info = *mem.ReadObj<HvmStartInfo>(kPvhInfoAddr);
  EXPECT_EQ(info.nr_modules, 0u);
  EXPECT_EQ(info.modlist_paddr, 0u);
}

// ---- MP table ----

uint8_t Sum(const uint8_t* p, size_t n) {
  uint8_t s = 0;
  for (size_t i = 0; i < n; i++) s = static_cast<uint8_t>(s + p[i]);
  return s;
}

struct ParsedMpTable {
  int processors = 0, buses = 0, ioapics = 0, io_ints = 0, local_ints = 0;
  std::vector<uint8_t> apic_ids;
  int bsp_count = 0;
  uint8_t ioapic_id = 0;
  uint32_t ioapic_addr = 0;
  bool io_ints_identity = true;
  uint8_t lint0_type = 0xff, lint1_type = 0xff;
};

// A reader written from MP spec chapter 4, independent of the builder.
ParsedMpTable ParseMpTable(const GuestMemory& mem) {
  ParsedMpTable out;
  uint8_t fp[16];
  EXPECT_TRUE(mem.Read(kEbdaStart, fp, 16).ok());
  EXPECT_EQ(memcmp(fp, "_MP_", 4), 0);
  EXPECT_EQ(Sum(fp, 16), 0);
  EXPECT_EQ(fp[8], 1);   // length in paragraphs
  EXPECT_EQ(fp[9], 4);   // spec 1.4
  EXPECT_EQ(fp[11], 0);  // feature 1: a configuration table is present
  uint32_t table;
  memcpy(&table, fp + 4, 4);
  EXPECT_EQ(table, kEbdaStart + 16);
  uint8_t hdr[44];
  EXPECT_TRUE(mem.Read(table, hdr, 44).ok());
  EXPECT_EQ(memcmp(hdr, "PCMP", 4), 0);
  uint16_t len, count;
  memcpy(&len, hdr + 4, 2);
  memcpy(&count, hdr + 34, 2);
  EXPECT_EQ(hdr[6], 4);
  uint32_t lapic;
  memcpy(&lapic, hdr + 36, 4);
  EXPECT_EQ(lapic, 0xfee00000u);
  EXPECT_LE(table + len, 0xa0000u);
  std::vector<uint8_t> all(len);
  EXPECT_TRUE(mem.Read(table, all.data(), len).ok());
  EXPECT_EQ(Sum(all.data(), len), 0);
  size_t pos = 44;
  for (int i = 0; i < count && pos < len; i++) {
    const uint8_t* e = all.data() + pos;
    switch (e[0]) {
      case 0:
        out.processors++;
        out.apic_ids.push_back(e[1]);
        EXPECT_EQ(e[2], 0x14);
        EXPECT_TRUE(e[3] & 1);
        if (e[3] & 2) out.bsp_count++;
        pos += 20;
        break;
      case 1:
        out.buses++;
        EXPECT_EQ(memcmp(e + 2, "ISA   ", 6), 0);
        pos += 8;
        break;
      case 2:
        out.ioapics++;
        out.ioapic_id = e[1];
        EXPECT_EQ(e[2], 0x11);
        EXPECT_EQ(e[3] & 1, 1);
        memcpy(&out.ioapic_addr, e + 4, 4);
        pos += 8;
        break;
      case 3:
        if (e[1] != 0 || e[5] != e[7] || e[6] != out.ioapic_id ||
            e[5] != static_cast<uint8_t>(out.io_ints))
          out.io_ints_identity = false;
        out.io_ints++;
        pos += 8;
        break;
      case 4:
        if (e[7] == 0) out.lint0_type = e[1];
        if (e[7] == 1) out.lint1_type = e[1];
        out.local_ints++;
        pos += 8;
        break;
      default:
        ADD_FAILURE() << "unknown MP entry type " << int(e[0]);
        return out;
    }
  }
  EXPECT_EQ(pos, len);
  return out;
}

void ExpectMpTable(uint32_t vcpus) {
  GuestMemory mem = SmallMemory();
  ASSERT_TRUE(WriteMpTable(mem, vcpus).ok());
  ParsedMpTable t = ParseMpTable(mem);
  EXPECT_EQ(t.processors, static_cast<int>(vcpus));
  for (uint32_t i = 0; i < vcpus && i < t.apic_ids.size(); i++) EXPECT_EQ(t.apic_ids[i], i);
  EXPECT_EQ(t.bsp_count, 1);
  EXPECT_EQ(t.buses, 1);
  EXPECT_EQ(t.ioapics, 1);
  EXPECT_EQ(t.ioapic_id, vcpus);
  EXPECT_EQ(t.ioapic_addr, 0xfec00000u);
  EXPECT_EQ(t.io_ints, 24);
  EXPECT_TRUE(t.io_ints_identity);
  EXPECT_EQ(t.local_ints, 2);
  EXPECT_EQ(t.lint0_type, 3);  // ExtINT
  EXPECT_EQ(t.lint1_type, 1);  // NMI
}

TEST(MpTableTest, OneVcpu) { ExpectMpTable(1); }
TEST(MpTableTest, FourVcpus) { ExpectMpTable(4); }
TEST(MpTableTest, ThirtyTwoVcpus) { ExpectMpTable(32); }

TEST(MpTableTest, TooManyVcpusIsAnError) {
  const uint32_t max = MpTableMaxVcpus();
  EXPECT_GE(max, 32u);
  EXPECT_TRUE(BuildMpTable(max, kEbdaStart).ok());
  auto r = BuildMpTable(max + 1, kEbdaStart);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("does not fit below 0xa0000"), std::string::npos);
  EXPECT_FALSE(BuildMpTable(0, kEbdaStart).ok());
}

}  // namespace
}  // namespace ember

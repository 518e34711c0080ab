// Offline tests of the ACPI tables (vmm/arch/x86_64/acpi.h) and the AML writer: layout,
// lengths, checksums, cross-pointers, and the DSDT decoded back by a small AML reader that knows
// exactly the subset ember emits (and fails the test on anything else).
#include "vmm/arch/x86_64/acpi.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <string>

#include "vmm/arch/x86_64/aml.h"
#include "vmm/arch/x86_64/e820.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/arch/x86_64/mptable.h"
#include "vmm/boot/boot.h"

namespace ember {
namespace {

// ---- a reader for the AML subset -------------------------------------------------------------

struct Resource {  // one decoded resource descriptor
  enum Kind { kIo, kMemory32Fixed, kInterrupt } kind;
  uint64_t a = 0, b = 0;  // io: min/max; memory: base/length; interrupt: gsi/flags
  uint64_t c = 0, d = 0;  // io: alignment/length; memory: read-write
};

struct Value {  // what a Name holds, or what a method returns
  enum Kind { kInteger, kString, kResources } kind = kInteger;
  uint64_t integer = 0;
  int integer_bytes = 0;  // 0 for ZeroOp/OneOp, else the prefix's width
  std::string string;
  std::vector<Resource> resources;
};

struct DeviceNode {
  std::string path;                      // "_SB_.COM1"
  std::map<std::string, Value> names;    // _HID, _UID, _CRS ...
  std::map<std::string, Value> methods;  // name -> the value its single Return gives
};

class AmlReader {
 public:
  explicit AmlReader(const std::vector<uint8_t>& aml)
      : p_(aml.data()), end_(aml.data() + aml.size()) {}

  // The whole definition block: a list of devices.
  std::vector<DeviceNode> Devices() {
    std::vector<DeviceNode> out;
    while (ok_ && p_ < end_) {
      Expect(aml::kExtOpPrefix);
      Expect(aml::kDeviceOp);
      const uint8_t* body_end = PackageEnd();
      DeviceNode dev;
      dev.path = NameString();
      while (ok_ && p_ < body_end) {
        const uint8_t op = Byte();
        if (op == aml::kNameOp) {
          std::string name = NameString();
          dev.names[name] = DataObject();
        } else if (op == aml::kMethodOp) {
          const uint8_t* method_end = PackageEnd();
          std::string name = NameString();
          Byte();  // flags
          Expect(aml::kReturnOp);
          dev.methods[name] = DataObject();
          if (p_ != method_end) Fail("method body longer than one Return");
        } else {
          Fail("unexpected opcode in a device");
        }
      }
      if (p_ != body_end) Fail("device contents overran its PkgLength");
      out.push_back(std::move(dev));
    }
    return out;
  }

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }

  // PkgLength at the cursor; returns where the package ends (it counts its own bytes).
  const uint8_t* PackageEnd() {
    const uint8_t* start = p_;
    const uint8_t lead = Byte();
    const int followers = lead >> 6;
    uint64_t len = followers == 0 ? (lead & 0x3f) : (lead & 0x0f);
    if (followers != 0 && (lead & 0x30) != 0) Fail("PkgLength reserved bits set");
    for (int i = 0; i < followers; i++) len |= uint64_t{Byte()} << (4 + 8 * i);
    if (start + len > end_) Fail("PkgLength beyond the data");
    return ok_ ? start + len : end_;
  }

 private:
  uint8_t Byte() {
    if (p_ >= end_) {
      Fail("read past the end");
      return 0;
    }
    return *p_++;
  }
  uint64_t Le(int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= uint64_t{Byte()} << (8 * i);
    return v;
  }
  void Expect(uint8_t b) {
    if (Byte() != b) Fail("expected byte " + std::to_string(b));
  }
  void Fail(const std::string& why) {
    if (ok_) error_ = why + " at offset " + std::to_string(p_ - (end_ - 0));
    ok_ = false;
    p_ = end_;
  }

  std::string NameSeg() {
    std::string s;
    for (int i = 0; i < 4; i++) s += static_cast<char>(Byte());
    for (size_t i = 0; i < 4; i++) {
      const char c = s[i];
      if (!((c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9')))
        Fail("bad NameSeg '" + s + "'");
    }
    return s;
  }
  std::string NameString() {
    int segs = 1;
    if (p_ < end_ && *p_ == aml::kDualNamePrefix) {
      p_++;
      segs = 2;
    } else if (p_ < end_ && *p_ == aml::kMultiNamePrefix) {
      p_++;
      segs = Byte();
    }
    std::string path;
    for (int i = 0; i < segs; i++) {
      if (i) path += '.';
      path += NameSeg();
    }
    return path;
  }

  Value DataObject() {
    Value v;
    const uint8_t op = Byte();
    switch (op) {
      case aml::kZeroOp:
        v.integer = 0;
        break;
      case aml::kOneOp:
        v.integer = 1;
        break;
      case aml::kBytePrefix:
        v.integer = Le(1), v.integer_bytes = 1;
        break;
      case aml::kWordPrefix:
        v.integer = Le(2), v.integer_bytes = 2;
        break;
      case aml::kDWordPrefix:
        v.integer = Le(4), v.integer_bytes = 4;
        break;
      case aml::kQWordPrefix:
        v.integer = Le(8), v.integer_bytes = 8;
        break;
      case aml::kStringPrefix:
        v.kind = Value::kString;
        while (ok_) {
          const uint8_t c = Byte();
          if (c == 0) break;
          if (c < 0x20 || c > 0x7e) Fail("non-ASCII string");
          v.string += static_cast<char>(c);
        }
        break;
      case aml::kBufferOp:
        v.kind = Value::kResources, v.resources = ResourceBuffer();
        break;
      default:
        Fail("unknown data object " + std::to_string(op));
    }
    return v;
  }

  std::vector<Resource> ResourceBuffer() {
    const uint8_t* buffer_end = PackageEnd();
    const Value size = DataObject();
    if (size.kind != Value::kInteger || p_ + size.integer != buffer_end)
      Fail("BufferSize does not match the PkgLength");
    std::vector<Resource> out;
    while (ok_) {
      const uint8_t tag = Byte();
      if (tag == aml::kEndTagDescriptor) {
        if (Byte() != 0) Fail("end tag checksum not 0");
        break;
      }
      if (tag == aml::kIoPortDescriptor) {
        if (Byte() != 1) Fail("I/O descriptor not 16-bit decode");
        Resource r{Resource::kIo};
        r.a = Le(2), r.b = Le(2), r.c = Byte(), r.d = Byte();
        out.push_back(r);
      } else if (tag == aml::kMemory32FixedDescriptor) {
        if (Le(2) != 9) Fail("Memory32Fixed length not 9");
        Resource r{Resource::kMemory32Fixed};
        r.d = Byte(), r.a = Le(4), r.b = Le(4);
        out.push_back(r);
      } else if (tag == aml::kExtendedIrqDescriptor) {
        if (Le(2) != 6) Fail("extended IRQ length not 6");
        Resource r{Resource::kInterrupt};
        r.b = Byte();
        if (Byte() != 1) Fail("extended IRQ count not 1");
        r.a = Le(4);
        out.push_back(r);
      } else {
        Fail("unknown resource tag " + std::to_string(tag));
      }
    }
    if (p_ != buffer_end) Fail("resource template shorter than its buffer");
    return out;
  }

  const uint8_t* p_;
  const uint8_t* end_;
  bool ok_ = true;
  std::string error_;
};

std::string DecodeEisaId(uint32_t stored) {
  const uint32_t v = __builtin_bswap32(stored);
  std::string s;
  for (int shift : {26, 21, 16}) s += static_cast<char>('@' + ((v >> shift) & 0x1f));
  char hex[5];
  snprintf(hex, sizeof(hex), "%04X", v & 0xffff);
  return s + hex;
}

// ---- helpers over built tables --------------------------------------------------------------

uint8_t Sum(const uint8_t* p, size_t n) {
  uint8_t s = 0;
  for (size_t i = 0; i < n; i++) s = static_cast<uint8_t>(s + p[i]);
  return s;
}

template <typename T>
T Read(const std::vector<uint8_t>& bytes, size_t at = 0) {
  T v;
  EXPECT_LE(at + sizeof(T), bytes.size());
  memcpy(&v, bytes.data() + at, sizeof(T));
  return v;
}

const AcpiTable* FindAt(const std::vector<AcpiTable>& tables, uint64_t addr) {
  for (const AcpiTable& t : tables)
    if (t.addr == addr) return &t;
  return nullptr;
}

std::string Signature(const AcpiTable& t) {
  return std::string(t.bytes.begin(), t.bytes.begin() + 4);
}

AcpiInput ThreeDevicesTwoVcpus() {
  AcpiInput in;
  in.vcpu_count = 2;
  for (uint32_t i = 0; i < 3; i++)
    in.virtio_mmio.push_back({kVirtioMmioStart + i * kMmioLen, kMmioLen, 5 + i});
  return in;
}

uint64_t AfterMpTable(uint32_t vcpus) { return kEbdaStart + MpTableBytes(vcpus); }

// ---- tests ----------------------------------------------------------------------------------

TEST(AcpiAmlTest, PkgLengthBoundaries) {
  // payload + own bytes: up to 63 in one byte, then 4+8, 4+16, 4+24 bits.
  struct Case {
    size_t payload;
    size_t bytes;
  };
  for (Case c : {Case{0, 1}, Case{62, 1}, Case{63, 2}, Case{4093, 2}, Case{4094, 3},
                 Case{(1u << 20) - 4, 3}, Case{(1u << 20) - 3, 4}}) {
    const aml::Bytes enc = aml::PkgLength(c.payload);
    ASSERT_EQ(enc.size(), c.bytes) << "payload " << c.payload;
    if (c.bytes > 1) {
      EXPECT_EQ(enc[0] & 0x30, 0) << "reserved bits of a multi-byte PkgLength";
    }
  }
}

TEST(AcpiAmlTest, PkgLengthDecodesToTheWholePackage) {
  for (size_t payload : {0u, 1u, 60u, 61u, 62u, 63u, 64u, 200u, 4092u, 4093u, 4094u, 70000u}) {
    std::vector<uint8_t> pkg = aml::PkgLength(payload);
    const size_t total = pkg.size() + payload;
    pkg.resize(total);
    AmlReader r(pkg);
    EXPECT_EQ(r.PackageEnd(), pkg.data() + total) << "payload " << payload;
    EXPECT_TRUE(r.ok()) << r.error();
  }
}

TEST(AcpiAmlTest, IntegersUseTheShortestEncoding) {
  EXPECT_EQ(aml::Integer(0), aml::Bytes({0x00}));
  EXPECT_EQ(aml::Integer(1), aml::Bytes({0x01}));
  EXPECT_EQ(aml::Integer(0x0f), aml::Bytes({0x0a, 0x0f}));
  EXPECT_EQ(aml::Integer(0x1234), aml::Bytes({0x0b, 0x34, 0x12}));
  EXPECT_EQ(aml::Integer(0xc0001000), aml::Bytes({0x0c, 0x00, 0x10, 0x00, 0xc0}));
  EXPECT_EQ(aml::Integer(1ull << 32).size(), 9u);
  EXPECT_EQ(aml::String("COM1"), aml::Bytes({0x0d, 'C', 'O', 'M', '1', 0}));
}

TEST(AcpiAmlTest, EisaIdMatchesTheKnownEncodings) {
  // PNP0501 is 0x0105D041 and PNP0303 0x0303D041 in every firmware's DSDT.
  EXPECT_EQ(aml::EisaId("PNP0501"), 0x0105D041u);
  EXPECT_EQ(aml::EisaId("PNP0303"), 0x0303D041u);
  EXPECT_EQ(DecodeEisaId(aml::EisaId("PNP0A03")), "PNP0A03");
}

TEST(AcpiAmlTest, ResourceDescriptorBytes) {
  // ACPI 6.5 6.4.3.4 and 6.4.3.6, byte by byte.
  EXPECT_EQ(aml::Memory32Fixed(true, 0xc0001000, 0x1000),
            aml::Bytes({0x86, 9, 0, 1, 0x00, 0x10, 0x00, 0xc0, 0x00, 0x10, 0x00, 0x00}));
  EXPECT_EQ(aml::Interrupt(5), aml::Bytes({0x89, 6, 0, 0x03, 1, 5, 0, 0, 0}));
  EXPECT_EQ(aml::IoPort(0x3f8, 0x3f8, 1, 8), aml::Bytes({0x47, 1, 0xf8, 3, 0xf8, 3, 1, 8}));
  const aml::Bytes rt = aml::ResourceTemplate({aml::Interrupt(5)});
  // BufferOp, PkgLength, BufferSize (BytePrefix 11), 9 descriptor bytes, end tag 0x79 0.
  EXPECT_EQ(rt.size(), 1u + 1 + 2 + 9 + 2);
  EXPECT_EQ(rt[0], aml::kBufferOp);
  EXPECT_EQ(rt[1], rt.size() - 1);
  EXPECT_EQ(rt[3], 11);
  EXPECT_EQ(rt[rt.size() - 2], aml::kEndTagDescriptor);
}

TEST(AcpiTablesTest, RsdpAtE0000PointsToTheXsdt) {
  auto tables = BuildAcpiTables(ThreeDevicesTwoVcpus(), AfterMpTable(2));
  ASSERT_TRUE(tables.ok()) << tables.error().message;
  const AcpiTable& rsdp = tables->front();
  EXPECT_EQ(rsdp.addr, kRsdpAddr);
  ASSERT_EQ(rsdp.bytes.size(), sizeof(AcpiRsdp));
  const auto r = Read<AcpiRsdp>(rsdp.bytes);
  EXPECT_EQ(std::string(r.signature, 8), "RSD PTR ");
  EXPECT_EQ(Sum(rsdp.bytes.data(), 20), 0);
  EXPECT_EQ(Sum(rsdp.bytes.data(), 36), 0);
  EXPECT_EQ(r.revision, 2);
  EXPECT_EQ(r.length, 36u);
  EXPECT_EQ(r.rsdt_addr, 0u);
  EXPECT_EQ(kRsdpAddr % 16, 0u);  // Linux's fallback scan looks at 16-byte boundaries
  const AcpiTable* xsdt = FindAt(*tables, r.xsdt_addr);
  ASSERT_NE(xsdt, nullptr);
  EXPECT_EQ(Signature(*xsdt), "XSDT");
}

TEST(AcpiTablesTest, EveryTableHasItsLengthAndAZeroChecksum) {
  auto tables = BuildAcpiTables(ThreeDevicesTwoVcpus(), AfterMpTable(2));
  ASSERT_TRUE(tables.ok());
  ASSERT_EQ(tables->size(), 5u);
  uint64_t prev_end = AfterMpTable(2);
  for (size_t i = 1; i < tables->size(); i++) {
    const AcpiTable& t = (*tables)[i];
    const auto h = Read<AcpiSdtHeader>(t.bytes);
    SCOPED_TRACE(Signature(t));
    EXPECT_EQ(h.length, t.bytes.size());
    EXPECT_EQ(Sum(t.bytes.data(), t.bytes.size()), 0);
    EXPECT_EQ(std::string(h.oem_id, 6), "EMBER ");
    EXPECT_EQ(t.addr % 8, 0u);
    EXPECT_GE(t.addr, prev_end);  // in order, no overlap, and after the MP table
    prev_end = t.addr + t.bytes.size();
  }
  EXPECT_LE(prev_end, kSystemMemEnd);
  EXPECT_EQ(Signature((*tables)[1]), "DSDT");
  EXPECT_EQ(Signature((*tables)[2]), "FACP");
  EXPECT_EQ(Signature((*tables)[3]), "APIC");
  EXPECT_EQ(Signature((*tables)[4]), "XSDT");
}

TEST(AcpiTablesTest, XsdtListsFadtAndMadt) {
  auto tables = BuildAcpiTables(ThreeDevicesTwoVcpus(), AfterMpTable(2));
  ASSERT_TRUE(tables.ok());
  const AcpiTable& xsdt = (*tables)[4];
  ASSERT_EQ(xsdt.bytes.size(), sizeof(AcpiSdtHeader) + 2 * 8);
  EXPECT_EQ(Read<AcpiSdtHeader>(xsdt.bytes).revision, 1);
  std::vector<std::string> sigs;
  for (size_t at = sizeof(AcpiSdtHeader); at < xsdt.bytes.size(); at += 8) {
    const AcpiTable* t = FindAt(*tables, Read<uint64_t>(xsdt.bytes, at));
    ASSERT_NE(t, nullptr);
    sigs.push_back(Signature(*t));
  }
  EXPECT_EQ(sigs, (std::vector<std::string>{"FACP", "APIC"}));
}

TEST(AcpiTablesTest, FadtIsHardwareReducedAndPointsToTheDsdt) {
  auto tables = BuildAcpiTables(ThreeDevicesTwoVcpus(), AfterMpTable(2));
  ASSERT_TRUE(tables.ok());
  const AcpiTable& fadt_table = (*tables)[2];
  ASSERT_EQ(fadt_table.bytes.size(), sizeof(AcpiFadt));
  const auto f = Read<AcpiFadt>(fadt_table.bytes);
  EXPECT_EQ(f.header.revision, 6);
  EXPECT_EQ(f.minor_version, 5);
  EXPECT_EQ(f.flags, kFadtHwReducedAcpi | kFadtPowerButton | kFadtSleepButton);
  EXPECT_EQ(f.iapc_boot_arch, kIapcBootArchVgaNotPresent | kIapcBootArchCmosRtcNotPresent);
  EXPECT_EQ(f.iapc_boot_arch & kIapcBootArch8042, 0);  // the i8042 is a DSDT device instead
  EXPECT_EQ(f.x_dsdt, (*tables)[1].addr);
  EXPECT_EQ(f.dsdt, 0u);
  EXPECT_EQ(std::string(f.hypervisor_vendor_id, 8), "EMBERKVM");
  // Hardware-reduced: no SCI, no fixed register blocks, no FACS.
  EXPECT_EQ(f.sci_int, 0);
  EXPECT_EQ(f.smi_cmd, 0u);
  EXPECT_EQ(f.pm1a_evt_blk | f.pm1a_cnt_blk | f.pm_tmr_blk | f.gpe0_blk, 0u);
  EXPECT_EQ(f.x_pm1a_evt_blk.address | f.x_pm_tmr_blk.address | f.reset_reg.address, 0u);
  EXPECT_EQ(f.firmware_ctrl | f.x_firmware_ctrl, 0u);
}

TEST(AcpiTablesTest, MadtHasOneLocalApicPerVcpuAndTheIoapic) {
  for (uint32_t vcpus : {1u, 2u, 8u, 32u}) {
    SCOPED_TRACE(vcpus);
    AcpiInput in;
    in.vcpu_count = vcpus;
    auto tables = BuildAcpiTables(in, AfterMpTable(vcpus));
    ASSERT_TRUE(tables.ok()) << tables.error().message;
    const AcpiTable& madt = (*tables)[3];
    ASSERT_EQ(Signature(madt), "APIC");
    EXPECT_EQ(madt.bytes.size(), sizeof(AcpiSdtHeader) + sizeof(AcpiMadtFields) +
                                     vcpus * sizeof(AcpiMadtLocalApic) + sizeof(AcpiMadtIoApic));
    const auto fields = Read<AcpiMadtFields>(madt.bytes, sizeof(AcpiSdtHeader));
    EXPECT_EQ(fields.local_apic_addr, kLapicAddr);
    EXPECT_EQ(fields.flags, 0u);
    size_t at = sizeof(AcpiSdtHeader) + sizeof(AcpiMadtFields);
    uint32_t lapics = 0, ioapics = 0;
    while (at < madt.bytes.size()) {
      const uint8_t type = madt.bytes[at], len = madt.bytes[at + 1];
      ASSERT_GT(len, 0);
      if (type == kMadtLocalApic) {
        ASSERT_EQ(len, sizeof(AcpiMadtLocalApic));
        const auto l = Read<AcpiMadtLocalApic>(madt.bytes, at);
        EXPECT_EQ(l.apic_id, lapics);  // the APIC ID CPUID gives vCPU i
        EXPECT_EQ(l.processor_uid, lapics);
        EXPECT_EQ(l.flags, kMadtLapicEnabled);
        lapics++;
      } else {
        ASSERT_EQ(type, kMadtIoApic);
        ASSERT_EQ(len, sizeof(AcpiMadtIoApic));
        const auto io = Read<AcpiMadtIoApic>(madt.bytes, at);
        EXPECT_EQ(io.address, kIoapicAddr);
        EXPECT_EQ(io.gsi_base, 0u);
        EXPECT_EQ(io.ioapic_id, vcpus);  // the ID the MP table gives it
        ioapics++;
      }
      at += len;
    }
    EXPECT_EQ(at, madt.bytes.size());
    EXPECT_EQ(lapics, vcpus);
    EXPECT_EQ(ioapics, 1u);
  }
}

TEST(AcpiTablesTest, DsdtDecodesToComI8042AndOneDevicePerVirtioWindow) {
  const AcpiInput in = ThreeDevicesTwoVcpus();
  auto tables = BuildAcpiTables(in, AfterMpTable(2));
  ASSERT_TRUE(tables.ok());
  const AcpiTable& dsdt = (*tables)[1];
  EXPECT_EQ(Read<AcpiSdtHeader>(dsdt.bytes).revision, 2);
  const std::vector<uint8_t> block(dsdt.bytes.begin() + sizeof(AcpiSdtHeader), dsdt.bytes.end());
  EXPECT_EQ(block, BuildDsdtAml(in.virtio_mmio));
  AmlReader reader(block);
  const std::vector<DeviceNode> devs = reader.Devices();
  ASSERT_TRUE(reader.ok()) << reader.error();
  ASSERT_EQ(devs.size(), 2 + in.virtio_mmio.size());

  const DeviceNode& com = devs[0];
  EXPECT_EQ(com.path, "_SB_.COM1");
  EXPECT_EQ(com.names.at("_HID").integer_bytes, 4);
  EXPECT_EQ(DecodeEisaId(static_cast<uint32_t>(com.names.at("_HID").integer)), "PNP0501");
  EXPECT_EQ(com.names.at("_DDN").string, "COM1");
  const auto& com_crs = com.names.at("_CRS").resources;
  ASSERT_EQ(com_crs.size(), 2u);
  EXPECT_EQ(com_crs[0].kind, Resource::kInterrupt);
  EXPECT_EQ(com_crs[0].a, 4u);
  EXPECT_EQ(com_crs[1].kind, Resource::kIo);
  EXPECT_EQ(com_crs[1].a, 0x3f8u);
  EXPECT_EQ(com_crs[1].d, 8u);

  const DeviceNode& ps2 = devs[1];
  EXPECT_EQ(ps2.path, "_SB_.PS2_");
  EXPECT_EQ(DecodeEisaId(static_cast<uint32_t>(ps2.names.at("_HID").integer)), "PNP0303");
  EXPECT_EQ(ps2.methods.at("_STA").integer, 0x0fu);
  const auto& ps2_crs = ps2.names.at("_CRS").resources;
  ASSERT_EQ(ps2_crs.size(), 3u);
  EXPECT_EQ(ps2_crs[0].a, 0x60u);
  EXPECT_EQ(ps2_crs[1].a, 0x64u);
  EXPECT_EQ(ps2_crs[2].kind, Resource::kInterrupt);
  EXPECT_EQ(ps2_crs[2].a, 1u);

  for (size_t i = 0; i < in.virtio_mmio.size(); i++) {
    const DeviceNode& v = devs[2 + i];
    SCOPED_TRACE(v.path);
    EXPECT_EQ(v.path, "_SB_.V00" + std::to_string(i));
    EXPECT_EQ(v.names.at("_HID").kind, Value::kString);
    EXPECT_EQ(v.names.at("_HID").string, "LNRO0005");
    EXPECT_EQ(v.names.at("_UID").integer, i);
    EXPECT_EQ(v.names.at("_CCA").integer, 1u);
    const auto& crs = v.names.at("_CRS").resources;
    ASSERT_EQ(crs.size(), 2u);
    EXPECT_EQ(crs[0].kind, Resource::kMemory32Fixed);
    EXPECT_EQ(crs[0].a, in.virtio_mmio[i].base);
    EXPECT_EQ(crs[0].b, kMmioLen);
    EXPECT_EQ(crs[0].d, 1u);  // read-write
    EXPECT_EQ(crs[1].kind, Resource::kInterrupt);
    EXPECT_EQ(crs[1].a, in.virtio_mmio[i].gsi);
    EXPECT_EQ(crs[1].b, 0x03u);  // consumer, edge-triggered, active high, exclusive
  }
}

TEST(AcpiTablesTest, NineteenDevicesStillDecode) {
  AcpiInput in;
  for (uint32_t i = 0; i < 19; i++)
    in.virtio_mmio.push_back({kVirtioMmioStart + i * kMmioLen, kMmioLen, 5 + i});
  auto tables = BuildAcpiTables(in, AfterMpTable(1));
  ASSERT_TRUE(tables.ok());
  const AcpiTable& dsdt = (*tables)[1];
  const std::vector<uint8_t> block(dsdt.bytes.begin() + sizeof(AcpiSdtHeader), dsdt.bytes.end());
  AmlReader reader(block);
  const auto devs = reader.Devices();
  ASSERT_TRUE(reader.ok()) << reader.error();
  ASSERT_EQ(devs.size(), 21u);
  EXPECT_EQ(devs.back().path, "_SB_.V018");
  EXPECT_EQ(devs.back().names.at("_CRS").resources[1].a, 23u);
}

TEST(AcpiTablesTest, RejectsWhatDoesNotFit) {
  AcpiInput in;
  in.vcpu_count = 0;
  EXPECT_FALSE(BuildAcpiTables(in, AfterMpTable(1)).ok());
  in.vcpu_count = 255;
  EXPECT_FALSE(BuildAcpiTables(in, AfterMpTable(1)).ok());
  in.vcpu_count = 1;
  in.virtio_mmio.push_back({kMmioGapEnd, kMmioLen, 5});
  auto above = BuildAcpiTables(in, AfterMpTable(1));
  ASSERT_FALSE(above.ok());
  EXPECT_NE(above.error().message.find("below 4 GiB"), std::string::npos);
  in.virtio_mmio.clear();
  auto late = BuildAcpiTables(in, kSystemMemEnd - 64);
  ASSERT_FALSE(late.ok());
  EXPECT_NE(late.error().message.find("outside"), std::string::npos);
}

TEST(AcpiTablesTest, BootWritesTablesBesideTheMpTableInReservedMemory) {
  auto mem = GuestMemory::Create(RamRanges(128 * kMiB));
  ASSERT_TRUE(mem.ok());
  BootInput in;
  in.vcpu_count = 2;
  in.virtio_mmio_devices.push_back({kVirtioMmioStart, kMmioLen, 5});
  auto rsdp = WriteAcpiTablesForBoot(*mem, in);
  ASSERT_TRUE(rsdp.ok()) << rsdp.error().message;
  EXPECT_EQ(*rsdp, kRsdpAddr);
  ASSERT_TRUE(WriteMpTable(*mem, in.vcpu_count).ok());  // what ConfigureBoot writes afterwards

  // The MP table is intact...
  std::vector<uint8_t> mp(MpTableBytes(2));
  ASSERT_TRUE(mem->Read(kEbdaStart, mp.data(), mp.size()).ok());
  EXPECT_EQ(mp, *BuildMpTable(2, kEbdaStart));
  // ...and so is every ACPI table.
  AcpiInput acpi;
  acpi.vcpu_count = 2;
  acpi.virtio_mmio.push_back({kVirtioMmioStart, kMmioLen, 5});
  auto tables = BuildAcpiTables(acpi, AfterMpTable(2));
  ASSERT_TRUE(tables.ok());
  for (const AcpiTable& t : *tables) {
    std::vector<uint8_t> got(t.bytes.size());
    ASSERT_TRUE(mem->Read(t.addr, got.data(), got.size()).ok());
    EXPECT_EQ(got, t.bytes) << "table at " << t.addr;
  }
  // The e820 map keeps them out of the guest's RAM: the tables in the reserved
  // [0x9fc00, 0xe0000), the RSDP in the hole at [0xe0000, 1 MiB), as under Firecracker.
  for (const E820Entry& e : BuildE820Map(RamRanges(128 * kMiB))) {
    if (e.type != kE820Ram) continue;
    for (const AcpiTable& t : *tables)
      EXPECT_TRUE(t.addr + t.bytes.size() <= e.addr || t.addr >= e.addr + e.size)
          << "table at " << t.addr << " overlaps RAM at " << e.addr;
  }
}

}  // namespace
}  // namespace ember

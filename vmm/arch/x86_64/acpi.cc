#include "vmm/arch/x86_64/acpi.h"

#include <cstring>

#include "vmm/arch/x86_64/aml.h"
#include "vmm/arch/x86_64/layout.h"

namespace ember {
namespace {

using ull = unsigned long long;

// Identification as Firecracker fills it in (facts 2.5), with ember's names.
constexpr char kOemId[6] = {'E', 'M', 'B', 'E', 'R', ' '};
constexpr char kCreatorId[4] = {'E', 'M', 'B', 'R'};
constexpr uint32_t kCreatorRevision = 1;
constexpr char kHypervisorVendor[8] = {'E', 'M', 'B', 'E', 'R', 'K', 'V', 'M'};
constexpr uint8_t kRsdpRevision = 2;
constexpr uint8_t kXsdtRevision = 1;
constexpr uint8_t kFadtRevision = 6;
constexpr uint8_t kFadtMinorRevision = 5;
constexpr uint8_t kMadtRevision = 6;
constexpr uint8_t kDsdtRevision = 2;  // 64-bit integers in the AML
constexpr uint64_t kTableAlign = 8;
constexpr uint32_t kMaxVcpus = 254;  // 8-bit APIC IDs, one left for the IOAPIC

// Legacy devices and their resources (facts 2.6; vmm.cc attaches them at the same places).
constexpr uint16_t kCom1Port = 0x3f8;
constexpr uint8_t kCom1Ports = 8;
constexpr uint32_t kCom1Gsi = 4;
constexpr uint16_t kI8042DataPort = 0x60;
constexpr uint16_t kI8042CommandPort = 0x64;
constexpr uint32_t kI8042Gsi = 1;
constexpr uint8_t kStaPresentEnabledShownFunctioning = 0x0f;  // _STA bits 0-3 (6.3.7)

uint8_t Checksum(const uint8_t* p, size_t n) {
  uint8_t sum = 0;
  for (size_t i = 0; i < n; i++) sum = static_cast<uint8_t>(sum + p[i]);
  return static_cast<uint8_t>(-sum);
}

AcpiSdtHeader Header(const char (&signature)[5], uint8_t revision, const char (&table_id)[9]) {
  AcpiSdtHeader h{};
  memcpy(h.signature, signature, 4);
  h.revision = revision;
  memcpy(h.oem_id, kOemId, sizeof(kOemId));
  memcpy(h.oem_table_id, table_id, 8);
  memcpy(h.creator_id, kCreatorId, sizeof(kCreatorId));
  h.creator_revision = kCreatorRevision;
  return h;
}

template <typename T>
void AppendObj(std::vector<uint8_t>* out, const T& obj) {
  const auto* p = reinterpret_cast<const uint8_t*>(&obj);
  for (size_t i = 0; i < sizeof(T); i++) out->push_back(p[i]);  // GCC 12 misjudges insert()
}

// A table: `header` then `body`, with the length and checksum filled in.
std::vector<uint8_t> Table(AcpiSdtHeader header, const std::vector<uint8_t>& body) {
  header.length = static_cast<uint32_t>(sizeof(header) + body.size());
  std::vector<uint8_t> bytes;
  AppendObj(&bytes, header);
  bytes.insert(bytes.end(), body.begin(), body.end());
  bytes[offsetof(AcpiSdtHeader, checksum)] = Checksum(bytes.data(), bytes.size());
  return bytes;
}

std::vector<uint8_t> BuildFadt(uint64_t dsdt_addr) {
  AcpiFadt fadt{};
  fadt.header = Header("FACP", kFadtRevision, "EMBRFADT");
  fadt.header.length = sizeof(fadt);
  fadt.minor_version = kFadtMinorRevision;
  fadt.flags = kFadtHwReducedAcpi | kFadtPowerButton | kFadtSleepButton;
  // Firecracker declares only "no VGA". ember also says there is no CMOS RTC (there is none:
  // Linux then skips the rtc_cmos probe, which stalls for seconds without one). No 8042 flag:
  // the i8042 is found as the PNP0303 device in the DSDT instead, as under Firecracker.
  fadt.iapc_boot_arch = kIapcBootArchVgaNotPresent | kIapcBootArchCmosRtcNotPresent;
  fadt.x_dsdt = dsdt_addr;
  memcpy(fadt.hypervisor_vendor_id, kHypervisorVendor, sizeof(kHypervisorVendor));
  std::vector<uint8_t> bytes;
  AppendObj(&bytes, fadt);
  bytes[offsetof(AcpiSdtHeader, checksum)] = Checksum(bytes.data(), bytes.size());
  return bytes;
}

std::vector<uint8_t> BuildMadt(uint32_t vcpu_count) {
  std::vector<uint8_t> body;
  AppendObj(&body, AcpiMadtFields{static_cast<uint32_t>(kLapicAddr), 0});
  for (uint32_t i = 0; i < vcpu_count; i++) {
    const auto id = static_cast<uint8_t>(i);  // the APIC ID CPUID reports for vCPU i
    AppendObj(&body, AcpiMadtLocalApic{kMadtLocalApic, sizeof(AcpiMadtLocalApic), id, id,
                                       kMadtLapicEnabled});
  }
  // The IOAPIC takes the first ID after the vCPUs', as in the MP table.
  AppendObj(&body,
            AcpiMadtIoApic{kMadtIoApic, sizeof(AcpiMadtIoApic), static_cast<uint8_t>(vcpu_count), 0,
                           static_cast<uint32_t>(kIoapicAddr), 0});
  return Table(Header("APIC", kMadtRevision, "EMBRMADT"), body);
}

std::vector<uint8_t> BuildXsdt(const std::vector<uint64_t>& entries) {
  std::vector<uint8_t> body;
  for (uint64_t addr : entries) AppendObj(&body, addr);
  return Table(Header("XSDT", kXsdtRevision, "EMBRXSDT"), body);
}

std::vector<uint8_t> BuildRsdp(uint64_t xsdt_addr) {
  AcpiRsdp rsdp{};
  memcpy(rsdp.signature, "RSD PTR ", 8);
  memcpy(rsdp.oem_id, kOemId, sizeof(kOemId));
  rsdp.revision = kRsdpRevision;
  rsdp.length = sizeof(rsdp);
  rsdp.xsdt_addr = xsdt_addr;
  rsdp.checksum = Checksum(reinterpret_cast<const uint8_t*>(&rsdp), 20);
  rsdp.extended_checksum = Checksum(reinterpret_cast<const uint8_t*>(&rsdp), sizeof(rsdp));
  std::vector<uint8_t> bytes;
  AppendObj(&bytes, rsdp);
  return bytes;
}

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

}  // namespace

std::vector<uint8_t> BuildDsdtAml(const std::vector<AcpiVirtioMmio>& virtio_mmio) {
  using namespace aml;  // NOLINT: the DSDT reads like ASL this way
  std::vector<uint8_t> block;
  auto add = [&block](const Bytes& term) {
    for (uint8_t b : term) block.push_back(b);
  };
  add(Device({"_SB_", "COM1"},
             {Name({"_HID"}, DWord(EisaId("PNP0501"))), Name({"_UID"}, Integer(0)),
              Name({"_DDN"}, String("COM1")),
              Name({"_CRS"}, ResourceTemplate({Interrupt(kCom1Gsi),
                                               IoPort(kCom1Port, kCom1Port, 1, kCom1Ports)}))}));
  add(Device({"_SB_", "PS2_"},
             {Name({"_HID"}, DWord(EisaId("PNP0303"))),
              Method({"_STA"}, 0, {Return(Integer(kStaPresentEnabledShownFunctioning))}),
              Name({"_CRS"}, ResourceTemplate({IoPort(kI8042DataPort, kI8042DataPort, 1, 1),
                                               IoPort(kI8042CommandPort, kI8042CommandPort, 1, 1),
                                               Interrupt(kI8042Gsi)}))}));
  for (size_t i = 0; i < virtio_mmio.size(); i++) {
    const AcpiVirtioMmio& d = virtio_mmio[i];
    // _CCA 1: DMA is cache-coherent. Linux's virtio_mmio matches _HID "LNRO0005".
    add(Device(
        {"_SB_", NameSeg::Numbered('V', static_cast<unsigned>(i))},
        {Name({"_HID"}, String("LNRO0005")), Name({"_UID"}, Integer(i)), Name({"_CCA"}, Integer(1)),
         Name({"_CRS"}, ResourceTemplate({Memory32Fixed(true, static_cast<uint32_t>(d.base),
                                                        static_cast<uint32_t>(d.size)),
                                          Interrupt(d.gsi)}))}));
  }
  return block;
}

Result<std::vector<AcpiTable>> BuildAcpiTables(const AcpiInput& input, uint64_t tables_addr) {
  if (input.vcpu_count == 0 || input.vcpu_count > kMaxVcpus)
    return Error{StrFormat("ACPI: %u vCPUs (1 to %u fit the MADT)", input.vcpu_count, kMaxVcpus)};
  for (const AcpiVirtioMmio& d : input.virtio_mmio) {
    if (d.base + d.size > kMmioGapEnd || d.size > UINT32_MAX)
      return Error{StrFormat("ACPI: virtio-mmio window 0x%llx+0x%llx is not below 4 GiB",
                             static_cast<ull>(d.base), static_cast<ull>(d.size))};
  }
  std::vector<AcpiTable> tables;
  uint64_t next = AlignUp(tables_addr, kTableAlign);
  auto place = [&](std::vector<uint8_t> bytes) {
    tables.push_back({next, std::move(bytes)});
    next = AlignUp(next + tables.back().bytes.size(), kTableAlign);
    return tables.back().addr;
  };
  // Firecracker's order: DSDT, FADT (pointing to it), MADT, XSDT, then the RSDP.
  const uint64_t dsdt =
      place(Table(Header("DSDT", kDsdtRevision, "EMBRDSDT"), BuildDsdtAml(input.virtio_mmio)));
  const uint64_t fadt = place(BuildFadt(dsdt));
  const uint64_t madt = place(BuildMadt(input.vcpu_count));
  const uint64_t xsdt = place(BuildXsdt({fadt, madt}));
  const uint64_t end = tables.back().addr + tables.back().bytes.size();
  if (tables_addr < kEbdaStart || end > kSystemMemEnd)
    return Error{StrFormat("ACPI tables [0x%llx, 0x%llx) are outside [0x%llx, 0x%llx)",
                           static_cast<ull>(tables_addr), static_cast<ull>(end),
                           static_cast<ull>(kEbdaStart), static_cast<ull>(kSystemMemEnd))};
  tables.insert(tables.begin(), AcpiTable{kRsdpAddr, BuildRsdp(xsdt)});
  return tables;
}

Result<uint64_t> WriteAcpiTables(const GuestMemory& memory, const AcpiInput& input,
                                 uint64_t tables_addr) {
  const std::vector<AcpiTable> tables = TRY(BuildAcpiTables(input, tables_addr));
  for (const AcpiTable& t : tables) {
    if (Status s = memory.Write(t.addr, t.bytes.data(), t.bytes.size()); !s.ok())
      return s.error().Wrap(StrFormat("ACPI table at 0x%llx", static_cast<ull>(t.addr)));
  }
  return tables.front().addr;
}

}  // namespace ember

#include "vmm/arch/x86_64/mptable.h"

#include <cstring>

#include "vmm/arch/x86_64/layout.h"

namespace ember {
namespace {

constexpr uint64_t kMpTableLimit = 0xa0000;  // end of the EBDA-sized area below the VGA hole
constexpr size_t kProcessorEntryBytes = 20;
constexpr size_t kOtherEntryBytes = 8;
constexpr uint8_t kIsaBusId = 0;
// CPU signature family 6 and feature flags FPU|APIC (MP spec 4.3.1): what a guest that reads
// them expects of any x86-64 CPU; real values come from CPUID.
constexpr uint32_t kCpuSignature = (6u << 8) | (1u << 4);
constexpr uint32_t kCpuFeatures = (1u << 0) | (1u << 9);
// Interrupt flags 0: polarity and trigger "conform to the bus" (ISA: active high, edge).
constexpr uint16_t kIntFlagsConforming = 0;
constexpr uint8_t kAllLapics = 0xff;

size_t TableBytes(uint32_t vcpus) {
  return sizeof(MpFloatingPointer) + sizeof(MpConfigHeader) + vcpus * kProcessorEntryBytes +
         kOtherEntryBytes * (1 /*bus*/ + 1 /*ioapic*/ + kMpIoapicPins + 2 /*LINT0, LINT1*/);
}

uint8_t Checksum(const uint8_t* p, size_t n) {
  uint8_t sum = 0;
  for (size_t i = 0; i < n; i++) sum = static_cast<uint8_t>(sum + p[i]);
  return static_cast<uint8_t>(-sum);
}

class Writer {
 public:
  explicit Writer(std::vector<uint8_t>* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(v); }
  void U16(uint16_t v) { Bytes(&v, 2); }
  void U32(uint32_t v) { Bytes(&v, 4); }
  void Bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out_->insert(out_->end(), b, b + n);
  }
  void Zeros(size_t n) { out_->insert(out_->end(), n, 0); }

 private:
  std::vector<uint8_t>* out_;
};

void WriteInterrupt(Writer& w, uint8_t entry, uint8_t type, uint8_t bus_irq, uint8_t dest_id,
                    uint8_t dest_pin) {
  w.U8(entry);
  w.U8(type);
  w.U16(kIntFlagsConforming);
  w.U8(kIsaBusId);
  w.U8(bus_irq);
  w.U8(dest_id);
  w.U8(dest_pin);
}

}  // namespace

size_t MpTableBytes(uint32_t vcpu_count) { return TableBytes(vcpu_count); }

uint32_t MpTableMaxVcpus() {
  uint32_t n = 0;
  while (kEbdaStart + TableBytes(n + 1) <= kMpTableLimit && n < 255) n++;
  return n;
}

Result<std::vector<uint8_t>> BuildMpTable(uint32_t vcpu_count, uint64_t addr) {
  if (vcpu_count == 0) return Error{"MP table: at least one vCPU is needed"};
  if (addr > kMpTableLimit || TableBytes(vcpu_count) > kMpTableLimit - addr)
    return Error{StrFormat("MP table for %u vCPUs (%zu bytes at 0x%llx) does not fit below 0x%llx",
                           vcpu_count, TableBytes(vcpu_count),
                           static_cast<unsigned long long>(addr),
                           static_cast<unsigned long long>(kMpTableLimit))};
  // The IOAPIC takes the first APIC ID after the vCPUs'.
  const uint8_t ioapic_id = static_cast<uint8_t>(vcpu_count);

  std::vector<uint8_t> bytes;
  bytes.reserve(TableBytes(vcpu_count));
  MpFloatingPointer fp{};
  memcpy(fp.signature, "_MP_", 4);
  fp.config_table_addr = static_cast<uint32_t>(addr + sizeof(MpFloatingPointer));
  fp.length = 1;
  fp.spec_rev = kMpSpecRev;
  fp.checksum = Checksum(reinterpret_cast<const uint8_t*>(&fp), sizeof(fp));
  Writer w(&bytes);
  w.Bytes(&fp, sizeof(fp));

  const size_t header_at = bytes.size();
  w.Zeros(sizeof(MpConfigHeader));
  uint16_t entries = 0;
  for (uint32_t i = 0; i < vcpu_count; i++, entries++) {
    w.U8(kMpEntryProcessor);
    w.U8(static_cast<uint8_t>(i));  // local APIC ID = vCPU index, as CPUID reports it
    w.U8(kMpApicVersion);
    w.U8(kMpCpuEnabled | (i == 0 ? kMpCpuBootProcessor : 0));
    w.U32(kCpuSignature);
    w.U32(kCpuFeatures);
    w.Zeros(8);
  }
  w.U8(kMpEntryBus);
  w.U8(kIsaBusId);
  w.Bytes("ISA   ", 6);
  entries++;
  w.U8(kMpEntryIoapic);
  w.U8(ioapic_id);
  w.U8(kMpIoapicVersion);
  w.U8(1);  // enabled
  w.U32(static_cast<uint32_t>(kIoapicAddr));
  entries++;
  for (uint32_t irq = 0; irq < kMpIoapicPins; irq++, entries++)
    WriteInterrupt(w, kMpEntryIoInterrupt, kMpIntTypeInt, static_cast<uint8_t>(irq), ioapic_id,
                   static_cast<uint8_t>(irq));
  // LINT0 = ExtINT (the 8259 path), LINT1 = NMI, as the LAPIC is programmed (facts 2.3).
  WriteInterrupt(w, kMpEntryLocalInterrupt, kMpIntTypeExtInt, 0, kAllLapics, 0);
  WriteInterrupt(w, kMpEntryLocalInterrupt, kMpIntTypeNmi, 0, kAllLapics, 1);
  entries += 2;

  MpConfigHeader h{};
  memcpy(h.signature, "PCMP", 4);
  h.base_table_length = static_cast<uint16_t>(bytes.size() - header_at);
  h.spec_rev = kMpSpecRev;
  memcpy(h.oem_id, "EMBER   ", 8);
  memcpy(h.product_id, "MICROVM     ", 12);
  h.entry_count = entries;
  h.lapic_addr = static_cast<uint32_t>(kLapicAddr);
  memcpy(bytes.data() + header_at, &h, sizeof(h));
  bytes[header_at + offsetof(MpConfigHeader, checksum)] =
      Checksum(bytes.data() + header_at, h.base_table_length);
  return bytes;
}

Status WriteMpTable(const GuestMemory& memory, uint32_t vcpu_count) {
  std::vector<uint8_t> bytes = TRY(BuildMpTable(vcpu_count, kEbdaStart));
  if (Status s = memory.Write(kEbdaStart, bytes.data(), bytes.size()); !s.ok())
    return s.error().Wrap("MP table");
  return Ok();
}

}  // namespace ember

// The Intel MultiProcessor Specification 1.4 tables (chapter 4): the "_MP_" floating pointer at
// kEbdaStart and the "PCMP" configuration table right after it (facts 2.5, Firecracker
// mptable.rs). They let guests without ACPI find the vCPUs, the IOAPIC and the IRQ routing.
#pragma once

#include <cstdint>
#include <vector>

#include "vmm/base/result.h"
#include "vmm/memory/guest_memory.h"

namespace ember {

inline constexpr uint8_t kMpSpecRev = 4;         // 1.4
inline constexpr uint8_t kMpApicVersion = 0x14;  // integrated local APIC
inline constexpr uint8_t kMpIoapicVersion = 0x11;
inline constexpr uint32_t kMpIoapicPins = 24;  // IRQ 0..23, identity-mapped

// MP spec 4.1 and 4.2 layouts.
struct __attribute__((packed)) MpFloatingPointer {
  char signature[4];  // "_MP_"
  uint32_t config_table_addr;
  uint8_t length;  // in 16-byte paragraphs: 1
  uint8_t spec_rev;
  uint8_t checksum;  // all 16 bytes sum to 0
  uint8_t feature[5];
};
static_assert(sizeof(MpFloatingPointer) == 16);

struct __attribute__((packed)) MpConfigHeader {
  char signature[4];  // "PCMP"
  uint16_t base_table_length;
  uint8_t spec_rev;
  uint8_t checksum;  // the whole base table sums to 0
  char oem_id[8];
  char product_id[12];
  uint32_t oem_table_addr;
  uint16_t oem_table_size;
  uint16_t entry_count;
  uint32_t lapic_addr;
  uint16_t ext_table_length;
  uint8_t ext_table_checksum;
  uint8_t reserved;
};
static_assert(sizeof(MpConfigHeader) == 44);

// Entry types (MP spec table 4-3) and their sizes.
inline constexpr uint8_t kMpEntryProcessor = 0;  // 20 bytes
inline constexpr uint8_t kMpEntryBus = 1;        // 8 bytes, the others too
inline constexpr uint8_t kMpEntryIoapic = 2;
inline constexpr uint8_t kMpEntryIoInterrupt = 3;
inline constexpr uint8_t kMpEntryLocalInterrupt = 4;
inline constexpr uint8_t kMpIntTypeInt = 0;
inline constexpr uint8_t kMpIntTypeNmi = 1;
inline constexpr uint8_t kMpIntTypeExtInt = 3;
inline constexpr uint8_t kMpCpuEnabled = 1u << 0;
inline constexpr uint8_t kMpCpuBootProcessor = 1u << 1;

// Bytes of the floating pointer plus the configuration table for `vcpu_count` vCPUs, to be
// placed at `addr`. Error when vcpu_count is 0 or the tables would cross 0xa0000.
Result<std::vector<uint8_t>> BuildMpTable(uint32_t vcpu_count, uint64_t addr);

// Bytes of the floating pointer plus the configuration table for `vcpu_count` vCPUs.
size_t MpTableBytes(uint32_t vcpu_count);

// The largest vCPU count whose tables fit in [kEbdaStart, 0xa0000).
uint32_t MpTableMaxVcpus();

// Builds the tables for kEbdaStart and writes them there.
Status WriteMpTable(const GuestMemory& memory, uint32_t vcpu_count);

}  // namespace ember

// The ACPI tables a guest reads to find the vCPUs, the interrupt controllers and the virtio-mmio
// devices, laid out as Firecracker does (firecracker-facts.md 2.5; src/vmm/src/acpi): the RSDP
// at kRsdpAddr points to an XSDT listing the FADT and the MADT; the FADT points to the DSDT.
// The machine is "hardware-reduced" (ACPI 6.5, 4.1): no PM timer, no SCI, no fixed-feature
// registers. Kernels without CONFIG_X86_MPPARSE (Debian's) find further vCPUs only in the MADT,
// and kernels without virtio-mmio command-line support find the devices only in the DSDT.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "vmm/base/result.h"
#include "vmm/memory/guest_memory.h"

namespace ember {

// ACPI 6.5, 5.2.5.3: the RSDP (revision 2: the ACPI 2.0+ form with the XSDT address).
struct __attribute__((packed)) AcpiRsdp {
  char signature[8];  // "RSD PTR "
  uint8_t checksum;   // the first 20 bytes sum to 0
  char oem_id[6];
  uint8_t revision;  // 2
  uint32_t rsdt_addr;
  uint32_t length;  // 36
  uint64_t xsdt_addr;
  uint8_t extended_checksum;  // all 36 bytes sum to 0
  uint8_t reserved[3];
};
static_assert(sizeof(AcpiRsdp) == 36);

// 5.2.6: the header every system description table starts with.
struct __attribute__((packed)) AcpiSdtHeader {
  char signature[4];
  uint32_t length;  // of the whole table, header included
  uint8_t revision;
  uint8_t checksum;  // the whole table sums to 0
  char oem_id[6];
  char oem_table_id[8];
  uint32_t oem_revision;
  char creator_id[4];
  uint32_t creator_revision;
};
static_assert(sizeof(AcpiSdtHeader) == 36);

// 5.2.3.2: Generic Address Structure.
struct __attribute__((packed)) AcpiGas {
  uint8_t address_space_id;
  uint8_t register_bit_width;
  uint8_t register_bit_offset;
  uint8_t access_size;
  uint64_t address;
};
static_assert(sizeof(AcpiGas) == 12);

// 5.2.9, table 5.9: the FADT ("FACP"), revision 6.5. A hardware-reduced machine leaves every
// register block 0.
struct __attribute__((packed)) AcpiFadt {
  AcpiSdtHeader header;
  uint32_t firmware_ctrl;
  uint32_t dsdt;
  uint8_t reserved0;
  uint8_t preferred_pm_profile;
  uint16_t sci_int;
  uint32_t smi_cmd;
  uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
  uint32_t pm1a_evt_blk, pm1b_evt_blk, pm1a_cnt_blk, pm1b_cnt_blk, pm2_cnt_blk, pm_tmr_blk;
  uint32_t gpe0_blk, gpe1_blk;
  uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len, gpe0_blk_len, gpe1_blk_len;
  uint8_t gpe1_base, cst_cnt;
  uint16_t p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
  uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century;
  uint16_t iapc_boot_arch;  // at 109
  uint8_t reserved1;
  uint32_t flags;  // at 112
  AcpiGas reset_reg;
  uint8_t reset_value;
  uint16_t arm_boot_arch;
  uint8_t minor_version;  // at 131
  uint64_t x_firmware_ctrl;
  uint64_t x_dsdt;  // at 140
  AcpiGas x_pm1a_evt_blk, x_pm1b_evt_blk, x_pm1a_cnt_blk, x_pm1b_cnt_blk, x_pm2_cnt_blk;
  AcpiGas x_pm_tmr_blk, x_gpe0_blk, x_gpe1_blk, sleep_control_reg, sleep_status_reg;
  char hypervisor_vendor_id[8];  // at 268
};
static_assert(sizeof(AcpiFadt) == 276);
static_assert(offsetof(AcpiFadt, iapc_boot_arch) == 109 && offsetof(AcpiFadt, flags) == 112);
static_assert(offsetof(AcpiFadt, x_dsdt) == 140 && offsetof(AcpiFadt, hypervisor_vendor_id) == 268);

// FADT flags (table 5.10) and IA-PC boot architecture flags (table 5.11).
inline constexpr uint32_t kFadtPowerButton = 1u << 4;  // the power button, if any, is a device
inline constexpr uint32_t kFadtSleepButton = 1u << 5;
inline constexpr uint32_t kFadtHwReducedAcpi = 1u << 20;
inline constexpr uint16_t kIapcBootArch8042 = 1u << 1;
inline constexpr uint16_t kIapcBootArchVgaNotPresent = 1u << 2;
inline constexpr uint16_t kIapcBootArchCmosRtcNotPresent = 1u << 5;

// 5.2.12: the MADT ("APIC") after its header, and its two entry types (tables 5.22, 5.25).
struct __attribute__((packed)) AcpiMadtFields {
  uint32_t local_apic_addr;
  uint32_t flags;  // 0: no PC-AT dual 8259 setup to disable
};
struct __attribute__((packed)) AcpiMadtLocalApic {
  uint8_t type;    // 0
  uint8_t length;  // 8
  uint8_t processor_uid;
  uint8_t apic_id;
  uint32_t flags;  // bit 0: enabled
};
struct __attribute__((packed)) AcpiMadtIoApic {
  uint8_t type;    // 1
  uint8_t length;  // 12
  uint8_t ioapic_id;
  uint8_t reserved;
  uint32_t address;
  uint32_t gsi_base;
};
static_assert(sizeof(AcpiMadtLocalApic) == 8 && sizeof(AcpiMadtIoApic) == 12);
inline constexpr uint8_t kMadtLocalApic = 0;
inline constexpr uint8_t kMadtIoApic = 1;
inline constexpr uint32_t kMadtLapicEnabled = 1u << 0;

// A virtio-mmio window as the DSDT describes it: a _HID "LNRO0005" device with Memory32Fixed
// and an edge-triggered, active-high Interrupt (what Linux's virtio_mmio binds to over ACPI).
struct AcpiVirtioMmio {
  uint64_t base = 0;
  uint64_t size = 0;
  uint32_t gsi = 0;
};

struct AcpiInput {
  uint32_t vcpu_count = 1;  // one MADT local APIC each, APIC ID = vCPU index
  std::vector<AcpiVirtioMmio> virtio_mmio;
};

// One table and where it goes in guest memory.
struct AcpiTable {
  uint64_t addr = 0;
  std::vector<uint8_t> bytes;
};

// The RSDP (first, at kRsdpAddr) and the XSDT, FADT, MADT and DSDT, the latter placed one after
// the other from `tables_addr` (8-byte aligned), which must leave them below kSystemMemEnd:
// the reserved "system memory" after the MP table, where Firecracker puts them too. Error when
// vcpu_count is 0 or above 254, a window lies above 4 GiB, or the tables do not fit.
Result<std::vector<AcpiTable>> BuildAcpiTables(const AcpiInput& input, uint64_t tables_addr);

// Builds the tables and writes them to guest memory; returns the RSDP address (kRsdpAddr).
Result<uint64_t> WriteAcpiTables(const GuestMemory& memory, const AcpiInput& input,
                                 uint64_t tables_addr);

// The DSDT's definition block (the AML after the table header): COM1, the i8042 and one device
// per virtio-mmio window, as Firecracker declares them. Exposed for tests.
std::vector<uint8_t> BuildDsdtAml(const std::vector<AcpiVirtioMmio>& virtio_mmio);

}  // namespace ember

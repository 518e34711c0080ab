// The Linux "zero page" (struct boot_params) handed to the 64-bit entry in rsi. Layout from
// Documentation/arch/x86/boot.rst and arch/x86/include/uapi/asm/bootparam.h; only the fields a
// boot loader fills are named, the rest is padding of the right size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "vmm/arch/x86_64/e820.h"
#include "vmm/base/result.h"
#include "vmm/memory/guest_memory.h"

namespace ember {

inline constexpr uint64_t kSetupHeaderOffset = 0x1f1;  // in the zero page and in a bzImage
inline constexpr uint16_t kBootFlagMagic = 0xaa55;
inline constexpr uint32_t kSetupHeaderMagic = 0x53726448;          // "HdrS"
inline constexpr uint8_t kLoaderTypeUndefined = 0xff;              // no assigned boot loader ID
inline constexpr uint32_t kElfKernelAlignment = 16 * 1024 * 1024;  // Firecracker, ELF case
inline constexpr size_t kE820MaxEntries = 128;                     // E820_MAX_ENTRIES_ZEROPAGE

struct __attribute__((packed)) BootE820Entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
};
static_assert(sizeof(BootE820Entry) == 20);

// boot.rst "The real-mode kernel header", starting at 0x1f1.
struct __attribute__((packed)) SetupHeader {
  uint8_t setup_sects;  // 0x1f1
  uint16_t root_flags;
  uint32_t syssize;
  uint16_t ram_size;
  uint16_t vid_mode;
  uint16_t root_dev;
  uint16_t boot_flag;  // 0x1fe
  uint16_t jump;       // 0x200
  uint32_t header;     // 0x202
  uint16_t version;    // 0x206
  uint32_t realmode_swtch;
  uint16_t start_sys_seg;
  uint16_t kernel_version;
  uint8_t type_of_loader;  // 0x210
  uint8_t loadflags;       // 0x211
  uint16_t setup_move_size;
  uint32_t code32_start;   // 0x214
  uint32_t ramdisk_image;  // 0x218
  uint32_t ramdisk_size;   // 0x21c
  uint32_t bootsect_kludge;
  uint16_t heap_end_ptr;  // 0x224
  uint8_t ext_loader_ver;
  uint8_t ext_loader_type;
  uint32_t cmd_line_ptr;      // 0x228
  uint32_t initrd_addr_max;   // 0x22c
  uint32_t kernel_alignment;  // 0x230
  uint8_t relocatable_kernel;
  uint8_t min_alignment;
  uint16_t xloadflags;    // 0x236
  uint32_t cmdline_size;  // 0x238
  uint32_t hardware_subarch;
  uint64_t hardware_subarch_data;
  uint32_t payload_offset;  // 0x248
  uint32_t payload_length;  // 0x24c
  uint64_t setup_data;
  uint64_t pref_address;  // 0x258
  uint32_t init_size;     // 0x260
  uint32_t handover_offset;
  uint32_t kernel_info_offset;
};
static_assert(sizeof(SetupHeader) == 0x26c - 0x1f1);

struct __attribute__((packed)) BootParams {
  uint8_t screen_info[0x40];
  uint8_t apm_bios_info[0x14];
  uint8_t pad2[4];
  uint64_t tboot_addr;
  uint8_t ist_info[0x10];
  uint64_t acpi_rsdp_addr;  // 0x070
  uint8_t pad3[8];
  uint8_t hd0_info[16];
  uint8_t hd1_info[16];
  uint8_t sys_desc_table[16];
  uint8_t olpc_ofw_header[16];
  uint32_t ext_ramdisk_image;  // 0x0c0
  uint32_t ext_ramdisk_size;   // 0x0c4
  uint32_t ext_cmd_line_ptr;   // 0x0c8
  uint8_t pad4[112];
  uint32_t cc_blob_address;
  uint8_t edid_info[0x80];
  uint8_t efi_info[0x20];
  uint32_t alt_mem_k;
  uint32_t scratch;
  uint8_t e820_entries;  // 0x1e8
  uint8_t eddbuf_entries;
  uint8_t edd_mbr_sig_buf_entries;
  uint8_t kbd_status;
  uint8_t secure_boot;
  uint8_t pad5[2];
  uint8_t sentinel;
  uint8_t pad6[1];
  SetupHeader hdr;  // 0x1f1
  uint8_t pad7[0x290 - 0x1f1 - sizeof(SetupHeader)];
  uint32_t edd_mbr_sig_buffer[16];
  BootE820Entry e820_table[kE820MaxEntries];  // 0x2d0
  uint8_t pad8[48];
  uint8_t eddbuf[6 * 82];
  uint8_t pad9[276];
};
static_assert(sizeof(BootParams) == 4096);

#define EMBER_ASSERT_ZP(field, off) static_assert(offsetof(BootParams, field) == (off))
#define EMBER_ASSERT_HDR(field, off) \
  static_assert(offsetof(BootParams, hdr) + offsetof(SetupHeader, field) == (off))
EMBER_ASSERT_ZP(acpi_rsdp_addr, 0x070);
EMBER_ASSERT_ZP(ext_ramdisk_image, 0x0c0);
EMBER_ASSERT_ZP(ext_ramdisk_size, 0x0c4);
EMBER_ASSERT_ZP(ext_cmd_line_ptr, 0x0c8);
EMBER_ASSERT_ZP(cc_blob_address, 0x13c);
EMBER_ASSERT_ZP(e820_entries, 0x1e8);
EMBER_ASSERT_ZP(sentinel, 0x1ef);
EMBER_ASSERT_ZP(hdr, 0x1f1);
EMBER_ASSERT_ZP(edd_mbr_sig_buffer, 0x290);
EMBER_ASSERT_ZP(e820_table, 0x2d0);
EMBER_ASSERT_ZP(eddbuf, 0xd00);
EMBER_ASSERT_HDR(setup_sects, 0x1f1);
EMBER_ASSERT_HDR(boot_flag, 0x1fe);
EMBER_ASSERT_HDR(jump, 0x200);
EMBER_ASSERT_HDR(header, 0x202);
EMBER_ASSERT_HDR(version, 0x206);
EMBER_ASSERT_HDR(type_of_loader, 0x210);
EMBER_ASSERT_HDR(loadflags, 0x211);
EMBER_ASSERT_HDR(code32_start, 0x214);
EMBER_ASSERT_HDR(ramdisk_image, 0x218);
EMBER_ASSERT_HDR(ramdisk_size, 0x21c);
EMBER_ASSERT_HDR(heap_end_ptr, 0x224);
EMBER_ASSERT_HDR(cmd_line_ptr, 0x228);
EMBER_ASSERT_HDR(initrd_addr_max, 0x22c);
EMBER_ASSERT_HDR(kernel_alignment, 0x230);
EMBER_ASSERT_HDR(relocatable_kernel, 0x234);
EMBER_ASSERT_HDR(min_alignment, 0x235);
EMBER_ASSERT_HDR(xloadflags, 0x236);
EMBER_ASSERT_HDR(cmdline_size, 0x238);
EMBER_ASSERT_HDR(payload_offset, 0x248);
EMBER_ASSERT_HDR(payload_length, 0x24c);
EMBER_ASSERT_HDR(pref_address, 0x258);
EMBER_ASSERT_HDR(init_size, 0x260);
#undef EMBER_ASSERT_ZP
#undef EMBER_ASSERT_HDR

struct ZeroPageInput {
  // Raw setup-header bytes of a bzImage, from file offset 0x1f1 (at most sizeof(SetupHeader));
  // empty for an ELF vmlinux, which has no header (then kernel_alignment = 16 MiB).
  std::vector<uint8_t> setup_header;
  uint64_t cmdline_addr = 0;
  uint32_t cmdline_size = 0;  // bytes including the terminating NUL
  uint64_t initrd_addr = 0;
  uint64_t initrd_size = 0;
  uint64_t acpi_rsdp_addr = 0;  // 0: no ACPI tables
  std::vector<E820Entry> e820;
};

// Fills the loader-owned fields (type_of_loader 0xff, boot_flag, "HdrS", command line, ramdisk,
// ACPI RSDP, e820). Error if the map has more than kE820MaxEntries entries or the setup header
// bytes are too long.
Result<BootParams> BuildZeroPage(const ZeroPageInput& input);

// Writes `params` at kZeroPageAddr.
Status WriteZeroPage(const GuestMemory& memory, const BootParams& params);

}  // namespace ember

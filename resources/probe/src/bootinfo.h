// What the VMM told the probe at entry, copied out of guest memory right away (the trampoline
// and stacks may later reuse low memory): the entry path, the command line and the memory map.
#ifndef PROBE_BOOTINFO_H
#define PROBE_BOOTINFO_H

#include <stdbool.h>
#include <stdint.h>

enum boot_protocol {
  kBootLinux64 = 1,  // Linux 64-bit boot protocol, RSI = struct boot_params
  kBootPvh = 2,      // PVH, EBX = struct hvm_start_info
};

enum {
  kE820Ram = 1,
  kE820MaxEntries = 128,  // E820_MAX_ENTRIES_ZEROPAGE (arch/x86/include/uapi/asm/bootparam.h)
};

struct mem_range {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
};

struct boot_info {
  enum boot_protocol protocol;
  uint64_t info_paddr;  // boot_params or hvm_start_info
  const char *problem;  // non-NULL when the VMM's structure was unusable
  unsigned mem_count;
  struct mem_range mem[kE820MaxEntries];
};

void bootinfo_init(enum boot_protocol protocol, uint64_t info_paddr);
const struct boot_info *bootinfo(void);
const char *boot_protocol_name(enum boot_protocol protocol);

// True when [addr, addr + len) lies inside one RAM entry of the memory map.
bool bootinfo_is_ram(uint64_t addr, uint64_t len);
// The end of the RAM entry containing addr (0 if none).
uint64_t bootinfo_ram_end(uint64_t addr);

#endif

#include "bootinfo.h"

#include "cmdline.h"
#include "string.h"

// struct boot_params offsets (Documentation/arch/x86/zero-page.rst, boot.rst).
enum {
  kBpExtCmdLinePtr = 0x0c8,
  kBpE820Entries = 0x1e8,
  kBpCmdLinePtr = 0x228,
  kBpE820Table = 0x2d0,
  kBpE820EntrySize = 20,
};

// struct hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h).
enum {
  kHvmMagic = 0x336ec578,
  kHvmVersionOff = 4,
  kHvmCmdlineOff = 24,
  kHvmMemmapOff = 40,
  kHvmMemmapEntriesOff = 48,
  kHvmMemmapEntrySize = 24,
};

// The probe maps 0-4 GiB; anything the VMM places above cannot be read.
static const uint64_t kMappedLimit = 0x100000000ull;

static struct boot_info g_info;

static uint32_t rd32(uint64_t a) { uint32_t v; memcpy(&v, (const void *)(uintptr_t)a, 4); return v; }
static uint64_t rd64(uint64_t a) { uint64_t v; memcpy(&v, (const void *)(uintptr_t)a, 8); return v; }

static const char *mapped_string(uint64_t paddr) {
  if (paddr == 0 || paddr >= kMappedLimit - kCmdlineMax) return NULL;
  return (const char *)(uintptr_t)paddr;
}

static void from_boot_params(uint64_t bp) {
  uint64_t cmd = rd32(bp + kBpCmdLinePtr) | ((uint64_t)rd32(bp + kBpExtCmdLinePtr) << 32);
  cmdline_init(mapped_string(cmd));
  unsigned n = *(const uint8_t *)(uintptr_t)(bp + kBpE820Entries);
  if (n > kE820MaxEntries) {
    g_info.problem = "boot_params e820_entries > 128";
    n = kE820MaxEntries;
  }
  for (unsigned i = 0; i < n; i++) {
    uint64_t e = bp + kBpE820Table + (uint64_t)i * kBpE820EntrySize;
    g_info.mem[i].addr = rd64(e);
    g_info.mem[i].size = rd64(e + 8);
    g_info.mem[i].type = rd32(e + 16);
  }
  g_info.mem_count = n;
}

static void from_hvm_start_info(uint64_t si) {
  if (rd32(si) != kHvmMagic) {
    g_info.problem = "hvm_start_info magic mismatch";
    cmdline_init(NULL);
    return;
  }
  cmdline_init(mapped_string(rd64(si + kHvmCmdlineOff)));
  // memmap_paddr/memmap_entries exist from version 1 on.
  if (rd32(si + kHvmVersionOff) < 1) {
    g_info.problem = "hvm_start_info version 0 has no memmap";
    return;
  }
  uint64_t map = rd64(si + kHvmMemmapOff);
  unsigned n = rd32(si + kHvmMemmapEntriesOff);
  if (n > kE820MaxEntries) {
    g_info.problem = "hvm_start_info memmap_entries > 128";
    n = kE820MaxEntries;
  }
  if (n && (map == 0 || map + (uint64_t)n * kHvmMemmapEntrySize > kMappedLimit)) {
    g_info.problem = "hvm_start_info memmap not below 4 GiB";
    return;
  }
  for (unsigned i = 0; i < n; i++) {
    uint64_t e = map + (uint64_t)i * kHvmMemmapEntrySize;
    g_info.mem[i].addr = rd64(e);
    g_info.mem[i].size = rd64(e + 8);
    g_info.mem[i].type = rd32(e + 16);
  }
  g_info.mem_count = n;
}

void bootinfo_init(enum boot_protocol protocol, uint64_t info_paddr) {
  g_info.protocol = protocol;
  g_info.info_paddr = info_paddr;
  if (info_paddr == 0 || info_paddr >= kMappedLimit - 0x1000) {
    g_info.problem = "boot structure pointer not below 4 GiB";
    cmdline_init(NULL);
    return;
  }
  if (protocol == kBootPvh) {
    from_hvm_start_info(info_paddr);
  } else {
    from_boot_params(info_paddr);
  }
}

const struct boot_info *bootinfo(void) { return &g_info; }

const char *boot_protocol_name(enum boot_protocol protocol) {
  return protocol == kBootPvh ? "pvh" : "linux64";
}

bool bootinfo_is_ram(uint64_t addr, uint64_t len) {
  uint64_t end = addr + len;
  if (end < addr) return false;
  for (unsigned i = 0; i < g_info.mem_count; i++) {
    const struct mem_range *r = &g_info.mem[i];
    if (r->type == kE820Ram && r->addr <= addr && end <= r->addr + r->size) return true;
  }
  return false;
}

uint64_t bootinfo_ram_end(uint64_t addr) {
  for (unsigned i = 0; i < g_info.mem_count; i++) {
    const struct mem_range *r = &g_info.mem[i];
    if (r->type == kE820Ram && r->addr <= addr && addr < r->addr + r->size) return r->addr + r->size;
  }
  return 0;
}

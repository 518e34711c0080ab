// boot: the VMM's memory map and command line arrived intact.
#include <stdint.h>

#include "bootinfo.h"
#include "cmdline.h"
#include "console.h"
#include "layout.h"
#include "scenario.h"
#include "string.h"

extern const char __image_start[], __image_end[];

static const uint64_t kMiB = 1 << 20;
// The VMM leaves [0x9fc00, 1 MiB) out of RAM (Firecracker: reserved "system memory" and the
// unlisted BIOS area), hence the up-to-2-MiB shortfall allowed against probe.mem_mib.
static const uint64_t kAllowedShortfall = 2 << 20;

static bool contains(const struct mem_range *r, uint64_t start, uint64_t end) {
  return r->addr <= start && end <= r->addr + r->size;
}

static const char *check_memory_map(const struct boot_info *info, uint64_t *ram) {
  if (info->mem_count == 0) return "memory map is empty";
  uint64_t sum = 0;
  bool image_in_ram = false;
  for (unsigned i = 0; i < info->mem_count; i++) {
    const struct mem_range *r = &info->mem[i];
    if (r->type != kE820Ram) continue;
    if (r->size == 0) return scenario_failf("RAM entry %u is empty", i);
    if (r->addr + r->size < r->addr) return scenario_failf("RAM entry %u wraps", i);
    // No two RAM entries may share a byte; the order is not checked (the e820 table need not be
    // sorted, and reserved entries may sit anywhere).
    for (unsigned j = 0; j < i; j++) {
      const struct mem_range *o = &info->mem[j];
      if (o->type == kE820Ram && r->addr < o->addr + o->size && o->addr < r->addr + r->size) {
        return scenario_failf("RAM entries %u and %u overlap at 0x%lx", j, i,
                              r->addr > o->addr ? r->addr : o->addr);
      }
    }
    sum += r->size;
    image_in_ram |= contains(r, (uint64_t)(uintptr_t)__image_start,
                             (uint64_t)(uintptr_t)__image_end);
  }
  if (!image_in_ram) return "the probe image at 1 MiB is not inside a RAM entry";
  *ram = sum;
  return NULL;
}

const char *scenario_boot(void) {
  const struct boot_info *info = bootinfo();
  console_printf("probe: cmdline %s\n", cmdline_get());
  if (info->problem) return info->problem;
  uint64_t ram = 0;
  const char *bad = check_memory_map(info, &ram);
  if (bad) return bad;
  uint64_t mem_mib;
  if (cmdline_param_u64("probe.mem_mib", &mem_mib)) {
    uint64_t hi = mem_mib * kMiB;
    uint64_t lo = hi > kAllowedShortfall ? hi - kAllowedShortfall : 0;
    if (!(ram > lo && ram <= hi)) {
      return scenario_failf("RAM is %lu KiB in %u entries, expected (%lu, %lu] KiB", ram >> 10,
                            info->mem_count, lo >> 10, hi >> 10);
    }
  }
  uint64_t want_len;
  if (cmdline_param_u64("probe.cmdline_len", &want_len)) {
    size_t len = strlen(cmdline_get());
    if (len != want_len) {
      return scenario_failf("command line is %lu bytes, expected %lu", (uint64_t)len, want_len);
    }
  }
  return NULL;
}

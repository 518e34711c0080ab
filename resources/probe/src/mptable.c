#include "mptable.h"

#include <stdbool.h>
#include <stdint.h>

#include "string.h"

// MP spec 1.4, 4.1-4.3: floating pointer "_MP_" (16 bytes, on a 16-byte boundary), whose
// physical-address field points at the "PCMP" configuration table: a 44-byte header, then
// processor entries (type 0, 20 bytes) and other entries (8 bytes).
enum {
  kFloatingLen = 16,
  kConfigHeaderLen = 44,
  kEntryProcessor = 0,
  kProcessorEntryLen = 20,
  kOtherEntryLen = 8,
  kCpuEnabled = 0x01,
};

static bool checksum_ok(const uint8_t *p, unsigned len) {
  uint8_t sum = 0;
  for (unsigned i = 0; i < len; i++) sum += p[i];
  return sum == 0;
}

static const uint8_t *find_floating(uint64_t start, uint64_t end) {
  for (uint64_t a = start; a + kFloatingLen <= end; a += 16) {
    const uint8_t *p = (const uint8_t *)(uintptr_t)a;
    if (memcmp(p, "_MP_", 4) == 0 && p[8] >= 1 && a + p[8] * 16u <= end &&
        checksum_ok(p, p[8] * 16u)) {
      return p;
    }
  }
  return 0;
}

static unsigned count_processors(const uint8_t *cfg) {
  if (memcmp(cfg, "PCMP", 4) != 0) return 0;
  uint16_t length, entries;
  memcpy(&length, cfg + 4, 2);
  memcpy(&entries, cfg + 34, 2);
  if (length < kConfigHeaderLen || !checksum_ok(cfg, length)) return 0;
  unsigned cpus = 0;
  const uint8_t *p = cfg + kConfigHeaderLen, *end = cfg + length;
  for (unsigned i = 0; i < entries && p < end; i++) {
    if (*p == kEntryProcessor) {
      if (p + kProcessorEntryLen > end) break;
      if (p[3] & kCpuEnabled) cpus++;
      p += kProcessorEntryLen;
    } else {
      p += kOtherEntryLen;
    }
  }
  return cpus;
}

unsigned mptable_cpu_count(void) {
  const uint8_t *fp = find_floating(0x9fc00, 0xa0000);
  if (!fp) fp = find_floating(0xf0000, 0x100000);
  if (!fp) return 0;
  uint32_t config;
  memcpy(&config, fp + 4, 4);
  if (config == 0 || config >= 0x100000 - kConfigHeaderLen) return 0;
  return count_processors((const uint8_t *)(uintptr_t)config);
}

// rng: the first entropy device (section 5.4) fills two 4 KiB device-writable buffers in two
// requests; each must hold differing bytes and the two must differ. VIRTIO_F_RING_EVENT_IDX is
// deliberately not accepted, so the flags-based notification path (used->flags, avail->flags)
// is exercised here and the event-index path by the block scenarios.
#include <stdint.h>

#include "console.h"
#include "layout.h"
#include "scenario.h"
#include "virtio_mmio.h"

enum {
  kBufBytes = 4096,
  kTimeoutMs = 2000,
};

static const uint64_t kBuf[2] = {VIRTIO_REQ_BUFFERS, VIRTIO_REQ_BUFFERS + 0x1000};

static const char *fill(struct virtio_dev *d, unsigned i, uint32_t *used_len) {
  virtq_set_desc(&d->q, (uint16_t)i, kBuf[i], kBufBytes, kVirtqDescWrite, 0);
  virtq_push(&d->q, (uint16_t)i);
  virtio_kick(d);
  for (;;) {
    uint32_t id;
    if (virtq_pop(&d->q, &id, used_len)) {
      if (id != i) return scenario_failf("used id %u, want %u", id, i);
      if (*used_len == 0 || *used_len > kBufBytes) {
        return scenario_failf("buffer %u: used length %u", i, *used_len);
      }
      return NULL;
    }
    if (!virtio_wait_used(d, kTimeoutMs) || !virtq_has_used(&d->q)) {
      return scenario_failf("buffer %u: no completion (status 0x%x)", i, virtio_status(d));
    }
  }
}

// Compares in 64-bit words (plus a byte tail) to keep the instruction count low.
static bool all_bytes_equal(const uint8_t *p, uint32_t len) {
  uint64_t w = p[0] * 0x0101010101010101ull;
  uint32_t i = 0;
  for (; i + 8 <= len; i += 8) {
    if (*(const uint64_t *)(p + i) != w) return false;
  }
  for (; i < len; i++) {
    if (p[i] != p[0]) return false;
  }
  return true;
}

static bool same(const uint8_t *a, const uint8_t *b, uint32_t len) {
  uint32_t i = 0;
  for (; i + 8 <= len; i += 8) {
    if (*(const uint64_t *)(a + i) != *(const uint64_t *)(b + i)) return false;
  }
  for (; i < len; i++) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

const char *scenario_rng(void) {
  struct virtio_dev *d;
  unsigned legacy;
  if (virtio_find(kVirtioIdEntropy, &d, 1, &legacy) == 0) {
    return scenario_failf("no virtio-rng device (%u legacy)", legacy);
  }
  const char *err = virtio_init(d, 0);
  uint32_t len[2] = {0, 0};
  for (unsigned i = 0; i < 2 && !err; i++) err = fill(d, i, &len[i]);
  virtio_shutdown(d);
  if (err) return err;
  const uint8_t *a = (const uint8_t *)(uintptr_t)kBuf[0];
  const uint8_t *b = (const uint8_t *)(uintptr_t)kBuf[1];
  console_printf("probe: rng used lengths %u %u\n", len[0], len[1]);
  for (unsigned i = 0; i < 2; i++) {
    if (all_bytes_equal(i ? b : a, len[i])) return scenario_failf("buffer %u: all bytes equal", i);
  }
  if (len[0] == len[1] && same(a, b, len[0])) return "the two buffers are identical";
  return NULL;
}

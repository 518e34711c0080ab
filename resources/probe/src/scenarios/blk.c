// blk: every writable virtio-blk device (no VIRTIO_BLK_F_RO), numbered d = 0, 1, ... in
// command-line order: capacity and GET_ID, a 4 KiB read of sectors 0-7 checked against the
// pattern the host wrote, a 4 KiB write of sectors 8-15 (FLUSH when offered) read back, an
// out-of-range read (IOERR) and an unknown request type (UNSUPP).
#include <stdint.h>

#include "console.h"
#include "scenario.h"
#include "virtio_blk.h"

enum {
  kMaxDevices = 8,
  kChunk = 4096,
  kChunkSectors = kChunk / kBlkSectorSize,
  kWriteSector = 8,
  kUnknownType = 0x1234,
};

static const uint64_t kReadBuf = VIRTIO_REQ_BUFFERS;
static const uint64_t kWriteBuf = VIRTIO_REQ_BUFFERS + 0x1000;
static const uint64_t kIdBuf = VIRTIO_REQ_BUFFERS + 0x2000;

static uint8_t write_pattern(uint64_t o, unsigned d) {
  return (uint8_t)((o >> 9) * 17 + (o & 511) * 5 + 0xa5 + d);
}

// Within a sector both patterns step by a constant per byte (1 and 5), so they are built and
// checked 8 bytes at a time: the emulated guest runs about a million instructions a second.
static const uint64_t kImageSteps = 0x0706050403020100ull;  // 1 * (0..7)
static const uint64_t kWriteSteps = 0x231e19140f0a0500ull;  // 5 * (0..7)

// The word of bytes first + steps[i] (mod 256, per byte: carries must not cross bytes).
static uint64_t byte_ramp(uint8_t first, uint64_t steps) {
  const uint64_t high = 0x8080808080808080ull;
  uint64_t x = first * 0x0101010101010101ull;
  return ((x & ~high) + (steps & ~high)) ^ ((x ^ steps) & high);
}

static uint64_t image_word(uint64_t o, unsigned d) {
  (void)d;
  return byte_ramp(blk_image_pattern(o), kImageSteps);
}

static uint64_t written_word(uint64_t o, unsigned d) {
  return byte_ramp(write_pattern(o, d), kWriteSteps);
}

// Compares kChunk bytes at buf with image bytes from `base` on; names the first wrong byte.
static const char *compare(const char *what, uint64_t buf, uint64_t base, unsigned d,
                           uint64_t (*want)(uint64_t, unsigned)) {
  const uint64_t *w = (const uint64_t *)(uintptr_t)buf;
  for (uint64_t i = 0; i < kChunk / 8; i++) {
    uint64_t expected = want(base + 8 * i, d);
    if (w[i] == expected) continue;
    unsigned shift = 0;
    while (!(((w[i] ^ expected) >> shift) & 0xff)) shift += 8;
    return scenario_failf("%s: image byte %lu is 0x%x, want 0x%x", what, base + 8 * i + shift / 8,
                          (unsigned)(w[i] >> shift) & 0xff, (unsigned)(expected >> shift) & 0xff);
  }
  return NULL;
}

static const char *check(const char *what, int status, int want) {
  if (status == want) return NULL;
  if (status == kBlkNoCompletion) return scenario_failf("%s: no completion", what);
  return scenario_failf("%s: status %d, want %d", what, status, want);
}

static const char *run_device(struct virtio_dev *dev, unsigned d) {
  const char *err = virtio_init(dev, kBlkWantedFeatures);
  if (err) return err;
  uint64_t capacity = blk_capacity(dev);
  if (capacity < 2 * kChunkSectors) return scenario_failf("capacity %lu sectors", capacity);

  char *id = (char *)(uintptr_t)kIdBuf;
  for (unsigned i = 0; i <= kBlkIdBytes; i++) id[i] = 0;
  if ((err = check("GET_ID", blk_do(dev, 0, kBlkTypeGetId, 0, kIdBuf, kBlkIdBytes, true),
                   kBlkStatusOk))) {
    return err;
  }
  console_printf("probe: blk %u capacity %lu id %s\n", d, capacity, id);

  if ((err = check("read 0-7", blk_do(dev, 0, kBlkTypeIn, 0, kReadBuf, kChunk, true),
                   kBlkStatusOk)) ||
      (err = compare("read 0-7", kReadBuf, 0, d, image_word))) {
    return err;
  }

  const uint64_t base = kWriteSector * kBlkSectorSize;
  uint64_t *wb = (uint64_t *)(uintptr_t)kWriteBuf;
  for (uint64_t i = 0; i < kChunk / 8; i++) wb[i] = written_word(base + 8 * i, d);
  if ((err =
           check("write 8-15", blk_do(dev, 0, kBlkTypeOut, kWriteSector, kWriteBuf, kChunk, false),
                 kBlkStatusOk))) {
    return err;
  }
  if ((dev->accepted & kBlkFeatureFlush) &&
      (err = check("flush", blk_do(dev, 0, kBlkTypeFlush, 0, 0, 0, false), kBlkStatusOk))) {
    return err;
  }
  // The read buffer still holds sectors 0-7, which differ from what was written.
  if ((err = check("read 8-15", blk_do(dev, 0, kBlkTypeIn, kWriteSector, kReadBuf, kChunk, true),
                   kBlkStatusOk)) ||
      (err = compare("read 8-15", kReadBuf, base, d, written_word))) {
    return err;
  }

  if ((err = check("read at capacity",
                   blk_do(dev, 0, kBlkTypeIn, capacity, kReadBuf, kBlkSectorSize, true),
                   kBlkStatusIoErr))) {
    return err;
  }
  if ((err = check("type 0x1234", blk_do(dev, 0, kUnknownType, 0, kReadBuf, kBlkSectorSize, true),
                   kBlkStatusUnsupp))) {
    return err;
  }
  return NULL;
}

const char *scenario_blk(void) {
  struct virtio_dev *devs[kMaxVirtioMmioArgs];
  unsigned legacy;
  unsigned n = virtio_find(kVirtioIdBlock, devs, kMaxVirtioMmioArgs, &legacy);
  unsigned writable = 0;
  for (unsigned i = 0; i < n; i++) {
    const char *err = virtio_init(devs[i], kBlkWantedFeatures);
    if (!err && !(devs[i]->accepted & kBlkFeatureRo)) {
      err = writable == kMaxDevices ? "more than 8 writable block devices"
                                    : run_device(devs[i], writable);
      writable++;
    }
    virtio_shutdown(devs[i]);
    if (err) return scenario_failf("device at 0x%lx: %s", devs[i]->base, err);
  }
  if (writable == 0) {
    return scenario_failf("no writable virtio-blk device (%u read-only, %u legacy)", n, legacy);
  }
  return NULL;
}

// Block requests (virtio 1.1 section 5.2.6): a 16-byte device-readable header, optional data,
// and a device-writable status byte, each its own descriptor. Request slot k uses descriptors
// 3k..3k+2 and header/status k of the request area (layout.h), so up to 85 requests can be in
// flight on a 256-entry queue without an allocator.
#ifndef PROBE_VIRTIO_BLK_H
#define PROBE_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "layout.h"
#include "virtio_mmio.h"

enum {
  kBlkTypeIn = 0,
  kBlkTypeOut = 1,
  kBlkTypeFlush = 4,
  kBlkTypeGetId = 8,
  kBlkStatusOk = 0,
  kBlkStatusIoErr = 1,
  kBlkStatusUnsupp = 2,
  kBlkNoCompletion = -1,  // blk_do: timed out, or the device asked for a reset
  kBlkSectorSize = 512,
  kBlkIdBytes = 20,
  kBlkDescsPerSlot = 3,
};

static const uint64_t kBlkFeatureRo = 1ull << 5;
static const uint64_t kBlkFeatureFlush = 1ull << 9;
// What the probe accepts from a block device (besides VERSION_1).
static const uint64_t kBlkWantedFeatures = kFeatureRingEventIdx | kBlkFeatureRo | kBlkFeatureFlush;

struct blk_req_header {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};

static inline uint64_t blk_header_addr(unsigned k) { return VIRTIO_REQ_HEADERS + 16ull * k; }
static inline uint64_t blk_status_addr(unsigned k) { return VIRTIO_REQ_STATUS + k; }
static inline volatile uint8_t *blk_status(unsigned k) {
  return (volatile uint8_t *)(uintptr_t)blk_status_addr(k);
}

// Writes request slot k (len 0: no data descriptor) and makes it available; no notification.
// Returns the head descriptor index.
uint16_t blk_submit(struct virtio_dev *d, unsigned k, uint32_t type, uint64_t sector, uint64_t buf,
                    uint32_t len, bool device_writes);
// Waits for the used entry of `head` (skipping others) and returns the status byte of slot k,
// or kBlkNoCompletion.
int blk_wait(struct virtio_dev *d, uint16_t head, unsigned k, uint32_t timeout_ms);
// blk_submit + kick + blk_wait.
int blk_do(struct virtio_dev *d, unsigned k, uint32_t type, uint64_t sector, uint64_t buf,
           uint32_t len, bool device_writes);
// Capacity in 512-byte sectors (config offset 0).
uint64_t blk_capacity(const struct virtio_dev *d);

// The pattern the host tests write into images: image byte o.
static inline uint8_t blk_image_pattern(uint64_t o) {
  return (uint8_t)((o >> 9) * 31 + (o & 511) + 0x11);
}

#endif

#include "virtio_blk.h"

enum { kRequestTimeoutMs = 2000 };

uint16_t blk_submit(struct virtio_dev *d, unsigned k, uint32_t type, uint64_t sector, uint64_t buf,
                    uint32_t len, bool device_writes) {
  struct virtq *q = &d->q;
  volatile struct blk_req_header *h =
      (volatile struct blk_req_header *)(uintptr_t)blk_header_addr(k);
  h->type = type;
  h->reserved = 0;
  h->sector = sector;
  *blk_status(k) = 0xff;  // no status value: shows whether the device wrote it
  uint16_t head = (uint16_t)(kBlkDescsPerSlot * k);
  uint16_t status_desc = (uint16_t)(head + 2);
  if (len) {
    virtq_set_desc(q, head, blk_header_addr(k), sizeof(struct blk_req_header), kVirtqDescNext,
                   (uint16_t)(head + 1));
    virtq_set_desc(q, (uint16_t)(head + 1), buf, len,
                   kVirtqDescNext | (device_writes ? kVirtqDescWrite : 0), status_desc);
  } else {
    virtq_set_desc(q, head, blk_header_addr(k), sizeof(struct blk_req_header), kVirtqDescNext,
                   status_desc);
  }
  virtq_set_desc(q, status_desc, blk_status_addr(k), 1, kVirtqDescWrite, 0);
  virtq_push(q, head);
  return head;
}

int blk_wait(struct virtio_dev *d, uint16_t head, unsigned k, uint32_t timeout_ms) {
  for (;;) {
    uint32_t id, len;
    while (virtq_pop(&d->q, &id, &len)) {
      if (id == head) return *blk_status(k);
    }
    if (!virtio_wait_used(d, timeout_ms) || !virtq_has_used(&d->q)) return kBlkNoCompletion;
  }
}

int blk_do(struct virtio_dev *d, unsigned k, uint32_t type, uint64_t sector, uint64_t buf,
           uint32_t len, bool device_writes) {
  uint16_t head = blk_submit(d, k, type, sector, buf, len, device_writes);
  virtio_kick(d);
  return blk_wait(d, head, k, kRequestTimeoutMs);
}

uint64_t blk_capacity(const struct virtio_dev *d) { return virtio_config64(d, 0); }

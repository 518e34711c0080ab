// A split virtqueue as the driver sees it (virtio 1.1 section 2.6): the descriptor table, the
// driver area ("available ring") and the device area ("used ring") in probe-owned guest memory,
// and the driver's private indices. All fields are little-endian, which x86 is natively.
//
// Ordering on x86 (TSO, section 2.6.13 steps): stores reach the device in program order and
// loads are not reordered with loads, so descriptor and ring-entry writes before the idx write,
// and the used idx read before the used-entry reads, need only a compiler barrier. A store
// followed by a load of another location (avail idx then avail_event/flags; used_event then
// used idx) needs mfence.
#ifndef PROBE_VIRTQ_H
#define PROBE_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>

enum {
  kVirtqDescNext = 1,
  kVirtqDescWrite = 2,     // device-writable
  kVirtqDescIndirect = 4,  // addr/len name a table of descriptors (section 2.6.5.3)
  kVirtqUsedNoNotify = 1,  // used->flags: device asks for no notifications (no EVENT_IDX)
  kVirtqMaxSize = 256,     // the probe never asks for more (Firecracker's and QEMU's default)
};

struct virtq_desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};

struct virtq_avail {
  uint16_t flags;
  uint16_t idx;
  uint16_t ring[];  // [size], then used_event when VIRTIO_F_EVENT_IDX
};

struct virtq_used_elem {
  uint32_t id;
  uint32_t len;
};

struct virtq_used {
  uint16_t flags;
  uint16_t idx;
  struct virtq_used_elem ring[];  // [size], then avail_event when VIRTIO_F_EVENT_IDX
};

struct virtq {
  uint16_t size;
  bool event_idx;
  uint64_t desc_addr, avail_addr, used_addr;  // guest-physical (identity-mapped)
  volatile struct virtq_desc *desc;
  volatile struct virtq_avail *avail;
  volatile struct virtq_used *used;
  uint16_t avail_idx;     // next value of avail->idx
  uint16_t notified_idx;  // avail->idx when the device was last considered notified
  uint16_t last_used;     // used entries consumed so far
};

// Lays the rings out at `mem` (a VIRTIO_QUEUE_SLOT_SIZE area) and clears the ring headers.
void virtq_init(struct virtq *q, uint64_t mem, uint16_t size, bool event_idx);

static inline void virtq_set_desc(struct virtq *q, uint16_t i, uint64_t addr, uint32_t len,
                                  uint16_t flags, uint16_t next) {
  q->desc[i].addr = addr;
  q->desc[i].len = len;
  q->desc[i].flags = flags;
  q->desc[i].next = next;
}

// Makes the chain starting at `head` available (ring entry, then idx).
void virtq_push(struct virtq *q, uint16_t head);
// Publishes an arbitrary avail idx (hostile tests); later pushes continue from it.
void virtq_set_avail_idx(struct virtq *q, uint16_t idx);
// Whether the device wants a notification for what was pushed since the last call
// (section 2.6.7.2 / 2.6.10.1: avail_event with EVENT_IDX, else used->flags).
bool virtq_needs_notify(struct virtq *q);
bool virtq_has_used(const struct virtq *q);
bool virtq_pop(struct virtq *q, uint32_t *id, uint32_t *len);
// Asks for an interrupt at the next used entry (used_event = entries consumed) and fences, so a
// following virtq_has_used() sees whatever the device published before it read used_event.
void virtq_arm(struct virtq *q);

#endif

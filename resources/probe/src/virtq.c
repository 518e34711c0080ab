#include "virtq.h"

enum {
  kAvailOffset = 0x1000,  // descriptor table: 16 * 256 bytes, 16-byte aligned (section 2.6)
  kUsedOffset = 0x2000,   // available ring: 2-byte aligned; used ring: 4-byte aligned
};

static inline void compiler_barrier(void) { __asm__ volatile("" ::: "memory"); }
static inline void full_barrier(void) { __asm__ volatile("mfence" ::: "memory"); }

// The event-index test of section 2.6.7.2: has new_idx passed event since old?
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old) {
  return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

// avail_event sits after the used ring's `size` elements (section 2.6.8).
static volatile uint16_t *avail_event(const struct virtq *q) {
  return (volatile uint16_t *)(uintptr_t)(q->used_addr + 4 + 8ull * q->size);
}

void virtq_init(struct virtq *q, uint64_t mem, uint16_t size, bool event_idx) {
  q->size = size;
  q->event_idx = event_idx;
  q->desc_addr = mem;
  q->avail_addr = mem + kAvailOffset;
  q->used_addr = mem + kUsedOffset;
  q->desc = (volatile struct virtq_desc *)(uintptr_t)q->desc_addr;
  q->avail = (volatile struct virtq_avail *)(uintptr_t)q->avail_addr;
  q->used = (volatile struct virtq_used *)(uintptr_t)q->used_addr;
  q->avail->flags = 0;  // interrupts wanted
  q->avail->idx = 0;
  q->avail->ring[size] = 0;  // used_event
  q->used->flags = 0;
  q->used->idx = 0;
  *avail_event(q) = 0;
  q->avail_idx = q->notified_idx = q->last_used = 0;
}

void virtq_push(struct virtq *q, uint16_t head) {
  q->avail->ring[q->avail_idx % q->size] = head;
  compiler_barrier();
  q->avail->idx = ++q->avail_idx;
}

void virtq_set_avail_idx(struct virtq *q, uint16_t idx) {
  q->avail_idx = idx;
  compiler_barrier();
  q->avail->idx = idx;
}

bool virtq_needs_notify(struct virtq *q) {
  full_barrier();
  uint16_t old = q->notified_idx, now = q->avail_idx;
  q->notified_idx = now;
  if (q->event_idx) {
    uint16_t event = *avail_event(q);
    return need_event(event, now, old);
  }
  return now != old && !(q->used->flags & kVirtqUsedNoNotify);
}

bool virtq_has_used(const struct virtq *q) { return q->used->idx != q->last_used; }

bool virtq_pop(struct virtq *q, uint32_t *id, uint32_t *len) {
  if (q->used->idx == q->last_used) return false;
  compiler_barrier();
  volatile struct virtq_used_elem *e = &q->used->ring[q->last_used % q->size];
  *id = e->id;
  *len = e->len;
  q->last_used++;
  return true;
}

void virtq_arm(struct virtq *q) {
  if (q->event_idx) q->avail->ring[q->size] = q->last_used;
  full_barrier();
}

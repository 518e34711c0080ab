// evil-queue: hostile virtqueue contents against the first writable virtio-blk device. Each case
// starts from a freshly initialised device, makes something the virtio 1.1 specification
// forbids (section 2.6) available, and notifies. The device may complete it with an error,
// drop it, or set DEVICE_NEEDS_RESET (section 2.1.2: the driver then resets and re-initialises);
// it must not crash, hang, or touch memory outside the chain's valid buffers. Either way a valid
// 512-byte read of sector 0 must afterwards be served with status OK within 2 s.
// Prints "probe: evil-queue <case> served|reset" per case (plus a detail line), then
// "probe: evil-queue cases <n>".
#include <stdint.h>

#include "bootinfo.h"
#include "console.h"
#include "scenario.h"
#include "virtio_blk.h"

enum {
  kSettleMs = 300,  // for the hostile chains to be completed (or refused)
  kValidTimeoutMs = 2000,
  kHostileSlot = 1,  // header/status of hostile requests; descriptors are set per case
  kLongTable = 300,  // entries of the over-long indirect table (> any queue size used)
  kNonexistentQueue = 7,
};

static const uint64_t kOutsideRam = 0xfffffffff0000000ull;
static const uint64_t kWrapAddr = 0xfffffffffffffe00ull;
static const uint64_t kBuf = VIRTIO_REQ_BUFFERS;  // hostile chains' data
static const uint64_t kValidBuf = VIRTIO_REQ_BUFFERS + 0x1000;
static const uint64_t kTable1 = VIRTIO_REQ_TABLES;  // up to kLongTable entries
static const uint64_t kTable2 = VIRTIO_REQ_TABLES + 0x2000;

struct evil_case {
  const char *name;
  // Makes the hostile chains available and notifies; returns how many completions could come.
  // NULL `init` = plain virtio_init before it.
  unsigned (*run)(struct virtio_dev *d);
  const char *(*init)(struct virtio_dev *d);
};

static uint64_t g_wanted;

static uint64_t header(uint32_t type) {
  volatile struct blk_req_header *h =
      (volatile struct blk_req_header *)(uintptr_t)blk_header_addr(kHostileSlot);
  h->type = type;
  h->reserved = 0;
  h->sector = 0;
  *blk_status(kHostileSlot) = 0xff;
  return blk_header_addr(kHostileSlot);
}

static void desc_at(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                    uint16_t next) {
  volatile struct virtq_desc *t = (volatile struct virtq_desc *)(uintptr_t)table;
  t[i].addr = addr;
  t[i].len = len;
  t[i].flags = flags;
  t[i].next = next;
}

// A 3-descriptor IN request on descriptors first..first+2 with the given flags and data.
static void read_chain(struct virtq *q, uint16_t first, uint16_t hdr_flags, uint64_t data,
                       uint32_t len, uint16_t data_flags, uint16_t status_flags) {
  virtq_set_desc(q, first, header(kBlkTypeIn), 16, hdr_flags | kVirtqDescNext,
                 (uint16_t)(first + 1));
  virtq_set_desc(q, (uint16_t)(first + 1), data, len, data_flags | kVirtqDescNext,
                 (uint16_t)(first + 2));
  virtq_set_desc(q, (uint16_t)(first + 2), blk_status_addr(kHostileSlot), 1, status_flags, 0);
}

static void push_and_kick(struct virtio_dev *d, uint16_t head) {
  virtq_push(&d->q, head);
  virtio_notify(d, 0);  // always: the point is to make the device look
}

static unsigned addr_outside_ram(struct virtio_dev *d) {
  read_chain(&d->q, 0, 0, kOutsideRam, kBlkSectorSize, kVirtqDescWrite, kVirtqDescWrite);
  push_and_kick(d, 0);
  return 1;
}

// Two chains: a buffer straddling the end of RAM, and one whose addr + len wraps past 2^64.
static unsigned len_wraps(struct virtio_dev *d) {
  uint64_t ram_end = bootinfo_ram_end(VIRTIO_QUEUE_AREA);
  read_chain(&d->q, 0, 0, ram_end - kBlkSectorSize, 0x1000, kVirtqDescWrite, kVirtqDescWrite);
  read_chain(&d->q, 3, 0, kWrapAddr, 0x1000, kVirtqDescWrite, kVirtqDescWrite);
  virtq_push(&d->q, 0);
  push_and_kick(d, 3);
  return 2;
}

static unsigned chain_loop(struct virtio_dev *d) {
  virtq_set_desc(&d->q, 0, header(kBlkTypeIn), 16, kVirtqDescNext, 1);
  virtq_set_desc(&d->q, 1, kBuf, kBlkSectorSize, kVirtqDescWrite | kVirtqDescNext, 0);
  push_and_kick(d, 0);
  return 1;
}

// Section 2.6.5.3.1: no chain may be longer than the queue size. With INDIRECT_DESC: a
// well-formed request of kLongTable descriptors in one indirect table; without it: a NEXT chain
// through every descriptor and back to the head.
static unsigned chain_too_long(struct virtio_dev *d) {
  struct virtq *q = &d->q;
  if (d->accepted & kFeatureIndirectDesc) {
    desc_at(kTable1, 0, header(kBlkTypeIn), 16, kVirtqDescNext, 1);
    for (unsigned i = 1; i < kLongTable - 1; i++) {
      desc_at(kTable1, i, kBuf, kBlkSectorSize, kVirtqDescWrite | kVirtqDescNext,
              (uint16_t)(i + 1));
    }
    desc_at(kTable1, kLongTable - 1, blk_status_addr(kHostileSlot), 1, kVirtqDescWrite, 0);
    virtq_set_desc(q, 0, kTable1, kLongTable * 16, kVirtqDescIndirect, 0);
  } else {
    virtq_set_desc(q, 0, header(kBlkTypeIn), 16, kVirtqDescNext, 1);
    for (uint16_t i = 1; i < q->size; i++) {
      virtq_set_desc(q, i, kBuf, kBlkSectorSize, kVirtqDescWrite | kVirtqDescNext,
                     (uint16_t)((i + 1) % q->size));
    }
  }
  push_and_kick(d, 0);
  return 1;
}

// Section 2.6.5.3.1: no INDIRECT flag inside an indirect table. Table 1 holds one indirect
// descriptor naming table 2, a well-formed request.
static unsigned indirect_nested(struct virtio_dev *d) {
  desc_at(kTable2, 0, header(kBlkTypeIn), 16, kVirtqDescNext, 1);
  desc_at(kTable2, 1, kBuf, kBlkSectorSize, kVirtqDescWrite | kVirtqDescNext, 2);
  desc_at(kTable2, 2, blk_status_addr(kHostileSlot), 1, kVirtqDescWrite, 0);
  desc_at(kTable1, 0, kTable2, 3 * 16, kVirtqDescIndirect, 0);
  virtq_set_desc(&d->q, 0, kTable1, 16, kVirtqDescIndirect, 0);
  push_and_kick(d, 0);
  return 1;
}

// Three indirect descriptors: length 0, length 24 (not a multiple of 16), a table outside RAM.
static unsigned indirect_bad_len(struct virtio_dev *d) {
  desc_at(kTable2, 0, header(kBlkTypeIn), 16, kVirtqDescNext, 1);
  desc_at(kTable2, 1, kBuf, kBlkSectorSize, kVirtqDescWrite | kVirtqDescNext, 2);
  desc_at(kTable2, 2, blk_status_addr(kHostileSlot), 1, kVirtqDescWrite, 0);
  virtq_set_desc(&d->q, 0, kTable2, 0, kVirtqDescIndirect, 0);
  virtq_set_desc(&d->q, 1, kTable2, 24, kVirtqDescIndirect, 0);
  virtq_set_desc(&d->q, 2, kOutsideRam, 3 * 16, kVirtqDescIndirect, 0);
  virtq_push(&d->q, 0);
  virtq_push(&d->q, 1);
  push_and_kick(d, 2);
  return 3;
}

static unsigned writable_header(struct virtio_dev *d) {
  read_chain(&d->q, 0, kVirtqDescWrite, kBuf, kBlkSectorSize, kVirtqDescWrite, kVirtqDescWrite);
  push_and_kick(d, 0);
  return 1;
}

static unsigned readonly_status(struct virtio_dev *d) {
  read_chain(&d->q, 0, 0, kBuf, kBlkSectorSize, kVirtqDescWrite, 0);
  push_and_kick(d, 0);
  return 1;
}

static unsigned readonly_data_for_in(struct virtio_dev *d) {
  read_chain(&d->q, 0, 0, kBuf, kBlkSectorSize, 0, kVirtqDescWrite);
  push_and_kick(d, 0);
  return 1;
}

// Section 2.6.6: the driver never has more than queue-size buffers outstanding; here avail idx
// jumps by size + 5, every ring entry naming a well-formed request.
static unsigned avail_jump(struct virtio_dev *d) {
  struct virtq *q = &d->q;
  read_chain(q, 0, 0, kBuf, kBlkSectorSize, kVirtqDescWrite, kVirtqDescWrite);
  for (uint16_t i = 0; i < q->size; i++) q->avail->ring[i] = 0;
  virtq_set_avail_idx(q, (uint16_t)(q->avail_idx + q->size + 5));
  virtio_notify(d, 0);
  return q->size;
}

// QueueNotify before QueueReady, and for a queue that does not exist, before and after
// DRIVER_OK (section 4.2.2: the device ignores notifications it cannot act on).
static const char *notify_unready_init(struct virtio_dev *d) {
  const char *err;
  if ((err = virtio_reset(d)) || (err = virtio_negotiate(d, g_wanted)) ||
      (err = virtio_queue_setup(d))) {
    return err;
  }
  virtio_notify(d, 0);
  virtio_notify(d, kNonexistentQueue);
  virtio_queue_ready(d);
  virtio_driver_ok(d);
  return NULL;
}

static unsigned notify_unready(struct virtio_dev *d) {
  virtio_notify(d, kNonexistentQueue);
  return 0;
}

static unsigned desc_index_oob(struct virtio_dev *d) {
  push_and_kick(d, (uint16_t)(d->q.size + 3));
  return 1;
}

static const struct evil_case kCases[] = {
    {"addr-outside-ram", addr_outside_ram, 0},
    {"len-wraps", len_wraps, 0},
    {"chain-loop", chain_loop, 0},
    {"chain-too-long", chain_too_long, 0},
    {"indirect-nested", indirect_nested, 0},
    {"indirect-bad-len", indirect_bad_len, 0},
    {"writable-header", writable_header, 0},
    {"readonly-status", readonly_status, 0},
    {"readonly-data-for-in", readonly_data_for_in, 0},
    {"avail-jump", avail_jump, 0},
    {"notify-unready", notify_unready, notify_unready_init},
    {"desc-index-oob", desc_index_oob, 0},
};

// Collects up to `expected` completions of the hostile chains, stopping early on a
// configuration-change interrupt (a NEEDS_RESET announcement) or after kSettleMs of silence.
static unsigned settle(struct virtio_dev *d, unsigned expected) {
  unsigned seen = 0;
  uint32_t id, len;
  while (seen < expected) {
    while (seen < expected && virtq_pop(&d->q, &id, &len)) seen++;
    if (seen == expected || d->config_changes) break;
    if (!virtio_wait_used(d, kSettleMs) && !virtq_has_used(&d->q)) break;
  }
  return seen;
}

// A valid read of sector 0 on the top request slot (descriptors no hostile case uses but
// chain-too-long, which is over by then).
static int valid_read(struct virtio_dev *d) {
  unsigned k = d->q.size / kBlkDescsPerSlot - 1;
  int s = blk_do(d, k, kBlkTypeIn, 0, kValidBuf, kBlkSectorSize, true);
  if (s != kBlkStatusOk) return s;
  const volatile uint8_t *b = (const volatile uint8_t *)(uintptr_t)kValidBuf;
  for (unsigned o = 0; o < kBlkSectorSize; o++) {
    if (b[o] != blk_image_pattern(o)) return 0x100;  // wrong data
  }
  return kBlkStatusOk;
}

static const char *run_case(struct virtio_dev *d, const struct evil_case *c, bool *reset) {
  const char *err = c->init ? c->init(d) : virtio_init(d, g_wanted);
  if (err) return err;
  unsigned expected = c->run(d);
  unsigned completions = settle(d, expected);
  uint32_t status = virtio_status(d);
  console_printf(
      "probe: evil-queue %s detail completions %u/%u hostile-status 0x%x "
      "device-status 0x%x\n",
      c->name, completions, expected, *blk_status(kHostileSlot), status);
  *reset = false;
  int s = kBlkNoCompletion;
  if (!(status & kStatusNeedsReset)) {
    s = valid_read(d);
    status = virtio_status(d);
  }
  // A device may announce NEEDS_RESET late, after the valid request was made available.
  if (s != kBlkStatusOk && (status & kStatusNeedsReset)) {
    *reset = true;
    if ((err = virtio_init(d, g_wanted))) return err;
    s = valid_read(d);
  }
  if (s == 0x100) return "valid read returned wrong data";
  if (s != kBlkStatusOk) {
    return scenario_failf("valid read: %s %d, device status 0x%x",
                          s == kBlkNoCompletion ? "no completion" : "status", s, virtio_status(d));
  }
  return NULL;
}

const char *scenario_evil_queue(void) {
  struct virtio_dev *devs[kMaxVirtioMmioArgs];
  unsigned n = virtio_find(kVirtioIdBlock, devs, kMaxVirtioMmioArgs, 0);
  g_wanted = kBlkWantedFeatures | kFeatureIndirectDesc;
  struct virtio_dev *d = 0;
  for (unsigned i = 0; i < n && !d; i++) {
    if (virtio_init(devs[i], g_wanted) == NULL && !(devs[i]->accepted & kBlkFeatureRo)) {
      d = devs[i];
    }
    virtio_shutdown(devs[i]);
  }
  if (!d) return "no writable virtio-blk device";
  console_printf("probe: evil-queue device 0x%lx features 0x%lx\n", d->base, d->accepted);

  unsigned failed = 0;
  const char *first_failure = 0;
  for (unsigned i = 0; i < sizeof kCases / sizeof kCases[0]; i++) {
    bool reset;
    const char *err = run_case(d, &kCases[i], &reset);
    if (err) {
      console_printf("probe: evil-queue %s failed %s\n", kCases[i].name, err);
      if (!failed++) first_failure = kCases[i].name;
    } else {
      console_printf("probe: evil-queue %s %s\n", kCases[i].name, reset ? "reset" : "served");
    }
  }
  virtio_shutdown(d);
  console_printf("probe: evil-queue cases %u\n", (unsigned)(sizeof kCases / sizeof kCases[0]));
  if (failed) return scenario_failf("%u case(s) failed, first %s", failed, first_failure);
  return NULL;
}

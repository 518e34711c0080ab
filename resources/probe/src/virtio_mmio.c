#include "virtio_mmio.h"

#include "apic.h"
#include "bootinfo.h"
#include "console.h"
#include "interrupts.h"
#include "io.h"
#include "layout.h"
#include "scenario.h"
#include "virtio_mmio_arg.h"
#include "wait.h"

// Register offsets, virtio 1.1 section 4.2.2 (all accessed as 32-bit words).
enum {
  kRegMagic = 0x000,
  kRegVersion = 0x004,
  kRegDeviceId = 0x008,
  kRegDeviceFeatures = 0x010,
  kRegDeviceFeaturesSel = 0x014,
  kRegDriverFeatures = 0x020,
  kRegDriverFeaturesSel = 0x024,
  kRegQueueSel = 0x030,
  kRegQueueNumMax = 0x034,
  kRegQueueNum = 0x038,
  kRegQueueReady = 0x044,
  kRegQueueNotify = 0x050,
  kRegInterruptStatus = 0x060,
  kRegInterruptAck = 0x064,
  kRegStatus = 0x070,
  kRegQueueDescLow = 0x080,
  kRegQueueDescHigh = 0x084,
  kRegQueueDriverLow = 0x090,
  kRegQueueDriverHigh = 0x094,
  kRegQueueDeviceLow = 0x0a0,
  kRegQueueDeviceHigh = 0x0a4,
  kRegConfigGeneration = 0x0fc,
  kRegConfig = 0x100,
};

static const uint32_t kMagic = 0x74726976;  // "virt"
static const uint32_t kModernVersion = 2;
enum {
  kIoapicPins = 24,
  kResetPolls = 100000,  // QEMU and Firecracker complete a reset synchronously
};

static struct virtio_dev g_devs[kMaxVirtioMmioArgs];

static uint32_t rd(const struct virtio_dev *d, uint32_t reg) { return mmio_read32(d->base + reg); }
static void wr(const struct virtio_dev *d, uint32_t reg, uint32_t v) {
  mmio_write32(d->base + reg, v);
}

static void on_interrupt(uint8_t vector) {
  struct virtio_dev *d = &g_devs[vector - kVecVirtioBase];
  uint32_t bits = rd(d, kRegInterruptStatus);
  // Acknowledge before the caller looks at the used ring: a completion published after this
  // raises the line again.
  wr(d, kRegInterruptAck, bits);
  d->interrupts++;
  if (bits & kIntConfigChange) d->config_changes++;
}

unsigned virtio_find(uint32_t device_id, struct virtio_dev **out, unsigned max, unsigned *legacy) {
  struct virtio_mmio_arg args[kMaxVirtioMmioArgs];
  unsigned n = virtio_mmio_args(args, kMaxVirtioMmioArgs);
  unsigned found = 0;
  if (legacy) *legacy = 0;
  for (unsigned i = 0; i < n && found < max; i++) {
    if (args[i].size < kRegConfig || args[i].base >= 0x100000000ull) continue;  // mapped 0-4 GiB
    struct virtio_dev *d = &g_devs[i];
    d->slot = i;
    d->base = args[i].base;
    d->gsi = args[i].gsi;
    d->vector = (uint8_t)(kVecVirtioBase + i);
    if (rd(d, kRegMagic) != kMagic) continue;
    d->device_id = rd(d, kRegDeviceId);
    if (d->device_id != device_id) continue;
    if (rd(d, kRegVersion) != kModernVersion) {
      if (legacy) ++*legacy;
      continue;
    }
    out[found++] = d;
  }
  return found;
}

uint32_t virtio_status(const struct virtio_dev *d) { return rd(d, kRegStatus); }

void virtio_notify(const struct virtio_dev *d, uint32_t queue) { wr(d, kRegQueueNotify, queue); }

void virtio_kick(struct virtio_dev *d) {
  if (virtq_needs_notify(&d->q)) virtio_notify(d, 0);
}

void virtio_kick_queue(struct virtio_dev *d, unsigned i) {
  if (virtq_needs_notify(virtio_queue(d, i))) virtio_notify(d, i);
}

uint64_t virtio_config64(const struct virtio_dev *d, uint32_t offset) {
  for (;;) {
    uint32_t gen = rd(d, kRegConfigGeneration);
    uint64_t v = rd(d, kRegConfig + offset) | (uint64_t)rd(d, kRegConfig + offset + 4) << 32;
    if (rd(d, kRegConfigGeneration) == gen) return v;
  }
}

const char *virtio_reset(struct virtio_dev *d) {
  wr(d, kRegStatus, 0);
  // Section 4.2.3.1: the driver waits for Status to read 0 after writing it.
  for (unsigned i = 0; i < kResetPolls; i++) {
    if (rd(d, kRegStatus) == 0) return NULL;
    cpu_pause();
  }
  return scenario_failf("device at 0x%lx: Status not 0 after reset", d->base);
}

const char *virtio_negotiate(struct virtio_dev *d, uint64_t wanted) {
  wr(d, kRegStatus, kStatusAcknowledge);
  wr(d, kRegStatus, kStatusAcknowledge | kStatusDriver);
  wr(d, kRegDeviceFeaturesSel, 0);
  uint64_t lo = rd(d, kRegDeviceFeatures);
  wr(d, kRegDeviceFeaturesSel, 1);
  d->offered = lo | (uint64_t)rd(d, kRegDeviceFeatures) << 32;
  if (!(d->offered & kFeatureVersion1)) {
    wr(d, kRegStatus, kStatusFailed);
    return scenario_failf("device at 0x%lx does not offer VIRTIO_F_VERSION_1", d->base);
  }
  d->accepted = d->offered & (wanted | kFeatureVersion1);
  wr(d, kRegDriverFeaturesSel, 0);
  wr(d, kRegDriverFeatures, (uint32_t)d->accepted);
  wr(d, kRegDriverFeaturesSel, 1);
  wr(d, kRegDriverFeatures, (uint32_t)(d->accepted >> 32));
  uint32_t s = kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk;
  wr(d, kRegStatus, s);
  if (!(rd(d, kRegStatus) & kStatusFeaturesOk)) {
    wr(d, kRegStatus, kStatusFailed);
    return scenario_failf("device at 0x%lx refused features 0x%lx", d->base, d->accepted);
  }
  return NULL;
}

struct virtq *virtio_queue(struct virtio_dev *d, unsigned i) {
  return i == 0 ? &d->q : &d->extra_q[i - 1];
}

// Queue 0 keeps its historical place (one 32 KiB slot per device); queues 1.. live in a second
// area with 0x4000 bytes each (descriptors, avail +0x1000, used +0x2000).
static uint64_t queue_memory(const struct virtio_dev *d, unsigned i) {
  if (i == 0) return VIRTIO_QUEUE_AREA + (uint64_t)d->slot * VIRTIO_QUEUE_SLOT_SIZE;
  return VIRTIO_EXTRA_QUEUE_AREA + (uint64_t)d->slot * VIRTIO_EXTRA_QUEUE_SLOT_SIZE +
         (uint64_t)(i - 1) * VIRTIO_EXTRA_QUEUE_SIZE;
}

static const char *queue_setup(struct virtio_dev *d, unsigned i) {
  uint64_t mem = queue_memory(d, i);
  if (!bootinfo_is_ram(mem, i == 0 ? VIRTIO_QUEUE_SLOT_SIZE : VIRTIO_EXTRA_QUEUE_SIZE)) {
    return scenario_failf("queue memory 0x%lx is not RAM", mem);
  }
  wr(d, kRegQueueSel, i);
  if (rd(d, kRegQueueReady) != 0) return scenario_failf("queue %u ready after reset", i);
  uint32_t max = rd(d, kRegQueueNumMax);
  if (max == 0) return scenario_failf("queue %u not available (QueueNumMax 0)", i);
  uint32_t size = max < kVirtqMaxSize ? max : kVirtqMaxSize;
  struct virtq *q = virtio_queue(d, i);
  virtq_init(q, mem, (uint16_t)size, (d->accepted & kFeatureRingEventIdx) != 0);
  wr(d, kRegQueueNum, size);
  wr(d, kRegQueueDescLow, (uint32_t)q->desc_addr);
  wr(d, kRegQueueDescHigh, (uint32_t)(q->desc_addr >> 32));
  wr(d, kRegQueueDriverLow, (uint32_t)q->avail_addr);
  wr(d, kRegQueueDriverHigh, (uint32_t)(q->avail_addr >> 32));
  wr(d, kRegQueueDeviceLow, (uint32_t)q->used_addr);
  wr(d, kRegQueueDeviceHigh, (uint32_t)(q->used_addr >> 32));
  return NULL;
}

const char *virtio_queue_setup(struct virtio_dev *d) {
  d->num_queues = 1;
  return queue_setup(d, 0);
}

void virtio_queue_ready(struct virtio_dev *d) {
  wr(d, kRegQueueSel, 0);
  wr(d, kRegQueueReady, 1);
}

void virtio_driver_ok(struct virtio_dev *d) {
  d->config_changes = 0;
  irq_set_handler(d->vector, on_interrupt);
  ioapic_route(d->gsi, d->vector, lapic_id());
  wr(d, kRegStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
}

const char *virtio_init(struct virtio_dev *d, uint64_t wanted) {
  return virtio_init_queues(d, wanted, 1);
}

const char *virtio_init_queues(struct virtio_dev *d, uint64_t wanted, unsigned num_queues) {
  if (d->gsi >= kIoapicPins) return scenario_failf("GSI %u beyond the IOAPIC's pins", d->gsi);
  if (num_queues == 0 || num_queues > kVirtioMaxQueues) return "bad queue count";
  const char *err;
  if ((err = virtio_reset(d))) return err;
  if ((err = virtio_negotiate(d, wanted))) return err;
  d->num_queues = num_queues;
  for (unsigned i = 0; i < num_queues; i++) {
    if ((err = queue_setup(d, i))) return err;
  }
  for (unsigned i = 0; i < num_queues; i++) {
    wr(d, kRegQueueSel, i);
    wr(d, kRegQueueReady, 1);
  }
  virtio_driver_ok(d);
  return NULL;
}

void virtio_shutdown(struct virtio_dev *d) {
  wr(d, kRegStatus, 0);
  if (d->gsi < kIoapicPins) ioapic_mask(d->gsi);
  irq_set_handler(d->vector, 0);
}

// A configuration-change interrupt ends the wait early: it is how a device announces
// DEVICE_NEEDS_RESET (section 2.1.2). The count restarts at every init.
static bool used_or_config(void *p) {
  struct virtio_dev *d = p;
  return virtq_has_used(&d->q) || d->config_changes != 0;
}

bool virtio_wait_used(struct virtio_dev *d, uint32_t timeout_ms) {
  virtq_arm(&d->q);
  return wait_until(used_or_config, d, timeout_ms);
}

struct queue_wait {
  struct virtio_dev *d;
  uint32_t mask;
};

static bool any_used_or_config(void *p) {
  struct queue_wait *w = p;
  if (w->d->config_changes != 0) return true;
  for (unsigned i = 0; i < w->d->num_queues; i++) {
    if ((w->mask & (1u << i)) && virtq_has_used(virtio_queue(w->d, i))) return true;
  }
  return false;
}

bool virtio_wait_queues(struct virtio_dev *d, uint32_t queue_mask, uint32_t timeout_ms) {
  for (unsigned i = 0; i < d->num_queues; i++) {
    if (queue_mask & (1u << i)) virtq_arm(virtio_queue(d, i));
  }
  struct queue_wait w = {d, queue_mask};
  return wait_until(any_used_or_config, &w, timeout_ms);
}

bool virtio_needs_reset(const struct virtio_dev *d) {
  return d->config_changes != 0 || (rd(d, kRegStatus) & kStatusNeedsReset) != 0;
}

// The probe's virtio-mmio driver core (virtio 1.1 sections 2 and 4.2, modern interface only,
// written from the specification, sharing nothing with the VMM): discovery of the devices named
// by "virtio_mmio.device=" entries, the initialisation sequence of section 3.1.1 with queue 0,
// the device interrupt (IOAPIC pin = GSI -> vector kVecVirtioBase + slot), and waiting halted
// for used buffers.
#ifndef PROBE_VIRTIO_MMIO_H
#define PROBE_VIRTIO_MMIO_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio_mmio_arg.h"
#include "virtq.h"

enum {
  kVirtioIdBlock = 2,
  kVirtioIdEntropy = 4,
  kVirtioIdNet = 1,
  kVirtioIdVsock = 19,
  kVirtioMaxQueues = 4,  // queue 0 in VIRTIO_QUEUE_AREA, 1-3 in VIRTIO_EXTRA_QUEUE_AREA
  // Device status bits (section 2.1).
  kStatusAcknowledge = 1,
  kStatusDriver = 2,
  kStatusDriverOk = 4,
  kStatusFeaturesOk = 8,
  kStatusNeedsReset = 0x40,
  kStatusFailed = 0x80,
  // InterruptStatus bits (section 4.2.2).
  kIntUsedBuffer = 1,
  kIntConfigChange = 2,
};

// Feature bits (sections 5.2.3, 6).
static const uint64_t kFeatureRingEventIdx = 1ull << 29;
static const uint64_t kFeatureIndirectDesc = 1ull << 28;
static const uint64_t kFeatureVersion1 = 1ull << 32;

struct virtio_dev {
  unsigned slot;  // index among the virtio_mmio.device entries: fixes queue memory and vector
  uint64_t base;
  uint32_t gsi;
  uint8_t vector;
  uint32_t device_id;
  uint64_t offered;                            // device features
  uint64_t accepted;                           // features negotiated
  struct virtq q;                              // queue 0
  struct virtq extra_q[kVirtioMaxQueues - 1];  // queues 1.. (virtio_init_queues)
  unsigned num_queues;                         // queues set up by the last init
  volatile uint32_t interrupts;
  volatile uint32_t config_changes;  // interrupts with the configuration-change bit
};

// The version-2 devices of `device_id` in command-line order (at most `max`). Windows with a
// bad magic, DeviceID 0 or another version are skipped; *legacy counts version-1 devices.
unsigned virtio_find(uint32_t device_id, struct virtio_dev **out, unsigned max, unsigned *legacy);

// Section 3.1.1 in full: reset, negotiate (VERSION_1 required, plus `wanted` & offered), queue 0
// with min(QueueNumMax, 256) entries, ready, DRIVER_OK; routes the interrupt. NULL = success.
const char *virtio_init(struct virtio_dev *d, uint64_t wanted);
// The same with queues 0..num_queues-1 (at most kVirtioMaxQueues), each with
// min(QueueNumMax, 256) entries (net: 2, vsock: 3).
const char *virtio_init_queues(struct virtio_dev *d, uint64_t wanted, unsigned num_queues);
// Queue i (0 = d->q).
struct virtq *virtio_queue(struct virtio_dev *d, unsigned i);
// The same steps one at a time, for tests that do something hostile between them.
const char *virtio_reset(struct virtio_dev *d);
const char *virtio_negotiate(struct virtio_dev *d, uint64_t wanted);
const char *virtio_queue_setup(struct virtio_dev *d);
void virtio_queue_ready(struct virtio_dev *d);
void virtio_driver_ok(struct virtio_dev *d);
// Resets the device and masks its interrupt (end of a scenario).
void virtio_shutdown(struct virtio_dev *d);

uint32_t virtio_status(const struct virtio_dev *d);
void virtio_notify(const struct virtio_dev *d, uint32_t queue);
// Notifies queue 0 if the device asked for it (event index or NO_NOTIFY flag).
void virtio_kick(struct virtio_dev *d);
// The same for queue i.
void virtio_kick_queue(struct virtio_dev *d, unsigned i);
// Device configuration space, read consistently under ConfigGeneration (section 4.2.2.2).
uint64_t virtio_config64(const struct virtio_dev *d, uint32_t offset);

// Waits halted until queue 0 has an unconsumed used entry, or a config-change interrupt has
// arrived since the last init (the device may have set DEVICE_NEEDS_RESET), or timeout_ms passed.
bool virtio_wait_used(struct virtio_dev *d, uint32_t timeout_ms);
// The same for any of the queues whose bit is set in queue_mask.
bool virtio_wait_queues(struct virtio_dev *d, uint32_t queue_mask, uint32_t timeout_ms);
// Whether a configuration-change interrupt arrived or Status has DEVICE_NEEDS_RESET.
bool virtio_needs_reset(const struct virtio_dev *d);

#endif

// blk-bench: sequential throughput of the first writable virtio-blk device. Reads
// probe.bench_mib MiB (default 256) in probe.bench_req_kib KiB requests (default 512) with
// probe.bench_depth (default 64) in flight, then writes the same range the same way. Each
// request is header + one data descriptor + status; the data buffers (VIRTIO_BULK_AREA) are
// never touched by the probe. Phase lines let the host timestamp each phase.
#include <stdint.h>

#include "bootinfo.h"
#include "cmdline.h"
#include "console.h"
#include "scenario.h"
#include "virtio_blk.h"

enum { kTimeoutMs = 10000 };  // per completion batch; generous for an emulated host

struct bench {
  struct virtio_dev *d;
  uint64_t req_bytes;
  uint32_t depth;
  uint64_t requests;
};

static uint64_t slot_buffer(const struct bench *b, unsigned k) {
  return VIRTIO_BULK_AREA + (uint64_t)k * b->req_bytes;
}

static const char *phase(struct bench *b, uint32_t type) {
  struct virtq *q = &b->d->q;
  uint64_t next = 0, done = 0;
  uint32_t sectors_per_req = (uint32_t)(b->req_bytes / kBlkSectorSize);
  bool writes = type == kBlkTypeIn;  // the device writes the data buffer on reads
  for (unsigned k = 0; k < b->depth && next < b->requests; k++, next++) {
    blk_submit(b->d, k, type, next * sectors_per_req, slot_buffer(b, k), (uint32_t)b->req_bytes,
               writes);
  }
  virtio_kick(b->d);
  while (done < b->requests) {
    uint32_t id, len;
    bool any = false;
    while (virtq_pop(q, &id, &len)) {
      unsigned k = id / kBlkDescsPerSlot;
      if (id % kBlkDescsPerSlot || k >= b->depth) return scenario_failf("used id %u", id);
      uint8_t s = *blk_status(k);
      if (s != kBlkStatusOk) {
        return scenario_failf("request %lu: status %u", done, s);
      }
      done++;
      if (next < b->requests) {
        blk_submit(b->d, k, type, next * sectors_per_req, slot_buffer(b, k), (uint32_t)b->req_bytes,
                   writes);
        next++;
        any = true;
      }
    }
    if (any) virtio_kick(b->d);
    if (done == b->requests) break;
    if (!virtio_wait_used(b->d, kTimeoutMs) || !virtq_has_used(q)) {
      return scenario_failf("%lu of %lu requests done, then none for %u ms (status 0x%x)", done,
                            b->requests, kTimeoutMs, virtio_status(b->d));
    }
  }
  return NULL;
}

static const char *run(struct bench *b, uint64_t mib) {
  const char *err = virtio_init(b->d, kBlkWantedFeatures);
  if (err) return err;
  if (b->d->accepted & kBlkFeatureRo) return "first block device is read-only";
  uint64_t capacity = blk_capacity(b->d);
  if (capacity * kBlkSectorSize < (mib << 20)) {
    return scenario_failf("capacity %lu sectors < %lu MiB", capacity, mib);
  }
  if ((uint64_t)b->depth * kBlkDescsPerSlot > b->d->q.size) {
    return scenario_failf("depth %u needs %u descriptors, queue has %u", b->depth,
                          b->depth * kBlkDescsPerSlot, b->d->q.size);
  }
  console_printf("probe: blk-bench read-start\n");
  if ((err = phase(b, kBlkTypeIn))) return err;
  console_printf("probe: blk-bench read-done %lu\n", b->requests);
  console_printf("probe: blk-bench write-start\n");
  if ((err = phase(b, kBlkTypeOut))) return err;
  console_printf("probe: blk-bench write-done %lu\n", b->requests);
  return NULL;
}

const char *scenario_blk_bench(void) {
  uint64_t mib = 256, req_kib = 512, depth = 64;
  cmdline_param_u64("probe.bench_mib", &mib);
  cmdline_param_u64("probe.bench_req_kib", &req_kib);
  cmdline_param_u64("probe.bench_depth", &depth);
  if (mib == 0 || req_kib == 0 || depth == 0 || req_kib > (1u << 20) ||
      depth > kVirtqMaxSize / kBlkDescsPerSlot || (mib << 10) % req_kib != 0) {
    return scenario_failf("bad parameters: %lu MiB in %lu KiB requests, depth %lu", mib, req_kib,
                          depth);
  }
  uint64_t buffers = depth * req_kib << 10;
  if (buffers > VIRTIO_BULK_AREA_SIZE) {
    return scenario_failf("depth x request = %lu KiB > %u KiB of buffers", buffers >> 10,
                          VIRTIO_BULK_AREA_SIZE >> 10);
  }
  if (!bootinfo_is_ram(VIRTIO_BULK_AREA, buffers)) {
    return scenario_failf("buffers 0x%x-0x%lx are not all RAM", VIRTIO_BULK_AREA,
                          VIRTIO_BULK_AREA + buffers);
  }
  struct virtio_dev *devs[kMaxVirtioMmioArgs];
  unsigned n = virtio_find(kVirtioIdBlock, devs, kMaxVirtioMmioArgs, 0);
  struct virtio_dev *d = 0;
  for (unsigned i = 0; i < n && !d; i++) {
    if (virtio_init(devs[i], kBlkWantedFeatures) == NULL && !(devs[i]->accepted & kBlkFeatureRo)) {
      d = devs[i];
    }
    virtio_shutdown(devs[i]);
  }
  if (!d) return "no writable virtio-blk device";
  struct bench b = {d, req_kib << 10, (uint32_t)depth, (mib << 10) / req_kib};
  const char *err = run(&b, mib);
  virtio_shutdown(d);
  return err;
}

// blk-ro: every virtio-blk device offering VIRTIO_BLK_F_RO serves a read of sector 0 (checked
// against the host's pattern) and refuses a 512-byte write with IOERR (section 5.2.6.2).
#include <stdint.h>

#include "console.h"
#include "scenario.h"
#include "virtio_blk.h"

static const uint64_t kBuf = VIRTIO_REQ_BUFFERS;

static const char *run_device(struct virtio_dev *dev) {
  volatile uint8_t *b = (volatile uint8_t *)(uintptr_t)kBuf;
  int s = blk_do(dev, 0, kBlkTypeIn, 0, kBuf, kBlkSectorSize, true);
  if (s != kBlkStatusOk) return scenario_failf("read of sector 0: status %d", s);
  for (uint64_t o = 0; o < kBlkSectorSize; o++) {
    if (b[o] != blk_image_pattern(o)) {
      return scenario_failf("image byte %lu is 0x%x, want 0x%x", o, b[o], blk_image_pattern(o));
    }
  }
  s = blk_do(dev, 0, kBlkTypeOut, 0, kBuf, kBlkSectorSize, false);
  if (s != kBlkStatusIoErr) return scenario_failf("write of sector 0: status %d, want 1", s);
  return NULL;
}

const char *scenario_blk_ro(void) {
  struct virtio_dev *devs[kMaxVirtioMmioArgs];
  unsigned legacy;
  unsigned n = virtio_find(kVirtioIdBlock, devs, kMaxVirtioMmioArgs, &legacy);
  unsigned ro = 0;
  for (unsigned i = 0; i < n; i++) {
    const char *err = virtio_init(devs[i], kBlkWantedFeatures);
    if (!err && (devs[i]->accepted & kBlkFeatureRo)) {
      console_printf("probe: blk-ro %u capacity %lu\n", ro, blk_capacity(devs[i]));
      err = run_device(devs[i]);
      ro++;
    }
    virtio_shutdown(devs[i]);
    if (err) return scenario_failf("device at 0x%lx: %s", devs[i]->base, err);
  }
  if (ro == 0) {
    return scenario_failf("no read-only virtio-blk device (%u writable, %u legacy)", n, legacy);
  }
  return NULL;
}

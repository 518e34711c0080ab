// Linux's "virtio_mmio.device=<size>@<baseaddr>:<irq>[:<id>]" parameter
// (drivers/virtio/virtio_mmio.c), which Firecracker adds for every virtio-mmio device, e.g.
// "virtio_mmio.device=4K@0xc0001000:5". Virtio scenarios find their devices through it.
#ifndef PROBE_VIRTIO_MMIO_ARG_H
#define PROBE_VIRTIO_MMIO_ARG_H

#include <stdbool.h>
#include <stdint.h>

struct virtio_mmio_arg {
  uint64_t base;
  uint64_t size;
  uint32_t gsi;
};

enum { kMaxVirtioMmioArgs = 32 };

// Fills up to `max` entries in command-line order; returns how many were parsed. Malformed
// entries are skipped.
unsigned virtio_mmio_args(struct virtio_mmio_arg *out, unsigned max);
bool virtio_mmio_arg_parse(const char *value, unsigned long len, struct virtio_mmio_arg *out);

#endif

// blk-swap: the first virtio-blk device gets a new backing file while the guest runs (ember's and
// Firecracker's PATCH /drives, QEMU's block_resize). The device announces it with a
// configuration-change interrupt (virtio 1.1 section 4.2.2: InterruptStatus bit 1), after which
// the driver re-reads the configuration under ConfigGeneration and goes on using the queue as it
// is: no reset, the requests of the same running device now served from the new file.
//
// Prints "probe: blk-swap capacity <sectors>" and "probe: blk-swap sector0 <hex>" (the first 8
// bytes of sector 0), then "probe: blk-swap waiting", the host's cue to swap the file. Waits
// halted, at most probe.swap_timeout_ms (default 60000), for the interrupt, which the driver's
// handler acknowledges through InterruptACK. Then "probe: blk-swap changed capacity <sectors>",
// "probe: blk-swap sector0 <hex>" read again, and "probe: blk-swap last-sector <n> <hex>" for
// the new last sector (beyond the old capacity when the file grew, so the new size is served);
// a read at the new capacity must fail with IOERR.
#include <stdbool.h>
#include <stdint.h>

#include "apic.h"
#include "cmdline.h"
#include "console.h"
#include "interrupts.h"
#include "io.h"
#include "scenario.h"
#include "virtio_blk.h"

enum {
  // virtio-mmio registers read here besides the driver's (virtio 1.1 section 4.2.2).
  kRegInterruptStatus = 0x060,
  kRegConfigGeneration = 0x0fc,
  kRegConfig = 0x100,
  kConfigReadTries = 1000,  // a device changing its configuration without end is a failure
  // The bounded wait needs no 10 ms ticker: the interrupt itself ends the halt, so the timer only
  // has to notice the timeout. Every wake-up costs a VM exit, dear on a nested, emulated host.
  kWaitPeriodMs = 100,
  kBusClocksPerMs = 1000000,  // the LAPIC timer's 1 GHz bus clock under KVM and QEMU (wait.h)
  kHexBytes = 8,
};

static const uint64_t kDefaultTimeoutMs = 60000;
static const uint64_t kSectorBuf = VIRTIO_REQ_BUFFERS;

struct blk_config {
  uint64_t capacity;    // sectors
  uint32_t generation;  // the ConfigGeneration it was read under
};

// Section 4.2.2.2: the capacity (two 32-bit halves) is consistent only if ConfigGeneration is
// the same before and after reading it.
static const char *read_config(const struct virtio_dev *d, struct blk_config *out) {
  for (unsigned i = 0; i < kConfigReadTries; i++) {
    uint32_t gen = mmio_read32(d->base + kRegConfigGeneration);
    uint64_t lo = mmio_read32(d->base + kRegConfig);
    uint64_t hi = mmio_read32(d->base + kRegConfig + 4);
    if (mmio_read32(d->base + kRegConfigGeneration) == gen) {
      *out = (struct blk_config){lo | hi << 32, gen};
      return NULL;
    }
  }
  return "ConfigGeneration never stable across a capacity read";
}

static volatile uint64_t g_periods;

static void on_period(uint8_t vector) {
  (void)vector;
  g_periods++;
}

// Halted until the driver's interrupt handler (which acknowledges every InterruptStatus bit it
// reads) has counted a configuration change, or about timeout_ms have passed.
static bool wait_config_change(struct virtio_dev *d, uint64_t timeout_ms) {
  const uint64_t periods = (timeout_ms + kWaitPeriodMs - 1) / kWaitPeriodMs;
  cpu_cli();
  g_periods = 0;
  irq_set_handler(kVecTicker, on_period);
  lapic_timer_periodic(kVecTicker, kWaitPeriodMs * kBusClocksPerMs);
  bool changed;
  for (;;) {
    if ((changed = d->config_changes != 0) || g_periods >= periods) break;
    cpu_sti_hlt_cli();
  }
  lapic_timer_stop();
  irq_set_handler(kVecTicker, 0);
  return changed;
}

// Reads one sector into kSectorBuf and formats its first kHexBytes bytes, in order.
static const char *read_sector(struct virtio_dev *d, uint64_t sector, char hex[2 * kHexBytes + 1]) {
  static const char kDigits[] = "0123456789abcdef";
  volatile uint8_t *buf = (volatile uint8_t *)(uintptr_t)kSectorBuf;
  for (unsigned i = 0; i < kHexBytes; i++) buf[i] = 0;
  int status = blk_do(d, 0, kBlkTypeIn, sector, kSectorBuf, kBlkSectorSize, true);
  if (status == kBlkNoCompletion) {
    return scenario_failf("read of sector %lu: no completion", sector);
  }
  if (status != kBlkStatusOk) {
    return scenario_failf("read of sector %lu: status %d", sector, status);
  }
  for (unsigned i = 0; i < kHexBytes; i++) {
    hex[2 * i] = kDigits[buf[i] >> 4];
    hex[2 * i + 1] = kDigits[buf[i] & 15];
  }
  hex[2 * kHexBytes] = 0;
  return NULL;
}

static const char *before_swap(struct virtio_dev *d, struct blk_config *cfg) {
  const char *err;
  char hex[2 * kHexBytes + 1];
  if ((err = read_config(d, cfg))) return err;
  if (cfg->capacity == 0) return "capacity 0";
  console_printf("probe: blk-swap capacity %lu\n", cfg->capacity);
  if ((err = read_sector(d, 0, hex))) return err;
  console_printf("probe: blk-swap sector0 %s\n", hex);
  return NULL;
}

static const char *await_swap(struct virtio_dev *d, const struct blk_config *old) {
  uint64_t timeout_ms = kDefaultTimeoutMs;
  cmdline_param_u64("probe.swap_timeout_ms", &timeout_ms);
  const uint32_t interrupts_before = d->interrupts;
  console_printf("probe: blk-swap waiting\n");
  if (!wait_config_change(d, timeout_ms)) {
    return scenario_failf("no configuration-change interrupt within %lu ms (%u other interrupts)",
                          timeout_ms, d->interrupts - interrupts_before);
  }
  uint32_t pending = mmio_read32(d->base + kRegInterruptStatus);
  if (pending & kIntConfigChange) {
    return scenario_failf("InterruptStatus 0x%x after InterruptACK", pending);
  }
  // A new backing file changes the configuration; it is not an error the driver must reset for.
  if (virtio_status(d) & kStatusNeedsReset) return "DEVICE_NEEDS_RESET after the change";
  if (mmio_read32(d->base + kRegConfigGeneration) == old->generation) {
    return scenario_failf("ConfigGeneration still %u after the change", old->generation);
  }
  // The running device is used as it is: requests must now complete again rather than end the
  // driver's waits as a reset request would.
  d->config_changes = 0;
  return NULL;
}

static const char *after_swap(struct virtio_dev *d) {
  const char *err;
  char hex[2 * kHexBytes + 1];
  struct blk_config cfg;
  if ((err = read_config(d, &cfg))) return err;
  if (cfg.capacity == 0) return "capacity 0 after the change";
  console_printf("probe: blk-swap changed capacity %lu\n", cfg.capacity);
  if ((err = read_sector(d, 0, hex))) return err;
  console_printf("probe: blk-swap sector0 %s\n", hex);
  if ((err = read_sector(d, cfg.capacity - 1, hex))) return err;
  console_printf("probe: blk-swap last-sector %lu %s\n", cfg.capacity - 1, hex);
  int status = blk_do(d, 0, kBlkTypeIn, cfg.capacity, kSectorBuf, kBlkSectorSize, true);
  if (status != kBlkStatusIoErr) {
    return scenario_failf("read at the new capacity %lu: status %d, want IOERR", cfg.capacity,
                          status);
  }
  return NULL;
}

const char *scenario_blk_swap(void) {
  struct virtio_dev *dev;
  unsigned legacy;
  if (virtio_find(kVirtioIdBlock, &dev, 1, &legacy) == 0) {
    return scenario_failf("no virtio-blk device (%u legacy)", legacy);
  }
  struct blk_config old;
  const char *err = virtio_init(dev, kBlkWantedFeatures);
  if (!err) err = before_swap(dev, &old);
  if (!err) err = await_swap(dev, &old);
  if (!err) err = after_swap(dev);
  virtio_shutdown(dev);
  return err;
}

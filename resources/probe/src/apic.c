#include "apic.h"

#include "io.h"

// Register offsets: SDM vol. 3, table 11-1 (LAPIC); 82093AA datasheet (IOAPIC).
static const uint64_t kLapicBase = 0xfee00000;
enum {
  kLapicId = 0x20,
  kLapicTpr = 0x80,
  kLapicEoi = 0xb0,
  kLapicSvr = 0xf0,
  kLapicIcrLow = 0x300,
  kLapicIcrHigh = 0x310,
  kLapicLvtTimer = 0x320,
  kLapicTimerInit = 0x380,
  kLapicTimerDivide = 0x3e0,
  kSvrEnable = 0x100,
  kIcrPending = 0x1000,
  kLvtMasked = 0x10000,
  kLvtPeriodic = 0x20000,
  kDivideBy1 = 0xb,
};

static const uint64_t kIoapicBase = 0xfec00000;
enum {
  kIoregsel = 0x00,
  kIowin = 0x10,
  kIoredtbl = 0x10,  // + 2 * pin: low dword, + 1: high dword
  kRedirMasked = 0x10000,
};

static uint32_t lapic_read(uint32_t reg) { return mmio_read32(kLapicBase + reg); }
static void lapic_write(uint32_t reg, uint32_t v) { mmio_write32(kLapicBase + reg, v); }

void lapic_enable(void) {
  lapic_write(kLapicTpr, 0);
  lapic_write(kLapicSvr, kSvrEnable | 0xff);
}

uint32_t lapic_id(void) { return lapic_read(kLapicId) >> 24; }

void lapic_eoi(void) { lapic_write(kLapicEoi, 0); }

bool lapic_send_ipi(uint32_t dest, uint32_t icr_low) {
  lapic_write(kLapicIcrHigh, dest << 24);
  lapic_write(kLapicIcrLow, icr_low);
  for (unsigned i = 0; i < 100000; i++) {
    if (!(lapic_read(kLapicIcrLow) & kIcrPending)) return true;
    cpu_pause();
  }
  return false;
}

void lapic_timer_periodic(uint8_t vector, uint32_t count) {
  lapic_write(kLapicTimerDivide, kDivideBy1);
  lapic_write(kLapicLvtTimer, kLvtPeriodic | vector);
  lapic_write(kLapicTimerInit, count);
}

void lapic_timer_stop(void) {
  lapic_write(kLapicTimerInit, 0);
  lapic_write(kLapicLvtTimer, kLvtMasked);
}

static void ioapic_write(uint32_t reg, uint32_t v) {
  mmio_write32(kIoapicBase + kIoregsel, reg);
  mmio_write32(kIoapicBase + kIowin, v);
}

void ioapic_route(unsigned pin, uint8_t vector, uint32_t dest) {
  ioapic_write(kIoredtbl + 2 * pin, kRedirMasked);
  ioapic_write(kIoredtbl + 2 * pin + 1, dest << 24);
  ioapic_write(kIoredtbl + 2 * pin, vector);
}

void ioapic_mask(unsigned pin) { ioapic_write(kIoredtbl + 2 * pin, kRedirMasked); }

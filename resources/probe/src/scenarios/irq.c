// irq: PIT channel 0 interrupts reach the BSP through the IOAPIC and LAPIC.
#include <stdint.h>

#include "apic.h"
#include "interrupts.h"
#include "legacy.h"
#include "scenario.h"
#include "wait.h"

enum {
  kWantTicks = 3,
  kPitHz = 1000,  // divisor 1193
  kTimeoutMs = 2000,
  // KVM's in-kernel PIT raises GSI 0 (IOAPIC pin 0); QEMU wires ISA IRQ 0 to IOAPIC pin 2 (the
  // MP-table/MADT interrupt source override). Both are routed; only one fires.
  kPitPinKvm = 0,
  kPitPinQemu = 2,
};

static volatile uint32_t g_pit_ticks;

static void on_pit(uint8_t vector) {
  (void)vector;
  g_pit_ticks++;
}

static bool enough_ticks(void *ctx) {
  (void)ctx;
  return g_pit_ticks >= kWantTicks;
}

const char *scenario_irq(void) {
  g_pit_ticks = 0;
  irq_set_handler(kVecPit, on_pit);
  pic_mask_all();
  uint32_t bsp = lapic_id();
  ioapic_route(kPitPinKvm, kVecPit, bsp);
  ioapic_route(kPitPinQemu, kVecPit, bsp);
  pit_start_periodic(kPitHz);
  bool ok = wait_until(enough_ticks, 0, kTimeoutMs);  // returns with interrupts off
  ioapic_mask(kPitPinKvm);
  ioapic_mask(kPitPinQemu);
  pit_stop();
  irq_set_handler(kVecPit, 0);
  if (!ok) return scenario_failf("%u of %u PIT ticks in %u ms", g_pit_ticks, kWantTicks, kTimeoutMs);
  return NULL;
}

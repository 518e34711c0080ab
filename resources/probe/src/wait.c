#include "wait.h"

#include "apic.h"
#include "interrupts.h"
#include "io.h"

static const uint32_t kBusClocksPerMs = 1000000;

static volatile uint64_t g_ticks;

static void on_tick(uint8_t vector) {
  (void)vector;
  g_ticks++;
}

bool wait_until(bool (*done)(void *), void *ctx, uint32_t timeout_ms) {
  cpu_cli();
  if (done(ctx)) return true;
  irq_set_handler(kVecTicker, on_tick);
  uint64_t deadline = g_ticks + (timeout_ms + kTickMs - 1) / kTickMs + 1;
  lapic_timer_periodic(kVecTicker, kTickMs * kBusClocksPerMs);
  bool ok;
  for (;;) {
    if (done(ctx)) {
      ok = true;
      break;
    }
    if (g_ticks >= deadline) {
      ok = false;
      break;
    }
    cpu_sti_hlt_cli();
  }
  lapic_timer_stop();
  return ok;
}

static bool never(void *ctx) {
  (void)ctx;
  return false;
}

void wait_ms(uint32_t ms) { wait_until(never, 0, ms); }

uint64_t wait_clock_ms(void) { return g_ticks * kTickMs; }

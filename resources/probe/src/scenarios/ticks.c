// ticks: a guest that keeps time until it is told to stop, for the lifecycle tests (pause,
// resume, SendCtrlAltDel). Prints "probe: tick <n>" every 100 ms of guest time, counted by the
// LAPIC timer ticker of wait.h (it advances only while the vCPU runs, so a paused VM prints
// nothing), until the i8042 delivers Ctrl-Alt-Del on IRQ 1; then prints "probe: ctrl-alt-del"
// and passes, and the probe resets the machine as after any scenario.
//
// The keyboard bytes are the set-2 make codes ember and Firecracker queue, 0x14 (Ctrl), 0x11
// (Alt), 0xe0 0x71 (Del) (facts 2.6); set-2 releases (0xf0 <code>) are followed too, so a held
// Ctrl and Alt is what is checked. The bytes are drained from port 0x60 only after an IRQ 1:
// QEMU microvm has no i8042, and there port 0x64 reads 0xff (OBF set for ever).
//
// probe.ticks_max=N (default 0: no limit) fails the scenario after N ticks without Ctrl-Alt-Del.
#include <stdbool.h>
#include <stdint.h>

#include "apic.h"
#include "cmdline.h"
#include "console.h"
#include "interrupts.h"
#include "io.h"
#include "scenario.h"
#include "wait.h"

enum {
  kTickPeriodMs = 100,
  kKbdGsi = 1,  // IOAPIC pin 1 (Firecracker's i8042 IRQ, identity-mapped in the MP table)
  kI8042Data = 0x60,
  kI8042Status = 0x64,
  kStatusObf = 0x01,
  kI8042BufferBytes = 16,  // more than that per IRQ would be a floating bus
  // Set-2 scancodes (IBM PS/2 keyboard, scan code set 2).
  kScanExtended = 0xe0,
  kScanBreak = 0xf0,
  kScanCtrl = 0x14,
  kScanAlt = 0x11,
  kScanDel = 0x71,  // after 0xe0
};

static volatile uint32_t g_kbd_irqs;

static void on_kbd(uint8_t vector) {
  (void)vector;
  g_kbd_irqs++;
}

struct keyboard {
  uint32_t irqs_seen;
  bool extended, release;
  bool ctrl, alt;
  bool ctrl_alt_del;
  unsigned bytes;
};

static void keyboard_byte(struct keyboard *k, uint8_t b) {
  k->bytes++;
  if (b == kScanExtended) {
    k->extended = true;
    return;
  }
  if (b == kScanBreak) {
    k->release = true;
    return;
  }
  bool down = !k->release;
  if (!k->extended && b == kScanCtrl) k->ctrl = down;
  if (!k->extended && b == kScanAlt) k->alt = down;
  if (k->extended && b == kScanDel && down && k->ctrl && k->alt) k->ctrl_alt_del = true;
  k->extended = k->release = false;
}

static void keyboard_drain(struct keyboard *k) {
  if (k->irqs_seen == g_kbd_irqs) return;
  k->irqs_seen = g_kbd_irqs;
  for (unsigned i = 0; i < kI8042BufferBytes && (inb(kI8042Status) & kStatusObf); i++) {
    keyboard_byte(k, inb(kI8042Data));
  }
}

struct tick_wait {
  struct keyboard *kbd;
  uint64_t deadline_ms;  // on wait_clock_ms()
};

static bool tick_or_key(void *ctx) {
  struct tick_wait *w = ctx;
  keyboard_drain(w->kbd);
  return w->kbd->ctrl_alt_del || wait_clock_ms() >= w->deadline_ms;
}

const char *scenario_ticks(void) {
  uint64_t max_ticks = 0;
  cmdline_param_u64("probe.ticks_max", &max_ticks);

  static struct keyboard kbd;
  kbd = (struct keyboard){0};
  g_kbd_irqs = 0;
  irq_set_handler(kVecKbd, on_kbd);
  ioapic_route(kKbdGsi, kVecKbd, lapic_id());

  struct tick_wait w = {&kbd, wait_clock_ms() + kTickPeriodMs};
  uint64_t ticks = 0;
  while (max_ticks == 0 || ticks < max_ticks) {
    // The timeout only bounds one wait; the deadline in `w` is what paces the ticks.
    wait_until(tick_or_key, &w, 2 * kTickPeriodMs);
    if (kbd.ctrl_alt_del) break;
    if (wait_clock_ms() >= w.deadline_ms) {
      console_printf("probe: tick %lu\n", ++ticks);
      w.deadline_ms += kTickPeriodMs;
    }
  }

  ioapic_mask(kKbdGsi);
  irq_set_handler(kVecKbd, 0);
  if (!kbd.ctrl_alt_del) {
    return scenario_failf("no Ctrl-Alt-Del after %lu ticks (%u keyboard bytes)", ticks, kbd.bytes);
  }
  console_printf("probe: ctrl-alt-del\n");
  return NULL;
}

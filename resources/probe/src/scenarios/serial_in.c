// serial-in: one line typed into the VMM's stdin reaches the guest UART; it is echoed back as
// "probe: serial-in got <line>". Waits halted between bytes, woken by the UART receive
// interrupt (IOAPIC pin 4) or the wait ticker, so it also works if the interrupt never comes.
#include <stdint.h>

#include "apic.h"
#include "cmdline.h"
#include "console.h"
#include "interrupts.h"
#include "io.h"
#include "scenario.h"
#include "wait.h"

enum { kMaxLine = 128 };
// Generous: the test harness may write the line only after it has seen the probe start.
static const uint64_t kDefaultTimeoutMs = 30000;

static volatile uint32_t g_rx_interrupts;

static void on_uart(uint8_t vector) {
  (void)vector;
  g_rx_interrupts++;
}

static bool rx_ready(void *pending) {
  return console_try_getc((char *)pending);
}

const char *scenario_serial_in(void) {
  uint64_t timeout_ms = kDefaultTimeoutMs;
  cmdline_param_u64("probe.serial_timeout_ms", &timeout_ms);
  if (timeout_ms > 0xffffffffu) timeout_ms = 0xffffffffu;

  irq_set_handler(kVecUart, on_uart);
  ioapic_route(kUartGsi, kVecUart, lapic_id());
  console_rx_interrupt(true);

  static char line[kMaxLine + 1];
  unsigned len = 0;
  bool complete = false;
  while (len < kMaxLine) {
    char c;
    if (!wait_until(rx_ready, &c, (uint32_t)timeout_ms)) break;
    if (c == '\n') {
      complete = true;
      break;
    }
    if (c != '\r') line[len++] = c;
  }
  complete |= len == kMaxLine;
  line[len] = '\0';

  console_rx_interrupt(false);
  ioapic_mask(kUartGsi);
  irq_set_handler(kVecUart, 0);
  if (!complete) {
    return scenario_failf("timeout after %u bytes (%u rx interrupts)", len, g_rx_interrupts);
  }
  console_printf("probe: serial-in got %s\n", line);
  return NULL;
}

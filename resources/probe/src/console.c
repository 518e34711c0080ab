#include "console.h"

#include <stdarg.h>

#include "format.h"
#include "io.h"

// 16550 register offsets and bits (PC16550D datasheet).
enum {
  kThr = 0,  // transmit holding / receive buffer (DLAB=0)
  kIer = 1,
  kFcr = 2,
  kLcr = 3,
  kMcr = 4,
  kLsr = 5,
  kLsrDataReady = 0x01,
  kLsrThrEmpty = 0x20,
  kIerRxAvailable = 0x01,
  kMcrDtrRts = 0x03,
  kMcrOut2 = 0x08,  // gates the interrupt line on PC-compatible wiring
  kLcr8N1 = 0x03,
};

// A bounded wait: a UART that never drains must not hang the probe forever.
enum { kTxSpinLimit = 100000 };

void console_init(void) {
  outb(kUartBase + kIer, 0);
  outb(kUartBase + kLcr, kLcr8N1);
  outb(kUartBase + kFcr, 0);
  outb(kUartBase + kMcr, kMcrDtrRts);
}

void console_putc(char c) {
  for (unsigned i = 0; i < kTxSpinLimit; i++) {
    if (inb(kUartBase + kLsr) & kLsrThrEmpty) break;
    cpu_pause();
  }
  outb(kUartBase + kThr, (uint8_t)c);
}

void console_write(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) console_putc(s[i]);
}

void console_printf(const char *fmt, ...) {
  // Longer than the longest command line (kCmdlineMax) plus its "probe: cmdline " prefix.
  static char line[4200];
  va_list ap;
  va_start(ap, fmt);
  size_t n = format_v(line, sizeof line, fmt, ap);
  va_end(ap);
  console_write(line, n);
}

bool console_try_getc(char *out) {
  if (!(inb(kUartBase + kLsr) & kLsrDataReady)) return false;
  *out = (char)inb(kUartBase + kThr);
  return true;
}

void console_rx_interrupt(bool enable) {
  outb(kUartBase + kMcr, enable ? (kMcrDtrRts | kMcrOut2) : kMcrDtrRts);
  outb(kUartBase + kIer, enable ? kIerRxAvailable : 0);
}

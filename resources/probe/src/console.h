// The serial console: the 16550 UART at COM1 (I/O 0x3f8, GSI 4), as Firecracker and QEMU
// provide it.
#ifndef PROBE_CONSOLE_H
#define PROBE_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
  kUartBase = 0x3f8,
  kUartGsi = 4,
};

void console_init(void);
void console_putc(char c);
void console_write(const char *s, size_t n);
// Lines end in a bare "\n" so a test can compare them byte for byte.
void console_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// Receive side, for serial-in: non-blocking read, and the receive-interrupt enable.
bool console_try_getc(char *out);
void console_rx_interrupt(bool enable);

#endif

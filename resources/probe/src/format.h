// A small vsnprintf: %s %c %d %i %u %x %p with optional l/ll/z and zero-padded width.
#ifndef PROBE_FORMAT_H
#define PROBE_FORMAT_H

#include <stdarg.h>
#include <stddef.h>

// Always NUL-terminates when size > 0; returns the number of characters written (truncated).
size_t format_v(char *buf, size_t size, const char *fmt, va_list ap);
size_t format(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif

#include "format.h"

#include <stdbool.h>
#include <stdint.h>

struct out {
  char *buf;
  size_t size;
  size_t len;
};

static void put(struct out *o, char c) {
  if (o->len + 1 < o->size) o->buf[o->len++] = c;
}

static void put_unsigned(struct out *o, uint64_t v, unsigned base, unsigned width, char pad) {
  char digits[24];
  unsigned n = 0;
  do {
    unsigned d = (unsigned)(v % base);
    digits[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
    v /= base;
  } while (v);
  while (width > n) put(o, pad), width--;
  while (n) put(o, digits[--n]);
}

size_t format_v(char *buf, size_t size, const char *fmt, va_list ap) {
  struct out o = {buf, size, 0};
  for (; *fmt; fmt++) {
    if (*fmt != '%') {
      put(&o, *fmt);
      continue;
    }
    fmt++;
    char pad = ' ';
    if (*fmt == '0') pad = '0', fmt++;
    unsigned width = 0;
    while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (unsigned)(*fmt++ - '0');
    int longs = 0;
    while (*fmt == 'l' || *fmt == 'z') longs++, fmt++;
    switch (*fmt) {
      case 's': {
        const char *s = va_arg(ap, const char *);
        if (!s) s = "(null)";
        while (*s) put(&o, *s++);
        break;
      }
      case 'c':
        put(&o, (char)va_arg(ap, int));
        break;
      case 'd':
      case 'i': {
        int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
        uint64_t mag = (uint64_t)v;
        if (v < 0) put(&o, '-'), mag = -mag;
        put_unsigned(&o, mag, 10, width, pad);
        break;
      }
      case 'u':
        put_unsigned(&o, longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, width, pad);
        break;
      case 'x':
        put_unsigned(&o, longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, width, pad);
        break;
      case 'p':
        put(&o, '0'), put(&o, 'x');
        put_unsigned(&o, (uint64_t)(uintptr_t)va_arg(ap, void *), 16, width, pad);
        break;
      case '%':
        put(&o, '%');
        break;
      case '\0':
        fmt--;
        break;
      default:
        put(&o, '%'), put(&o, *fmt);
        break;
    }
  }
  if (size) buf[o.len] = '\0';
  return o.len;
}

size_t format(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t n = format_v(buf, size, fmt, ap);
  va_end(ap);
  return n;
}

#include "virtio_mmio_arg.h"

#include "cmdline.h"

static long find(const char *s, unsigned long len, char c, unsigned long from) {
  for (unsigned long i = from; i < len; i++) {
    if (s[i] == c) return (long)i;
  }
  return -1;
}

bool virtio_mmio_arg_parse(const char *v, unsigned long len, struct virtio_mmio_arg *out) {
  long at = find(v, len, '@', 0);
  if (at < 0) return false;
  long colon = find(v, len, ':', (unsigned long)at);
  if (colon < 0) return false;
  long colon2 = find(v, len, ':', (unsigned long)colon + 1);  // optional platform-device id
  unsigned long gsi_end = colon2 < 0 ? len : (unsigned long)colon2;
  uint64_t gsi;
  if (!parse_size(v, (unsigned long)at, &out->size) ||
      !parse_u64(v + at + 1, (unsigned long)(colon - at - 1), &out->base) ||
      !parse_u64(v + colon + 1, gsi_end - (unsigned long)colon - 1, &gsi) || gsi > 0xffffffffu) {
    return false;
  }
  out->gsi = (uint32_t)gsi;
  return out->size != 0;
}

unsigned virtio_mmio_args(struct virtio_mmio_arg *out, unsigned max) {
  unsigned n = 0;
  struct cmdline_iter it = cmdline_tokens();
  struct cmdline_token tok;
  while (n < max && cmdline_next(&it, &tok)) {
    if (tok.value && token_key_is(&tok, "virtio_mmio.device") &&
        virtio_mmio_arg_parse(tok.value, tok.value_len, &out[n])) {
      n++;
    }
  }
  return n;
}

// The kernel command line: a private copy, token iteration and typed parameter lookup.
// Tokens are separated by spaces; a token is "key" or "key=value" (no quoting, which no probe
// argument needs). Used by the scenarios for "probe.<key>=<value>" and by later virtio scenarios
// for "virtio_mmio.device=<size>@<base>:<gsi>" entries.
#ifndef PROBE_CMDLINE_H
#define PROBE_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// The bzImage header advertises cmdline_size 2047 (Firecracker's limit is 2048 with the NUL);
// the copy holds up to 4095 bytes so a VMM that passes more is still seen intact.
enum { kCmdlineMax = 4095 };

struct cmdline_token {
  const char *key;
  size_t key_len;
  const char *value;  // NULL when the token has no '='
  size_t value_len;
};

struct cmdline_iter {
  const char *pos;
};

// Copies at most kCmdlineMax bytes of the NUL-terminated string at src (NULL = empty).
void cmdline_init(const char *src);
const char *cmdline_get(void);

struct cmdline_iter cmdline_tokens(void);
bool cmdline_next(struct cmdline_iter *it, struct cmdline_token *tok);

// The value of the first token whose key is exactly `key`.
bool cmdline_param(const char *key, const char **value, size_t *len);
bool cmdline_param_u64(const char *key, uint64_t *out);

// Helpers for values: decimal or 0x-hex; sizes may end in K/M/G (binary multiples, as Linux's
// memparse).
bool parse_u64(const char *s, size_t len, uint64_t *out);
bool parse_size(const char *s, size_t len, uint64_t *out);
bool token_key_is(const struct cmdline_token *tok, const char *key);

#endif

#include "cmdline.h"

#include "string.h"

static char g_cmdline[kCmdlineMax + 1];

void cmdline_init(const char *src) {
  size_t n = src ? strnlen(src, kCmdlineMax) : 0;
  memcpy(g_cmdline, src, n);
  g_cmdline[n] = '\0';
}

const char *cmdline_get(void) { return g_cmdline; }

struct cmdline_iter cmdline_tokens(void) {
  struct cmdline_iter it = {g_cmdline};
  return it;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool cmdline_next(struct cmdline_iter *it, struct cmdline_token *tok) {
  const char *p = it->pos;
  while (*p && is_space(*p)) p++;
  if (!*p) {
    it->pos = p;
    return false;
  }
  const char *start = p;
  while (*p && !is_space(*p)) p++;
  it->pos = p;
  tok->key = start;
  tok->value = NULL;
  tok->value_len = 0;
  for (const char *q = start; q < p; q++) {
    if (*q == '=') {
      tok->key_len = (size_t)(q - start);
      tok->value = q + 1;
      tok->value_len = (size_t)(p - q - 1);
      return true;
    }
  }
  tok->key_len = (size_t)(p - start);
  return true;
}

bool token_key_is(const struct cmdline_token *tok, const char *key) {
  size_t n = strlen(key);
  return tok->key_len == n && memcmp(tok->key, key, n) == 0;
}

bool cmdline_param(const char *key, const char **value, size_t *len) {
  struct cmdline_iter it = cmdline_tokens();
  struct cmdline_token tok;
  while (cmdline_next(&it, &tok)) {
    if (tok.value && token_key_is(&tok, key)) {
      *value = tok.value;
      *len = tok.value_len;
      return true;
    }
  }
  return false;
}

bool cmdline_param_u64(const char *key, uint64_t *out) {
  const char *v;
  size_t n;
  return cmdline_param(key, &v, &n) && parse_u64(v, n, out);
}

bool parse_u64(const char *s, size_t len, uint64_t *out) {
  unsigned base = 10;
  if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) base = 16, s += 2, len -= 2;
  if (len == 0) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    unsigned d;
    if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
    else if (base == 16 && c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
    else if (base == 16 && c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
    else return false;
    if (v > (UINT64_MAX - d) / base) return false;
    v = v * base + d;
  }
  *out = v;
  return true;
}

bool parse_size(const char *s, size_t len, uint64_t *out) {
  unsigned shift = 0;
  if (len > 0) {
    switch (s[len - 1]) {
      case 'k': case 'K': shift = 10; break;
      case 'm': case 'M': shift = 20; break;
      case 'g': case 'G': shift = 30; break;
      default: break;
    }
  }
  if (shift) len--;
  uint64_t v;
  if (!parse_u64(s, len, &v) || v > (UINT64_MAX >> shift)) return false;
  *out = v << shift;
  return true;
}

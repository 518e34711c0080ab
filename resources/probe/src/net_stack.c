#include "net_stack.h"

#include "cmdline.h"
#include "format.h"
#include "scenario.h"
#include "string.h"
#include "wait.h"

enum {
  kEthHdr = 14,
  kEthTypeIpv4 = 0x0800,
  kEthTypeArp = 0x0806,
  kArpLen = 28,
  kArpRequest = 1,
  kArpReply = 2,
  kIpHdr = 20,
  kIpProtoIcmp = 1,
  kIpProtoUdp = 17,
  kIcmpEchoReply = 0,
  kIcmpEchoRequest = 8,
  kIcmpHdr = 8,
  kPingPayload = 56,
  kUdpHdr = 8,
  kTtl = 64,
};

static const uint8_t kBroadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static void put32(uint8_t *p, uint32_t v) {
  put16(p, (uint16_t)(v >> 16));
  put16(p + 2, (uint16_t)v);
}
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) << 16 | get16(p + 2); }

// RFC 1071 Internet checksum.
static uint16_t inet_checksum(const uint8_t *p, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += get16(p + i);
  if (len & 1) sum += (uint32_t)p[len - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

bool net_parse_ip(const char *s, size_t len, uint32_t *out) {
  uint32_t ip = 0;
  size_t i = 0;
  for (unsigned part = 0; part < 4; part++) {
    if (part) {
      if (i >= len || s[i] != '.') return false;
      i++;
    }
    unsigned v = 0, digits = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9' && digits < 3)
      v = v * 10 + (unsigned)(s[i++] - '0'), digits++;
    if (digits == 0 || v > 255) return false;
    ip = ip << 8 | v;
  }
  if (i != len) return false;
  *out = ip;
  return true;
}

bool net_param_ip(const char *key, uint32_t def, uint32_t *out) {
  const char *v;
  size_t len;
  if (!cmdline_param(key, &v, &len)) {
    *out = def;
    return true;
  }
  return net_parse_ip(v, len, out);
}

void net_format_mac(char *buf, const uint8_t *mac) {
  format(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

static void eth_header(uint8_t *f, const uint8_t *dst, const uint8_t *src, uint16_t type) {
  memcpy(f, dst, 6);
  memcpy(f + 6, src, 6);
  put16(f + 12, type);
}

static const char *send_arp(struct net_stack *s, uint16_t op, const uint8_t *dst_mac,
                            const uint8_t *target_mac, uint32_t target_ip) {
  uint8_t f[kEthHdr + kArpLen];
  eth_header(f, dst_mac, s->n->mac, kEthTypeArp);
  uint8_t *a = f + kEthHdr;
  put16(a, 1);                 // hardware type: Ethernet
  put16(a + 2, kEthTypeIpv4);  // protocol type
  a[4] = 6;
  a[5] = 4;
  put16(a + 6, op);
  memcpy(a + 8, s->n->mac, 6);
  put32(a + 14, s->ip);
  memcpy(a + 18, target_mac, 6);
  put32(a + 24, target_ip);
  return net_send(s->n, f, sizeof f);
}

// Answers an ARP request for our address; true if the frame was one (consumed).
static bool answer_arp(struct net_stack *s, const uint8_t *f, uint32_t len) {
  if (len < kEthHdr + kArpLen || get16(f + 12) != kEthTypeArp) return false;
  const uint8_t *a = f + kEthHdr;
  if (get16(a + 6) != kArpRequest || get32(a + 24) != s->ip) return false;
  if (!send_arp(s, kArpReply, a + 8, a + 8, get32(a + 14))) s->arp_replies_sent++;
  return true;
}

// Receives until match(s, frame, len, ctx) accepts a frame or the 5 s step deadline passes;
// ARP requests for us are answered meanwhile, anything else ignored.
static const char *receive(struct net_stack *s,
                           bool (*match)(struct net_stack *, const uint8_t *, uint32_t, void *),
                           void *ctx, const char *what) {
  uint64_t deadline = wait_clock_ms() + kNetStepTimeoutMs;
  for (;;) {
    uint64_t now = wait_clock_ms();
    if (now >= deadline) return scenario_failf("%s: timed out", what);
    uint32_t len;
    const uint8_t *f = net_recv(s->n, &len, (uint32_t)(deadline - now));
    if (!f) {
      if (virtio_needs_reset(s->n->d)) {
        return scenario_failf("%s: device needs reset (status 0x%x)", what, virtio_status(s->n->d));
      }
      return scenario_failf("%s: timed out", what);
    }
    if (answer_arp(s, f, len)) continue;
    if (match(s, f, len, ctx)) return NULL;
  }
}

static bool is_arp_reply_from_gw(struct net_stack *s, const uint8_t *f, uint32_t len, void *ctx) {
  (void)ctx;
  if (len < kEthHdr + kArpLen || get16(f + 12) != kEthTypeArp) return false;
  const uint8_t *a = f + kEthHdr;
  if (get16(a + 6) != kArpReply || get32(a + 14) != s->gw || get32(a + 24) != s->ip) return false;
  memcpy(s->gw_mac, a + 8, 6);
  return true;
}

const char *net_arp_gateway(struct net_stack *s) {
  static const uint8_t kZero[6];
  const char *err = send_arp(s, kArpRequest, kBroadcast, kZero, s->gw);
  if (err) return err;
  return receive(s, is_arp_reply_from_gw, 0, "ARP reply");
}

// An IPv4 header (no options) at p for `payload` bytes of protocol `proto`.
static void ip_header(uint8_t *p, uint32_t src, uint32_t dst, uint8_t proto, uint16_t payload,
                      uint16_t ident) {
  p[0] = 0x45;
  p[1] = 0;
  put16(p + 2, (uint16_t)(kIpHdr + payload));
  put16(p + 4, ident);
  put16(p + 6, 0x4000);  // DF
  p[8] = kTtl;
  p[9] = proto;
  put16(p + 10, 0);
  put32(p + 12, src);
  put32(p + 16, dst);
  put16(p + 10, inet_checksum(p, kIpHdr));
}

// An IPv4 packet of `proto` from `src` to us: returns its payload and length, or NULL.
static const uint8_t *ip_payload(struct net_stack *s, const uint8_t *f, uint32_t len, uint8_t proto,
                                 uint32_t src, uint32_t *plen) {
  if (len < kEthHdr + kIpHdr || get16(f + 12) != kEthTypeIpv4) return 0;
  const uint8_t *ip = f + kEthHdr;
  unsigned ihl = (ip[0] & 15) * 4u;
  uint16_t total = get16(ip + 2);
  if ((ip[0] >> 4) != 4 || ihl < kIpHdr || total < ihl || (uint32_t)(kEthHdr + total) > len)
    return 0;
  if (ip[9] != proto || get32(ip + 12) != src || get32(ip + 16) != s->ip) return 0;
  if (inet_checksum(ip, ihl) != 0) return 0;
  *plen = total - ihl;
  return ip + ihl;
}

static uint8_t ping_byte(uint16_t seq, unsigned i) { return (uint8_t)(i + seq * 3 + 0x20); }

struct ping_ctx {
  uint16_t id, seq;
};

static bool is_echo_reply(struct net_stack *s, const uint8_t *f, uint32_t len, void *ctx) {
  struct ping_ctx *c = ctx;
  uint32_t plen;
  const uint8_t *icmp = ip_payload(s, f, len, kIpProtoIcmp, s->gw, &plen);
  if (!icmp || plen != (uint32_t)(kIcmpHdr + kPingPayload) || icmp[0] != kIcmpEchoReply)
    return false;
  if (get16(icmp + 4) != c->id || get16(icmp + 6) != c->seq) return false;
  if (inet_checksum(icmp, plen) != 0) return false;
  for (unsigned i = 0; i < kPingPayload; i++) {
    if (icmp[kIcmpHdr + i] != ping_byte(c->seq, i)) return false;
  }
  return true;
}

const char *net_ping(struct net_stack *s, uint16_t id, uint16_t seq) {
  uint8_t f[kEthHdr + kIpHdr + kIcmpHdr + kPingPayload];
  eth_header(f, s->gw_mac, s->n->mac, kEthTypeIpv4);
  ip_header(f + kEthHdr, s->ip, s->gw, kIpProtoIcmp, kIcmpHdr + kPingPayload, seq);
  uint8_t *icmp = f + kEthHdr + kIpHdr;
  icmp[0] = kIcmpEchoRequest;
  icmp[1] = 0;
  put16(icmp + 2, 0);
  put16(icmp + 4, id);
  put16(icmp + 6, seq);
  for (unsigned i = 0; i < kPingPayload; i++) icmp[kIcmpHdr + i] = ping_byte(seq, i);
  put16(icmp + 2, inet_checksum(icmp, kIcmpHdr + kPingPayload));
  const char *err = net_send(s->n, f, sizeof f);
  if (err) return err;
  struct ping_ctx c = {id, seq};
  return receive(s, is_echo_reply, &c, "ICMP echo reply");
}

struct udp_ctx {
  uint32_t ip;
  uint16_t port, src_port;
  const char *payload;
  size_t len;
};

static bool is_udp_echo(struct net_stack *s, const uint8_t *f, uint32_t len, void *ctx) {
  struct udp_ctx *c = ctx;
  uint32_t plen;
  const uint8_t *udp = ip_payload(s, f, len, kIpProtoUdp, c->ip, &plen);
  if (!udp || plen < kUdpHdr || get16(udp) != c->port || get16(udp + 2) != c->src_port) {
    return false;
  }
  uint16_t ulen = get16(udp + 4);
  if (ulen != kUdpHdr + c->len || ulen > plen) return false;
  return memcmp(udp + kUdpHdr, c->payload, c->len) == 0;
}

const char *net_udp_echo(struct net_stack *s, uint32_t ip, uint16_t port, uint16_t src_port,
                         const char *payload) {
  enum { kMaxPayload = 64 };
  size_t n = strlen(payload);
  if (n > kMaxPayload) return "UDP payload too long";
  uint8_t f[kEthHdr + kIpHdr + kUdpHdr + kMaxPayload];
  eth_header(f, s->gw_mac, s->n->mac, kEthTypeIpv4);
  ip_header(f + kEthHdr, s->ip, ip, kIpProtoUdp, (uint16_t)(kUdpHdr + n), src_port);
  uint8_t *udp = f + kEthHdr + kIpHdr;
  put16(udp, src_port);
  put16(udp + 2, port);
  put16(udp + 4, (uint16_t)(kUdpHdr + n));
  put16(udp + 6, 0);  // no checksum (RFC 768 allows it over IPv4)
  memcpy(udp + kUdpHdr, payload, n);
  const char *err = net_send(s->n, f, (uint32_t)(kEthHdr + kIpHdr + kUdpHdr + n));
  if (err) return err;
  struct udp_ctx c = {ip, port, src_port, payload, n};
  return receive(s, is_udp_echo, &c, "UDP echo");
}

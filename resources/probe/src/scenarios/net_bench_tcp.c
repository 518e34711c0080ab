// net-bench-tcp: virtio-net throughput with checksum and segmentation offloads, against the
// host's own TCP stack through a TAP at the usual MTU of 1500, without the probe touching
// payload. The probe asks for VIRTIO_NET_F_CSUM, GUEST_CSUM, HOST_TSO4 and GUEST_TSO4 (section
// 5.1.3; the device mirrors what the guest receives to the TAP), so 64 KiB TCP frames cross the
// TAP whole and the host kernel never segments or checksums them on the way; the probe's TCP is
// just enough for one bulk connection each way (RFC 9293: handshake, cumulative ACKs, window
// scaling from RFC 7323; no timestamps, no SACK, no congestion control of its own).
//
// ARP for the gateway (probe.gw, from probe.ip, as `net`), then:
//  TX: connects to probe.bench_dst=<ip>:<port> (SYN with MSS 1460 and window scale 7) and sends
//      probe.bench_mib MiB as TSO frames of up to 44 segments (64240 payload bytes, gso_size
//      1460; fewer, in whole segments, while the window the host advertises is smaller). A frame
//      is two TX descriptors: a header of its own (virtio_net_hdr_v1 with NEEDS_CSUM and
//      GSO_TCPV4, Ethernet, IPv4 with DF, TCP holding the pseudo-header sum as Linux's
//      CHECKSUM_PARTIAL does) and the payload buffer every frame shares. 200 ms without an ACK
//      advancing sends again from the last one (go-back-N). Done when everything is
//      acknowledged; then FIN, and the host's FIN is acknowledged (so the host reads it all).
//  RX: listens on probe.bench_port (default 9000), answers the host's SYN (MSS 1460, window
//      scale 7, no timestamps or SACK), takes in-order data by its TCP header alone and sends one
//      cumulative ACK (window 4 MiB) per batch of frames it found, until bench_mib MiB arrived;
//      then RST.
// Prints "probe: net-bench-tcp tx-start", "tx-done <bytes>", "rx-ready", "rx-done <bytes>".
//
// Memory (VIRTIO_BULK_AREA, this scenario only): +0 the TX payload (64240 bytes), +0x10000 the
// TX frame headers (112 slots of 128 bytes), +0x100000 the RX buffers (256 x 0x10100 bytes, each
// one 65562-byte descriptor: a whole 64 KiB frame and its header, section 5.1.6.3.1).
#include <stdint.h>

#include "bootinfo.h"
#include "cmdline.h"
#include "console.h"
#include "net_stack.h"
#include "scenario.h"
#include "string.h"
#include "wait.h"

enum {
  kEthBytes = 14,
  kIpBytes = 20,
  kTcpBytes = 20,
  kHeadersBytes = kEthBytes + kIpBytes + kTcpBytes,  // of a data frame (no TCP options)
  kMss = 1460,                                       // MTU 1500 - IPv4 - TCP
  kSegmentsPerFrame = 44,
  kFramePayload = kSegmentsPerFrame * kMss,  // 64240: the IPv4 total length stays < 65536
  kWindowShift = 7,                          // the scale the probe announces
  kRxWindow = 4 << 20,                       // what the probe advertises (it never runs out)
  kRxBufferBytes = kNetHdrBytes + 65550,     // header + the largest frame a device passes on
  kRxBufferStride = 0x10100,
  kTxSlots = 112,  // TX descriptors 32-255 (0-31 are net_send's), two per frame
  kTxSlotBytes = 128,
  kRetransmitMs = 200,
  kSilenceMs = 10000,
  kDefaultRxPort = 9000,
  kTxSrcPort = 9001,
  kIsn = 0x10000000,  // the probe's initial sequence numbers (no one to guess them here)
  kTcpFin = 0x01,
  kTcpSyn = 0x02,
  kTcpRst = 0x04,
  kTcpPsh = 0x08,
  kTcpAck = 0x10,
  kIpProtoTcp = 6,
};

#define BENCH_TX_PAYLOAD (VIRTIO_BULK_AREA + 0x0)
#define BENCH_TX_HEADERS (VIRTIO_BULK_AREA + 0x10000)
#define BENCH_RX_BUFFERS (VIRTIO_BULK_AREA + 0x100000)

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
static void put16le(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}

// RFC 1071 sums: add 16-bit big-endian words, fold at the end.
static uint32_t sum_words(uint32_t sum, const uint8_t *p, size_t len) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += get16(p + i);
  if (len & 1) sum += (uint32_t)p[len - 1] << 8;
  return sum;
}
static uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}
static uint32_t pseudo_header_sum(uint32_t src, uint32_t dst, uint32_t tcp_len) {
  return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + kIpProtoTcp + tcp_len;
}

// One TCP connection between the probe and the host, as far as the probe keeps it.
struct tcp_conn {
  struct net_stack *s;
  uint32_t peer_ip;
  uint16_t local_port, peer_port;
  uint32_t snd_isn, rcv_nxt;  // rcv_nxt: the next byte expected from the peer
  uint8_t peer_shift;         // the peer's window scale (0 when it announced none)
  const uint8_t *peer_mac;
};

// Ethernet + IPv4 (DF, no options) for a TCP segment of tcp_len bytes.
static void eth_ip_header(const struct tcp_conn *c, uint8_t *f, uint32_t tcp_len) {
  memcpy(f, c->peer_mac, 6);
  memcpy(f + 6, c->s->n->mac, 6);
  put16(f + 12, 0x0800);
  uint8_t *ip = f + kEthBytes;
  memset(ip, 0, kIpBytes);
  ip[0] = 0x45;
  put16(ip + 2, (uint16_t)(kIpBytes + tcp_len));
  put16(ip + 6, 0x4000);  // DF: one IP id for every packet is fine (RFC 6864)
  ip[8] = 64;
  ip[9] = kIpProtoTcp;
  put32(ip + 12, c->s->ip);
  put32(ip + 16, c->peer_ip);
  put16(ip + 10, (uint16_t)~fold(sum_words(0, ip, kIpBytes)));
}

static void tcp_header(const struct tcp_conn *c, uint8_t *t, uint32_t seq, uint8_t flags,
                       uint16_t window, unsigned options_bytes) {
  put16(t, c->local_port);
  put16(t + 2, c->peer_port);
  put32(t + 4, seq);
  put32(t + 8, (flags & kTcpAck) ? c->rcv_nxt : 0);
  t[12] = (uint8_t)(((kTcpBytes + options_bytes) / 4) << 4);
  t[13] = flags;
  put16(t + 14, window);
  put16(t + 16, 0);
  put16(t + 18, 0);
}

// A segment without payload (SYN, SYN-ACK, ACK, RST), checksummed by the probe and sent with
// net_send (a zeroed virtio_net_hdr: no offload). With SYN it carries MSS and window scale.
static const char *send_control(const struct tcp_conn *c, uint32_t seq, uint8_t flags,
                                uint16_t window) {
  uint8_t f[kHeadersBytes + 8];
  const unsigned options = (flags & kTcpSyn) ? 8 : 0;
  const uint32_t tcp_len = kTcpBytes + options;
  eth_ip_header(c, f, tcp_len);
  uint8_t *t = f + kEthBytes + kIpBytes;
  tcp_header(c, t, seq, flags, window, options);
  if (options) {
    uint8_t *o = t + kTcpBytes;
    o[0] = 2;  // MSS
    o[1] = 4;
    put16(o + 2, kMss);
    o[4] = 1;  // NOP, then window scale
    o[5] = 3;
    o[6] = 3;
    o[7] = kWindowShift;
  }
  uint32_t sum = sum_words(pseudo_header_sum(c->s->ip, c->peer_ip, tcp_len), t, tcp_len);
  put16(t + 16, (uint16_t)~fold(sum));
  return net_send(c->s->n, f, kEthBytes + kIpBytes + tcp_len);
}

// A TCP segment of this connection in frame f (len bytes after the virtio header): its TCP
// header (its flags at [13]) and payload length; NULL for anything else.
static const uint8_t *segment_of(const struct tcp_conn *c, const uint8_t *f, uint32_t len,
                                 uint32_t *payload) {
  if (len < kHeadersBytes || get16(f + 12) != 0x0800) return 0;
  const uint8_t *ip = f + kEthBytes;
  unsigned ihl = (ip[0] & 15) * 4u;
  uint32_t total = get16(ip + 2);
  if ((ip[0] >> 4) != 4 || ihl < kIpBytes || ip[9] != kIpProtoTcp) return 0;
  if (get32(ip + 12) != c->peer_ip || get32(ip + 16) != c->s->ip) return 0;
  const uint8_t *t = ip + ihl;
  if (kEthBytes + ihl + kTcpBytes > len || get16(t) != c->peer_port ||
      get16(t + 2) != c->local_port) {
    return 0;
  }
  unsigned doff = (t[12] >> 4) * 4u;
  // A 64 KiB TSO frame's total length is the whole frame's; trust the smaller of it and the
  // used length, never more than arrived.
  uint32_t ip_len = total < len - kEthBytes ? total : len - kEthBytes;
  if (doff < kTcpBytes || ihl + doff > ip_len) return 0;
  *payload = ip_len - ihl - doff;
  return t;
}

// The window scale option of a SYN's TCP header t, or 0.
static uint8_t window_shift(const uint8_t *t) {
  unsigned doff = (t[12] >> 4) * 4u;
  for (unsigned i = kTcpBytes; i < doff;) {
    uint8_t kind = t[i];
    if (kind == 0) break;
    if (kind == 1) {
      i++;
      continue;
    }
    if (i + 1 >= doff || t[i + 1] < 2) break;
    if (kind == 3 && t[i + 1] == 3 && i + 2 < doff) return t[i + 2] > 14 ? 14 : t[i + 2];
    i += t[i + 1];
  }
  return 0;
}

// Receives until a segment of c arrives whose flags include `want`, or timeout_ms pass; ARP
// requests are not expected here (the host has the probe's address as a permanent neighbour).
static const uint8_t *wait_segment(struct tcp_conn *c, uint8_t want, uint32_t timeout_ms) {
  uint64_t deadline = wait_clock_ms() + timeout_ms;
  for (;;) {
    uint64_t now = wait_clock_ms();
    if (now >= deadline) return 0;
    uint32_t len, payload;
    const uint8_t *f = net_recv(c->s->n, &len, (uint32_t)(deadline - now));
    if (!f) return 0;
    const uint8_t *t = segment_of(c, f, len, &payload);
    if (t && (t[13] & want) == want) return t;
  }
}

// --- TX: probe -> host ------------------------------------------------------------------------

struct tx_state {
  struct tcp_conn c;
  uint32_t una, nxt, end;      // bytes after the SYN: acknowledged, sent, to send
  uint32_t window;             // bytes the host lets us have in flight beyond una
  unsigned pushed, completed;  // frames handed to the device / taken back from it
  unsigned completed_base;     // net_dev's tx_other_completed at the start
  bool reset;                  // the host sent RST
};

// How much of the next frame the window allows: a whole frame, else whole segments, else the
// last bytes; 0 when the window is too small for a segment (Linux opens it in MSS steps).
static uint32_t next_frame_bytes(const struct tx_state *x) {
  uint32_t left = x->end - x->nxt;
  uint32_t room = x->una + x->window > x->nxt ? x->una + x->window - x->nxt : 0;
  uint32_t want = left < kFramePayload ? left : kFramePayload;
  if (want <= room) return want;
  return room / kMss * kMss;
}

static const char *tx_connect(struct tx_state *x) {
  struct tcp_conn *c = &x->c;
  for (unsigned attempt = 0; attempt < 5; attempt++) {
    const char *err = send_control(c, c->snd_isn, kTcpSyn, 0xffff);
    if (err) return err;
    const uint8_t *t = wait_segment(c, kTcpSyn | kTcpAck, 1000);
    if (!t) continue;
    if (get32(t + 8) != c->snd_isn + 1) return "TX: the SYN-ACK acknowledges the wrong sequence";
    c->rcv_nxt = get32(t + 4) + 1;
    c->peer_shift = window_shift(t);
    x->window = get16(t + 14);  // not scaled in a SYN-ACK (RFC 7323 2.2)
    return send_control(c, c->snd_isn + 1, kTcpAck, kRxWindow >> kWindowShift);
  }
  return "TX: no SYN-ACK from the host after 5 SYNs";
}

// Writes the header of the frame carrying bytes [seq_off, seq_off + payload) into slot k and
// makes the frame available.
static void push_frame(struct tx_state *x, unsigned k, uint32_t seq_off, uint32_t payload) {
  struct net_dev *n = x->c.s->n;
  struct virtq *tx = virtio_queue(n->d, kNetTxQueue);
  uint8_t *h = (uint8_t *)(uintptr_t)(BENCH_TX_HEADERS + (uint64_t)kTxSlotBytes * k);
  const uint32_t tcp_len = kTcpBytes + payload;
  memset(h, 0, kNetHdrBytes);
  h[0] = kNetHdrFNeedsCsum;
  if (payload > kMss) {
    h[1] = kNetHdrGsoTcpv4;
    put16le(h + 4, kMss);  // gso_size
  }
  put16le(h + 2, kHeadersBytes);         // hdr_len
  put16le(h + 6, kEthBytes + kIpBytes);  // csum_start
  put16le(h + 8, 16);                    // csum_offset: the TCP checksum
  uint8_t *f = h + kNetHdrBytes;
  eth_ip_header(&x->c, f, tcp_len);
  uint8_t *t = f + kEthBytes + kIpBytes;
  tcp_header(&x->c, t, x->c.snd_isn + 1 + seq_off, kTcpAck | kTcpPsh, kRxWindow >> kWindowShift, 0);
  // CHECKSUM_PARTIAL: the field holds the pseudo-header sum over the whole frame's TCP length;
  // whoever completes the checksum (or segments the frame) takes it from there.
  put16(t + 16, fold(pseudo_header_sum(x->c.s->ip, x->c.peer_ip, tcp_len)));
  uint16_t head = (uint16_t)(kNetTxSlots + 2 * k);
  virtq_set_desc(tx, head, (uint64_t)(uintptr_t)h, kNetHdrBytes + kHeadersBytes, kVirtqDescNext,
                 (uint16_t)(head + 1));
  virtq_set_desc(tx, (uint16_t)(head + 1), BENCH_TX_PAYLOAD, payload, 0, 0);
  virtq_push(tx, head);
}

// Takes the host's ACKs (and anything else) off the RX queue; true if one advanced `una`.
static bool take_acks(struct tx_state *x) {
  bool advanced = false;
  uint32_t len, payload;
  const uint8_t *f;
  while ((f = net_try_recv(x->c.s->n, &len))) {
    const uint8_t *t = segment_of(&x->c, f, len, &payload);
    if (t && (t[13] & kTcpRst)) x->reset = true;
    if (!t || !(t[13] & kTcpAck)) continue;
    uint32_t acked = get32(t + 8) - (x->c.snd_isn + 1);
    if (acked > x->end) continue;  // before our data (or garbage)
    x->window = (uint32_t)get16(t + 14) << x->c.peer_shift;
    if (acked > x->una) {
      x->una = acked;
      advanced = true;
    }
  }
  return advanced;
}

// FIN, then the host's FIN (it closes once it has read everything) acknowledged; a host that
// does not close within 2 s is left to time out on its own.
static const char *tx_close(struct tx_state *x) {
  struct tcp_conn *c = &x->c;
  const uint32_t fin_seq = c->snd_isn + 1 + x->end;
  const char *err = send_control(c, fin_seq, kTcpFin | kTcpAck, kRxWindow >> kWindowShift);
  if (err) return err;
  const uint8_t *t = wait_segment(c, kTcpFin, 2000);
  if (!t) return NULL;
  c->rcv_nxt = get32(t + 4) + 1;
  return send_control(c, fin_seq + 1, kTcpAck, kRxWindow >> kWindowShift);
}

static const char *tx_phase(struct tx_state *x) {
  struct net_dev *n = x->c.s->n;
  struct virtq *tx = virtio_queue(n->d, kNetTxQueue);
  console_printf("probe: net-bench-tcp tx-start\n");
  uint64_t last_progress = wait_clock_ms();
  while (x->una < x->end) {
    bool pushed = false;
    uint32_t bytes;
    while (x->pushed - x->completed < kTxSlots && (bytes = next_frame_bytes(x)) != 0) {
      push_frame(x, x->pushed % kTxSlots, x->nxt, bytes);
      x->pushed++;
      x->nxt += bytes;
      pushed = true;
    }
    if (pushed) virtio_kick_queue(n->d, kNetTxQueue);
    net_reap_tx(n);
    x->completed = n->tx_other_completed - x->completed_base;
    if (take_acks(x)) {
      last_progress = wait_clock_ms();
      continue;
    }
    if (x->reset) return scenario_failf("TX: the host reset the connection at %u bytes", x->una);
    uint64_t quiet = wait_clock_ms() - last_progress;
    if (quiet >= kSilenceMs) {
      return scenario_failf("TX: %u of %u bytes acknowledged, then nothing for %u ms", x->una,
                            x->end, kSilenceMs);
    }
    if (quiet >= kRetransmitMs && x->nxt > x->una) {
      x->nxt = x->una;  // go back: the host never got (or dropped) what followed una
      last_progress = wait_clock_ms();
      continue;
    }
    if (!virtq_has_used(tx) && !virtq_has_used(virtio_queue(n->d, kNetRxQueue))) {
      virtio_wait_queues(n->d, 1u << kNetRxQueue | 1u << kNetTxQueue, kRetransmitMs);
    }
  }
  console_printf("probe: net-bench-tcp tx-done %u\n", x->end);
  return tx_close(x);
}

// --- RX: host -> probe ------------------------------------------------------------------------

static const char *rx_accept(struct tcp_conn *c) {
  c->peer_port = 0;
  uint64_t deadline = wait_clock_ms() + 30000;
  while (wait_clock_ms() < deadline) {
    uint32_t len, payload;
    const uint8_t *f = net_recv(c->s->n, &len, 1000);
    if (!f || len < kHeadersBytes) continue;
    // Whatever port the host connects from: the connection is the first SYN to ours.
    c->peer_port = get16(f + kEthBytes + kIpBytes);
    const uint8_t *t = segment_of(c, f, len, &payload);
    if (!t || (t[13] & (kTcpSyn | kTcpAck)) != kTcpSyn) continue;
    c->rcv_nxt = get32(t + 4) + 1;
    return send_control(c, c->snd_isn, kTcpSyn | kTcpAck, 0xffff);
  }
  return "RX: no SYN from the host within 30 s";
}

static const char *rx_phase(struct tcp_conn *c, uint32_t want) {
  console_printf("probe: net-bench-tcp rx-ready\n");
  const char *err = rx_accept(c);
  if (err) return err;
  const uint32_t data_start = c->rcv_nxt;
  struct virtq *rx = virtio_queue(c->s->n->d, kNetRxQueue);
  uint32_t got = 0, frames = 0;
  while (got < want) {
    bool any = false;
    uint32_t len, payload;
    const uint8_t *f;
    while ((f = net_try_recv(c->s->n, &len))) {
      const uint8_t *t = segment_of(c, f, len, &payload);
      if (!t) continue;
      any = true;
      if (t[13] & kTcpSyn) {  // our SYN-ACK was lost: the host asks again
        err = send_control(c, c->snd_isn, kTcpSyn | kTcpAck, 0xffff);
        if (err) return err;
        continue;
      }
      if (t[13] & (kTcpRst | kTcpFin)) {
        return scenario_failf("RX: the host ended the connection after %u bytes", got);
      }
      // In order only: a hole is left to the host's retransmission (our ACK says where).
      if (payload && get32(t + 4) == c->rcv_nxt) {
        c->rcv_nxt += payload;
        frames++;
      }
    }
    got = c->rcv_nxt - data_start;
    if (any) {
      err = send_control(c, c->snd_isn + 1, kTcpAck, kRxWindow >> kWindowShift);
      if (err) return err;
      continue;
    }
    if (!virtio_wait_queues(c->s->n->d, 1u << kNetRxQueue, kSilenceMs) || !virtq_has_used(rx)) {
      break;
    }
  }
  console_printf("probe: net-bench-tcp rx-done %u\n", got);
  if (got < want) {
    return scenario_failf("RX: %u of %u bytes (%u frames), then %u ms of silence", got, want,
                          frames, kSilenceMs);
  }
  return send_control(c, c->snd_isn + 1, kTcpRst | kTcpAck, 0);
}

static bool parse_dst(uint32_t *ip, uint16_t *port) {
  const char *v;
  size_t len;
  if (!cmdline_param("probe.bench_dst", &v, &len)) return false;
  size_t colon = 0;
  while (colon < len && v[colon] != ':') colon++;
  uint64_t p;
  if (colon == len || !net_parse_ip(v, colon, ip) ||
      !parse_u64(v + colon + 1, len - colon - 1, &p) || p == 0 || p > 0xffff) {
    return false;
  }
  *port = (uint16_t)p;
  return true;
}

static const char *run(struct net_stack *s, uint32_t dst, uint16_t dst_port, uint16_t rx_port,
                       uint64_t bytes) {
  const uint64_t need =
      kNetFeatureCsum | kNetFeatureGuestCsum | kNetFeatureHostTso4 | kNetFeatureGuestTso4;
  if ((s->n->d->accepted & need) != need) {
    return scenario_failf(
        "the device does not offer CSUM, GUEST_CSUM, HOST_TSO4 and GUEST_TSO4 "
        "(features 0x%lx)",
        s->n->d->offered);
  }
  if (virtio_queue(s->n->d, kNetTxQueue)->size < kNetTxSlots + 2 * kTxSlots) {
    return "the TX queue is smaller than 256 entries";
  }
  const char *err = net_arp_gateway(s);
  if (err) return err;
  struct tx_state x = {0};
  x.c = (struct tcp_conn){s, dst, kTxSrcPort, dst_port, kIsn, 0, 0, s->gw_mac};
  x.end = (uint32_t)bytes;
  x.completed_base = s->n->tx_other_completed;
  err = tx_connect(&x);
  if (!err) err = tx_phase(&x);
  if (err) return err;
  struct tcp_conn c = {s, s->gw, rx_port, 0, kIsn, 0, 0, s->gw_mac};
  return rx_phase(&c, (uint32_t)bytes);
}

const char *scenario_net_bench_tcp(void) {
  struct net_stack s = {0};
  if (!net_param_ip("probe.ip", 0x0a00020f, &s.ip)) return "probe.ip: want a.b.c.d";
  if (!net_param_ip("probe.gw", 0x0a000201, &s.gw)) return "probe.gw: want a.b.c.d";
  uint32_t dst;
  uint16_t dst_port;
  if (!parse_dst(&dst, &dst_port)) return "probe.bench_dst: want <a.b.c.d>:<port>";
  uint64_t rx_port = kDefaultRxPort;
  cmdline_param_u64("probe.bench_port", &rx_port);
  if (rx_port == 0 || rx_port > 0xffff) return "probe.bench_port: want 1..65535";
  uint64_t mib = 64;
  cmdline_param_u64("probe.bench_mib", &mib);
  if (mib == 0 || mib > 1024) return "probe.bench_mib: want 1..1024";
  if (!bootinfo_is_ram(VIRTIO_BULK_AREA, 0x100000 + (uint64_t)kRxBufferStride * kVirtqMaxSize)) {
    return "bench buffers (0x2000000-0x310ffff) are not RAM";
  }
  struct virtio_dev *d = net_find();
  if (!d) return "no virtio-net device";
  static struct net_dev n;
  s.n = &n;
  const struct net_rx_layout rx = {BENCH_RX_BUFFERS, kRxBufferStride, kRxBufferBytes};
  const char *err = net_init_with(
      &n, d, kNetFeatureCsum | kNetFeatureGuestCsum | kNetFeatureHostTso4 | kNetFeatureGuestTso4,
      &rx);
  if (!err) err = run(&s, dst, dst_port, (uint16_t)rx_port, mib << 20);
  virtio_shutdown(d);
  return err;
}

// net-bench: virtio-net throughput against the host's TAP without the probe touching payload.
// ARP for the gateway (probe.gw, from probe.ip, as `net`), then TX: probe.bench_mib MiB (default
// 64) as UDP datagrams to probe.bench_dst=<ip>:<port> through the gateway's MAC, each one IPv4
// frame of kBenchIpBytes (the host sets the TAP's MTU to 65000: no fragmentation, no offload
// needed). Every frame is two TX descriptors: the same 54-byte virtio_net_hdr_v1 + Ethernet/IPv4/
// UDP header (identical for every frame: DF set, so one IP id is fine, and UDP checksum 0, RFC
// 768) and the same payload buffer, which the probe never writes. Then RX: the device is
// re-initialised with every RX descriptor naming one shared 64 KiB buffer, and the probe counts
// the UDP payload bytes of frames the host sends (used length minus headers, nothing read) until
// bench_mib MiB arrived or 10 s passed in silence.
// Prints "probe: net-bench tx-start", "tx-done <frames>", "rx-ready", "rx-done <bytes>".
//
// Memory (VIRTIO_BULK_AREA, this scenario only): +0 the TX header, +0x10000 the TX payload
// (64 KiB), +0x20000 the shared RX buffer (64 KiB + header).
#include <stdint.h>

#include "bootinfo.h"
#include "cmdline.h"
#include "console.h"
#include "net_stack.h"
#include "scenario.h"
#include "string.h"

enum {
  kBenchIpBytes = 65000,  // the TAP's MTU the host sets
  kEthBytes = 14,
  kIpBytes = 20,
  kUdpBytes = 8,
  kHeadersBytes = kNetHdrBytes + kEthBytes + kIpBytes + kUdpBytes,
  kPayloadBytes = kBenchIpBytes - kIpBytes - kUdpBytes,
  kRxBufBytes = kNetHdrBytes + 65550,  // header + the largest frame a device passes on
  kSilenceMs = 10000,
  kRxPort = 9000,
  kTxSrcPort = 9001,
  kSmallFrame = 1000,  // RX frames shorter than this are not benchmark datagrams (ND, ARP...)
};

#define BENCH_TX_HEADER (VIRTIO_BULK_AREA + 0x0)
#define BENCH_TX_PAYLOAD (VIRTIO_BULK_AREA + 0x10000)
#define BENCH_RX_BUFFER (VIRTIO_BULK_AREA + 0x20000)

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static void put32(uint8_t *p, uint32_t v) {
  put16(p, (uint16_t)(v >> 16));
  put16(p + 2, (uint16_t)v);
}

static uint16_t ip_checksum(const uint8_t *p) {
  uint32_t sum = 0;
  for (unsigned i = 0; i < kIpBytes; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

static void build_tx_header(const struct net_stack *s, uint32_t dst, uint16_t port) {
  uint8_t *h = (uint8_t *)(uintptr_t)BENCH_TX_HEADER;
  memset(h, 0, kHeadersBytes);  // virtio_net_hdr_v1: no offload, no GSO
  uint8_t *eth = h + kNetHdrBytes;
  memcpy(eth, s->gw_mac, 6);
  memcpy(eth + 6, s->n->mac, 6);
  put16(eth + 12, 0x0800);
  uint8_t *ip = eth + kEthBytes;
  ip[0] = 0x45;
  put16(ip + 2, kBenchIpBytes);
  put16(ip + 6, 0x4000);  // DF
  ip[8] = 64;
  ip[9] = 17;
  put32(ip + 12, s->ip);
  put32(ip + 16, dst);
  put16(ip + 10, ip_checksum(ip));
  uint8_t *udp = ip + kIpBytes;
  put16(udp, kTxSrcPort);
  put16(udp + 2, port);
  put16(udp + 4, kUdpBytes + kPayloadBytes);
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

// Waits until every TX frame net_send queued (the ARP traffic) has completed, so the TX
// descriptors are free for the benchmark's layout.
static const char *drain_net_send(struct net_dev *n) {
  for (unsigned tries = 0; tries < 50; tries++) {
    net_reap_tx(n);
    bool busy = false;
    for (unsigned k = 0; k < kNetTxSlots; k++) busy |= n->tx_busy[k];
    if (!busy) return NULL;
    virtio_wait_queues(n->d, 1u << kNetTxQueue, 100);
  }
  return "TX frames from the ARP step never completed";
}

static const char *tx_phase(struct net_dev *n, uint64_t frames) {
  struct virtq *tx = virtio_queue(n->d, kNetTxQueue);
  unsigned slots = tx->size / 2;
  uint64_t next = 0, done = 0;
  unsigned in_flight = 0;
  console_printf("probe: net-bench tx-start\n");
  while (done < frames) {
    bool pushed = false;
    while (in_flight < slots && next < frames) {
      // Frame slot k: descriptors 2k (header) and 2k+1 (payload); slots are used round-robin
      // and complete in order on every device this runs against, so slot = next % slots.
      uint16_t head = (uint16_t)(2 * (next % slots));
      virtq_set_desc(tx, head, BENCH_TX_HEADER, kHeadersBytes, kVirtqDescNext,
                     (uint16_t)(head + 1));
      virtq_set_desc(tx, (uint16_t)(head + 1), BENCH_TX_PAYLOAD, kPayloadBytes, 0, 0);
      virtq_push(tx, head);
      next++;
      in_flight++;
      pushed = true;
    }
    if (pushed) virtio_kick_queue(n->d, kNetTxQueue);
    uint32_t id, len;
    bool any = false;
    while (virtq_pop(tx, &id, &len)) {
      done++;
      in_flight--;
      any = true;
    }
    if (any || done == frames) continue;
    if (!virtio_wait_queues(n->d, 1u << kNetTxQueue, kSilenceMs) || !virtq_has_used(tx)) {
      return scenario_failf("TX: %lu of %lu frames done, then none for %u ms (status 0x%x)", done,
                            frames, kSilenceMs, virtio_status(n->d));
    }
  }
  console_printf("probe: net-bench tx-done %lu\n", frames);
  return NULL;
}

static const char *rx_phase(struct virtio_dev *d, uint64_t want) {
  const char *err =
      virtio_init_queues(d, kFeatureRingEventIdx | kNetFeatureMac | kNetFeatureMrgRxbuf, 2);
  if (err) return err;
  struct virtq *rx = virtio_queue(d, kNetRxQueue);
  for (unsigned i = 0; i < rx->size; i++) {
    // Every buffer is the same memory: the device may overwrite a frame the probe never reads.
    virtq_set_desc(rx, (uint16_t)i, BENCH_RX_BUFFER, kRxBufBytes, kVirtqDescWrite, 0);
    virtq_push(rx, (uint16_t)i);
  }
  virtio_kick_queue(d, kNetRxQueue);
  console_printf("probe: net-bench rx-ready\n");
  uint64_t bytes = 0, frames = 0;
  while (bytes < want) {
    uint32_t id, len;
    bool any = false;
    while (virtq_pop(rx, &id, &len)) {
      if (id < rx->size) virtq_push(rx, (uint16_t)id);
      if (len >= kSmallFrame) {
        bytes += len - (kHeadersBytes);
        frames++;
      }
      any = true;
    }
    if (any) {
      virtio_kick_queue(d, kNetRxQueue);
      continue;
    }
    if (!virtio_wait_queues(d, 1u << kNetRxQueue, kSilenceMs) || !virtq_has_used(rx)) break;
  }
  console_printf("probe: net-bench rx-done %lu\n", bytes);
  if (bytes < want) {
    return scenario_failf("RX: %lu of %lu bytes (%lu frames), then %u ms of silence", bytes, want,
                          frames, kSilenceMs);
  }
  return NULL;
}

static const char *run(struct net_stack *s, uint32_t dst, uint16_t port, uint64_t bytes) {
  const char *err = net_arp_gateway(s);
  if (!err) err = drain_net_send(s->n);
  if (err) return err;
  build_tx_header(s, dst, port);
  err = tx_phase(s->n, (bytes + kPayloadBytes - 1) / kPayloadBytes);
  if (err) return err;
  return rx_phase(s->n->d, bytes);
}

const char *scenario_net_bench(void) {
  struct net_stack s = {0};
  if (!net_param_ip("probe.ip", 0x0a00020f, &s.ip)) return "probe.ip: want a.b.c.d";
  if (!net_param_ip("probe.gw", 0x0a000201, &s.gw)) return "probe.gw: want a.b.c.d";
  uint32_t dst;
  uint16_t port;
  if (!parse_dst(&dst, &port)) return "probe.bench_dst: want <a.b.c.d>:<port>";
  uint64_t mib = 64;
  cmdline_param_u64("probe.bench_mib", &mib);
  if (mib == 0 || mib > 4096) return "probe.bench_mib: want 1..4096";
  if (!bootinfo_is_ram(VIRTIO_BULK_AREA, 0x40000)) return "bench buffers (0x2000000) are not RAM";
  struct virtio_dev *d = net_find();
  if (!d) return "no virtio-net device";
  static struct net_dev n;
  s.n = &n;
  const char *err = net_init(&n, d);
  if (!err) err = run(&s, dst, port, mib << 20);
  virtio_shutdown(d);
  return err;
}

// evil-net: hostile TX and RX queue contents against the first virtio-net device, each from a
// fresh initialisation; the device may use the chain, drop it, or set DEVICE_NEEDS_RESET
// (section 2.1.2; the probe then resets and re-initialises). Finally an ARP for the gateway and
// one ping must succeed (probe.ip / probe.gw as for net). Prints
// "probe: evil-net <case> tx-used <n> rx-used <n> status 0x<s> <served|no-completion|reset>"
// per case, then "probe: evil-net cases <n>". probe.evil_net_skip=<case>[,<case>...] skips
// cases ("probe: evil-net <case> skipped"): QEMU 7.2 aborts on tiny-rx-buffers
// (iov_copy: Assertion `offset == 0' failed), so its test skips that one.
#include <stdint.h>

#include "cmdline.h"
#include "console.h"
#include "net_stack.h"
#include "scenario.h"
#include "string.h"
#include "wait.h"

enum {
  kSettleMs = 300,
  kBigPieces = 17,  // 12 + 17 * 4096 = 69644 > 65550 (5.1.6.2: at most 65550 without GSO)
  kPieceBytes = 4096,
  kTinyRxBytes = 4,
};

static const uint64_t kOutsideRam = 0xfffffffff0000000ull;
static const uint64_t kHdrBuf = NET_SCRATCH;             // a zero virtio_net_hdr_v1
static const uint64_t kPiece = NET_SCRATCH + 0x1000;     // shared by every big-frame descriptor
static const uint64_t kFrameBuf = NET_SCRATCH + 0x2000;  // header + a broadcast ARP frame

static struct net_dev g_net;
static struct net_stack g_stack;
static unsigned g_rx_used;

// A well-formed ARP request for the gateway, preceded by a zero header, at kFrameBuf.
static uint32_t arp_frame(void) {
  uint8_t *p = (uint8_t *)(uintptr_t)kFrameBuf;
  memset(p, 0, kNetHdrBytes);
  uint8_t *f = p + kNetHdrBytes;
  memset(f, 0xff, 6);
  memcpy(f + 6, g_net.mac, 6);
  f[12] = 0x08, f[13] = 0x06;
  static const uint8_t kArpHead[8] = {0, 1, 8, 0, 6, 4, 0, 1};
  memcpy(f + 14, kArpHead, 8);
  memcpy(f + 22, g_net.mac, 6);
  uint32_t ip = g_stack.ip, gw = g_stack.gw;
  uint8_t ips[4] = {(uint8_t)(ip >> 24), (uint8_t)(ip >> 16), (uint8_t)(ip >> 8), (uint8_t)ip};
  uint8_t gws[4] = {(uint8_t)(gw >> 24), (uint8_t)(gw >> 16), (uint8_t)(gw >> 8), (uint8_t)gw};
  memcpy(f + 28, ips, 4);
  memset(f + 32, 0, 6);
  memcpy(f + 38, gws, 4);
  return kNetHdrBytes + 42;
}

static void tx_chain_push(uint16_t head) {
  struct virtq *tx = virtio_queue(g_net.d, kNetTxQueue);
  virtq_push(tx, head);
  virtio_notify(g_net.d, kNetTxQueue);  // always: the point is to make the device look
}

static void short_header(void) {
  memset((void *)(uintptr_t)kHdrBuf, 0, 16);
  virtq_set_desc(virtio_queue(g_net.d, kNetTxQueue), 0, kHdrBuf, 8, 0, 0);
  tx_chain_push(0);
}

static void oversized(void) {
  struct virtq *tx = virtio_queue(g_net.d, kNetTxQueue);
  memset((void *)(uintptr_t)kHdrBuf, 0, kNetHdrBytes);
  uint8_t *piece = (uint8_t *)(uintptr_t)kPiece;
  memset(piece, 0, 64);  // Ethernet header part: destination 00:00:00:00:00:00, type 0
  virtq_set_desc(tx, 0, kHdrBuf, kNetHdrBytes, kVirtqDescNext, 1);
  for (uint16_t i = 1; i <= kBigPieces; i++) {
    virtq_set_desc(tx, i, kPiece, kPieceBytes, i < kBigPieces ? kVirtqDescNext : 0,
                   (uint16_t)(i + 1));
  }
  tx_chain_push(0);
}

static void writable_tx(void) {
  virtq_set_desc(virtio_queue(g_net.d, kNetTxQueue), 0, kFrameBuf, arp_frame(), kVirtqDescWrite, 0);
  tx_chain_push(0);
}

static void tx_outside_ram(void) {
  virtq_set_desc(virtio_queue(g_net.d, kNetTxQueue), 0, kOutsideRam, 64, 0, 0);
  tx_chain_push(0);
}

// Every RX buffer 4 bytes (< the 12-byte header), then a valid ARP request whose reply the
// device has nowhere to put.
static void tiny_rx(void) {
  virtq_set_desc(virtio_queue(g_net.d, kNetTxQueue), 0, kFrameBuf, arp_frame(), 0, 0);
  tx_chain_push(0);
}

struct evil_net_case {
  const char *name;
  void (*run)(void);
  bool tiny_rx;
};

static const struct evil_net_case kCases[] = {
    {"short-header", short_header, false},     {"oversized-frame", oversized, false},
    {"writable-tx", writable_tx, false},       {"tiny-rx-buffers", tiny_rx, true},
    {"tx-outside-ram", tx_outside_ram, false},
};

static bool skipped(const char *name) {
  const char *v;
  size_t len;
  if (!cmdline_param("probe.evil_net_skip", &v, &len)) return false;
  size_t n = strlen(name);
  for (size_t i = 0; i < len;) {
    size_t j = i;
    while (j < len && v[j] != ',') j++;
    if (j - i == n && memcmp(v + i, name, n) == 0) return true;
    i = j + 1;
  }
  return false;
}

static const char *run_case(const struct evil_net_case *c) {
  if (skipped(c->name)) {
    console_printf("probe: evil-net %s skipped\n", c->name);
    return NULL;
  }
  const char *err = net_init_rx(&g_net, g_net.d, c->tiny_rx ? kTinyRxBytes : kNetBufBytes);
  if (err) return scenario_failf("%s: init: %s", c->name, err);
  c->run();
  wait_ms(kSettleMs);
  unsigned tx_used = 0, rx_used = 0;
  uint32_t id, len;
  while (virtq_pop(virtio_queue(g_net.d, kNetTxQueue), &id, &len)) tx_used++;
  while (virtq_pop(virtio_queue(g_net.d, kNetRxQueue), &id, &len)) rx_used++;
  g_rx_used += rx_used;
  uint32_t status = virtio_status(g_net.d);
  bool reset = virtio_needs_reset(g_net.d);
  console_printf("probe: evil-net %s tx-used %u rx-used %u status 0x%x %s\n", c->name, tx_used,
                 rx_used, status,
                 reset     ? "reset"
                 : tx_used ? "served"
                           : "no-completion");
  if (status & kStatusFailed) return scenario_failf("%s: status FAILED", c->name);
  return NULL;
}

const char *scenario_evil_net(void) {
  if (!net_param_ip("probe.ip", 0x0a00020f, &g_stack.ip)) return "probe.ip: want a.b.c.d";
  if (!net_param_ip("probe.gw", 0x0a000201, &g_stack.gw)) return "probe.gw: want a.b.c.d";
  struct virtio_dev *d = net_find();
  if (!d) return "no virtio-net device";
  g_net.d = d;
  g_stack.n = &g_net;
  const char *err = 0;
  unsigned n = sizeof kCases / sizeof kCases[0];
  for (unsigned i = 0; i < n && !err; i++) err = run_case(&kCases[i]);
  if (!err) {
    console_printf("probe: evil-net cases %u\n", n);
    err = net_init(&g_net, d);
  }
  if (!err) err = net_arp_gateway(&g_stack);
  if (!err) err = net_ping(&g_stack, 0x6576, 1);
  if (!err) console_printf("probe: evil-net ping after cases ok\n");
  virtio_shutdown(d);
  return err;
}

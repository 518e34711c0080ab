// The probe's virtio-net driver (virtio 1.1 section 5.1), on top of virtio_mmio.c: queue 0 RX,
// queue 1 TX, no offloads unless a scenario asks for them (net_init_with). Every frame carries
// the 12-byte struct virtio_net_hdr_v1 (section 5.1.6: with VERSION_1 the header always has
// num_buffers, whether or not MRG_RXBUF is negotiated). RX buffers are single device-writable
// descriptors, by default 2 KiB (>= 1526 bytes, section 5.1.6.3.1, enough without GUEST_TSO/UFO),
// the whole queue kept posted; TX frames sent with net_send are one device-readable descriptor
// holding header + frame (VERSION_1 implies ANY_LAYOUT) with a zeroed header (no offload).
//
// Memory (VIRTIO_PACKET_AREA): RX buffer i (descriptor i of queue 0) at +0x800 * i
// (256 x 2 KiB = 0x1400000-0x147ffff) unless the scenario places them; TX slot k (descriptor k
// of queue 1) at 0x1480000 + 0x800 * k (32 slots, to 0x148ffff); scratch for evil-net at
// 0x1490000-0x14a0fff.
#ifndef PROBE_VIRTIO_NET_H
#define PROBE_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "layout.h"
#include "virtio_mmio.h"

enum {
  kNetRxQueue = 0,
  kNetTxQueue = 1,
  kNetHdrBytes = 12,  // struct virtio_net_hdr_v1
  kNetBufBytes = 2048,
  kNetTxSlots = 32,
  kNetMaxFrame = kNetBufBytes - kNetHdrBytes,
};

// Feature bits (section 5.1.3).
static const uint64_t kNetFeatureCsum = 1ull << 0;
static const uint64_t kNetFeatureGuestCsum = 1ull << 1;
static const uint64_t kNetFeatureMac = 1ull << 5;
static const uint64_t kNetFeatureGuestTso4 = 1ull << 7;
static const uint64_t kNetFeatureHostTso4 = 1ull << 11;
static const uint64_t kNetFeatureMrgRxbuf = 1ull << 15;

// struct virtio_net_hdr_v1 (section 5.1.6).
enum {
  kNetHdrFNeedsCsum = 1,  // flags
  kNetHdrGsoNone = 0,     // gso_type
  kNetHdrGsoTcpv4 = 1,
};

#define NET_RX_BUFFERS VIRTIO_PACKET_AREA
#define NET_TX_BUFFERS (VIRTIO_PACKET_AREA + 0x80000)
#define NET_SCRATCH (VIRTIO_PACKET_AREA + 0x90000)

// Where the RX buffers live: buffer i (descriptor i of queue 0) at base + stride * i, `len` bytes
// posted. The default is 2 KiB buffers at NET_RX_BUFFERS.
struct net_rx_layout {
  uint64_t base;
  uint32_t stride, len;
};

struct net_dev {
  struct virtio_dev *d;
  struct net_rx_layout rx;
  uint8_t mac[6];
  uint16_t rx_held;  // descriptor of the frame handed out by net_recv, or 0xffff
  bool tx_busy[kNetTxSlots];
  unsigned tx_next;
  unsigned tx_completed;  // TX used entries seen since init
  // TX used entries for descriptors >= kNetTxSlots: chains a scenario built itself (net-bench-tcp
  // puts its large frames there), completed in order on every device the probe runs against.
  unsigned tx_other_completed;
};

// The first virtio-net device; NULL if none.
struct virtio_dev *net_find(void);
// Features, both queues, the MAC (config offset 0 when VIRTIO_NET_F_MAC, else a fixed local
// address), RX queue filled. NULL = success.
const char *net_init(struct net_dev *n, struct virtio_dev *d);
// The same with every RX buffer `rx_len` bytes (evil-net: smaller than the header).
const char *net_init_rx(struct net_dev *n, struct virtio_dev *d, uint32_t rx_len);
// The same with `features` asked for beyond EVENT_IDX, MAC and MRG_RXBUF (offloads), and the RX
// buffers at `rx` (which must be RAM).
const char *net_init_with(struct net_dev *n, struct virtio_dev *d, uint64_t features,
                          const struct net_rx_layout *rx);
// Copies header + frame into a free TX slot and notifies. NULL = success.
const char *net_send(struct net_dev *n, const void *frame, uint32_t len);
// Takes TX completions off the used ring (frees slots).
void net_reap_tx(struct net_dev *n);
// The next received frame (after the header) and its length, or NULL when nothing arrived
// within timeout_ms or the device needs a reset. Valid until the next net_recv.
const uint8_t *net_recv(struct net_dev *n, uint32_t *len, uint32_t timeout_ms);
// The same without waiting: NULL when no frame is there yet.
const uint8_t *net_try_recv(struct net_dev *n, uint32_t *len);

#endif

#include "virtio_net.h"

#include "bootinfo.h"
#include "scenario.h"
#include "string.h"

enum { kNoBuffer = 0xffff };

struct virtio_dev *net_find(void) {
  struct virtio_dev *d;
  return virtio_find(kVirtioIdNet, &d, 1, 0) ? d : 0;
}

static void post_rx(struct net_dev *n, unsigned count, uint32_t len) {
  struct virtq *rx = virtio_queue(n->d, kNetRxQueue);
  for (unsigned i = 0; i < count && i < rx->size; i++) {
    virtq_set_desc(rx, (uint16_t)i, NET_RX_BUFFERS + (uint64_t)kNetBufBytes * i, len,
                   kVirtqDescWrite, 0);
    virtq_push(rx, (uint16_t)i);
  }
  virtio_kick_queue(n->d, kNetRxQueue);
}

const char *net_init(struct net_dev *n, struct virtio_dev *d) {
  return net_init_rx(n, d, kNetBufBytes);
}

const char *net_init_rx(struct net_dev *n, struct virtio_dev *d, uint32_t rx_len) {
  memset(n, 0, sizeof *n);
  n->d = d;
  n->rx_held = kNoBuffer;
  if (!bootinfo_is_ram(NET_RX_BUFFERS, NET_SCRATCH + 0x3000 - NET_RX_BUFFERS)) {
    return "net buffers (0x1400000-0x1492fff) are not RAM";
  }
  const char *err =
      virtio_init_queues(d, kFeatureRingEventIdx | kNetFeatureMac | kNetFeatureMrgRxbuf, 2);
  if (err) return err;
  if (d->accepted & kNetFeatureMac) {
    uint64_t cfg = virtio_config64(d, 0);
    for (unsigned i = 0; i < 6; i++) n->mac[i] = (uint8_t)(cfg >> (8 * i));
  } else {
    static const uint8_t kLocalMac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x57};
    memcpy(n->mac, kLocalMac, 6);
  }
  post_rx(n, virtio_queue(d, kNetRxQueue)->size, rx_len);
  return NULL;
}

void net_reap_tx(struct net_dev *n) {
  uint32_t id, len;
  struct virtq *tx = virtio_queue(n->d, kNetTxQueue);
  while (virtq_pop(tx, &id, &len)) {
    if (id < kNetTxSlots) n->tx_busy[id] = false;
    n->tx_completed++;
  }
}

const char *net_send(struct net_dev *n, const void *frame, uint32_t len) {
  if (len > kNetMaxFrame) return "frame too long";
  struct virtq *tx = virtio_queue(n->d, kNetTxQueue);
  unsigned slots = tx->size < kNetTxSlots ? tx->size : kNetTxSlots;
  for (unsigned tries = 0;; tries++) {
    net_reap_tx(n);
    if (!n->tx_busy[n->tx_next % slots]) break;
    if (tries == 3) return "no free TX slot (device not completing TX)";
    virtio_wait_queues(n->d, 1u << kNetTxQueue, 1000);
  }
  unsigned k = n->tx_next++ % slots;
  uint8_t *buf = (uint8_t *)(uintptr_t)(NET_TX_BUFFERS + (uint64_t)kNetBufBytes * k);
  memset(buf, 0, kNetHdrBytes);  // no checksum offload, no GSO, num_buffers 0 (5.1.6.2)
  memcpy(buf + kNetHdrBytes, frame, len);
  n->tx_busy[k] = true;
  virtq_set_desc(tx, (uint16_t)k, (uint64_t)(uintptr_t)buf, kNetHdrBytes + len, 0, 0);
  virtq_push(tx, (uint16_t)k);
  virtio_kick_queue(n->d, kNetTxQueue);
  return NULL;
}

static void repost(struct net_dev *n, uint16_t id) {
  struct virtq *rx = virtio_queue(n->d, kNetRxQueue);
  virtq_push(rx, id);  // the descriptor still names buffer id
  virtio_kick_queue(n->d, kNetRxQueue);
}

const uint8_t *net_recv(struct net_dev *n, uint32_t *len, uint32_t timeout_ms) {
  struct virtq *rx = virtio_queue(n->d, kNetRxQueue);
  if (n->rx_held != kNoBuffer) {
    repost(n, n->rx_held);
    n->rx_held = kNoBuffer;
  }
  for (;;) {
    net_reap_tx(n);
    uint32_t id, used;
    while (virtq_pop(rx, &id, &used)) {
      if (id >= rx->size) continue;  // device bug: nothing sensible to repost
      const uint8_t *buf =
          (const uint8_t *)(uintptr_t)(NET_RX_BUFFERS + (uint64_t)kNetBufBytes * id);
      uint16_t num_buffers = (uint16_t)(buf[10] | buf[11] << 8);
      // Frames spanning several buffers (only possible with MRG_RXBUF and frames > 2 KiB,
      // which nothing the probe talks to sends) are dropped: the first buffer goes back, and the
      // others come as further used entries whose headers are payload - they are dropped too as
      // long as they do not look like frames, which is why num_buffers != 1 is not trusted.
      if (used < kNetHdrBytes + 14 || used > kNetBufBytes ||
          ((n->d->accepted & kNetFeatureMrgRxbuf) && num_buffers != 1)) {
        repost(n, (uint16_t)id);
        continue;
      }
      n->rx_held = (uint16_t)id;
      *len = used - kNetHdrBytes;
      return buf + kNetHdrBytes;
    }
    if (virtio_needs_reset(n->d)) return 0;
    if (!virtio_wait_queues(n->d, 1u << kNetRxQueue, timeout_ms) || !virtq_has_used(rx)) {
      return 0;
    }
  }
}

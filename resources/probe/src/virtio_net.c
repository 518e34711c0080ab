#include "virtio_net.h"

#include "bootinfo.h"
#include "scenario.h"
#include "string.h"

enum { kNoBuffer = 0xffff };

struct virtio_dev *net_find(void) {
  struct virtio_dev *d;
  return virtio_find(kVirtioIdNet, &d, 1, 0) ? d : 0;
}

static uint8_t *rx_buffer(const struct net_dev *n, uint32_t id) {
  return (uint8_t *)(uintptr_t)(n->rx.base + (uint64_t)n->rx.stride * id);
}

static void post_rx(struct net_dev *n) {
  struct virtq *rx = virtio_queue(n->d, kNetRxQueue);
  for (unsigned i = 0; i < rx->size; i++) {
    virtq_set_desc(rx, (uint16_t)i, (uint64_t)(uintptr_t)rx_buffer(n, i), n->rx.len,
                   kVirtqDescWrite, 0);
    virtq_push(rx, (uint16_t)i);
  }
  virtio_kick_queue(n->d, kNetRxQueue);
}

const char *net_init(struct net_dev *n, struct virtio_dev *d) {
  return net_init_rx(n, d, kNetBufBytes);
}

const char *net_init_rx(struct net_dev *n, struct virtio_dev *d, uint32_t rx_len) {
  const struct net_rx_layout rx = {NET_RX_BUFFERS, kNetBufBytes, rx_len};
  return net_init_with(n, d, 0, &rx);
}

const char *net_init_with(struct net_dev *n, struct virtio_dev *d, uint64_t features,
                          const struct net_rx_layout *rx) {
  memset(n, 0, sizeof *n);
  n->d = d;
  n->rx = *rx;
  n->rx_held = kNoBuffer;
  if (!bootinfo_is_ram(NET_RX_BUFFERS, NET_SCRATCH + 0x3000 - NET_RX_BUFFERS)) {
    return "net buffers (0x1400000-0x1492fff) are not RAM";
  }
  if (!bootinfo_is_ram(rx->base, (uint64_t)rx->stride * kVirtqMaxSize)) {
    return scenario_failf("net RX buffers at 0x%lx (%u x %u bytes) are not RAM", rx->base,
                          kVirtqMaxSize, rx->stride);
  }
  const char *err = virtio_init_queues(
      d, kFeatureRingEventIdx | kNetFeatureMac | kNetFeatureMrgRxbuf | features, 2);
  if (err) return err;
  if (d->accepted & kNetFeatureMac) {
    uint64_t cfg = virtio_config64(d, 0);
    for (unsigned i = 0; i < 6; i++) n->mac[i] = (uint8_t)(cfg >> (8 * i));
  } else {
    static const uint8_t kLocalMac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x57};
    memcpy(n->mac, kLocalMac, 6);
  }
  post_rx(n);
  return NULL;
}

void net_reap_tx(struct net_dev *n) {
  uint32_t id, len;
  struct virtq *tx = virtio_queue(n->d, kNetTxQueue);
  while (virtq_pop(tx, &id, &len)) {
    if (id < kNetTxSlots) {
      n->tx_busy[id] = false;
    } else {
      n->tx_other_completed++;
    }
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

const uint8_t *net_try_recv(struct net_dev *n, uint32_t *len) {
  struct virtq *rx = virtio_queue(n->d, kNetRxQueue);
  if (n->rx_held != kNoBuffer) {
    repost(n, n->rx_held);
    n->rx_held = kNoBuffer;
  }
  net_reap_tx(n);
  uint32_t id, used;
  while (virtq_pop(rx, &id, &used)) {
    if (id >= rx->size) continue;  // device bug: nothing sensible to repost
    const uint8_t *buf = rx_buffer(n, id);
    uint16_t num_buffers = (uint16_t)(buf[10] | buf[11] << 8);
    // Frames spanning several buffers (only possible with MRG_RXBUF and frames larger than a
    // buffer, which nothing the probe talks to sends) are dropped: the first buffer goes back,
    // and the others come as further used entries whose headers are payload - they are dropped
    // too as long as they do not look like frames, which is why num_buffers != 1 is not trusted.
    if (used < kNetHdrBytes + 14 || used > n->rx.len ||
        ((n->d->accepted & kNetFeatureMrgRxbuf) && num_buffers != 1)) {
      repost(n, (uint16_t)id);
      continue;
    }
    n->rx_held = (uint16_t)id;
    *len = used - kNetHdrBytes;
    return buf + kNetHdrBytes;
  }
  return 0;
}

const uint8_t *net_recv(struct net_dev *n, uint32_t *len, uint32_t timeout_ms) {
  struct virtq *rx = virtio_queue(n->d, kNetRxQueue);
  for (;;) {
    const uint8_t *f = net_try_recv(n, len);
    if (f) return f;
    if (virtio_needs_reset(n->d)) return 0;
    if (!virtio_wait_queues(n->d, 1u << kNetRxQueue, timeout_ms) || !virtq_has_used(rx)) {
      return 0;
    }
  }
}

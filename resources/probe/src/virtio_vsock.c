#include "virtio_vsock.h"

#include "bootinfo.h"
#include "scenario.h"
#include "string.h"

enum {
  kCheckBufAlloc = 256 * 1024,  // check mode consumes at once: any size works
  kCreditUpdateDivisor = 4,     // CREDIT_UPDATE once a quarter of buf_alloc was freed unreported
  kNoSlot = ~0u,
};

static uint8_t g_pattern[256 + 8];

void vsock_pattern_init(void) {
  for (unsigned i = 0; i < sizeof g_pattern; i++) g_pattern[i] = (uint8_t)(i * 7 + 3);
}

// (i * 7 + 3) & 0xff depends only on i & 0xff, so 8 bytes from any offset are one unaligned
// load from a 264-byte table.
uint64_t vsock_pattern_word(uint32_t offset) {
  uint64_t w;
  __builtin_memcpy(&w, g_pattern + (offset & 0xff), 8);
  return w;
}

static void copy_words(uint8_t *dst, const uint8_t *src, uint32_t len) {
  uint32_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    __builtin_memcpy(&w, src + i, 8);
    __builtin_memcpy(dst + i, &w, 8);
  }
  for (; i < len; i++) dst[i] = src[i];
}

static uint64_t rx_header_addr(unsigned i) { return VSOCK_RX_HEADERS + 64ull * i; }
static uint64_t rx_data_addr(unsigned i) { return VSOCK_RX_DATA + (uint64_t)kVsockDataBytes * i; }
static uint64_t tx_header_addr(unsigned k) { return VSOCK_TX_HEADERS + 64ull * k; }
static uint64_t tx_data_addr(unsigned k) { return VSOCK_TX_DATA + (uint64_t)kVsockDataBytes * k; }

struct virtio_dev *vsock_find(void) {
  struct virtio_dev *d;
  return virtio_find(kVirtioIdVsock, &d, 1, 0) ? d : 0;
}

static void post_rx(struct vsock_dev *v, unsigned i) {
  struct virtq *rx = virtio_queue(v->d, kVsockRxQueue);
  uint16_t head = (uint16_t)(2 * i);
  virtq_set_desc(rx, head, rx_header_addr(i), kVsockHdrBytes, kVirtqDescWrite | kVirtqDescNext,
                 (uint16_t)(head + 1));
  virtq_set_desc(rx, (uint16_t)(head + 1), rx_data_addr(i), kVsockDataBytes, kVirtqDescWrite, 0);
  virtq_push(rx, head);
}

static void post_event(struct vsock_dev *v, unsigned i) {
  struct virtq *ev = virtio_queue(v->d, kVsockEventQueue);
  virtq_set_desc(ev, (uint16_t)i, VSOCK_EVENTS + 8ull * i, 8, kVirtqDescWrite, 0);
  virtq_push(ev, (uint16_t)i);
}

const char *vsock_init(struct vsock_dev *v, struct virtio_dev *d) {
  memset(v, 0, sizeof *v);
  v->d = d;
  uint64_t end = VSOCK_ECHO_RINGS + (uint64_t)kVsockEchoRingBytes * kVsockMaxConns;
  if (!bootinfo_is_ram(VSOCK_AREA, end - VSOCK_AREA)) {
    return "vsock buffers (0x1500000-0x163ffff) are not RAM";
  }
  const char *err = virtio_init_queues(d, kFeatureRingEventIdx | kVsockFeatureStream, 3);
  if (err) return err;
  v->guest_cid = virtio_config64(d, 0);
  if (v->guest_cid <= kVsockHostCid) {
    return scenario_failf("guest_cid %lu (must be > 2)", v->guest_cid);
  }
  struct virtq *rx = virtio_queue(d, kVsockRxQueue);
  struct virtq *tx = virtio_queue(d, kVsockTxQueue);
  struct virtq *ev = virtio_queue(d, kVsockEventQueue);
  if (rx->size < 2 || tx->size < 2 || ev->size < 1) return "vsock queues too small";
  unsigned rx_bufs = rx->size / 2 < kVsockRxBuffers ? rx->size / 2 : kVsockRxBuffers;
  for (unsigned i = 0; i < rx_bufs; i++) post_rx(v, i);
  v->tx_slots = tx->size / 2 < kVsockTxSlots ? tx->size / 2 : kVsockTxSlots;
  unsigned events = ev->size < kVsockEventBuffers ? ev->size : kVsockEventBuffers;
  for (unsigned i = 0; i < events; i++) post_event(v, i);
  virtio_kick_queue(d, kVsockRxQueue);
  virtio_kick_queue(d, kVsockEventQueue);
  return NULL;
}

void vsock_make_hdr(const struct vsock_dev *v, struct vsock_hdr *h, uint32_t src_port,
                    uint32_t dst_port, uint16_t op) {
  memset(h, 0, sizeof *h);
  h->src_cid = v->guest_cid;
  h->dst_cid = kVsockHostCid;
  h->src_port = src_port;
  h->dst_port = dst_port;
  h->type = kVsockTypeStream;
  h->op = op;
}

static void reap_tx(struct vsock_dev *v) {
  uint32_t id, len;
  struct virtq *tx = virtio_queue(v->d, kVsockTxQueue);
  while (virtq_pop(tx, &id, &len)) {
    if (id % 2 == 0 && id / 2 < kVsockTxSlots) v->tx_busy[id / 2] = false;
    v->tx_completed++;
  }
}

static unsigned free_tx_slot(struct vsock_dev *v) {
  reap_tx(v);
  for (unsigned n = 0; n < v->tx_slots; n++) {
    unsigned k = (v->tx_next + n) % v->tx_slots;
    if (!v->tx_busy[k]) {
      v->tx_next = k + 1;
      return k;
    }
  }
  return kNoSlot;
}

static void submit(struct vsock_dev *v, unsigned k, uint32_t hdr_len, uint64_t data,
                   uint32_t data_len) {
  struct virtq *tx = virtio_queue(v->d, kVsockTxQueue);
  uint16_t head = (uint16_t)(2 * k);
  v->tx_busy[k] = true;
  if (data_len) {
    virtq_set_desc(tx, head, tx_header_addr(k), hdr_len, kVirtqDescNext, (uint16_t)(head + 1));
    virtq_set_desc(tx, (uint16_t)(head + 1), data, data_len, 0, 0);
  } else {
    virtq_set_desc(tx, head, tx_header_addr(k), hdr_len, 0, 0);
  }
  virtq_push(tx, head);
  virtio_kick_queue(v->d, kVsockTxQueue);
}

unsigned vsock_send_raw(struct vsock_dev *v, const struct vsock_hdr *h, uint32_t hdr_len,
                        uint64_t data, uint32_t data_len) {
  unsigned k = free_tx_slot(v);
  if (k == kNoSlot) return kNoSlot;
  __builtin_memcpy((void *)(uintptr_t)tx_header_addr(k), h, sizeof *h);
  submit(v, k, hdr_len, data, data_len);
  return k;
}

// Sends a packet for connection c (op, flags, payload already in TX slot k's data buffer when
// len > 0), carrying our credit. False when no TX slot is free (nothing sent).
static bool send_on(struct vsock_dev *v, struct vsock_conn *c, uint16_t op, uint32_t flags,
                    unsigned k, uint32_t len) {
  if (k == kNoSlot) k = free_tx_slot(v);
  if (k == kNoSlot) return false;
  struct vsock_hdr *h = (struct vsock_hdr *)(uintptr_t)tx_header_addr(k);
  vsock_make_hdr(v, h, c->local_port, c->peer_port, op);
  h->len = len;
  h->flags = flags;
  h->buf_alloc = c->buf_alloc;
  h->fwd_cnt = c->fwd_cnt;
  c->fwd_reported = c->fwd_cnt;
  if (op == kVsockOpRw) c->tx_cnt += len;
  submit(v, k, kVsockHdrBytes, tx_data_addr(k), len);
  return true;
}

// An RST answering a packet that matches no connection (section 5.10.6.4: the peer learns the
// connection does not exist).
static void send_rst_for(struct vsock_dev *v, const struct vsock_hdr *in) {
  struct vsock_hdr h;
  vsock_make_hdr(v, &h, in->dst_port, in->src_port, kVsockOpRst);
  if (vsock_send_raw(v, &h, kVsockHdrBytes, 0, 0) != kNoSlot) v->rst_sent++;
}

static struct vsock_conn *find_conn(struct vsock_dev *v, uint32_t local, uint32_t peer) {
  for (unsigned i = 0; i < kVsockMaxConns; i++) {
    struct vsock_conn *c = &v->conns[i];
    if (c->state != kConnFree && c->state != kConnClosed && c->local_port == local &&
        c->peer_port == peer) {
      return c;
    }
  }
  return 0;
}

static struct vsock_conn *new_conn(struct vsock_dev *v, uint32_t local, uint32_t peer,
                                   enum vsock_mode mode) {
  for (unsigned i = 0; i < kVsockMaxConns; i++) {
    struct vsock_conn *c = &v->conns[i];
    if (c->state != kConnFree && c->state != kConnClosed) continue;
    memset(c, 0, sizeof *c);
    c->local_port = local;
    c->peer_port = peer;
    c->mode = mode;
    c->ring = (uint8_t *)(uintptr_t)(VSOCK_ECHO_RINGS + (uint64_t)kVsockEchoRingBytes * i);
    c->buf_alloc = mode == kModeEcho ? kVsockEchoRingBytes : kCheckBufAlloc;
    return c;
  }
  return 0;
}

struct vsock_conn *vsock_connect(struct vsock_dev *v, uint32_t local_port, uint32_t peer_port,
                                 enum vsock_mode mode, uint32_t to_send) {
  struct vsock_conn *c = new_conn(v, local_port, peer_port, mode);
  if (!c) return 0;
  c->to_send = to_send;
  c->state = kConnConnecting;
  if (!send_on(v, c, kVsockOpRequest, 0, kNoSlot, 0)) c->state = kConnClosed;
  return c;
}

static void close_conn(struct vsock_dev *v, struct vsock_conn *c) {
  if (c->accepted && c->state != kConnClosed) v->served++;
  c->state = kConnClosed;
}

void vsock_shutdown(struct vsock_dev *v, struct vsock_conn *c, uint32_t flags) {
  if (send_on(v, c, kVsockOpShutdown, flags, kNoSlot, 0)) c->state = kConnClosing;
}

static void check_payload(struct vsock_conn *c, const uint8_t *p, uint32_t len) {
  uint32_t off = c->rx_cnt, i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    __builtin_memcpy(&w, p + i, 8);
    if (w != vsock_pattern_word(off + i)) break;
  }
  for (; i < len; i++) {
    if (p[i] != (uint8_t)((off + i) * 7 + 3)) {
      if (!c->mismatch) c->mismatch_offset = off + i;
      c->mismatch = true;
      return;
    }
  }
}

// Stream payload for c. Returns false on a flow-control violation (more than we advertised).
static bool deliver(struct vsock_conn *c, const uint8_t *p, uint32_t len) {
  if (c->mode == kModeCheck) {
    check_payload(c, p, len);
    c->rx_cnt += len;
    c->fwd_cnt += len;  // consumed at once
    return true;
  }
  uint32_t used = c->ring_tail - c->ring_head;
  if (len > kVsockEchoRingBytes - used) return false;
  uint32_t at = c->ring_tail % kVsockEchoRingBytes;
  uint32_t first = kVsockEchoRingBytes - at < len ? kVsockEchoRingBytes - at : len;
  copy_words(c->ring + at, p, first);
  copy_words(c->ring, p + first, len - first);
  c->ring_tail += len;
  c->rx_cnt += len;
  return true;
}

static void handle_request(struct vsock_dev *v, const struct vsock_hdr *h) {
  struct vsock_conn *c = 0;
  if (v->listen_port != 0 && h->dst_port == v->listen_port) {
    c = new_conn(v, h->dst_port, h->src_port, kModeEcho);
  }
  if (!c) {
    send_rst_for(v, h);
    return;
  }
  c->accepted = true;
  c->state = kConnEstablished;
  c->peer_buf_alloc = h->buf_alloc;
  c->peer_fwd_cnt = h->fwd_cnt;
  v->accepted++;
  if (!send_on(v, c, kVsockOpResponse, 0, kNoSlot, 0)) close_conn(v, c);
}

static void handle_packet(struct vsock_dev *v, const struct vsock_hdr *h, const uint8_t *payload,
                          uint32_t payload_len) {
  // Section 5.10.6.4: packets not for this guest from the host are dropped; unknown types get an
  // RST.
  if (h->dst_cid != v->guest_cid || h->src_cid != kVsockHostCid) {
    v->dropped++;
    return;
  }
  if (h->type != kVsockTypeStream) {
    v->dropped++;
    if (h->op != kVsockOpRst) send_rst_for(v, h);
    return;
  }
  struct vsock_conn *c = find_conn(v, h->dst_port, h->src_port);
  if (!c) {
    if (h->op == kVsockOpRequest) {
      handle_request(v, h);
    } else if (h->op == kVsockOpRst) {
      v->rst_unmatched++;
    } else {
      v->dropped++;
      send_rst_for(v, h);
    }
    return;
  }
  c->peer_buf_alloc = h->buf_alloc;
  c->peer_fwd_cnt = h->fwd_cnt;
  switch (h->op) {
    case kVsockOpResponse:
      if (c->state == kConnConnecting) {
        c->state = kConnEstablished;
      } else {
        v->dropped++;
      }
      break;
    case kVsockOpRw:
      if (c->state != kConnEstablished && c->state != kConnClosing) break;
      if (h->len != payload_len || !deliver(c, payload, payload_len)) {
        // Payload beyond our credit (or a header lying about its length): reset.
        send_on(v, c, kVsockOpRst, 0, kNoSlot, 0);
        close_conn(v, c);
      }
      break;
    case kVsockOpCreditUpdate:
      break;  // the credit fields above were the point
    case kVsockOpCreditRequest:
      send_on(v, c, kVsockOpCreditUpdate, 0, kNoSlot, 0);
      break;
    case kVsockOpShutdown:
      c->peer_shutdown |= h->flags & (kVsockShutdownRcv | kVsockShutdownSend);
      break;
    case kVsockOpRst:
      close_conn(v, c);
      break;
    case kVsockOpRequest:  // for a connection that exists: reset it
    default:
      v->dropped++;
      send_on(v, c, kVsockOpRst, 0, kNoSlot, 0);
      close_conn(v, c);
      break;
  }
}

// The peer's free receive space for c (section 5.10.6.3.1). Absurd peer values (fwd_cnt ahead
// of what we sent) count as no credit rather than wrapping into a huge window.
static uint32_t peer_credit(const struct vsock_conn *c) {
  uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
  return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

// Sends what c may send now. Returns true if anything went out.
static bool flush_conn(struct vsock_dev *v, struct vsock_conn *c) {
  bool sent = false;
  if (c->state == kConnEstablished && !(c->peer_shutdown & kVsockShutdownRcv)) {
    for (;;) {
      uint32_t avail = c->mode == kModeEcho ? c->ring_tail - c->ring_head : c->to_send - c->tx_cnt;
      uint32_t n = peer_credit(c);
      if (n > avail) n = avail;
      if (n > kVsockDataBytes) n = kVsockDataBytes;
      if (n == 0) break;
      unsigned k = free_tx_slot(v);
      if (k == kNoSlot) break;
      uint8_t *buf = (uint8_t *)(uintptr_t)tx_data_addr(k);
      if (c->mode == kModeEcho) {
        uint32_t at = c->ring_head % kVsockEchoRingBytes;
        uint32_t first = kVsockEchoRingBytes - at < n ? kVsockEchoRingBytes - at : n;
        copy_words(buf, c->ring + at, first);
        copy_words(buf + first, c->ring, n - first);
        c->ring_head += n;
        c->fwd_cnt += n;  // freed from our receive buffer
      } else {
        uint32_t off = c->tx_cnt;
        for (uint32_t i = 0; i < n; i += 8) {
          uint64_t w = vsock_pattern_word(off + i);
          __builtin_memcpy(buf + i, &w, 8);  // n <= 4096: the last word stays in the buffer
        }
      }
      send_on(v, c, kVsockOpRw, 0, k, n);
      sent = true;
    }
  }
  // Tell the peer about space it cannot otherwise learn of (no data of ours carried it).
  if ((c->state == kConnEstablished || c->state == kConnClosing) &&
      c->fwd_cnt - c->fwd_reported >= c->buf_alloc / kCreditUpdateDivisor) {
    sent |= send_on(v, c, kVsockOpCreditUpdate, 0, kNoSlot, 0);
  }
  // An echo connection whose peer will send no more ends once everything went back: a
  // graceful SHUTDOWN, so the device first delivers what it still holds for the host, then
  // answers with the RST that closes the connection (an RST from us would be an abortive
  // close, which may discard that data).
  if (c->state == kConnEstablished && c->mode == kModeEcho &&
      (c->peer_shutdown & kVsockShutdownSend) &&
      (c->ring_tail == c->ring_head || (c->peer_shutdown & kVsockShutdownRcv))) {
    if (send_on(v, c, kVsockOpShutdown, kVsockShutdownRcv | kVsockShutdownSend, kNoSlot, 0)) {
      c->state = kConnClosing;
    }
  }
  return sent;
}

static bool process_rx(struct vsock_dev *v) {
  struct virtq *rx = virtio_queue(v->d, kVsockRxQueue);
  bool any = false;
  uint32_t id, used;
  while (virtq_pop(rx, &id, &used)) {
    any = true;
    unsigned i = id / 2;
    if (id % 2 != 0 || i >= kVsockRxBuffers) {
      v->dropped++;  // not a head we posted: nothing to recycle
      continue;
    }
    struct vsock_hdr h;
    __builtin_memcpy(&h, (const void *)(uintptr_t)rx_header_addr(i), sizeof h);
    if (used < kVsockHdrBytes || h.len > used - kVsockHdrBytes || h.len > kVsockDataBytes) {
      v->dropped++;
    } else {
      handle_packet(v, &h, (const uint8_t *)(uintptr_t)rx_data_addr(i), h.len);
    }
    post_rx(v, i);
  }
  if (any) virtio_kick_queue(v->d, kVsockRxQueue);
  return any;
}

static bool process_events(struct vsock_dev *v) {
  struct virtq *ev = virtio_queue(v->d, kVsockEventQueue);
  bool any = false;
  uint32_t id, len;
  while (virtq_pop(ev, &id, &len)) {
    any = true;
    if (id >= kVsockEventBuffers) continue;
    uint32_t event = *(volatile uint32_t *)(uintptr_t)(VSOCK_EVENTS + 8ull * id);
    if (len >= 4 && event == kVsockEventTransportReset) {
      // Section 5.10.6.7: every connection is gone and the CID may have changed.
      v->transport_resets++;
      for (unsigned c = 0; c < kVsockMaxConns; c++) {
        if (v->conns[c].state != kConnFree) close_conn(v, &v->conns[c]);
      }
      v->guest_cid = virtio_config64(v->d, 0);
    }
    post_event(v, id);
  }
  if (any) virtio_kick_queue(v->d, kVsockEventQueue);
  return any;
}

bool vsock_poll(struct vsock_dev *v, uint32_t timeout_ms) {
  for (unsigned round = 0;; round++) {
    // A device that needs a reset tells the driver with a configuration interrupt (2.1.2),
    // counted in config_changes; the Status register, which costs an exit to the device's
    // monitor, is read only when a wait brought nothing (a device that did not interrupt).
    if (v->d->config_changes != 0) return false;
    bool any = process_events(v);
    any |= process_rx(v);
    reap_tx(v);
    for (unsigned i = 0; i < kVsockMaxConns; i++) any |= flush_conn(v, &v->conns[i]);
    if (any) return true;
    if (round == 1) return !virtio_needs_reset(v->d);
    virtio_wait_queues(v->d, 1u << kVsockRxQueue | 1u << kVsockTxQueue | 1u << kVsockEventQueue,
                       timeout_ms);
  }
}

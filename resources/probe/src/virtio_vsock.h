// The probe's virtio-vsock driver (virtio 1.2 section 5.10), on top of virtio_mmio.c: queue 0 RX,
// 1 TX, 2 event; stream sockets only, with the credit-based flow control of section 5.10.6.3.
// Written from the specification; nothing here has been run against a device yet (QEMU's
// vhost-vsock needs the host's vhost_vsock module).
//
// Every packet is a 44-byte header (struct vsock_hdr) followed by hdr.len payload bytes. RX
// buffer i is descriptors 2i (header, 44 bytes) and 2i+1 (4 KiB data), both device-writable;
// TX packets are descriptor 2k (header) [+ 2k+1 (data)] of TX slot k. Linux has used the same
// two-descriptor layout, and it suits devices that want the header alone in the first buffer.
//
// Memory (VIRTIO_PACKET_AREA + 1 MiB):
//   0x1500000-0x1500fff  RX headers, 64 bytes apart (kVsockRxBuffers)
//   0x1510000-0x154ffff  RX data, 4 KiB each (64)
//   0x1550000-0x15507ff  TX headers, 64 bytes apart (kVsockTxSlots)
//   0x1560000-0x157ffff  TX data, 4 KiB each (32)
//   0x1580000-0x158001f  event buffers (4 x 8 bytes)
//   0x1581000-0x1582fff  evil-vsock scratch
//   0x1600000-0x163ffff  per-connection echo rings, 64 KiB each (kVsockMaxConns)
#ifndef PROBE_VIRTIO_VSOCK_H
#define PROBE_VIRTIO_VSOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "layout.h"
#include "virtio_mmio.h"

enum {
  kVsockRxQueue = 0,
  kVsockTxQueue = 1,
  kVsockEventQueue = 2,
  kVsockHdrBytes = 44,
  kVsockDataBytes = 4096,
  kVsockRxBuffers = 64,
  kVsockTxSlots = 32,
  kVsockEventBuffers = 4,
  kVsockMaxConns = 4,
  kVsockEchoRingBytes = 0x10000,
  kVsockHostCid = 2,  // section 5.10.4: the host's CID
  kVsockTypeStream = 1,
  // Operations (section 5.10.6).
  kVsockOpRequest = 1,
  kVsockOpResponse = 2,
  kVsockOpRst = 3,
  kVsockOpShutdown = 4,
  kVsockOpRw = 5,
  kVsockOpCreditUpdate = 6,
  kVsockOpCreditRequest = 7,
  // SHUTDOWN flags.
  kVsockShutdownRcv = 1,
  kVsockShutdownSend = 2,
  // Event ids (section 5.10.6.7).
  kVsockEventTransportReset = 0,
};

static const uint64_t kVsockFeatureStream = 1ull << 0;

#define VSOCK_AREA (VIRTIO_PACKET_AREA + 0x100000)
#define VSOCK_RX_HEADERS (VSOCK_AREA + 0x0)
#define VSOCK_RX_DATA (VSOCK_AREA + 0x10000)
#define VSOCK_TX_HEADERS (VSOCK_AREA + 0x50000)
#define VSOCK_TX_DATA (VSOCK_AREA + 0x60000)
#define VSOCK_EVENTS (VSOCK_AREA + 0x80000)
#define VSOCK_SCRATCH (VSOCK_AREA + 0x81000)
#define VSOCK_ECHO_RINGS (VSOCK_AREA + 0x100000)

struct vsock_hdr {
  uint64_t src_cid;
  uint64_t dst_cid;
  uint32_t src_port;
  uint32_t dst_port;
  uint32_t len;
  uint16_t type;
  uint16_t op;
  uint32_t flags;
  uint32_t buf_alloc;
  uint32_t fwd_cnt;
} __attribute__((packed));

enum vsock_state {
  kConnFree = 0,
  kConnConnecting,  // REQUEST sent, waiting for RESPONSE
  kConnEstablished,
  kConnClosing,  // SHUTDOWN sent, waiting for RST
  kConnClosed,   // RST seen (or sent): slot reusable once the owner looked
};

enum vsock_mode {
  kModeEcho,   // payload goes to the echo ring and back to the peer
  kModeCheck,  // payload compared with the pattern at its stream offset, then dropped
};

struct vsock_conn {
  enum vsock_state state;
  enum vsock_mode mode;
  uint32_t local_port, peer_port;
  bool accepted;  // came in through the listener
  // Our receive side: what we advertise and how much of it we have freed.
  uint32_t buf_alloc;
  uint32_t fwd_cnt;       // bytes consumed (echoed out of the ring, or checked)
  uint32_t fwd_reported;  // fwd_cnt in the last header we sent
  uint32_t rx_cnt;        // bytes received
  // The peer's receive side (from every header it sends).
  uint32_t peer_buf_alloc, peer_fwd_cnt;
  uint32_t tx_cnt;         // bytes sent
  uint32_t peer_shutdown;  // SHUTDOWN flags received
  // Echo ring (kModeEcho): bytes [ring_head, ring_tail) of the stream not yet sent back.
  uint8_t *ring;
  uint32_t ring_head, ring_tail;
  // Check mode: bytes to send and whether every byte received matched so far.
  uint32_t to_send;
  bool mismatch;
  uint32_t mismatch_offset;
};

struct vsock_dev {
  struct virtio_dev *d;
  uint64_t guest_cid;
  bool tx_busy[kVsockTxSlots];
  unsigned tx_next;
  unsigned tx_slots;
  struct vsock_conn conns[kVsockMaxConns];
  uint32_t listen_port;  // 0: not listening
  unsigned accepted;     // connections accepted since init
  unsigned served;       // accepted connections that ended (RST either way)
  unsigned transport_resets;
  unsigned dropped;  // received packets that were malformed or not for us
  unsigned rst_sent;
  unsigned rst_unmatched;  // RSTs received for no connection (answers to evil-vsock's packets)
  unsigned tx_completed;
};

struct virtio_dev *vsock_find(void);
// Features (VERSION_1, EVENT_IDX and STREAM when offered), the three queues, guest_cid, RX and
// event buffers posted. NULL = success.
const char *vsock_init(struct vsock_dev *v, struct virtio_dev *d);

// Opens a connection from local_port to the host's peer_port (REQUEST; the connection is
// kConnConnecting until vsock_poll sees the RESPONSE).
struct vsock_conn *vsock_connect(struct vsock_dev *v, uint32_t local_port, uint32_t peer_port,
                                 enum vsock_mode mode, uint32_t to_send);
// Sends SHUTDOWN(flags) and marks the connection closing.
void vsock_shutdown(struct vsock_dev *v, struct vsock_conn *c, uint32_t flags);

// Processes whatever the device has completed (RX packets, TX completions, events), then sends
// what flow control allows (echo data, pattern data, credit updates). Waits up to timeout_ms,
// halted, only when nothing was pending. False if the device needs a reset.
bool vsock_poll(struct vsock_dev *v, uint32_t timeout_ms);

// Raw TX for evil-vsock: a header (copied) and optional payload descriptor of the given
// address/length in one chain, no validation. Returns the slot used.
unsigned vsock_send_raw(struct vsock_dev *v, const struct vsock_hdr *h, uint32_t hdr_len,
                        uint64_t data, uint32_t data_len);
// A header for this device's CID pair and the given ports/op, with zero credit fields.
void vsock_make_hdr(const struct vsock_dev *v, struct vsock_hdr *h, uint32_t src_port,
                    uint32_t dst_port, uint16_t op);

// The test pattern: stream byte i is (i * 7 + 3) & 0xff.
void vsock_pattern_init(void);
uint64_t vsock_pattern_word(uint32_t offset);  // bytes offset..offset+7

#endif

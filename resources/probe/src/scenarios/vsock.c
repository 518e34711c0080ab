// vsock and evil-vsock: the first virtio-vsock device (section 5.10) against the host (CID 2).
//
// vsock: listens on guest port 1024 and echoes every byte of each accepted connection back
// until the host shuts it down or resets it; after probe.vsock_echo (default 1) such
// connections have ended, stops listening, connects from guest port 2000 to host port 1025,
// sends probe.vsock_bytes (default 1 MiB) of the pattern byte i = (i * 7 + 3) & 0xff, checks the
// host's echo of all of it, sends SHUTDOWN (both directions) and waits for the host's RST.
// Prints "probe: vsock echo <n> connections" and "probe: vsock sent <bytes> echoed ok".
// probe.vsock_timeout_ms (default 30000) bounds the wait for host connections; every other step
// fails after 5 s without progress.
//
// evil-vsock: seven malformed TX packets (below), each followed by 200 ms of serving the
// device; DEVICE_NEEDS_RESET leads to reset + re-init. Prints
// "probe: evil-vsock <case> tx-used <n> rst <n> status 0x<s> ok|reset", then runs the vsock
// flow (probe.vsock_bytes defaulting to 8192 here) and prints "probe: evil-vsock cases 7".
#include <stdint.h>

#include "cmdline.h"
#include "console.h"
#include "scenario.h"
#include "string.h"
#include "virtio_vsock.h"
#include "wait.h"

enum {
  kListenPort = 1024,
  kHostEchoPort = 1025,
  kClientPort = 2000,
  kStepTimeoutMs = 5000,
  kPollMs = 100,
  kSettleMs = 200,
  kEvilBasePort = 3000,
};

static struct vsock_dev g_vsock;

static uint64_t param(const char *key, uint64_t def) {
  uint64_t v;
  return cmdline_param_u64(key, &v) ? v : def;
}

static const char *serve_echo(struct vsock_dev *v, uint64_t connections, uint64_t timeout_ms) {
  v->listen_port = kListenPort;
  // The host waits for this line before it connects, rather than retrying blindly (every
  // refused CONNECT costs the emulated guest a REQUEST and an RST).
  console_printf("probe: vsock listening %u\n", (unsigned)kListenPort);
  uint64_t deadline = wait_clock_ms() + timeout_ms;
  while (v->served < connections) {
    if (wait_clock_ms() >= deadline) {
      return scenario_failf("echo: %u of %lu connections served in %lu ms (%u accepted)", v->served,
                            connections, timeout_ms, v->accepted);
    }
    if (!vsock_poll(v, kPollMs)) return "echo: device needs reset";
  }
  v->listen_port = 0;
  console_printf("probe: vsock echo %u connections\n", v->served);
  return NULL;
}

static const char *connect_host(struct vsock_dev *v, uint32_t bytes, struct vsock_conn **out) {
  uint64_t deadline = wait_clock_ms() + kStepTimeoutMs;
  for (;;) {
    struct vsock_conn *c = vsock_connect(v, kClientPort, kHostEchoPort, kModeCheck, bytes);
    if (!c) return "connect: no free connection or TX slot";
    while (c->state == kConnConnecting) {
      if (wait_clock_ms() >= deadline) return "connect: no RESPONSE from host port 1025";
      if (!vsock_poll(v, kPollMs)) return "connect: device needs reset";
    }
    if (c->state == kConnEstablished) {
      *out = c;
      return NULL;
    }
    // RST: the host is not listening yet. Try again shortly.
    wait_ms(kPollMs);
    if (wait_clock_ms() >= deadline) return "connect: host port 1025 keeps refusing (RST)";
  }
}

static const char *send_and_check(struct vsock_dev *v, uint32_t bytes) {
  vsock_pattern_init();
  struct vsock_conn *c;
  const char *err = connect_host(v, bytes, &c);
  if (err) return err;
  uint64_t deadline = wait_clock_ms() + kStepTimeoutMs;
  uint32_t seen_rx = 0, seen_tx = 0;
  while (c->rx_cnt < bytes) {
    if (c->state != kConnEstablished) {
      return scenario_failf("echo check: connection reset after %u sent, %u received", c->tx_cnt,
                            c->rx_cnt);
    }
    if (c->mismatch) return scenario_failf("echo check: byte %u differs", c->mismatch_offset);
    if (c->rx_cnt != seen_rx || c->tx_cnt != seen_tx) {
      deadline = wait_clock_ms() + kStepTimeoutMs;  // progress
      seen_rx = c->rx_cnt;
      seen_tx = c->tx_cnt;
    }
    if (wait_clock_ms() >= deadline) {
      return scenario_failf("echo check: stalled at %u sent, %u received (peer credit %u/%u)",
                            c->tx_cnt, c->rx_cnt, c->peer_buf_alloc, c->peer_fwd_cnt);
    }
    if (!vsock_poll(v, kPollMs)) return "echo check: device needs reset";
  }
  if (c->mismatch) return scenario_failf("echo check: byte %u differs", c->mismatch_offset);
  if (c->rx_cnt != bytes)
    return scenario_failf("echo check: %u bytes back, sent %u", c->rx_cnt, bytes);
  vsock_shutdown(v, c, kVsockShutdownRcv | kVsockShutdownSend);
  deadline = wait_clock_ms() + kStepTimeoutMs;
  while (c->state != kConnClosed) {
    if (wait_clock_ms() >= deadline) return "shutdown: no RST from the host";
    if (!vsock_poll(v, kPollMs)) return "shutdown: device needs reset";
  }
  console_printf("probe: vsock sent %u echoed ok\n", bytes);
  return NULL;
}

static const char *flow(struct vsock_dev *v, uint64_t default_bytes) {
  uint64_t echo = param("probe.vsock_echo", 1);
  uint64_t bytes = param("probe.vsock_bytes", default_bytes);
  uint64_t timeout = param("probe.vsock_timeout_ms", 30000);
  if (bytes == 0 || bytes > 0x40000000) return "probe.vsock_bytes: want 1..1 GiB";
  const char *err = serve_echo(v, echo, timeout);
  if (!err) err = send_and_check(v, (uint32_t)bytes);
  return err;
}

const char *scenario_vsock(void) {
  struct virtio_dev *d = vsock_find();
  if (!d) return "no virtio-vsock device";
  const char *err = vsock_init(&g_vsock, d);
  if (!err) err = flow(&g_vsock, 1048576);
  virtio_shutdown(d);
  return err;
}

// --- evil-vsock ---

static const uint64_t kScratch = VSOCK_SCRATCH;

static void hdr(struct vsock_hdr *h, unsigned n, uint16_t op) {
  vsock_make_hdr(&g_vsock, h, kEvilBasePort + n, kHostEchoPort, op);
  h->buf_alloc = 4096;
}

static void unknown_op(void) {
  struct vsock_hdr h;
  hdr(&h, 0, 99);
  vsock_send_raw(&g_vsock, &h, kVsockHdrBytes, 0, 0);
}

static void len_beyond_chain(void) {
  struct vsock_hdr h;
  hdr(&h, 1, kVsockOpRw);
  h.len = 4096;
  vsock_send_raw(&g_vsock, &h, kVsockHdrBytes, kScratch, 100);
}

static void wrong_src_cid(void) {
  struct vsock_hdr h;
  hdr(&h, 2, kVsockOpRequest);
  h.src_cid = g_vsock.guest_cid + 100;
  vsock_send_raw(&g_vsock, &h, kVsockHdrBytes, 0, 0);
}

static void dst_not_host(void) {
  struct vsock_hdr h;
  hdr(&h, 3, kVsockOpRequest);
  h.dst_cid = 7;
  vsock_send_raw(&g_vsock, &h, kVsockHdrBytes, 0, 0);
}

static void rw_no_connection(void) {
  struct vsock_hdr h;
  hdr(&h, 4, kVsockOpRw);
  h.len = 100;
  vsock_send_raw(&g_vsock, &h, kVsockHdrBytes, kScratch, 100);
}

static void absurd_credit(void) {
  struct vsock_hdr h;
  hdr(&h, 5, kVsockOpCreditUpdate);
  h.buf_alloc = 0xffffffffu;
  h.fwd_cnt = 0xfffffff0u;
  vsock_send_raw(&g_vsock, &h, kVsockHdrBytes, 0, 0);
}

static void short_chain(void) {
  struct vsock_hdr h;
  hdr(&h, 6, kVsockOpRequest);
  vsock_send_raw(&g_vsock, &h, 20, 0, 0);
}

struct evil_vsock_case {
  const char *name;
  void (*run)(void);
};

static const struct evil_vsock_case kCases[] = {
    {"unknown-op", unknown_op},
    {"len-beyond-chain", len_beyond_chain},
    {"wrong-src-cid", wrong_src_cid},
    {"dst-cid-not-host", dst_not_host},
    {"rw-no-connection", rw_no_connection},
    {"absurd-credit", absurd_credit},
    {"short-tx-chain", short_chain},
};

static const char *run_case(struct virtio_dev *d, const struct evil_vsock_case *c) {
  unsigned tx0 = g_vsock.tx_completed, rst0 = g_vsock.rst_unmatched;
  c->run();
  uint64_t until = wait_clock_ms() + kSettleMs;
  bool alive = true;
  while (alive && wait_clock_ms() < until) alive = vsock_poll(&g_vsock, kPollMs);
  uint32_t status = virtio_status(d);
  bool reset = virtio_needs_reset(d);
  console_printf("probe: evil-vsock %s tx-used %u rst %u status 0x%x %s\n", c->name,
                 g_vsock.tx_completed - tx0, g_vsock.rst_unmatched - rst0, status,
                 reset ? "reset" : "ok");
  if (status & kStatusFailed) return scenario_failf("%s: status FAILED", c->name);
  if (reset) {
    const char *err = vsock_init(&g_vsock, d);
    if (err) return scenario_failf("%s: re-init: %s", c->name, err);
  }
  return NULL;
}

const char *scenario_evil_vsock(void) {
  struct virtio_dev *d = vsock_find();
  if (!d) return "no virtio-vsock device";
  const char *err = vsock_init(&g_vsock, d);
  unsigned n = sizeof kCases / sizeof kCases[0];
  for (unsigned i = 0; i < n && !err; i++) err = run_case(d, &kCases[i]);
  if (!err) err = flow(&g_vsock, 8192);
  if (!err) console_printf("probe: evil-vsock cases %u\n", n);
  virtio_shutdown(d);
  return err;
}

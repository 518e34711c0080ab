// vsock-bench: virtio-vsock stream throughput without the probe touching payload. Connects guest
// port 2001 -> host (CID 2) port 1026, sends probe.bench_mib MiB (default 64) as fast as the
// host's credit allows (RW packets of up to 64 KiB, section 5.10.6.3, all naming one payload
// buffer the probe never writes), then receives bench_mib MiB the host sends back on the same
// connection (the driver's check mode: the first mismatching byte ends the comparison of each
// packet, so the data costs nothing; it is counted and consumed at once), then SHUTDOWN and the
// host's RST. Prints "probe: vsock-bench tx-start", "tx-done <bytes>", "rx-start",
// "rx-done <bytes>".
//
// Memory: the driver's (virtio_vsock.h), plus the TX payload at VIRTIO_BULK_AREA (64 KiB).
#include <stdint.h>

#include "bootinfo.h"
#include "cmdline.h"
#include "console.h"
#include "scenario.h"
#include "virtio_vsock.h"
#include "wait.h"

enum {
  kLocalPort = 2001,
  kHostPort = 1026,
  kMaxPacket = 64 * 1024,  // Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE
  kSilenceMs = 10000,
};

#define BENCH_PAYLOAD VIRTIO_BULK_AREA

static uint32_t credit(const struct vsock_conn *c) {
  uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
  return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

// Polls until done(c) or kSilenceMs without progress; false on timeout or reset.
static bool poll_until(struct vsock_dev *v, struct vsock_conn *c,
                       bool (*done)(const struct vsock_conn *, uint64_t), uint64_t arg) {
  uint32_t last_rx = c->rx_cnt;
  uint64_t quiet_since = wait_clock_ms();
  while (!done(c, arg)) {
    if (!vsock_poll(v, 100)) return false;
    if (c->rx_cnt != last_rx) {
      last_rx = c->rx_cnt;
      quiet_since = wait_clock_ms();
    } else if (wait_clock_ms() - quiet_since > kSilenceMs) {
      return false;
    }
  }
  return true;
}

static bool established(const struct vsock_conn *c, uint64_t arg) {
  (void)arg;
  return c->state != kConnConnecting;
}
static bool received(const struct vsock_conn *c, uint64_t want) {
  return c->rx_cnt >= want || c->state == kConnClosed;
}
static bool closed(const struct vsock_conn *c, uint64_t arg) {
  (void)arg;
  return c->state == kConnClosed;
}

static const char *send_all(struct vsock_dev *v, struct vsock_conn *c, uint64_t bytes) {
  uint64_t sent = 0, quiet_since = wait_clock_ms();
  console_printf("probe: vsock-bench tx-start\n");
  while (sent < bytes) {
    if (c->state != kConnEstablished) return scenario_failf("TX: connection closed after %lu bytes", sent);
    uint32_t n = credit(c);
    if (n > kMaxPacket) n = kMaxPacket;
    if (n > bytes - sent) n = (uint32_t)(bytes - sent);
    if (n > 0) {
      struct vsock_hdr h;
      vsock_make_hdr(v, &h, c->local_port, c->peer_port, kVsockOpRw);
      h.len = n;
      h.buf_alloc = c->buf_alloc;
      h.fwd_cnt = c->fwd_cnt;
      if (vsock_send_raw(v, &h, kVsockHdrBytes, BENCH_PAYLOAD, n) != ~0u) {
        c->fwd_reported = c->fwd_cnt;
        c->tx_cnt += n;
        c->to_send = c->tx_cnt;  // keeps the driver's own pattern sender idle
        sent += n;
        quiet_since = wait_clock_ms();
        continue;
      }
    }
    if (!vsock_poll(v, 100)) return "TX: device needs reset";
    if (wait_clock_ms() - quiet_since > kSilenceMs) {
      return scenario_failf("TX: %lu of %lu bytes, then no credit for %u ms", sent, bytes, kSilenceMs);
    }
  }
  console_printf("probe: vsock-bench tx-done %lu\n", sent);
  return NULL;
}

static const char *run(struct vsock_dev *v, uint64_t bytes) {
  struct vsock_conn *c = vsock_connect(v, kLocalPort, kHostPort, kModeCheck, 0);
  if (!c) return "no connection slot";
  if (!poll_until(v, c, established, 0) || c->state != kConnEstablished) {
    return "connecting to host port 1026 failed";
  }
  const char *err = send_all(v, c, bytes);
  if (err) return err;
  console_printf("probe: vsock-bench rx-start\n");
  bool ok = poll_until(v, c, received, bytes);
  console_printf("probe: vsock-bench rx-done %u\n", c->rx_cnt);
  if (!ok || c->rx_cnt < bytes) {
    return scenario_failf("RX: %u of %lu bytes (state %d)", c->rx_cnt, bytes, c->state);
  }
  if (c->state == kConnEstablished) {
    vsock_shutdown(v, c, kVsockShutdownRcv | kVsockShutdownSend);
    if (!poll_until(v, c, closed, 0)) return "no RST after SHUTDOWN";
  }
  return NULL;
}

const char *scenario_vsock_bench(void) {
  uint64_t mib = 64;
  cmdline_param_u64("probe.bench_mib", &mib);
  if (mib == 0 || mib > 4095) return "probe.bench_mib: want 1..4095";
  if (!bootinfo_is_ram(VIRTIO_BULK_AREA, kMaxPacket)) return "bench buffer (0x2000000) is not RAM";
  struct virtio_dev *d = vsock_find();
  if (!d) return "no virtio-vsock device";
  static struct vsock_dev v;
  vsock_pattern_init();
  const char *err = vsock_init(&v, d);
  if (!err) err = run(&v, mib << 20);
  virtio_shutdown(d);
  return err;
}

// net: the first virtio-net device against a real network stack (the host's TAP in the tests).
// ARP for the gateway (probe.gw, default 10.0.2.1) from our address (probe.ip, default
// 10.0.2.15), answering ARP requests for our address meanwhile; 3 ICMP echo requests to the
// gateway, replies checked; with probe.udp=<ip>:<port>, 3 UDP datagrams "probe-udp-<n>" echoed
// back. Each step times out after 5 s. Prints "probe: net mac <mac> gw-mac <mac>",
// "probe: net ping <n>/3" and, with probe.udp, "probe: net udp <n>/3".
#include <stdint.h>

#include "cmdline.h"
#include "console.h"
#include "format.h"
#include "net_stack.h"
#include "scenario.h"

enum {
  kCount = 3,
  kPingId = 0x7072,  // "pr"
  kUdpSrcPort = 40000,
};

static bool parse_udp_target(uint32_t *ip, uint16_t *port, bool *present, const char **err) {
  const char *v;
  size_t len;
  *present = cmdline_param("probe.udp", &v, &len);
  if (!*present) return true;
  size_t colon = 0;
  while (colon < len && v[colon] != ':') colon++;
  uint64_t p;
  if (colon == len || !net_parse_ip(v, colon, ip) ||
      !parse_u64(v + colon + 1, len - colon - 1, &p) || p == 0 || p > 0xffff) {
    *err = "probe.udp: want <a.b.c.d>:<port>";
    return false;
  }
  *port = (uint16_t)p;
  return true;
}

static const char *run(struct net_stack *s, bool udp, uint32_t udp_ip, uint16_t udp_port) {
  const char *err = net_arp_gateway(s);
  if (err) return err;
  char mac[18], gw_mac[18];
  net_format_mac(mac, s->n->mac);
  net_format_mac(gw_mac, s->gw_mac);
  console_printf("probe: net mac %s gw-mac %s\n", mac, gw_mac);
  unsigned ok = 0;
  const char *first_err = 0;
  for (unsigned i = 1; i <= kCount; i++) {
    err = net_ping(s, kPingId, (uint16_t)i);
    if (!err)
      ok++;
    else if (!first_err)
      first_err = err;
  }
  console_printf("probe: net ping %u/%u\n", ok, kCount);
  if (first_err) return first_err;
  if (!udp) return NULL;
  ok = 0;
  for (unsigned i = 1; i <= kCount; i++) {
    char payload[24];
    format(payload, sizeof payload, "probe-udp-%u", i);
    err = net_udp_echo(s, udp_ip, udp_port, (uint16_t)(kUdpSrcPort + i), payload);
    if (!err)
      ok++;
    else if (!first_err)
      first_err = err;
  }
  console_printf("probe: net udp %u/%u\n", ok, kCount);
  return first_err;
}

const char *scenario_net(void) {
  struct net_stack s = {0};
  if (!net_param_ip("probe.ip", 0x0a00020f, &s.ip)) return "probe.ip: want a.b.c.d";
  if (!net_param_ip("probe.gw", 0x0a000201, &s.gw)) return "probe.gw: want a.b.c.d";
  uint32_t udp_ip = 0;
  uint16_t udp_port = 0;
  bool udp;
  const char *err = 0;
  if (!parse_udp_target(&udp_ip, &udp_port, &udp, &err)) return err;
  struct virtio_dev *d = net_find();
  if (!d) return "no virtio-net device";
  static struct net_dev n;
  s.n = &n;
  err = net_init(&n, d);
  if (!err) err = run(&s, udp, udp_ip, udp_port);
  virtio_shutdown(d);
  return err;
}

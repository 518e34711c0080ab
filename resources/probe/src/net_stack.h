// Just enough of Ethernet, ARP (RFC 826), IPv4 (RFC 791), ICMP echo (RFC 792) and UDP (RFC 768)
// for the net scenarios, on top of virtio_net.h. Addresses are host-order uint32_t.
#ifndef PROBE_NET_STACK_H
#define PROBE_NET_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio_net.h"

enum { kNetStepTimeoutMs = 5000 };

struct net_stack {
  struct net_dev *n;
  uint32_t ip, gw;
  uint8_t gw_mac[6];
  unsigned arp_replies_sent;  // ARP requests for our address answered
};

// "a.b.c.d" -> host order; false if malformed.
bool net_parse_ip(const char *s, size_t len, uint32_t *out);
// probe.<key> as a dotted quad, or `def` when absent. False if present but malformed.
bool net_param_ip(const char *key, uint32_t def, uint32_t *out);

// ARP request for the gateway, waits for the reply (answering ARP requests for our address
// meanwhile). NULL = gw_mac set.
const char *net_arp_gateway(struct net_stack *s);
// One ICMP echo request (id, seq, 56 bytes of payload) to the gateway and its checked reply.
const char *net_ping(struct net_stack *s, uint16_t id, uint16_t seq);
// One UDP datagram to ip:port (through the gateway's MAC) and its echo, payload compared.
const char *net_udp_echo(struct net_stack *s, uint32_t ip, uint16_t port, uint16_t src_port,
                         const char *payload);
// "xx:xx:xx:xx:xx:xx" into buf[18].
void net_format_mac(char *buf, const uint8_t *mac);

#endif

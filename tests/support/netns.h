// Network namespaces for tests that put real traffic on a guest's network device without
// touching the host's network: a throwaway namespace, a TAP inside it, and a UDP echo server
// bound inside it. Everything needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN for setns) and iproute2.
//
//   NetNamespace ns;                                  // ip netns add ember-test-<pid>-<n>
//   ASSERT_TRUE(ns.ok()) << ns.error();
//   std::string err = CreateTap(ns, "tap0", "10.0.2.1/24");   // empty = success
//   UdpEchoServer echo(ns, "10.0.2.1", 0);            // thread inside the namespace
//   Subprocess vmm(ns.Exec({"/usr/bin/qemu-system-x86_64", ...}));  // runs inside it
//
// The namespace, and with it the TAP, is deleted on destruction; processes still running in it
// keep it alive until they exit (the name is gone at once).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace ember::testing {

// Path of iproute2's `ip` (absolute, for execv).
std::string IpTool();

class NetNamespace {
 public:
  // Creates a namespace named ember-test-<pid>-<n> (n counts within the process) and brings its
  // loopback up. Check ok(); error() says what failed.
  NetNamespace();
  ~NetNamespace();
  NetNamespace(const NetNamespace&) = delete;
  NetNamespace& operator=(const NetNamespace&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& name() const { return name_; }
  // /var/run/netns/<name>, the file setns() takes.
  std::string path() const;

  // argv wrapped so that it runs inside the namespace: {ip, "netns", "exec", name, argv...}.
  std::vector<std::string> Exec(const std::vector<std::string>& argv) const;
  // Runs `ip <args>` inside the namespace, waiting for it; returns "" or its stderr and status.
  std::string Ip(const std::vector<std::string>& args) const;

 private:
  std::string name_;
  std::string error_;
  bool created_ = false;
};

// Creates TAP device `name` in `ns` (ip tuntap add mode tap), assigns `cidr` (e.g.
// "10.0.2.1/24") and brings it up. Returns "" on success, else what failed.
std::string CreateTap(const NetNamespace& ns, const std::string& name, const std::string& cidr);

// Attaches to TAP `name` in `ns` as a VMM would (TUNSETIFF with IFF_TAP | IFF_NO_PI |
// IFF_VNET_HDR, no IFF_MULTI_QUEUE), so that the TAP is in use until this is destroyed.
class TapHolder {
 public:
  TapHolder(const NetNamespace& ns, const std::string& name);
  ~TapHolder();
  TapHolder(const TapHolder&) = delete;
  TapHolder& operator=(const TapHolder&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  int fd_ = -1;
  std::string error_;
};

// Runs `argv` (absolute program path) to completion; returns "" when it exits 0, else its
// stderr and exit status. For one-off commands such as `ip`.
std::string RunCommand(const std::vector<std::string>& argv);

// A UDP echo server on a thread that enters `ns` (setns on path()) before binding to
// address:port (port 0: an ephemeral one, see port()); every datagram goes back to its sender
// unchanged. Stops and joins on destruction.
class UdpEchoServer {
 public:
  UdpEchoServer(const NetNamespace& ns, const std::string& address, uint16_t port);
  ~UdpEchoServer();
  UdpEchoServer(const UdpEchoServer&) = delete;
  UdpEchoServer& operator=(const UdpEchoServer&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  uint16_t port() const { return port_; }
  unsigned echoed() const { return echoed_.load(); }

 private:
  void Serve(int fd);

  std::string error_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<unsigned> echoed_{0};
  std::thread thread_;
};

}  // namespace ember::testing

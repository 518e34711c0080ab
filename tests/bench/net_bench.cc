// Network benchmark: the probe guest moves UDP datagrams through virtio-net and a TAP (guest ->
// host, then host -> guest), and a byte stream through virtio-vsock (guest -> host, then host ->
// guest), without touching the payload. virtio-net runs under ember and under QEMU microvm in the
// same run (interleaved), each inside one network namespace holding tap0 (10.0.2.1/24, MTU 65000
// so every frame carries ~64 KiB with no offload); vsock runs under ember only (QEMU here has no
// vhost-vsock). For each direction: throughput between the probe's phase markers on the console,
// and the monitor's CPU time per GiB moved (all its threads, /proc/PID/task/*/schedstat),
// medians over the runs, and the ratios.
//
//   net_bench [--runs N] [--mib M] [--qemu PATH] [--accel kvm|tcg]
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/bench/bench_util.h"
#include "tests/integration/ember_runner.h"
#include "tests/support/netns.h"
#include "vmm/base/strings.h"

namespace ember::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kGuestMac = "06:00:0a:00:02:0f";
constexpr const char* kHostIp = "10.0.2.1";
constexpr const char* kGuestIp = "10.0.2.15";
constexpr uint16_t kSinkPort = 5001;   // guest -> host datagrams
constexpr uint16_t kGuestPort = 9000;  // host -> guest datagrams (net-bench's RX port)
constexpr size_t kDatagramBytes = 65000 - 20 - 8;  // one IPv4 packet at the TAP's MTU 65000
constexpr const char* kTapMtu = "65000";
constexpr int kBurst = 16;  // datagrams the host source sends between pauses


double Now() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }


bool EnterNamespace(const NetNamespace& ns) {
  int fd = open(ns.path().c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = setns(fd, CLONE_NEWNET) == 0;
  close(fd);
  return ok;
}

sockaddr_in Ipv4(const char* ip, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, ip, &sa.sin_addr);
  return sa;
}

// Inside the namespace: a sink counting the bytes of datagrams to 10.0.2.1:5001, and a source
// sending datagrams to the guest's port 9000 while `sending` is set (the guest stops counting at
// bench_mib MiB; whatever the TAP drops while the guest is busy never counts).
class UdpPeer {
 public:
  explicit UdpPeer(const NetNamespace& ns) {
    sink_ = std::thread([this, &ns] { Sink(ns); });
    source_ = std::thread([this, &ns] { Source(ns); });
  }
  ~UdpPeer() {
    stop_ = true;
    sink_.join();
    source_.join();
  }
  bool ready() const { return sink_ready_ && source_ready_; }
  std::atomic<uint64_t> sunk{0};
  std::atomic<uint64_t> sourced{0};
  std::atomic<bool> sending{false};

 private:
  void Sink(const NetNamespace& ns) {
    if (!EnterNamespace(ns)) return;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int buf = 64 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf);
    sockaddr_in sa = Ipv4(kHostIp, kSinkPort);
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      perror("net_bench: bind sink");
      close(fd);
      return;
    }
    sink_ready_ = true;
    std::vector<char> data(1 << 16);
    while (!stop_) {
      pollfd p = {fd, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      ssize_t n;
      while ((n = recv(fd, data.data(), data.size(), MSG_DONTWAIT)) > 0) sunk += n;
    }
    close(fd);
  }
  void Source(const NetNamespace& ns) {
    if (!EnterNamespace(ns)) return;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in to = Ipv4(kGuestIp, kGuestPort);
    std::vector<char> data(kDatagramBytes, 0x5a);
    source_ready_ = true;
    while (!stop_) {
      if (!sending) {
        usleep(1000);
        continue;
      }
      // Bursts of kBurst, then a short pause: the TAP drops what the monitor has not read yet,
      // and the pause keeps this thread from burning the CPU the monitors are measured on.
      for (int i = 0; i < kBurst; i++) {
        ssize_t n = sendto(fd, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&to),
                           sizeof to);
        if (n > 0) sourced += n;
      }
      usleep(20);
    }
    close(fd);
  }
  std::atomic<bool> stop_{false};
  std::atomic<bool> sink_ready_{false}, source_ready_{false};
  std::thread sink_, source_;
};

// Listens on <uds>_1026 (the guest's connection to host port 1026): reads `bytes`, writes
// `bytes` back, then waits for the guest's end of the stream.
class VsockPeer {
 public:
  VsockPeer(const std::string& path, uint64_t bytes) : bytes_(bytes) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    ok_ = bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 && listen(fd_, 4) == 0;
    thread_ = std::thread([this] { Serve(); });
  }
  ~VsockPeer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  bool ok() const { return ok_; }
  std::atomic<uint64_t> received{0}, sent{0};

 private:
  void Serve() {
    int c = -1;
    while (!stop_ && c < 0) {
      pollfd p = {fd_, POLLIN, 0};
      if (poll(&p, 1, 50) > 0) c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    }
    if (c < 0) return;
    std::vector<char> buf(1 << 16, 0x5a);
    while (!stop_ && received < bytes_) {
      pollfd q = {c, POLLIN, 0};
      if (poll(&q, 1, 50) <= 0) continue;
      ssize_t n = read(c, buf.data(), buf.size());
      if (n <= 0) break;
      received += n;
    }
    std::fill(buf.begin(), buf.end(), 0x5a);
    while (!stop_ && sent < bytes_) {
      pollfd q = {c, POLLOUT, 0};
      if (poll(&q, 1, 50) <= 0) continue;
      size_t want = std::min<uint64_t>(buf.size(), bytes_ - sent);
      ssize_t n = write(c, buf.data(), want);
      if (n <= 0) break;
      sent += n;
    }
    while (!stop_) {  // until the guest's SHUTDOWN closes the stream
      pollfd q = {c, POLLIN, 0};
      if (poll(&q, 1, 50) <= 0) continue;
      if (read(c, buf.data(), buf.size()) <= 0) break;
    }
    close(c);
  }
  uint64_t bytes_;
  int fd_ = -1;
  bool ok_ = false;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct Phase {
  double seconds = 0, cpu_seconds = 0;
};

struct Sample {
  bool ok = false;
  Phase tx, rx;
  uint64_t tx_bytes_seen = 0;  // by the host's sink / listener
  uint64_t tx_bytes_sent = 0;  // by the guest
  uint64_t rx_bytes = 0;       // counted by the guest
  uint64_t rx_offered = 0;     // sent by the host's source during the RX phase
};

// Waits for the four markers, calling at(i) right after marker i was seen.
bool WaitMarkers(Subprocess& p, const std::vector<std::string>& markers, double* t, double* cpu,
                 const std::function<void(int)>& at) {
  for (size_t i = 0; i < markers.size(); i++) {
    if (!p.WaitForStdout(markers[i], std::chrono::seconds(300))) {
      fprintf(stderr, "net_bench: no '%s'\n%s\n%s\n", markers[i].c_str(), p.out().c_str(),
              p.err().c_str());
      p.Kill(9);
      p.WaitExit(std::chrono::seconds(10));
      return false;
    }
    t[i] = Now();
    cpu[i] = ProcessCpuSeconds(p.pid());
    at(static_cast<int>(i));
  }
  return true;
}

uint64_t NumberAfter(const std::string& out, const std::string& marker) {
  size_t at = out.find(marker);
  return at == std::string::npos ? 0 : strtoull(out.c_str() + at + marker.size(), nullptr, 10);
}

Sample RunNet(const NetNamespace& ns, UdpPeer& peer, const std::vector<std::string>& argv) {
  Sample s;
  ns.Ip({"neigh", "replace", kGuestIp, "lladdr", kGuestMac, "dev", "tap0", "nud", "permanent"});
  uint64_t sunk0 = peer.sunk;
  uint64_t sourced0 = 0;
  Subprocess p(ns.Exec(argv));
  double t[4], cpu[4];
  bool ok = WaitMarkers(p,
                        {"net-bench tx-start", "net-bench tx-done", "net-bench rx-ready",
                         "net-bench rx-done"},
                        t, cpu, [&](int i) {
                          if (i == 2) sourced0 = peer.sourced, peer.sending = true;
                          if (i == 3) peer.sending = false;
                        });
  peer.sending = false;
  if (!ok) return s;
  s.tx = {t[1] - t[0], cpu[1] - cpu[0]};
  s.rx = {t[3] - t[2], cpu[3] - cpu[2]};
  s.ok = p.WaitExit(std::chrono::seconds(60)).has_value() &&
         p.out().find("probe: done passed=1 failed=0") != std::string::npos;
  if (!s.ok) fprintf(stderr, "net_bench: %s failed:\n%s\n%s\n", argv[0].c_str(), p.out().c_str(), p.err().c_str());
  usleep(200 * 1000);  // the sink drains its socket
  s.tx_bytes_seen = peer.sunk - sunk0;
  s.tx_bytes_sent = NumberAfter(p.out(), "net-bench tx-done ") * kDatagramBytes;
  s.rx_bytes = NumberAfter(p.out(), "net-bench rx-done ");
  s.rx_offered = peer.sourced - sourced0;
  return s;
}

Sample RunVsock(const TempDir& dir, const std::string& config, const std::string& uds,
                uint64_t bytes) {
  Sample s;
  unlink((uds + "_1026").c_str());
  unlink(uds.c_str());
  VsockPeer peer(uds + "_1026", bytes);
  if (!peer.ok()) return s;
  Subprocess p({EmberBinary(), "--no-api", "--config-file", config});
  double t[4], cpu[4];
  if (!WaitMarkers(p,
                   {"vsock-bench tx-start", "vsock-bench tx-done", "vsock-bench rx-start",
                    "vsock-bench rx-done"},
                   t, cpu, [](int) {})) {
    return s;
  }
  s.tx = {t[1] - t[0], cpu[1] - cpu[0]};
  s.rx = {t[3] - t[2], cpu[3] - cpu[2]};
  s.ok = p.WaitExit(std::chrono::seconds(60)).has_value() &&
         p.out().find("probe: done passed=1 failed=0") != std::string::npos;
  if (!s.ok) fprintf(stderr, "net_bench: vsock run failed:\n%s\n%s\n", p.out().c_str(), p.err().c_str());
  s.tx_bytes_seen = peer.received;
  s.tx_bytes_sent = NumberAfter(p.out(), "vsock-bench tx-done ");
  s.rx_bytes = NumberAfter(p.out(), "vsock-bench rx-done ");
  (void)dir;
  return s;
}

struct Figures {
  std::vector<double> tx_mibs, rx_mibs, tx_cpu_per_gib, rx_cpu_per_gib, tx_seen_pct, rx_offered_mibs;
  void Add(const Sample& s, double mib) {
    double rx_mib = s.rx_bytes / 1048576.0;
    tx_mibs.push_back(mib / s.tx.seconds);
    rx_mibs.push_back(rx_mib / s.rx.seconds);
    tx_cpu_per_gib.push_back(s.tx.cpu_seconds / (mib / 1024));
    rx_cpu_per_gib.push_back(s.rx.cpu_seconds / (rx_mib / 1024));
    rx_offered_mibs.push_back(s.rx_offered / 1048576.0 / s.rx.seconds);
    tx_seen_pct.push_back(s.tx_bytes_sent ? 100.0 * s.tx_bytes_seen / s.tx_bytes_sent : 0);
  }
};

void Row(const char* what, const std::vector<double>& ev, const std::vector<double>& qv,
         const char* unit, bool higher_better) {
  printf("  %-26s ember %9.2f %s", what, Median(ev), unit);
  if (!qv.empty()) {
    double ratio = higher_better ? Median(ev) / Median(qv) : Median(qv) / Median(ev);
    printf("   qemu %9.2f %s   ember advantage %.2fx", Median(qv), unit, ratio);
  }
  printf("\n");
}

}  // namespace
}  // namespace ember::testing

int main(int argc, char** argv) {
  using namespace ember::testing;
  int runs = 5, mib = 64;
  std::string qemu = "/usr/bin/qemu-system-x86_64";
  std::string accel = "kvm";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--mib")) mib = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--qemu")) qemu = argv[i + 1];
    else if (!strcmp(argv[i], "--accel")) accel = argv[i + 1];
  }
  if (!KvmUsable()) {
    fprintf(stderr, "net_bench: /dev/kvm cannot create a VM here; nothing to measure\n");
    return 2;
  }
  if (geteuid() != 0) {
    fprintf(stderr, "net_bench: network namespaces need root\n");
    return 2;
  }
  NetNamespace ns;
  if (!ns.ok()) {
    fprintf(stderr, "net_bench: %s\n", ns.error().c_str());
    return 2;
  }
  std::string err = CreateTap(ns, "tap0", std::string(kHostIp) + "/24");
  if (err.empty()) err = ns.Ip({"link", "set", "tap0", "mtu", kTapMtu});
  if (!err.empty()) {
    fprintf(stderr, "net_bench: tap0: %s\n", err.c_str());
    return 2;
  }
  UdpPeer peer(ns);
  for (int i = 0; i < 100 && !peer.ready(); i++) usleep(10 * 1000);
  if (!peer.ready()) {
    fprintf(stderr, "net_bench: UDP sink/source in the namespace did not start\n");
    return 2;
  }

  TempDir dir;
  const std::string net_args = ember::StrFormat(
      "probe=net-bench probe.bench_mib=%d probe.bench_dst=%s:%u", mib, kHostIp, kSinkPort);
  ProbeVm net_vm;
  net_vm.boot_args = net_args;
  net_vm.mem_mib = 256;
  net_vm.extra_json = std::string(", \"network-interfaces\": [{\"iface_id\": \"eth0\", "
                                  "\"host_dev_name\": \"tap0\", \"guest_mac\": \"") +
                      kGuestMac + "\", \"mtu\": " + kTapMtu + "}]";
  std::string net_config = WriteProbeConfig(dir, net_vm);
  const std::string uds = dir.path() + "/v.sock";
  ProbeVm vsock_vm;
  vsock_vm.boot_args = ember::StrFormat("probe=vsock-bench probe.bench_mib=%d", mib);
  vsock_vm.mem_mib = 256;
  vsock_vm.extra_json = ", \"vsock\": {\"guest_cid\": 3, \"uds_path\": \"" + uds + "\"}";
  TempDir vsock_dir;
  std::string vsock_config = WriteProbeConfig(vsock_dir, vsock_vm);

  std::vector<std::string> ember_cmd = {EmberBinary(), "--no-api", "--config-file", net_config};
  std::vector<std::string> qemu_cmd = {
      qemu, "-M", "microvm,acpi=off", "-accel", accel, "-cpu",
      accel == "kvm" ? "host,-arch-capabilities" : "max", "-m", "256", "-nodefaults",
      "-no-reboot", "-nographic", "-serial", "stdio", "-global", "virtio-mmio.force-legacy=false",
      "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=off", "-device",
      std::string("virtio-net-device,netdev=n0,mac=") + kGuestMac, "-kernel",
      GuestImage("probe.elf"), "-append", "console=ttyS0 reboot=k panic=1 " + net_args};
  bool have_qemu = access(qemu.c_str(), X_OK) == 0;

  Figures e, q, v;
  int failures = 0;
  for (int i = 0; i < runs; i++) {
    // Interleaved so that drift in the machine's load hits both monitors alike.
    Sample s = RunNet(ns, peer, ember_cmd);
    if (s.ok) e.Add(s, mib); else failures++;
    if (have_qemu) {
      Sample t = RunNet(ns, peer, qemu_cmd);
      if (t.ok) q.Add(t, mib);
    }
    Sample w = RunVsock(vsock_dir, vsock_config, uds, static_cast<uint64_t>(mib) << 20);
    if (w.ok) v.Add(w, mib); else failures++;
  }
  printf("network benchmark: %d runs, %d MiB each way\n", runs, mib);
  printf(" virtio-net over a TAP (MTU %s, UDP datagrams of %zu bytes, no offload):\n", kTapMtu,
         kDatagramBytes);
  Row("TX guest->host", e.tx_mibs, q.tx_mibs, "MiB/s", true);
  Row("RX host->guest", e.rx_mibs, q.rx_mibs, "MiB/s", true);
  Row("TX CPU per GiB", e.tx_cpu_per_gib, q.tx_cpu_per_gib, "s", false);
  Row("RX CPU per GiB", e.rx_cpu_per_gib, q.rx_cpu_per_gib, "s", false);
  Row("TX delivered to host sink", e.tx_seen_pct, q.tx_seen_pct, "%", true);
  Row("RX offered by host source", e.rx_offered_mibs, q.rx_offered_mibs, "MiB/s", true);
  printf("  samples: ember %zu, qemu %zu (-accel %s)\n", e.tx_mibs.size(), q.tx_mibs.size(),
         accel.c_str());
  printf(" virtio-vsock over the Unix socket (ember only; QEMU here has no vhost-vsock):\n");
  Row("TX guest->host", v.tx_mibs, {}, "MiB/s", true);
  Row("RX host->guest", v.rx_mibs, {}, "MiB/s", true);
  Row("TX CPU per GiB", v.tx_cpu_per_gib, {}, "s", false);
  Row("RX CPU per GiB", v.rx_cpu_per_gib, {}, "s", false);
  Row("TX delivered to listener", v.tx_seen_pct, {}, "%", true);
  printf("  samples: %zu\n", v.tx_mibs.size());
  return failures == 0 ? 0 : 1;
}

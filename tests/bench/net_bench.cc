// Network benchmark: the probe guest moves data through virtio-net and a TAP (guest -> host, then
// host -> guest) and through virtio-vsock (guest -> host, then host -> guest), without touching
// the payload. virtio-net runs under ember and under QEMU microvm in the same run (interleaved),
// each time inside a network namespace holding tap0 (10.0.2.1/24), in two ways:
//   - TCP with offloads (probe scenario net-bench-tcp): the TAP at MTU 1500; the probe negotiates
//     CSUM, GUEST_CSUM, HOST_TSO4 and GUEST_TSO4 and runs one bulk TCP connection each way
//     against the host's own TCP stack (a socket here reads what it sends, another one writes
//     what it receives), so 64 KiB TSO frames cross the TAP and the host kernel neither
//     segments nor checksums them; the sender is paced by TCP's own flow control.
//   - UDP without offloads (probe scenario net-bench): the TAP at MTU 65000 so that every
//     datagram is one ~64 KiB frame; the host's source sends bursts with pauses (UDP has no flow
//     control), so the host->guest figure depends on that pacing as much as on the monitor.
// vsock runs under ember only (QEMU here has no vhost-vsock). For each direction: throughput
// between the probe's phase markers on the console, the monitor's CPU time per GiB moved (all its
// threads, /proc/PID/task/*/schedstat), medians over the runs and the ratios; then, per MiB
// moved, counters that explain them (KVM exits and injected interrupts, the monitor's system
// calls and sleeps, the test host's idle time and the benchmark sender's CPU).
//
//   net_bench [--runs N] [--mib M] [--only tcp,udp,vsock] [--qemu PATH] [--accel kvm|tcg]
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
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
constexpr uint16_t kSinkPort = 5001;               // guest -> host
constexpr uint16_t kGuestPort = 9000;              // host -> guest (the probe's RX port)
constexpr size_t kDatagramBytes = 65000 - 20 - 8;  // one IPv4 packet at the TAP's MTU 65000
constexpr int kBurst = 16;                         // datagrams the UDP source sends between pauses
constexpr size_t kTcpWriteBytes = 256 << 10;

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

// The host's end of the traffic, inside the namespace: a sink counting what the guest sends to
// 10.0.2.1:5001 and a source sending to the guest's port 9000 while `sending` is set.
class Peer {
 public:
  virtual ~Peer() = default;
  bool ready() const { return sink_ready_ && source_ready_; }
  std::atomic<uint64_t> sunk{0};
  std::atomic<uint64_t> sourced{0};
  std::atomic<bool> sending{false};
  std::atomic<pid_t> source_tid{0};

 protected:
  // Starts Sink and Source on threads that enter `ns` first; derived constructors call it.
  void Start(const NetNamespace& ns) {
    sink_ = std::thread([this, &ns] {
      if (EnterNamespace(ns)) Sink();
    });
    source_ = std::thread([this, &ns] {
      source_tid = gettid();
      if (EnterNamespace(ns)) Source();
    });
  }
  // Derived destructors call it, so that the threads stop while the derived object lives.
  void Stop() {
    stop_ = true;
    if (sink_.joinable()) sink_.join();
    if (source_.joinable()) source_.join();
  }
  virtual void Sink() = 0;
  virtual void Source() = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> sink_ready_{false}, source_ready_{false};

 private:
  std::thread sink_, source_;
};

// UDP: datagrams of kDatagramBytes; whatever the TAP drops while the guest is busy never counts.
class UdpPeer : public Peer {
 public:
  explicit UdpPeer(const NetNamespace& ns) { Start(ns); }
  ~UdpPeer() override { Stop(); }

 private:
  void Sink() override {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int buf = 64 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf);
    sockaddr_in sa = Ipv4(kHostIp, kSinkPort);
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      perror("net_bench: bind UDP sink");
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
  void Source() override {
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
        ssize_t n =
            sendto(fd, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
        if (n > 0) sourced += n;
      }
      usleep(20);
    }
    close(fd);
  }
};

// TCP: the sink accepts the guest's connections and reads each to its end; the source connects
// to the guest's port once `sending` is set and writes until the guest resets the connection.
// Blocking sockets (with short timeouts so that `stop_` is seen): TCP's flow control paces the
// source, which never sleeps on its own.
class TcpPeer : public Peer {
 public:
  explicit TcpPeer(const NetNamespace& ns) { Start(ns); }
  ~TcpPeer() override { Stop(); }

 private:
  static void SetTimeout(int fd, int option) {
    timeval tv = {0, 100 * 1000};
    setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv);
  }
  void Sink() override {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa = Ipv4(kHostIp, kSinkPort);
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(fd, 4) != 0) {
      perror("net_bench: TCP sink");
      close(fd);
      return;
    }
    sink_ready_ = true;
    std::vector<char> data(1 << 20);
    while (!stop_) {
      pollfd p = {fd, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int c = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      SetTimeout(c, SO_RCVTIMEO);
      while (!stop_) {
        ssize_t n = recv(c, data.data(), data.size(), 0);
        if (n > 0) {
          sunk += n;
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
          break;
        }
      }
      close(c);
    }
    close(fd);
  }
  void Source() override {
    std::vector<char> data(kTcpWriteBytes, 0x5a);
    source_ready_ = true;
    while (!stop_) {
      if (!sending) {
        usleep(1000);
        continue;
      }
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in to = Ipv4(kGuestIp, kGuestPort);
      if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
        close(fd);
        usleep(10 * 1000);
        continue;
      }
      SetTimeout(fd, SO_SNDTIMEO);
      while (!stop_ && sending) {
        ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n > 0) {
          sourced += n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
          break;  // the guest reset the connection: it has what it wanted
        }
      }
      close(fd);
      while (!stop_ && sending) usleep(1000);  // one connection per phase
    }
  }
};

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

// What the test host saw at one moment, to explain a throughput figure: KVM's exit and
// interrupt-injection counters (debugfs; one VM runs at a time), the monitor's read and write
// system calls (/proc/PID/io) and its threads' voluntary context switches (sleeps), the host's
// idle time and the benchmark's own sender thread's CPU time.
// KVM's statistics (debugfs) worth a row, and what the row says.
constexpr std::pair<const char*, const char*> kKvmCounters[] = {
    {"exits", "KVM exits"},
    {"mmio_exits", "  MMIO exits to the monitor"},
    {"halt_exits", "  halts"},
    {"irq_exits", "  host interrupts"},
    {"irq_injections", "interrupts injected"},
};
constexpr size_t kKvmCounterCount = std::size(kKvmCounters);

struct HostCounters {
  double kvm[kKvmCounterCount] = {};
  double read_calls = 0, write_calls = 0, sleeps = 0;
  // The monitor's CPU time and the part of it spent running the guest, in clock ticks
  // (/proc/PID/stat utime + stime and guest_time).
  double cpu_ticks = 0, guest_ticks = 0;
  double idle_seconds = 0, sender_cpu_seconds = 0;
  HostCounters operator-(const HostCounters& o) const {
    HostCounters d;
    d.cpu_ticks = cpu_ticks - o.cpu_ticks;
    d.guest_ticks = guest_ticks - o.guest_ticks;
    for (size_t i = 0; i < kKvmCounterCount; i++) d.kvm[i] = kvm[i] - o.kvm[i];
    d.read_calls = read_calls - o.read_calls;
    d.write_calls = write_calls - o.write_calls;
    d.sleeps = sleeps - o.sleeps;
    d.idle_seconds = idle_seconds - o.idle_seconds;
    d.sender_cpu_seconds = sender_cpu_seconds - o.sender_cpu_seconds;
    return d;
  }
};

double ReadNumber(const std::string& path) {
  std::ifstream in(path);
  double v = 0;
  in >> v;
  return v;
}

// The number after `key` in a "key: value" file such as /proc/PID/io or status.
double FieldOf(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return strtod(line.c_str() + key.size(), nullptr);
  }
  return 0;
}

double VoluntarySwitches(pid_t pid) {
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  double total = 0;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      total += FieldOf(dir + "/" + e->d_name + "/status", "voluntary_ctxt_switches:");
    }
    closedir(d);
  }
  return total;
}

// utime + stime and guest_time of every thread of `pid`, in clock ticks (proc(5): fields 14, 15
// and 43; the guest's time is counted in utime too).
void ProcessTicks(pid_t pid, double* cpu, double* guest) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(in, stat);
  size_t paren = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (paren == std::string::npos) return;
  std::istringstream rest(stat.substr(paren + 1));
  std::vector<std::string> f{std::istream_iterator<std::string>(rest), {}};
  // f[0] is field 3 (the state), so field N is f[N - 3].
  if (f.size() <= 43 - 3) return;
  *cpu = strtod(f[14 - 3].c_str(), nullptr) + strtod(f[15 - 3].c_str(), nullptr);
  *guest = strtod(f[43 - 3].c_str(), nullptr);
}

double IdleSeconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double user, nice, system, idle;
  in >> cpu >> user >> nice >> system >> idle;
  return idle / static_cast<double>(sysconf(_SC_CLK_TCK));
}

constexpr const char* kKvmStats = "/sys/kernel/debug/kvm";

HostCounters ReadHostCounters(pid_t pid, pid_t sender_tid) {
  HostCounters c;
  for (size_t i = 0; i < kKvmCounterCount; i++) {
    c.kvm[i] = ReadNumber(std::string(kKvmStats) + "/" + kKvmCounters[i].first);
  }
  const std::string proc = "/proc/" + std::to_string(pid);
  c.read_calls = FieldOf(proc + "/io", "syscr:");
  c.write_calls = FieldOf(proc + "/io", "syscw:");
  c.sleeps = VoluntarySwitches(pid);
  ProcessTicks(pid, &c.cpu_ticks, &c.guest_ticks);
  c.idle_seconds = IdleSeconds();
  if (sender_tid > 0) {
    c.sender_cpu_seconds =
        ReadNumber("/proc/self/task/" + std::to_string(sender_tid) + "/schedstat") / 1e9;
  }
  return c;
}

struct Phase {
  double seconds = 0, cpu_seconds = 0;
  HostCounters counters;
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
                 HostCounters* counters, pid_t sender_tid, const std::function<void(int)>& at) {
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
    counters[i] = ReadHostCounters(p.pid(), sender_tid);
    at(static_cast<int>(i));
  }
  return true;
}

uint64_t NumberAfter(const std::string& out, const std::string& marker) {
  size_t at = out.find(marker);
  return at == std::string::npos ? 0 : strtoull(out.c_str() + at + marker.size(), nullptr, 10);
}

// One way of moving data through the TAP: its namespace, host peer and probe scenario.
struct NetMode {
  std::string name;      // "tcp", "udp"
  std::string scenario;  // the probe scenario, also its markers' prefix
  std::unique_ptr<NetNamespace> ns;
  std::unique_ptr<Peer> peer;
  std::unique_ptr<TempDir> dir;  // ember's config file
  std::vector<std::string> ember_cmd, qemu_cmd;
  uint64_t tx_unit = 1;  // bytes per unit of the probe's "tx-done <n>"
};

Sample RunNet(NetMode& mode, const std::vector<std::string>& argv) {
  Sample s;
  Peer& peer = *mode.peer;
  mode.ns->Ip(
      {"neigh", "replace", kGuestIp, "lladdr", kGuestMac, "dev", "tap0", "nud", "permanent"});
  uint64_t sunk0 = peer.sunk;
  uint64_t sourced0 = 0;
  Subprocess p(mode.ns->Exec(argv));
  double t[4], cpu[4];
  HostCounters hc[4];
  const std::string& m = mode.scenario;
  bool ok = WaitMarkers(p, {m + " tx-start", m + " tx-done", m + " rx-ready", m + " rx-done"}, t,
                        cpu, hc, peer.source_tid, [&](int i) {
                          if (i == 2) sourced0 = peer.sourced, peer.sending = true;
                          if (i == 3) peer.sending = false;
                        });
  peer.sending = false;
  if (!ok) return s;
  s.tx = {t[1] - t[0], cpu[1] - cpu[0], hc[1] - hc[0]};
  s.rx = {t[3] - t[2], cpu[3] - cpu[2], hc[3] - hc[2]};
  s.ok = p.WaitExit(std::chrono::seconds(60)).has_value() &&
         p.out().find("probe: done passed=1 failed=0") != std::string::npos;
  if (!s.ok) {
    fprintf(stderr, "net_bench: %s (%s) failed:\n%s\n%s\n", argv[0].c_str(), mode.name.c_str(),
            p.out().c_str(), p.err().c_str());
  }
  usleep(200 * 1000);  // the sink drains its socket
  s.tx_bytes_seen = peer.sunk - sunk0;
  s.tx_bytes_sent = NumberAfter(p.out(), m + " tx-done ") * mode.tx_unit;
  s.rx_bytes = NumberAfter(p.out(), m + " rx-done ");
  s.rx_offered = peer.sourced - sourced0;
  return s;
}

Sample RunVsock(const std::string& config, const std::string& uds, uint64_t bytes) {
  Sample s;
  unlink((uds + "_1026").c_str());
  unlink(uds.c_str());
  VsockPeer peer(uds + "_1026", bytes);
  if (!peer.ok()) return s;
  Subprocess p({EmberBinary(), "--no-api", "--config-file", config});
  double t[4], cpu[4];
  HostCounters hc[4];
  if (!WaitMarkers(p,
                   {"vsock-bench tx-start", "vsock-bench tx-done", "vsock-bench rx-start",
                    "vsock-bench rx-done"},
                   t, cpu, hc, 0, [](int) {})) {
    return s;
  }
  s.tx = {t[1] - t[0], cpu[1] - cpu[0], hc[1] - hc[0]};
  s.rx = {t[3] - t[2], cpu[3] - cpu[2], hc[3] - hc[2]};
  s.ok = p.WaitExit(std::chrono::seconds(60)).has_value() &&
         p.out().find("probe: done passed=1 failed=0") != std::string::npos;
  if (!s.ok)
    fprintf(stderr, "net_bench: vsock run failed:\n%s\n%s\n", p.out().c_str(), p.err().c_str());
  s.tx_bytes_seen = peer.received;
  s.tx_bytes_sent = NumberAfter(p.out(), "vsock-bench tx-done ");
  s.rx_bytes = NumberAfter(p.out(), "vsock-bench rx-done ");
  return s;
}

// Per-MiB counters of one direction, and the host's idle and sender shares of the phase.
struct Diagnostics {
  std::vector<double> kvm[kKvmCounterCount];
  std::vector<double> reads, writes, sleeps, idle_pct, sender_pct, guest_pct, own_cpu_per_gib;
  void Add(const Phase& p, double mib) {
    const HostCounters& c = p.counters;
    double guest_share = c.cpu_ticks > 0 ? c.guest_ticks / c.cpu_ticks : 0;
    guest_pct.push_back(100 * guest_share);
    own_cpu_per_gib.push_back(p.cpu_seconds * (1 - guest_share) / (mib / 1024));
    for (size_t i = 0; i < kKvmCounterCount; i++) kvm[i].push_back(c.kvm[i] / mib);
    reads.push_back(c.read_calls / mib);
    writes.push_back(c.write_calls / mib);
    sleeps.push_back(c.sleeps / mib);
    idle_pct.push_back(100 * c.idle_seconds / p.seconds);
    sender_pct.push_back(100 * c.sender_cpu_seconds / p.seconds);
  }
};

struct Figures {
  std::vector<double> tx_mibs, rx_mibs, tx_cpu_per_gib, rx_cpu_per_gib, tx_seen_pct,
      rx_offered_mibs;
  Diagnostics tx_diag, rx_diag;
  void Add(const Sample& s) {
    double tx_mib = s.tx_bytes_sent / 1048576.0;
    double rx_mib = s.rx_bytes / 1048576.0;
    tx_mibs.push_back(tx_mib / s.tx.seconds);
    rx_mibs.push_back(rx_mib / s.rx.seconds);
    tx_cpu_per_gib.push_back(s.tx.cpu_seconds / (tx_mib / 1024));
    rx_cpu_per_gib.push_back(s.rx.cpu_seconds / (rx_mib / 1024));
    rx_offered_mibs.push_back(s.rx_offered / 1048576.0 / s.rx.seconds);
    tx_seen_pct.push_back(s.tx_bytes_sent ? 100.0 * s.tx_bytes_seen / s.tx_bytes_sent : 0);
    tx_diag.Add(s.tx, tx_mib);
    rx_diag.Add(s.rx, rx_mib);
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

void DiagnosticRows(const char* direction, const Diagnostics& e, const Diagnostics& q) {
  auto row = [&](const char* what, const std::vector<double>& ev, const std::vector<double>& qv,
                 const char* unit) {
    printf("    %-24s ember %9.1f %-2s", what, Median(ev), unit);
    if (!qv.empty()) printf("   qemu %9.1f %s", Median(qv), unit);
    printf("\n");
  };
  printf("  %s, what the monitor's CPU time went to:\n", direction);
  row("guest code (KVM_RUN)", e.guest_pct, q.guest_pct, "%");
  row("the rest, s per GiB", e.own_cpu_per_gib, q.own_cpu_per_gib, "s");
  printf("  %s, per MiB moved (test-host counters):\n", direction);
  for (size_t i = 0; i < kKvmCounterCount; i++) {
    row(kKvmCounters[i].second, e.kvm[i], q.kvm[i], "");
  }
  row("monitor read syscalls", e.reads, q.reads, "");
  row("monitor write syscalls", e.writes, q.writes, "");
  row("monitor thread sleeps", e.sleeps, q.sleeps, "");
  row("host CPU idle", e.idle_pct, q.idle_pct, "%");
  row("benchmark sender CPU", e.sender_pct, q.sender_pct, "%");
}

void Report(const char* title, const Figures& e, const Figures& q, const char* offered_row) {
  printf("%s\n", title);
  Row("TX guest->host", e.tx_mibs, q.tx_mibs, "MiB/s", true);
  Row("RX host->guest", e.rx_mibs, q.rx_mibs, "MiB/s", true);
  Row("TX CPU per GiB", e.tx_cpu_per_gib, q.tx_cpu_per_gib, "s", false);
  Row("RX CPU per GiB", e.rx_cpu_per_gib, q.rx_cpu_per_gib, "s", false);
  Row("TX delivered to host", e.tx_seen_pct, q.tx_seen_pct, "%", true);
  if (offered_row) Row(offered_row, e.rx_offered_mibs, q.rx_offered_mibs, "MiB/s", true);
  printf("  samples: ember %zu, qemu %zu\n", e.tx_mibs.size(), q.tx_mibs.size());
  DiagnosticRows("TX", e.tx_diag, q.tx_diag);
  DiagnosticRows("RX", e.rx_diag, q.rx_diag);
}

// The namespace with tap0 at `mtu`, its peer, and both monitors' command lines for `scenario`.
std::string SetUpMode(NetMode& mode, const std::string& mtu, int mib, const std::string& qemu,
                      const std::string& accel) {
  mode.ns = std::make_unique<NetNamespace>();
  if (!mode.ns->ok()) return mode.ns->error();
  std::string err = CreateTap(*mode.ns, "tap0", std::string(kHostIp) + "/24");
  if (err.empty()) err = mode.ns->Ip({"link", "set", "tap0", "mtu", mtu});
  if (!err.empty()) return "tap0: " + err;
  if (mode.name == "tcp") {
    mode.peer = std::make_unique<TcpPeer>(*mode.ns);
  } else {
    mode.peer = std::make_unique<UdpPeer>(*mode.ns);
  }
  for (int i = 0; i < 100 && !mode.peer->ready(); i++) usleep(10 * 1000);
  if (!mode.peer->ready()) return "the host's sink or source did not start";
  const std::string args = ember::StrFormat("probe=%s probe.bench_mib=%d probe.bench_dst=%s:%u",
                                            mode.scenario.c_str(), mib, kHostIp, kSinkPort);
  ProbeVm vm;
  vm.boot_args = args;
  vm.mem_mib = 256;
  vm.extra_json = std::string(
                      ", \"network-interfaces\": [{\"iface_id\": \"eth0\", "
                      "\"host_dev_name\": \"tap0\", \"guest_mac\": \"") +
                  kGuestMac + "\", \"mtu\": " + mtu + "}]";
  mode.dir = std::make_unique<TempDir>();
  mode.ember_cmd = {EmberBinary(), "--no-api", "--config-file", WriteProbeConfig(*mode.dir, vm)};
  mode.qemu_cmd = {qemu,
                   "-M",
                   "microvm,acpi=off",
                   "-accel",
                   accel,
                   "-cpu",
                   accel == "kvm" ? "host,-arch-capabilities" : "max",
                   "-m",
                   "256",
                   "-nodefaults",
                   "-no-reboot",
                   "-nographic",
                   "-serial",
                   "stdio",
                   "-global",
                   "virtio-mmio.force-legacy=false",
                   "-netdev",
                   "tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=off",
                   "-device",
                   std::string("virtio-net-device,netdev=n0,mac=") + kGuestMac,
                   "-kernel",
                   GuestImage("probe.elf"),
                   "-append",
                   "console=ttyS0 reboot=k panic=1 " + args};
  return "";
}

}  // namespace
}  // namespace ember::testing

int main(int argc, char** argv) {
  using namespace ember::testing;
  int runs = 5, mib = 64;
  std::string qemu = "/usr/bin/qemu-system-x86_64";
  std::string accel = "kvm";
  std::string only = "tcp,udp,vsock";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--runs"))
      runs = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--mib"))
      mib = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--only"))
      only = argv[i + 1];
    else if (!strcmp(argv[i], "--qemu"))
      qemu = argv[i + 1];
    else if (!strcmp(argv[i], "--accel"))
      accel = argv[i + 1];
  }
  if (!KvmUsable()) {
    fprintf(stderr, "net_bench: /dev/kvm cannot create a VM here; nothing to measure\n");
    return 2;
  }
  if (geteuid() != 0) {
    fprintf(stderr, "net_bench: network namespaces need root\n");
    return 2;
  }
  if (access(kKvmStats, R_OK) != 0) mount("debugfs", "/sys/kernel/debug", "debugfs", 0, nullptr);
  const bool have_qemu = access(qemu.c_str(), X_OK) == 0;

  std::vector<NetMode> modes;
  for (auto [name, scenario, mtu, unit] :
       {std::tuple{"tcp", "net-bench-tcp", "1500", uint64_t{1}},
        std::tuple{"udp", "net-bench", "65000", uint64_t{kDatagramBytes}}}) {
    if (only.find(name) == std::string::npos) continue;
    NetMode& mode = modes.emplace_back();
    mode.name = name;
    mode.scenario = scenario;
    mode.tx_unit = unit;
    std::string err = SetUpMode(mode, mtu, mib, qemu, accel);
    if (!err.empty()) {
      fprintf(stderr, "net_bench: %s: %s\n", name, err.c_str());
      return 2;
    }
  }
  const bool vsock = only.find("vsock") != std::string::npos;
  TempDir vsock_dir;
  const std::string uds = vsock_dir.path() + "/v.sock";
  ProbeVm vsock_vm;
  vsock_vm.boot_args = ember::StrFormat("probe=vsock-bench probe.bench_mib=%d", mib);
  vsock_vm.mem_mib = 256;
  vsock_vm.extra_json = ", \"vsock\": {\"guest_cid\": 3, \"uds_path\": \"" + uds + "\"}";
  const std::string vsock_config = WriteProbeConfig(vsock_dir, vsock_vm);

  std::vector<Figures> ember_figures(modes.size()), qemu_figures(modes.size());
  Figures vsock_figures;
  int failures = 0;
  for (int i = 0; i < runs; i++) {
    // Interleaved so that drift in the machine's load hits both monitors alike.
    for (size_t m = 0; m < modes.size(); m++) {
      Sample s = RunNet(modes[m], modes[m].ember_cmd);
      if (s.ok)
        ember_figures[m].Add(s);
      else
        failures++;
      if (have_qemu) {
        Sample t = RunNet(modes[m], modes[m].qemu_cmd);
        if (t.ok) qemu_figures[m].Add(t);
      }
    }
    if (vsock) {
      Sample w = RunVsock(vsock_config, uds, static_cast<uint64_t>(mib) << 20);
      if (w.ok)
        vsock_figures.Add(w);
      else
        failures++;
    }
  }
  printf("network benchmark: %d runs, %d MiB each way, QEMU with -accel %s\n", runs, mib,
         accel.c_str());
  for (size_t m = 0; m < modes.size(); m++) {
    if (modes[m].name == "tcp") {
      Report(" virtio-net, TCP with checksum and TSO offloads (TAP MTU 1500, 64 KiB frames):",
             ember_figures[m], qemu_figures[m], nullptr);
    } else {
      Report(" virtio-net, UDP without offloads (TAP MTU 65000, one 64972-byte datagram a frame):",
             ember_figures[m], qemu_figures[m], "RX offered by host source");
    }
  }
  if (vsock) {
    Report(" virtio-vsock over the Unix socket (ember only; QEMU here has no vhost-vsock):",
           vsock_figures, {}, nullptr);
  }
  return failures == 0 ? 0 : 1;
}

// The probe's virtio-net and virtio-vsock scenarios under ember. Every network test creates its
// own network namespace with a TAP at 10.0.2.1/24 and runs ember inside it, so no frame leaves
// the namespace; vsock tests talk to ember over Unix sockets in a temporary directory with
// Firecracker's CONNECT protocol.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "tests/integration/ember_runner.h"
#include "tests/support/echo_listener.h"
#include "tests/support/netns.h"
#include "vmm/base/strings.h"

namespace ember::testing {
namespace {

#define REQUIRE_ROOT()                                                  \
  do {                                                                  \
    if (geteuid() != 0) GTEST_SKIP() << "network namespaces need root"; \
  } while (0)

using Clock = std::chrono::steady_clock;

std::string NetJson(const std::string& tap, const std::string& extra = "") {
  return ", \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"" + tap +
         "\", \"guest_mac\": \"06:00:0a:00:02:0f\"" + extra + "}]";
}

RunResult RunInNamespace(const NetNamespace& ns, const ProbeVm& vm) {
  TempDir dir;
  std::string config = WriteProbeConfig(dir, vm);
  Subprocess p(ns.Exec({EmberBinary(), "--no-api", "--config-file", config}));
  RunResult r;
  r.exit_code = p.WaitExit(std::chrono::seconds(90));
  r.out = p.out();
  r.err = p.err();
  return r;
}

void ExpectPassed(const RunResult& r, int count) {
  ASSERT_TRUE(r.exit_code.has_value()) << "timed out; stdout:\n" << r.out << "\nstderr:\n" << r.err;
  EXPECT_EQ(*r.exit_code, 0) << "stdout:\n" << r.out << "\nstderr:\n" << r.err;
  EXPECT_EQ(CountLines(r.out, "probe: done passed=" + std::to_string(count) + " failed=0"), 1)
      << r.out << r.err;
}

TEST(VirtioNetTest, ArpPingAndUdpThroughTheTap) {
  REQUIRE_KVM();
  REQUIRE_ROOT();
  NetNamespace ns;
  ASSERT_TRUE(ns.ok()) << ns.error();
  ASSERT_EQ(CreateTap(ns, "tap0", "10.0.2.1/24"), "");
  UdpEchoServer echo(ns, "10.0.2.1", 0);
  ASSERT_TRUE(echo.ok()) << echo.error();
  ProbeVm vm;
  vm.boot_args = StrFormat("probe=net probe.ip=10.0.2.15 probe.gw=10.0.2.1 probe.udp=10.0.2.1:%u",
                           echo.port());
  vm.extra_json = NetJson("tap0", ", \"mtu\": 1500");
  RunResult r = RunInNamespace(ns, vm);
  ExpectPassed(r, 1);
  EXPECT_NE(r.out.find("probe: net mac 06:00:0a:00:02:0f"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("probe: net ping 3/3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("probe: net udp 3/3"), std::string::npos) << r.out;
  EXPECT_EQ(echo.echoed(), 3u);
}

TEST(VirtioNetTest, HostileFramesAreCountedAndTrafficGoesOn) {
  REQUIRE_KVM();
  REQUIRE_ROOT();
  NetNamespace ns;
  ASSERT_TRUE(ns.ok()) << ns.error();
  ASSERT_EQ(CreateTap(ns, "tap0", "10.0.2.1/24"), "");
  ProbeVm vm;
  vm.boot_args = "probe=evil-net,net probe.ip=10.0.2.15 probe.gw=10.0.2.1";
  vm.extra_json = NetJson("tap0");
  RunResult r = RunInNamespace(ns, vm);
  ExpectPassed(r, 2);
  EXPECT_NE(r.out.find("probe: evil-net ping after cases ok"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("net eth0: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("invalid requests or register accesses from the guest"), std::string::npos)
      << r.err;
}

// Configuration errors need no VM: they are reported before KVM is opened.
TEST(VirtioNetTest, MissingBusyOrNonTapDeviceIsAConfigurationError) {
  REQUIRE_ROOT();
  NetNamespace ns;
  ASSERT_TRUE(ns.ok()) << ns.error();
  ASSERT_EQ(CreateTap(ns, "tap0", "10.0.2.1/24"), "");
  TempDir dir;
  auto run = [&](const std::string& extra_json, const std::vector<std::string>& prefix = {}) {
    ProbeVm vm;
    vm.extra_json = extra_json;
    std::string config = WriteProbeConfig(dir, vm);
    std::vector<std::string> argv = prefix;
    for (const std::string& a : ns.Exec({EmberBinary(), "--no-api", "--config-file", config})) {
      argv.push_back(a);
    }
    Subprocess p(argv);
    RunResult r;
    r.exit_code = p.WaitExit(std::chrono::seconds(30));
    r.err = p.err();
    return r;
  };
  RunResult missing = run(NetJson("nosuch0"));
  ASSERT_TRUE(missing.exit_code.has_value());
  EXPECT_EQ(*missing.exit_code, 152) << missing.err;
  EXPECT_NE(missing.err.find("TAP nosuch0: no such device"), std::string::npos) << missing.err;

  RunResult lo = run(NetJson("lo"));
  ASSERT_TRUE(lo.exit_code.has_value());
  EXPECT_EQ(*lo.exit_code, 152) << lo.err;
  EXPECT_NE(lo.err.find("TAP lo: not a TAP"), std::string::npos) << lo.err;

  {
    // Another process (here: this one, as a VMM would) holds the TAP: TUNSETIFF says EBUSY.
    TapHolder holder(ns, "tap0");
    ASSERT_TRUE(holder.ok()) << holder.error();
    RunResult busy = run(NetJson("tap0"));
    ASSERT_TRUE(busy.exit_code.has_value());
    EXPECT_EQ(*busy.exit_code, 152) << busy.err;
    EXPECT_EQ(CountLines(busy.err, "network interface eth0: TAP tap0: in use by another process"),
              1)
        << busy.err;
  }
  // Released, the same TAP opens: what failed above was the holder, not the TAP. (Whatever
  // ember does next depends on /dev/kvm; it has nothing to say about the TAP.)
  RunResult released = run(NetJson("tap0"));
  ASSERT_TRUE(released.exit_code.has_value());
  EXPECT_NE(*released.exit_code, 152) << released.err;
  EXPECT_EQ(released.err.find("in use"), std::string::npos) << released.err;

  // Two interfaces on one TAP: refused when the configuration is read.
  RunResult twice = run(", \"network-interfaces\": [{\"iface_id\": \"a\", \"host_dev_name\": "
                        "\"tap0\"}, {\"iface_id\": \"b\", \"host_dev_name\": \"tap0\"}]");
  ASSERT_TRUE(twice.exit_code.has_value());
  EXPECT_EQ(*twice.exit_code, 152) << twice.err;
  EXPECT_NE(twice.err.find("used twice"), std::string::npos) << twice.err;

  RunResult bad_mac = run(", \"network-interfaces\": [{\"iface_id\": \"a\", \"host_dev_name\": "
                          "\"tap0\", \"guest_mac\": \"06:00:0a:00:02\"}]");
  ASSERT_TRUE(bad_mac.exit_code.has_value());
  EXPECT_EQ(*bad_mac.exit_code, 152) << bad_mac.err;
  EXPECT_NE(bad_mac.err.find("guest_mac"), std::string::npos) << bad_mac.err;
}

// --- vsock -------------------------------------------------------------------------------------

int ConnectUnix(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Reads one '\n'-terminated line (at most 64 bytes) within the deadline; "" on EOF or timeout.
std::string ReadLine(int fd, Clock::time_point deadline) {
  std::string line;
  while (line.size() < 64 && Clock::now() < deadline) {
    pollfd p = {fd, POLLIN, 0};
    int ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (poll(&p, 1, std::max(ms, 1)) <= 0) continue;
    char c;
    if (read(fd, &c, 1) != 1) return "";
    line += c;
    if (c == '\n') return line;
  }
  return "";
}

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

std::string ReadToEof(int fd, Clock::time_point deadline) {
  std::string out;
  char buf[65536];
  while (Clock::now() < deadline) {
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string ReadBytes(int fd, size_t want, Clock::time_point deadline) {
  std::string out;
  char buf[65536];
  while (out.size() < want && Clock::now() < deadline) {
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t n = read(fd, buf, std::min(sizeof(buf), want - out.size()));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Host side of the guest's listener on port 1024: CONNECT (retried until the probe listens),
// send `payload` and read the echo back.
std::string EchoThroughGuest(const std::string& uds, const std::string& payload,
                             std::string* ok_line) {
  const auto deadline = Clock::now() + std::chrono::seconds(150);
  while (Clock::now() < deadline) {
    int fd = ConnectUnix(uds);
    if (fd < 0) {
      std::this_thread::yield();
      continue;
    }
    std::string line;
    if (WriteAll(fd, "CONNECT 1024\n")) line = ReadLine(fd, Clock::now() + std::chrono::seconds(5));
    if (line.rfind("OK ", 0) != 0) {  // refused: the probe is not listening yet
      close(fd);
      continue;
    }
    *ok_line = line;
    // No half-close: a Unix socket's EOF cannot say "done sending, still listening", so
    // Firecracker's protocol (and ember's) turns it into a full SHUTDOWN towards the guest.
    // Read the whole echo, then close.
    std::string echoed;
    std::thread reader([&] { echoed = ReadBytes(fd, payload.size(), deadline); });
    WriteAll(fd, payload);
    reader.join();
    close(fd);
    return echoed;
  }
  return "";
}

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i++) s[i] = static_cast<char>((i * 13 + 7) & 0xff);
  return s;
}

// Runs `scenario` with host garbage, a host-initiated echo and the guest's connection to host
// port 1025; returns ember's stderr.
std::string RunVsockScenario(const std::string& scenario, uint64_t guest_bytes) {
  TempDir dir;
  const std::string uds = dir.path() + "/v.sock";
  UnixEchoListener listener(uds + "_1025");
  EXPECT_TRUE(listener.ok());
  ProbeVm vm;
  vm.boot_args = StrFormat("probe=%s probe.vsock_echo=1 probe.vsock_timeout_ms=120000 probe.vsock_bytes=%llu", scenario.c_str(),
                           static_cast<unsigned long long>(guest_bytes));
  vm.extra_json = ", \"vsock\": {\"guest_cid\": 3, \"uds_path\": \"" + uds + "\"}";
  std::string config = WriteProbeConfig(dir, vm);
  Subprocess p({EmberBinary(), "--no-api", "--config-file", config});
  // Host garbage first: each is closed or refused and nothing else is affected.
  for (const char* junk : {"CONNECT\n", "CONNECT abc\n", "HELLO 1024\n",
                           "CONNECT 1024 1024 1024 1024 1024 1024 1024\n"}) {
    int fd = -1;
    for (auto until = Clock::now() + std::chrono::seconds(30); fd < 0 && Clock::now() < until;) {
      fd = ConnectUnix(uds);
      if (fd < 0) std::this_thread::yield();
    }
    if (fd < 0) {
      ADD_FAILURE() << "ember never listened on " << uds << "\n" << p.err();
      return p.err();
    }
    WriteAll(fd, junk);
    EXPECT_EQ(ReadToEof(fd, Clock::now() + std::chrono::seconds(10)).find("OK"), std::string::npos);
    close(fd);
  }
  const std::string payload = Pattern(200 * 1024);
  if (!p.WaitForStdout("probe: vsock listening 1024", std::chrono::seconds(120))) {
    ADD_FAILURE() << "the probe never listened\n" << p.out() << p.err();
    return p.err();
  }
  std::string ok_line;
  std::string echoed = EchoThroughGuest(uds, payload, &ok_line);
  EXPECT_EQ(ok_line.rfind("OK ", 0), 0u) << ok_line;
  unsigned long port = strtoul(ok_line.c_str() + 3, nullptr, 10);
  EXPECT_GE(port, 1ul << 30);
  EXPECT_LT(port, 1ul << 31);
  EXPECT_TRUE(echoed == payload) << "echoed " << echoed.size() << " of " << payload.size();
  std::optional<int> code = p.WaitExit(std::chrono::seconds(150));
  EXPECT_EQ(code, std::optional<int>(0)) << p.out() << p.err();
  EXPECT_EQ(CountLines(p.out(), "failed=0"), 1) << p.out() << p.err();
  EXPECT_GE(listener.echoed(), guest_bytes);
  return p.err();
}

TEST(VsockTest, HostAndGuestConnectionsWithFirecrackersProtocol) {
  REQUIRE_KVM();
  RunVsockScenario("vsock", 1 << 20);
}

TEST(VsockTest, HostileGuestPacketsAndHostGarbage) {
  REQUIRE_KVM();
  std::string err = RunVsockScenario("evil-vsock", 8192);
  // The guest's garbage was counted, the host's too (four CONNECT lines refused).
  EXPECT_NE(err.find("vsock: "), std::string::npos) << err;
  EXPECT_NE(err.find("invalid requests or register accesses from the guest"), std::string::npos)
      << err;
  EXPECT_GE(CountLines(err, "a host client of"), 4) << err;
}

}  // namespace
}  // namespace ember::testing

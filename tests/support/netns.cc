#include "tests/support/netns.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>

#include "tests/support/process.h"

namespace ember::testing {
namespace {

constexpr auto kCommandTimeout = std::chrono::seconds(30);
constexpr int kPollMs = 100;  // how quickly UdpEchoServer notices it should stop

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// On the calling thread: enters the namespace at ns_path and attaches *fd to TAP `name`.
std::string AttachTap(const std::string& ns_path, const std::string& name, int* fd) {
  int nsfd = open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (nsfd < 0) return Errno("open(" + ns_path + ")");
  int rc = setns(nsfd, CLONE_NEWNET);
  close(nsfd);
  if (rc != 0) return Errno("setns(" + ns_path + ", CLONE_NEWNET)");
  *fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (*fd < 0) return Errno("open(/dev/net/tun)");
  ifreq ifr = {};
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name.c_str());
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (ioctl(*fd, TUNSETIFF, &ifr) != 0) return Errno("TUNSETIFF(" + name + ")");
  return "";
}

}  // namespace

std::string IpTool() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return "/usr/sbin/ip";
}

std::string RunCommand(const std::vector<std::string>& argv) {
  Subprocess p(argv, Subprocess::Options{.pipe_stdin = false});
  if (!p.started()) return Errno("fork for " + argv[0]);
  std::optional<int> rc = p.WaitExit(kCommandTimeout);
  if (rc && *rc == 0) return "";
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  return cmd + ": " + (rc ? "exit " + std::to_string(*rc) : std::string("timed out")) + ": " +
         p.err();
}

NetNamespace::NetNamespace() {
  static std::atomic<unsigned> counter{0};
  name_ = "ember-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  error_ = RunCommand({IpTool(), "netns", "add", name_});
  if (!error_.empty()) return;
  created_ = true;
  error_ = Ip({"link", "set", "lo", "up"});
}

NetNamespace::~NetNamespace() {
  if (created_) RunCommand({IpTool(), "netns", "delete", name_});
}

// iproute2 keeps named namespaces in /run/netns (Debian's build); /var/run is a link to /run on a
// normal system but may be missing in a minimal one such as the test host.
std::string NetNamespace::path() const {
  std::string run = "/run/netns/" + name_;
  return access(run.c_str(), F_OK) == 0 ? run : "/var/run/netns/" + name_;
}

std::vector<std::string> NetNamespace::Exec(const std::vector<std::string>& argv) const {
  std::vector<std::string> out = {IpTool(), "netns", "exec", name_};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

std::string NetNamespace::Ip(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {IpTool()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(Exec(argv));
}

std::string CreateTap(const NetNamespace& ns, const std::string& name, const std::string& cidr) {
  std::string err = ns.Ip({"tuntap", "add", "dev", name, "mode", "tap"});
  if (err.empty()) err = ns.Ip({"addr", "add", cidr, "dev", name});
  if (err.empty()) err = ns.Ip({"link", "set", name, "up"});
  return err;
}

TapHolder::TapHolder(const NetNamespace& ns, const std::string& name) {
  // /dev/net/tun finds the TAP in the namespace of the thread that opens it, so the open happens
  // on a thread that entered `ns`; the fd, and with it the attachment, outlives the thread.
  const std::string ns_path = ns.path();
  std::thread([&] { error_ = AttachTap(ns_path, name, &fd_); }).join();
}

TapHolder::~TapHolder() {
  if (fd_ >= 0) close(fd_);
}

UdpEchoServer::UdpEchoServer(const NetNamespace& ns, const std::string& address, uint16_t port) {
  std::promise<std::string> bound;
  std::future<std::string> result = bound.get_future();
  std::string ns_path = ns.path();
  thread_ = std::thread([this, ns_path, address, port, &bound] {
    // setns(CLONE_NEWNET) changes only this thread's namespace; sockets keep the namespace they
    // were created in.
    int nsfd = open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) return bound.set_value(Errno("open(" + ns_path + ")"));
    int rc = setns(nsfd, CLONE_NEWNET);
    close(nsfd);
    if (rc != 0) return bound.set_value(Errno("setns(" + ns_path + ", CLONE_NEWNET)"));
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return bound.set_value(Errno("socket(AF_INET, SOCK_DGRAM)"));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    socklen_t len = sizeof sa;
    if (inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1) {
      close(fd);
      return bound.set_value("bad IPv4 address " + address);
    }
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
      std::string err = Errno("bind(" + address + ":" + std::to_string(port) + ")");
      close(fd);
      return bound.set_value(err);
    }
    port_ = ntohs(sa.sin_port);
    bound.set_value("");
    Serve(fd);
    close(fd);
  });
  error_ = result.get();
  if (!error_.empty()) {
    thread_.join();
  }
}

void UdpEchoServer::Serve(int fd) {
  char buf[65536];
  while (!stop_.load()) {
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, kPollMs) <= 0) continue;
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) continue;
    if (sendto(fd, buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), len) == n) {
      echoed_++;
    }
  }
}

UdpEchoServer::~UdpEchoServer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

}  // namespace ember::testing

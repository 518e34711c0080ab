// virtio-net against a real TAP in a network namespace the test creates (root only; skipped
// otherwise): frames the guest transmits reach the host's side of the TAP, frames the host
// sends arrive in the guest's buffers with the virtio header, a frame waits (never dropped)
// while the guest has no buffers, and malformed chains are counted.
#include "devices/virtio/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>
#include <memory>

#include "tests/support/netns.h"
#include "tests/support/virtq_driver.h"

namespace ember::virtio {
namespace {

using testing::NetNamespace;
using testing::VirtqDriver;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kRxRings = 0x10000, kTxRings = 0x20000;
constexpr uint64_t kBuffers = 0x100000;

class FakeWatcher : public EventWatcher {
 public:
  Status Watch(int fd, uint32_t events) override {
    fds[fd] = events;
    return Ok();
  }
  void Unwatch(int fd) override { fds.erase(fd); }
  std::map<int, uint32_t> fds;
};

class Callbacks : public DeviceCallbacks {
 public:
  void SignalUsed() override { used++; }
  void SignalConfigChange() override {}
  void SetNeedsReset() override { needs_reset = true; }
  int used = 0;
  bool needs_reset = false;
};

// Runs the test body inside a fresh network namespace holding tap0 (the thread's namespace is
// restored afterwards), with an AF_PACKET socket on the host side of the TAP.
class NetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "network namespaces need root";
    ns_ = std::make_unique<NetNamespace>();
    ASSERT_TRUE(ns_->ok()) << ns_->error();
    ASSERT_EQ(testing::CreateTap(*ns_, "tap0", "10.0.2.1/24"), "");
    original_ns_ = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int target = open(ns_->path().c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(target, 0);
    ASSERT_EQ(setns(target, CLONE_NEWNET), 0);
    close(target);
    entered_ = true;
    // IPv6 would greet the TAP with MLD reports and router solicitations as soon as ember
    // attaches (the carrier comes up); the tests expect only the frames they send.
    for (const char* knob : {"/proc/sys/net/ipv6/conf/tap0/disable_ipv6",
                             "/proc/sys/net/ipv6/conf/all/disable_ipv6"}) {
      int fd = open(knob, O_WRONLY | O_CLOEXEC);
      if (fd >= 0) {
        EXPECT_EQ(write(fd, "1", 1), 1);
        close(fd);
      }
    }
    packet_ = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    ASSERT_GE(packet_, 0);
    sockaddr_ll ll = {};
    ll.sll_family = AF_PACKET;
    ll.sll_protocol = htons(ETH_P_ALL);
    ll.sll_ifindex = static_cast<int>(if_nametoindex("tap0"));
    ASSERT_EQ(bind(packet_, reinterpret_cast<sockaddr*>(&ll), sizeof(ll)), 0);
    auto m = GuestMemory::Create({{0, 4 * kMiB}});
    ASSERT_TRUE(m.ok());
    mem_ = std::make_unique<GuestMemory>(std::move(*m));
  }
  void TearDown() override {
    net_.reset();
    if (packet_ >= 0) close(packet_);
    if (entered_) {
      EXPECT_EQ(setns(original_ns_, CLONE_NEWNET), 0);
    }
    if (original_ns_ >= 0) close(original_ns_);
    ns_.reset();
  }

  void Start(uint64_t features) {
    NetOptions o;
    o.iface_id = "eth0";
    o.host_dev_name = "tap0";
    o.guest_mac = std::array<uint8_t, 6>{6, 0, 10, 0, 2, 15};
    o.rx_rate_limiter = rx_rate_limiter_;
    o.tx_rate_limiter = tx_rate_limiter_;
    auto n = Net::Open(o);
    ASSERT_TRUE(n.ok()) << n.error().message;
    net_ = *n;
    WaitForCarrier();
    ASSERT_TRUE(net_->AttachEvents(&watcher_).ok());
    rx_ = std::make_unique<VirtqDriver>(*mem_, 16, kRxRings, kRxRings + 0x1000, kRxRings + 0x2000);
    tx_ = std::make_unique<VirtqDriver>(*mem_, 16, kTxRings, kTxRings + 0x1000, kTxRings + 0x2000);
    queues_.clear();
    queues_.emplace_back();
    queues_.emplace_back();
    rx_->Configure(&queues_[0]);
    tx_->Configure(&queues_[1]);
    for (Queue& q : queues_) ASSERT_TRUE(q.Activate(mem_.get(), features).ok());
    net_->Activate(ActiveQueues{mem_.get(), &queues_, features, &callbacks_});
  }

  // Attaching the TAP raises its carrier, but the kernel brings the link up (operstate, qdisc)
  // asynchronously; until then frames sent to it are dropped. Wait for IFF_RUNNING, then for
  // the link-watch work to finish (it holds RTNL, which a SIOCSIFMTU also takes).
  void WaitForCarrier() {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr = {};
    strncpy(ifr.ifr_name, "tap0", IFNAMSIZ - 1);
    for (int i = 0; i < 5000; i++) {
      ASSERT_EQ(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
      if (ifr.ifr_flags & IFF_RUNNING) break;
      pollfd none = {-1, 0, 0};
      poll(&none, 0, 1);  // the condition is polled; no event exists to wait on
    }
    EXPECT_TRUE(ifr.ifr_flags & IFF_RUNNING);
    ASSERT_EQ(ioctl(s, SIOCGIFMTU, &ifr), 0);
    ASSERT_EQ(ioctl(s, SIOCSIFMTU, &ifr), 0);
    close(s);
  }

  // The watched fds whose /proc/self/fd link is `target` ("/dev/net/tun" for the TAP,
  // "anon_inode:[timerfd]" for the rate limiters' timers).
  std::vector<int> WatchedFds(const std::string& target) const {
    std::vector<int> out;
    for (auto& [fd, events] : watcher_.fds) {
      char link[256];
      ssize_t n = readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), link, sizeof link);
      if (n > 0 && std::string(link, static_cast<size_t>(n)) == target) out.push_back(fd);
    }
    return out;
  }

  int TapFd() const {
    std::vector<int> tap = WatchedFds("/dev/net/tun");
    return tap.empty() ? -1 : tap[0];
  }

  // Waits for the limiter's timer to expire, then tells the device.
  void FireTimer(int timer_fd) {
    pollfd p = {timer_fd, POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 5000), 1);
    net_->OnEventFd(timer_fd, EPOLLIN);
  }

  // A frame for the TX queue: header (zeroed) and a 60-byte frame to the broadcast address.
  void AddTxFrame(uint64_t at) {
    std::string frame(60, '\0');
    memset(frame.data(), 0xff, 6);
    frame[12] = static_cast<char>(0x88);
    frame[13] = static_cast<char>(0xb5);
    ASSERT_TRUE(mem_->Fill(at, 0, kNetHdrLen).ok());
    ASSERT_TRUE(mem_->Write(at + kNetHdrLen, frame.data(), frame.size()).ok());
    tx_->AddChain({{at, static_cast<uint32_t>(kNetHdrLen + frame.size()), false}});
  }

  // An Ethernet frame from the host side of the TAP to the guest (broadcast, EtherType 0x88b5,
  // the IEEE local-experimental one, so the host stack ignores it).
  std::string SendFromHost(size_t payload) {
    std::string frame(14 + payload, '\0');
    memset(frame.data(), 0xff, 6);
    const uint8_t src[6] = {2, 0, 0, 0, 0, 1};
    memcpy(frame.data() + 6, src, 6);
    frame[12] = static_cast<char>(0x88);
    frame[13] = static_cast<char>(0xb5);
    for (size_t i = 0; i < payload; i++) frame[14 + i] = static_cast<char>(i * 3);
    EXPECT_EQ(send(packet_, frame.data(), frame.size(), 0), static_cast<ssize_t>(frame.size()));
    return frame;
  }

  // Waits until the guest's TAP has something to read, then lets the device read it.
  void PumpRx() {
    int fd = TapFd();
    if (fd < 0) return;
    pollfd p = {fd, POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 5000), 1);
    net_->OnEventFd(fd, EPOLLIN);
  }

  std::string Guest(uint64_t gpa, size_t len) {
    std::string s(len, '\0');
    EXPECT_TRUE(mem_->Read(gpa, s.data(), len).ok());
    return s;
  }

  std::optional<RateLimiterConfig> rx_rate_limiter_, tx_rate_limiter_;  // for Start
  std::unique_ptr<NetNamespace> ns_;
  int original_ns_ = -1;
  bool entered_ = false;
  int packet_ = -1;
  std::unique_ptr<GuestMemory> mem_;
  std::shared_ptr<Net> net_;
  FakeWatcher watcher_;
  Callbacks callbacks_;
  std::vector<Queue> queues_;
  std::unique_ptr<VirtqDriver> rx_, tx_;
};

constexpr uint64_t kFeatures = Bit(kFVersion1) | Bit(kNetFMrgRxbuf) | Bit(kNetFMac);

TEST_F(NetTest, TransmittedFramesReachTheHostSideOfTheTap) {
  Start(kFeatures);
  std::string frame(60, '\0');
  memset(frame.data(), 0xff, 6);
  const uint8_t mac[6] = {6, 0, 10, 0, 2, 15};
  memcpy(frame.data() + 6, mac, 6);
  frame[12] = static_cast<char>(0x88);
  frame[13] = static_cast<char>(0xb5);
  memcpy(frame.data() + 14, "ember-tx", 8);
  ASSERT_TRUE(mem_->Fill(kBuffers, 0, kNetHdrLen).ok());
  ASSERT_TRUE(mem_->Write(kBuffers + 0x100, frame.data(), frame.size()).ok());
  // Header and frame in separate descriptors: framing is the driver's choice.
  tx_->AddChain({{kBuffers, kNetHdrLen, false}, {kBuffers + 0x100, 60, false}});
  net_->ProcessQueue(1);
  EXPECT_EQ(tx_->UsedIdx(), 1);
  char got[2048];
  pollfd p = {packet_, POLLIN, 0};
  bool seen = false;
  while (!seen && poll(&p, 1, 5000) == 1) {
    ssize_t n = recv(packet_, got, sizeof(got), 0);
    seen = n == 60 && memcmp(got, frame.data(), 60) == 0;
  }
  EXPECT_TRUE(seen);
  EXPECT_EQ(net_->counters().tx_frames, 1u);
  EXPECT_EQ(net_->errors(), 0u);
}

TEST_F(NetTest, ReceivedFramesCarryTheHeaderAndNumBuffers) {
  Start(kFeatures);
  rx_->AddChain({{kBuffers, 2048, true}});
  std::string frame = SendFromHost(100);
  PumpRx();
  ASSERT_EQ(rx_->UsedIdx(), 1);
  EXPECT_EQ(rx_->Used(0).len, kNetHdrLen + frame.size());
  uint16_t num_buffers;
  ASSERT_TRUE(mem_->Read(kBuffers + kNetHdrNumBuffersOffset, &num_buffers, 2).ok());
  EXPECT_EQ(num_buffers, 1);
  EXPECT_EQ(Guest(kBuffers + kNetHdrLen, frame.size()), frame);
  EXPECT_GE(callbacks_.used, 1);
}

TEST_F(NetTest, AFrameWaitsWhileTheGuestHasNoBuffers) {
  Start(kFeatures);
  std::string frame = SendFromHost(200);
  PumpRx();  // read from the TAP, nowhere to put it
  EXPECT_EQ(rx_->UsedIdx(), 0);
  // The TAP is no longer read until buffers come.
  int tap = -1;
  for (auto& [fd, events] : watcher_.fds) tap = fd;
  EXPECT_TRUE(watcher_.fds.empty() || !(watcher_.fds.begin()->second & EPOLLIN)) << tap;
  rx_->AddChain({{kBuffers, 2048, true}});
  net_->ProcessQueue(0);
  ASSERT_EQ(rx_->UsedIdx(), 1);
  EXPECT_EQ(Guest(kBuffers + kNetHdrLen, frame.size()), frame);
  // The queue is empty again, so the TAP stays unread until the guest posts another buffer.
  EXPECT_LT(TapFd(), 0);
  rx_->AddChain({{kBuffers + 0x1000, 2048, true}});
  net_->ProcessQueue(0);
  EXPECT_GE(TapFd(), 0);
}

TEST_F(NetTest, BigBuffersReceiveWithoutACopy) {
  Start(Bit(kFVersion1));
  rx_->AddChain({{kBuffers, 0x10000, true}, {kBuffers + 0x10000, 0x1000, true}});
  std::string frame = SendFromHost(1000);
  PumpRx();
  ASSERT_EQ(rx_->UsedIdx(), 1);
  EXPECT_EQ(rx_->Used(0).len, kNetHdrLen + frame.size());
  EXPECT_EQ(Guest(kBuffers + kNetHdrLen, frame.size()), frame);
  EXPECT_EQ(net_->counters().rx_frames, 1u);
}

TEST_F(NetTest, AFrameSpreadsOverSeveralBuffersWithMrgRxbuf) {
  Start(kFeatures);
  for (int i = 0; i < 4; i++) rx_->AddChain({{kBuffers + 0x1000ull * i, 256, true}});
  std::string frame = SendFromHost(600);  // 614 bytes + 12 of header: three 256-byte buffers
  PumpRx();
  ASSERT_EQ(rx_->UsedIdx(), 3);
  uint16_t num_buffers;
  ASSERT_TRUE(mem_->Read(kBuffers + kNetHdrNumBuffersOffset, &num_buffers, 2).ok());
  EXPECT_EQ(num_buffers, 3);
  std::string got = Guest(kBuffers + kNetHdrLen, 256 - kNetHdrLen) + Guest(kBuffers + 0x1000, 256) +
                    Guest(kBuffers + 0x2000, frame.size() + kNetHdrLen - 512);
  EXPECT_EQ(got, frame);
}

TEST_F(NetTest, MalformedChainsAreCountedAndReturned) {
  Start(kFeatures);
  // TX: a device-writable buffer, a header shorter than 12 bytes, a frame beyond 64 KiB.
  tx_->AddChain({{kBuffers, kNetHdrLen, false}, {kBuffers + 0x100, 60, true}});
  tx_->AddChain({{kBuffers, 8, false}});
  tx_->AddChain({{kBuffers, kNetHdrLen, false}, {kBuffers, 65535, false}, {kBuffers, 65535, false}});
  net_->ProcessQueue(1);
  EXPECT_EQ(tx_->UsedIdx(), 3);
  EXPECT_EQ(net_->errors(), 3u);
  EXPECT_EQ(net_->counters().tx_frames, 0u);
  // RX: a device-readable buffer is returned unused; the frame goes to the next good one.
  rx_->AddChain({{kBuffers, 2048, false}});
  rx_->AddChain({{kBuffers + 0x1000, 2048, true}});
  std::string frame = SendFromHost(64);
  PumpRx();
  ASSERT_EQ(rx_->UsedIdx(), 2);
  EXPECT_EQ(rx_->Used(0).len, 0u);
  EXPECT_EQ(Guest(kBuffers + 0x1000 + kNetHdrLen, frame.size()), frame);
  EXPECT_EQ(net_->errors(), 4u);
}

TEST_F(NetTest, WithoutMrgRxbufAFrameNeedsOneBigEnoughBuffer) {
  Start(Bit(kFVersion1));
  rx_->AddChain({{kBuffers, 128, true}});
  rx_->AddChain({{kBuffers + 0x1000, 2048, true}});
  SendFromHost(500);
  PumpRx();
  // Dropped, not truncated: the small buffer comes back empty and the frame is gone.
  ASSERT_GE(rx_->UsedIdx(), 1);
  EXPECT_EQ(rx_->Used(0).len, 0u);
  EXPECT_GE(net_->errors(), 1u);
  std::string frame = SendFromHost(300);
  PumpRx();
  ASSERT_EQ(rx_->UsedIdx(), 2);
  EXPECT_EQ(Guest(kBuffers + 0x1000 + kNetHdrLen, frame.size()), frame);
}

// One frame per 1000 s: the first passes, the next waits for the limiter.
const RateLimiterConfig kOneOpPerKiloSecond{std::nullopt, TokenBucketConfig{1, 0, 1000000}};
const RateLimiterConfig kOpsDisabled{std::nullopt, TokenBucketConfig{0, 0, 0}};

TEST_F(NetTest, UpdatedTxLimiterThrottlesAndAStalledQueueResumes) {
  Start(kFeatures);
  EXPECT_TRUE(WatchedFds("anon_inode:[timerfd]").empty());  // no bucket: nothing to wait for
  net_->UpdateRateLimiters(std::nullopt, kOneOpPerKiloSecond);
  std::vector<int> timers = WatchedFds("anon_inode:[timerfd]");
  ASSERT_EQ(timers.size(), 1u);
  AddTxFrame(kBuffers);
  AddTxFrame(kBuffers + 0x1000);
  net_->ProcessQueue(1);
  EXPECT_EQ(tx_->UsedIdx(), 1);  // the second frame waits in the ring
  EXPECT_EQ(net_->counters().tx_throttled, 1u);

  // The limiter is disabled while the queue waits on its timer: the wait still ends (the timer
  // stays watched though the limiter has no bucket left), and the queue goes on unthrottled.
  net_->UpdateRateLimiters(std::nullopt, kOpsDisabled);
  EXPECT_EQ(tx_->UsedIdx(), 1);
  EXPECT_EQ(WatchedFds("anon_inode:[timerfd]"), timers);
  FireTimer(timers[0]);
  EXPECT_EQ(tx_->UsedIdx(), 2);
  for (int i = 0; i < 3; i++) AddTxFrame(kBuffers + 0x2000 + 0x1000 * i);
  net_->ProcessQueue(1);
  EXPECT_EQ(tx_->UsedIdx(), 5);
  EXPECT_EQ(net_->counters().tx_frames, 5u);
  EXPECT_EQ(net_->counters().tx_throttled, 1u);
}

TEST_F(NetTest, UpdatedRxLimiterHoldsAFrameBackAndReleasesIt) {
  Start(kFeatures);
  net_->UpdateRateLimiters(kOneOpPerKiloSecond, std::nullopt);
  rx_->AddChain({{kBuffers, 2048, true}});
  rx_->AddChain({{kBuffers + 0x1000, 2048, true}});
  std::string first = SendFromHost(100);
  PumpRx();
  ASSERT_EQ(rx_->UsedIdx(), 1);
  std::string second = SendFromHost(200);
  PumpRx();
  EXPECT_EQ(rx_->UsedIdx(), 1);  // read from the TAP, held back by the limiter
  EXPECT_EQ(net_->counters().rx_throttled, 1u);
  EXPECT_LT(TapFd(), 0);  // and the TAP is not read meanwhile

  // A new, bigger bucket: the frame waits out the old wait, then goes in under the new bucket.
  net_->UpdateRateLimiters(RateLimiterConfig{std::nullopt, TokenBucketConfig{100, 0, 1000}},
                           std::nullopt);
  EXPECT_EQ(rx_->UsedIdx(), 1);
  std::vector<int> timers = WatchedFds("anon_inode:[timerfd]");
  ASSERT_EQ(timers.size(), 1u);
  FireTimer(timers[0]);
  ASSERT_EQ(rx_->UsedIdx(), 2);
  EXPECT_EQ(Guest(kBuffers + 0x1000 + kNetHdrLen, second.size()), second);
  EXPECT_GE(TapFd(), 0);  // reading the TAP again
  ASSERT_TRUE(net_->Save().rx_rate_limiter.has_value());
  ASSERT_TRUE(net_->Save().rx_rate_limiter->ops.has_value());
  EXPECT_EQ(net_->Save().rx_rate_limiter->ops->size, 100u);
}

TEST_F(NetTest, OpeningErrorsNameTheTap) {
  NetOptions o;
  o.iface_id = "eth0";
  o.host_dev_name = "nosuch0";
  auto missing = Net::Open(o);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("no such device"), std::string::npos);
  o.host_dev_name = "tap0";
  auto first = Net::Open(o);
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = Net::Open(o);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("in use"), std::string::npos) << second.error().message;
}

}  // namespace
}  // namespace ember::virtio

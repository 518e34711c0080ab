// Tests of virtio::Vsock (virtio 1.x section 5.10 with Firecracker's Unix-socket host side,
// firecracker-facts.md 3.4): the guest's driver is played through an MmioTransport with
// tests/support/virtq_driver.h, the host side with real Unix sockets in a TempDir, and the VMM's
// event loop by a fake EventWatcher whose fds the test polls and hands back to OnEventFd. Every
// wait is on a condition with a timeout.
#include <gtest/gtest.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "devices/virtio/mmio_transport.h"
#include "devices/virtio/virtio_spec.h"
#include "devices/virtio/vsock.h"
#include "tests/support/process.h"
#include "tests/support/recording_irq_line.h"
#include "tests/support/virtq_driver.h"
#include "vmm/base/unique_fd.h"
#include "vmm/memory/guest_memory.h"

namespace ember {
namespace {

using testing::TempDir;
using testing::VirtqDriver;
using namespace virtio;  // NOLINT: the spec's constants

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kCid = 3;
constexpr uint64_t kRings = 0x1000;
constexpr uint64_t kRxBase = 0x100000;
constexpr uint64_t kTxBase = 0x300000;
constexpr uint64_t kEventBuf = 0x500000;
constexpr uint64_t kSlot = 0x11000;  // room for a header and a 64 KiB payload
constexpr uint16_t kQueueSize = 16;
constexpr uint32_t kRxBufBytes = kVsockHeaderBytes + 4096;
constexpr int kRxPosted = 8;
constexpr uint32_t kFirstLocalPort = 1u << 30;
constexpr auto kWait = std::chrono::seconds(5);

class FakeWatcher : public EventWatcher {
 public:
  Status Watch(int fd, uint32_t events) override {
    fds[fd] = events;
    if (events & EPOLLOUT) saw_epollout = true;
    return Ok();
  }
  void Unwatch(int fd) override { fds.erase(fd); }
  std::map<int, uint32_t> fds;
  bool saw_epollout = false;  // a connection buffered data for a full socket
};

struct Packet {
  VsockHeader h;
  std::string data;
};

UniqueFd ConnectUnix(const std::string& path) {
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return UniqueFd();
  return fd;
}

UniqueFd ListenUnix(const std::string& path) {
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return UniqueFd();
  if (listen(fd.get(), 16) != 0) return UniqueFd();
  return fd;
}

void WriteAll(int fd, const std::string& data) {
  ASSERT_EQ(send(fd, data.data(), data.size(), MSG_NOSIGNAL), static_cast<ssize_t>(data.size()));
}

class VsockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = GuestMemory::Create({{0, 8 * kMiB}});
    ASSERT_TRUE(m.ok()) << m.error().message;
    mem_ = std::make_unique<GuestMemory>(std::move(*m));
    uds_ = dir_.path() + "/v.sock";
  }

  void Start(uint32_t max_connections = kVsockMaxConnections, uint32_t timeout_ms = 2000,
             int rx_posted = kRxPosted) {
    auto v = Vsock::Create({kCid, uds_, max_connections, timeout_ms});
    ASSERT_TRUE(v.ok()) << v.error().message;
    vsock_ = *v;
    transport_ = std::make_unique<MmioTransport>(vsock_, mem_.get(), &irq_);
    ASSERT_TRUE(transport_->AttachEvents(&watcher_).ok());
    BringUp(rx_posted);
  }

  void SetReg(uint64_t offset, uint32_t value) {
    transport_->Write(offset, reinterpret_cast<const uint8_t*>(&value), 4);
  }
  uint32_t Reg(uint64_t offset) {
    uint32_t v = 0;
    transport_->Read(offset, reinterpret_cast<uint8_t*>(&v), 4);
    return v;
  }
  void BringUp(int rx_posted) {
    SetReg(kRegStatus, kStatusAcknowledge);
    SetReg(kRegStatus, kStatusAcknowledge | kStatusDriver);
    uint64_t features = Bit(kFVersion1) | Bit(Vsock::kFInOrder);
    SetReg(kRegDriverFeaturesSel, 0);
    SetReg(kRegDriverFeatures, static_cast<uint32_t>(features));
    SetReg(kRegDriverFeaturesSel, 1);
    SetReg(kRegDriverFeatures, static_cast<uint32_t>(features >> 32));
    SetReg(kRegStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
    ASSERT_TRUE(Reg(kRegStatus) & kStatusFeaturesOk);
    for (uint32_t q = 0; q < 3; q++) {
      uint64_t base = kRings + q * 0x4000;
      drivers_.emplace_back(*mem_, kQueueSize, base, base + 0x1000, base + 0x2000);
      const VirtqDriver& d = drivers_.back();
      SetReg(kRegQueueSel, q);
      SetReg(kRegQueueNum, d.size());
      SetReg(kRegQueueDescLow, static_cast<uint32_t>(d.desc_addr()));
      SetReg(kRegQueueDescHigh, 0);
      SetReg(kRegQueueDriverLow, static_cast<uint32_t>(d.avail_addr()));
      SetReg(kRegQueueDriverHigh, 0);
      SetReg(kRegQueueDeviceLow, static_cast<uint32_t>(d.used_addr()));
      SetReg(kRegQueueDeviceHigh, 0);
      SetReg(kRegQueueReady, 1);
    }
    SetReg(kRegStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
    ASSERT_EQ(Reg(kRegStatus) & kStatusNeedsReset, 0u);
    for (int i = 0; i < rx_posted; i++) PostRx(kRxBufBytes);
    transport_->OnQueueNotify(0);
  }

  // One writable buffer per rx chain; descriptor slots are used in turn, one per chain.
  void PostRx(uint32_t len) {
    uint64_t addr = kRxBase + rx_slot_ * kSlot;
    rx_slot_ = (rx_slot_ + 1) % kQueueSize;
    drivers_[0].AddChain({{addr, len, true}});
  }
  // Collects what the device put in the rx queue, gives the buffers back and notifies.
  void CollectRx() {
    bool any = false;
    while (rx_seen_ != drivers_[0].UsedIdx()) {
      UsedElem e = drivers_[0].Used(rx_seen_++);
      uint64_t addr = kRxBase + e.id * kSlot;
      Packet p;
      if (e.len >= kVsockHeaderBytes) {
        EXPECT_TRUE(mem_->Read(addr, &p.h, sizeof(p.h)).ok());
        EXPECT_EQ(e.len, kVsockHeaderBytes + p.h.len);
        p.data.resize(e.len - kVsockHeaderBytes);
        EXPECT_TRUE(mem_->Read(addr + kVsockHeaderBytes, p.data.data(), p.data.size()).ok());
        rx_.push_back(p);
      }
      PostRx(kRxBufBytes);
      any = true;
    }
    if (any) transport_->OnQueueNotify(0);
  }

  // Sends one packet from the guest as a single readable descriptor; `payload` follows the
  // header (its len is payload.size() unless `len` says otherwise).
  void GuestSend(VsockHeader h, const std::string& payload = "", int64_t len = -1) {
    h.len = len >= 0 ? static_cast<uint32_t>(len) : static_cast<uint32_t>(payload.size());
    uint64_t addr = kTxBase + tx_slot_ * kSlot;
    tx_slot_ = (tx_slot_ + 1) % kQueueSize;
    ASSERT_TRUE(mem_->Write(addr, &h, sizeof(h)).ok());
    ASSERT_TRUE(mem_->Write(addr + sizeof(h), payload.data(), payload.size()).ok());
    drivers_[1].AddChain({{addr, static_cast<uint32_t>(sizeof(h) + payload.size()), false}});
    transport_->OnQueueNotify(1);
    CollectRx();
  }
  VsockHeader Guest(uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t buf_alloc = 65536,
                    uint32_t fwd_cnt = 0) {
    VsockHeader h;
    h.src_cid = kCid;
    h.dst_cid = kVsockHostCid;
    h.src_port = src_port;
    h.dst_port = dst_port;
    h.type = kVsockTypeStream;
    h.op = op;
    h.buf_alloc = buf_alloc;
    h.fwd_cnt = fwd_cnt;
    return h;
  }

  // Plays the event loop (one poll round over the watched fds) until `done` or the timeout.
  bool PumpUntil(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + kWait;
    while (true) {
      CollectRx();
      if (done()) return true;
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::vector<pollfd> fds;
      for (auto [fd, events] : watcher_.fds) {
        fds.push_back({fd, static_cast<short>(events), 0});  // POLL* == EPOLL* for these bits
      }
      if (poll(fds.data(), fds.size(), 20) <= 0) continue;
      for (const pollfd& p : fds) {
        if (p.revents && watcher_.fds.count(p.fd)) {
          transport_->OnEventFd(p.fd, static_cast<uint32_t>(p.revents));
        }
      }
    }
  }
  // Waits for the guest to receive a packet with `op`; returns it (and forgets those before).
  Packet WaitPacket(uint16_t op) {
    Packet found{};
    bool ok = PumpUntil([&] {
      for (size_t i = 0; i < rx_.size(); i++) {
        if (rx_[i].h.op == op) {
          found = rx_[i];
          rx_.erase(rx_.begin(), rx_.begin() + static_cast<long>(i) + 1);
          return true;
        }
      }
      return false;
    });
    EXPECT_TRUE(ok) << "no packet with op " << op;
    return found;
  }
  // Reads from a host socket (pumping the device) until `want` bytes arrived or EOF.
  std::string HostRead(int fd, size_t want, bool* eof = nullptr) {
    std::string got;
    bool closed = false;
    PumpUntil([&] {
      char buf[4096];
      ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0) got.append(buf, static_cast<size_t>(n));
      if (n == 0) closed = true;
      return closed || got.size() >= want;
    });
    if (eof) *eof = closed;
    return got;
  }
  bool HostSeesEof(int fd) {
    bool eof = false;
    HostRead(fd, SIZE_MAX, &eof);
    return eof;
  }
  // A host-initiated connection to guest port `port`, answered by the guest; returns the host
  // socket and the local port.
  UniqueFd Establish(uint32_t port, uint32_t* local_port, uint32_t guest_buf_alloc = 65536) {
    UniqueFd c = ConnectUnix(uds_);
    EXPECT_TRUE(c.valid());
    WriteAll(c.get(), "CONNECT " + std::to_string(port) + "\n");
    Packet req = WaitPacket(kVsockOpRequest);
    *local_port = req.h.src_port;
    GuestSend(Guest(kVsockOpResponse, port, req.h.src_port, guest_buf_alloc));
    std::string ok = "OK " + std::to_string(req.h.src_port) + "\n";
    EXPECT_EQ(HostRead(c.get(), ok.size()), ok);
    return c;
  }

  TempDir dir_;
  std::string uds_;
  std::unique_ptr<GuestMemory> mem_;
  RecordingIrqLine irq_;
  FakeWatcher watcher_;
  std::shared_ptr<Vsock> vsock_;
  std::unique_ptr<MmioTransport> transport_;
  std::vector<VirtqDriver> drivers_;
  std::vector<Packet> rx_;
  uint16_t rx_seen_ = 0;
  uint32_t rx_slot_ = 0;
  uint32_t tx_slot_ = 0;
};

// --- Creation and the register file ---------------------------------------------------------

TEST_F(VsockTest, CreateValidatesAndOwnsItsSocket) {
  EXPECT_FALSE(Vsock::Create({2, uds_}).ok());
  EXPECT_FALSE(Vsock::Create({kCid, ""}).ok());
  {
    auto v = Vsock::Create({kCid, uds_});
    ASSERT_TRUE(v.ok()) << v.error().message;
    struct stat st;
    EXPECT_EQ(lstat(uds_.c_str(), &st), 0);
    // A second device on the same path: an error naming it, and the first socket survives.
    auto again = Vsock::Create({kCid + 1, uds_});
    ASSERT_FALSE(again.ok());
    EXPECT_NE(again.error().message.find(uds_), std::string::npos) << again.error().message;
    EXPECT_EQ(lstat(uds_.c_str(), &st), 0);
  }
  struct stat st;
  EXPECT_NE(lstat(uds_.c_str(), &st), 0) << "the destructor unlinks the socket it created";
  // A plain file in the way is never removed.
  std::string file = dir_.Write("taken", "data");
  EXPECT_FALSE(Vsock::Create({kCid, file}).ok());
  EXPECT_EQ(lstat(file.c_str(), &st), 0);
}

TEST_F(VsockTest, RegistersAndConfigSpace) {
  Start();
  EXPECT_EQ(Reg(kRegDeviceId), kDeviceIdVsock);
  uint64_t cid = 0;
  transport_->Read(kRegConfig, reinterpret_cast<uint8_t*>(&cid), 4);
  transport_->Read(kRegConfig + 4, reinterpret_cast<uint8_t*>(&cid) + 4, 4);
  EXPECT_EQ(cid, kCid);
  EXPECT_EQ(vsock_->offered_features(), Bit(kFVersion1) | Bit(35));
  EXPECT_EQ(vsock_->queue_count(), 3u);
  EXPECT_EQ(watcher_.fds.size(), 2u);  // the listener and the timer
}

// --- Host-initiated connections ---------------------------------------------------------------

TEST_F(VsockTest, HostConnectHandshakeAndDataBothWays) {
  Start();
  UniqueFd c = ConnectUnix(uds_);
  ASSERT_TRUE(c.valid());
  WriteAll(c.get(), "CONNECT 1024\n");
  Packet req = WaitPacket(kVsockOpRequest);
  EXPECT_EQ(req.h.src_cid, kVsockHostCid);
  EXPECT_EQ(req.h.dst_cid, kCid);
  EXPECT_EQ(req.h.src_port, kFirstLocalPort);
  EXPECT_EQ(req.h.dst_port, 1024u);
  EXPECT_EQ(req.h.type, kVsockTypeStream);
  EXPECT_EQ(req.h.buf_alloc, kVsockBufAlloc);
  EXPECT_EQ(req.h.len, 0u);
  EXPECT_GT(irq_.count(), 0u);

  GuestSend(Guest(kVsockOpResponse, 1024, kFirstLocalPort));
  EXPECT_EQ(HostRead(c.get(), 14), "OK 1073741824\n");
  EXPECT_EQ(vsock_->connections_opened(), 1u);
  EXPECT_EQ(vsock_->active_connections(), 1u);

  WriteAll(c.get(), "hello guest");
  Packet rw = WaitPacket(kVsockOpRw);
  EXPECT_EQ(rw.data, "hello guest");
  EXPECT_EQ(rw.h.src_port, kFirstLocalPort);
  EXPECT_EQ(rw.h.dst_port, 1024u);

  GuestSend(Guest(kVsockOpRw, 1024, kFirstLocalPort), "hello host");
  EXPECT_EQ(HostRead(c.get(), 10), "hello host");
  // The guest asks for credit: it gets our fwd_cnt.
  GuestSend(Guest(kVsockOpCreditRequest, 1024, kFirstLocalPort));
  Packet update = WaitPacket(kVsockOpCreditUpdate);
  EXPECT_EQ(update.h.fwd_cnt, 10u);
  EXPECT_EQ(update.h.buf_alloc, kVsockBufAlloc);
  EXPECT_EQ(vsock_->errors(), 0u);
  EXPECT_EQ(vsock_->host_errors(), 0u);

  // Local ports go round robin.
  uint32_t second = 0;
  UniqueFd c2 = Establish(1025, &second);
  EXPECT_EQ(second, kFirstLocalPort + 1);
}

TEST_F(VsockTest, HostDataIsLimitedByTheGuestsCredit) {
  Start();
  std::set<int> base_fds;
  for (auto [fd, events] : watcher_.fds) base_fds.insert(fd);
  uint32_t lp = 0;
  UniqueFd c = Establish(7000, &lp, /*guest_buf_alloc=*/100);
  rx_.clear();
  WriteAll(c.get(), std::string(300, 'x'));
  auto has = [&](uint16_t op) {
    for (const Packet& p : rx_) {
      if (p.h.op == op) return true;
    }
    return false;
  };
  auto take_rw = [&] {
    std::string data;
    for (const Packet& p : rx_) {
      if (p.h.op == kVsockOpRw) data += p.data;
    }
    rx_.clear();
    return data;
  };
  // 100 bytes, then the device asks for credit and stops reading the socket: the rest waits
  // there (nothing is dropped).
  ASSERT_TRUE(PumpUntil([&] { return has(kVsockOpCreditRequest); }));
  EXPECT_EQ(take_rw(), std::string(100, 'x'));
  for (auto [fd, events] : watcher_.fds) {
    if (!base_fds.count(fd)) {
      EXPECT_EQ(events & EPOLLIN, 0u);
    }
  }
  GuestSend(Guest(kVsockOpCreditUpdate, 7000, lp, 100, 100));
  ASSERT_TRUE(PumpUntil([&] { return has(kVsockOpCreditRequest); }));
  EXPECT_EQ(take_rw(), std::string(100, 'x'));
  GuestSend(Guest(kVsockOpCreditUpdate, 7000, lp, 100, 200));
  ASSERT_TRUE(PumpUntil([&] { return has(kVsockOpCreditRequest); }));
  EXPECT_EQ(take_rw(), std::string(100, 'x'));
  // A bigger buffer: everything that remains (nothing) and new data flow at once.
  GuestSend(Guest(kVsockOpCreditUpdate, 7000, lp, 65536, 300));
  WriteAll(c.get(), "more");
  ASSERT_TRUE(PumpUntil([&] { return has(kVsockOpRw); }));
  EXPECT_EQ(take_rw(), "more");
  EXPECT_EQ(vsock_->errors(), 0u);
}

TEST_F(VsockTest, HostDataSpreadsOverSeveralRxBuffersInOrder) {
  Start();
  uint32_t lp = 0;
  UniqueFd c = Establish(7000, &lp, /*guest_buf_alloc=*/10000);
  rx_.clear();
  std::string data(30000, '\0');
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>(i * 7 + i / 4096);
  WriteAll(c.get(), data);
  std::vector<Packet> rw;
  auto collect = [&] {
    for (const Packet& p : rx_) {
      if (p.h.op == kVsockOpRw) rw.push_back(p);
    }
    bool asked = false;
    for (const Packet& p : rx_) asked |= p.h.op == kVsockOpCreditRequest;
    rx_.clear();
    return asked;
  };
  // 10000 bytes of credit over 4 KiB buffers: three packets, each with a header of its own.
  ASSERT_TRUE(PumpUntil(collect));
  ASSERT_EQ(rw.size(), 3u);
  EXPECT_EQ(rw[0].data.size(), 4096u);
  EXPECT_EQ(rw[1].data.size(), 4096u);
  EXPECT_EQ(rw[2].data.size(), 10000u - 8192u);
  for (const Packet& p : rw) {
    EXPECT_EQ(p.h.src_cid, kVsockHostCid);
    EXPECT_EQ(p.h.dst_cid, kCid);
    EXPECT_EQ(p.h.src_port, lp);
    EXPECT_EQ(p.h.dst_port, 7000u);
    EXPECT_EQ(p.h.buf_alloc, kVsockBufAlloc);
  }
  // More credit: the rest, in order.
  GuestSend(Guest(kVsockOpCreditUpdate, 7000, lp, 65536, 10000));
  std::string got;
  ASSERT_TRUE(PumpUntil([&] {
    collect();
    got.clear();
    for (const Packet& p : rw) got += p.data;
    return got.size() >= data.size();
  }));
  EXPECT_EQ(got, data);
  for (const Packet& p : rw) EXPECT_LE(p.data.size(), 4096u);
  EXPECT_EQ(vsock_->errors(), 0u);
}

TEST_F(VsockTest, HostConnectToNobodyClosesTheHostSocket) {
  Start();
  UniqueFd c = ConnectUnix(uds_);
  WriteAll(c.get(), "CONNECT 9\n");
  Packet req = WaitPacket(kVsockOpRequest);
  GuestSend(Guest(kVsockOpRst, 9, req.h.src_port));
  EXPECT_TRUE(HostSeesEof(c.get()));
  EXPECT_EQ(vsock_->active_connections(), 0u);
}

TEST_F(VsockTest, HostConnectTimesOutWithoutAnAnswer) {
  Start(kVsockMaxConnections, /*timeout_ms=*/50);
  UniqueFd c = ConnectUnix(uds_);
  WriteAll(c.get(), "CONNECT 9\n");
  Packet req = WaitPacket(kVsockOpRequest);
  Packet rst = WaitPacket(kVsockOpRst);
  EXPECT_EQ(rst.h.src_port, req.h.src_port);
  EXPECT_EQ(rst.h.dst_port, 9u);
  EXPECT_TRUE(HostSeesEof(c.get()));
}

TEST_F(VsockTest, HostGarbageClosesOnlyThatClient) {
  Start();
  for (std::string line :
       {std::string("CONNECT\n"), std::string("CONNECT abc\n"), std::string("HELLO 52\n"),
        std::string("CONNECT 99999999999\n"), std::string(100, 'x') + "\n"}) {
    SCOPED_TRACE(line);
    uint64_t before = vsock_->host_errors();
    UniqueFd c = ConnectUnix(uds_);
    send(c.get(), line.data(), line.size(), MSG_NOSIGNAL);
    EXPECT_TRUE(HostSeesEof(c.get()));
    EXPECT_EQ(vsock_->host_errors(), before + 1);
  }
  // A client gone mid-line.
  {
    UniqueFd c = ConnectUnix(uds_);
    WriteAll(c.get(), "CONN");
    uint64_t before = vsock_->host_errors();
    c.reset();
    EXPECT_TRUE(PumpUntil([&] { return vsock_->host_errors() == before + 1; }));
  }
  EXPECT_EQ(vsock_->errors(), 0u);
  EXPECT_TRUE(rx_.empty());
  // Lower case works, and a line may arrive in pieces.
  UniqueFd c = ConnectUnix(uds_);
  WriteAll(c.get(), "conn");
  // Until the device has read the piece (the client's send queue empties).
  EXPECT_TRUE(PumpUntil([&] {
    int unread = -1;
    return ioctl(c.get(), SIOCOUTQ, &unread) == 0 && unread == 0;
  }));
  WriteAll(c.get(), "ect 1024\n");
  Packet req = WaitPacket(kVsockOpRequest);
  EXPECT_EQ(req.h.dst_port, 1024u);
}

// --- Guest-initiated connections --------------------------------------------------------------

TEST_F(VsockTest, GuestConnectsToAHostListener) {
  Start();
  UniqueFd listener = ListenUnix(uds_ + "_52");
  ASSERT_TRUE(listener.valid());
  GuestSend(Guest(kVsockOpRequest, 5000, 52));
  Packet resp = WaitPacket(kVsockOpResponse);
  EXPECT_EQ(resp.h.src_port, 52u);
  EXPECT_EQ(resp.h.dst_port, 5000u);
  EXPECT_EQ(resp.h.dst_cid, kCid);
  UniqueFd server(accept(listener.get(), nullptr, nullptr));
  ASSERT_TRUE(server.valid());

  GuestSend(Guest(kVsockOpRw, 5000, 52), "ping");
  EXPECT_EQ(HostRead(server.get(), 4), "ping");
  WriteAll(server.get(), "pong");
  EXPECT_EQ(WaitPacket(kVsockOpRw).data, "pong");

  // No listener on 53: RST.
  GuestSend(Guest(kVsockOpRequest, 5001, 53));
  Packet rst = WaitPacket(kVsockOpRst);
  EXPECT_EQ(rst.h.src_port, 53u);
  EXPECT_EQ(rst.h.dst_port, 5001u);
  EXPECT_EQ(vsock_->active_connections(), 1u);
  EXPECT_EQ(vsock_->errors(), 0u);
}

TEST_F(VsockTest, GuestShutdownClosesTheHostSocket) {
  Start();
  UniqueFd listener = ListenUnix(uds_ + "_52");
  GuestSend(Guest(kVsockOpRequest, 5000, 52));
  WaitPacket(kVsockOpResponse);
  UniqueFd server(accept(listener.get(), nullptr, nullptr));
  GuestSend(Guest(kVsockOpShutdown, 5000, 52), "");
  // Half a shutdown keeps the connection.
  VsockHeader half = Guest(kVsockOpShutdown, 5000, 52);
  half.flags = kVsockShutdownSend;
  GuestSend(half);
  EXPECT_EQ(vsock_->active_connections(), 1u);
  VsockHeader both = Guest(kVsockOpShutdown, 5000, 52);
  both.flags = kVsockShutdownRcv;
  GuestSend(both);
  // Nothing left to flush: RST at once (Firecracker), and the host sees EOF.
  Packet rst = WaitPacket(kVsockOpRst);
  EXPECT_EQ(rst.h.dst_port, 5000u);
  EXPECT_TRUE(HostSeesEof(server.get()));
  EXPECT_EQ(vsock_->active_connections(), 0u);
}

TEST_F(VsockTest, HostCloseShutsDownTheGuestSide) {
  Start(kVsockMaxConnections, /*timeout_ms=*/50);
  uint32_t lp = 0;
  UniqueFd c = Establish(80, &lp);
  c.reset();
  Packet sd = WaitPacket(kVsockOpShutdown);
  EXPECT_EQ(sd.h.flags, kVsockShutdownRcv | kVsockShutdownSend);
  EXPECT_EQ(sd.h.src_port, lp);
  // The guest does not answer: the device resets the connection after the timeout.
  WaitPacket(kVsockOpRst);
  EXPECT_EQ(vsock_->active_connections(), 0u);

  // With an answer: the guest's RST ends it.
  UniqueFd c2 = Establish(81, &lp);
  c2.reset();
  WaitPacket(kVsockOpShutdown);
  GuestSend(Guest(kVsockOpRst, 81, lp));
  EXPECT_EQ(vsock_->active_connections(), 0u);
}

// --- Guest garbage ----------------------------------------------------------------------------

TEST_F(VsockTest, GuestGarbageIsCountedAndAnswered) {
  Start();
  uint32_t lp = 0;
  UniqueFd c = Establish(80, &lp);
  uint64_t errors = vsock_->errors();

  // Strays for no connection: RST, the guest's own RSTs excepted.
  GuestSend(Guest(kVsockOpRw, 6000, 6001), "data");
  EXPECT_EQ(WaitPacket(kVsockOpRst).h.dst_port, 6000u);
  GuestSend(Guest(kVsockOpRst, 6000, 6001));
  EXPECT_TRUE(rx_.empty());
  EXPECT_EQ(vsock_->errors(), errors);

  GuestSend(Guest(99, 6000, 6001));
  EXPECT_EQ(WaitPacket(kVsockOpRst).h.dst_port, 6000u);
  EXPECT_EQ(vsock_->errors(), ++errors);

  VsockHeader h = Guest(kVsockOpRw, 80, lp);
  h.src_cid = 7;
  GuestSend(h, "x");
  h = Guest(kVsockOpRw, 80, lp);
  h.dst_cid = 5;
  GuestSend(h, "x");
  errors += 2;
  EXPECT_EQ(vsock_->errors(), errors);
  h = Guest(kVsockOpRequest, 6000, 6001);
  h.type = 2;  // SEQPACKET, not offered
  GuestSend(h);
  EXPECT_EQ(WaitPacket(kVsockOpRst).h.dst_port, 6000u);
  EXPECT_EQ(vsock_->errors(), ++errors);

  // A len beyond what the chain holds, and beyond the packet limit.
  GuestSend(Guest(kVsockOpRw, 80, lp), "0123456789", /*len=*/100);
  GuestSend(Guest(kVsockOpRw, 80, lp), "0123456789", /*len=*/kVsockMaxPacketBytes + 1);
  errors += 2;
  EXPECT_EQ(vsock_->errors(), errors);
  // A tx chain too short for a header.
  drivers_[1].AddChain({{kTxBase, 10, false}});
  transport_->OnQueueNotify(1);
  EXPECT_EQ(vsock_->errors(), ++errors);
  EXPECT_TRUE(rx_.empty());
  EXPECT_EQ(drivers_[1].UsedIdx(), drivers_[1].avail_idx()) << "every tx chain comes back";
  // The connection survived all that.
  GuestSend(Guest(kVsockOpRw, 80, lp), "still here");
  EXPECT_EQ(HostRead(c.get(), 10), "still here");
  EXPECT_EQ(vsock_->active_connections(), 1u);

  // An unknown op on a live connection resets it.
  GuestSend(Guest(42, 80, lp));
  EXPECT_EQ(WaitPacket(kVsockOpRst).h.dst_port, 80u);
  EXPECT_EQ(vsock_->errors(), ++errors);
  EXPECT_TRUE(HostSeesEof(c.get()));
}

TEST_F(VsockTest, RxChainTooShortForAHeaderIsDropped) {
  Start(kVsockMaxConnections, 2000, /*rx_posted=*/0);
  PostRx(10);
  PostRx(kRxBufBytes);
  GuestSend(Guest(kVsockOpRw, 6000, 6001), "data");  // answered with an RST
  EXPECT_EQ(vsock_->errors(), 1u);
  EXPECT_EQ(WaitPacket(kVsockOpRst).h.dst_port, 6000u);
  EXPECT_EQ(drivers_[0].Used(0).len, 0u);
  EXPECT_EQ(drivers_[0].Used(1).len, kVsockHeaderBytes);
}

TEST_F(VsockTest, GuestDataBeyondItsCreditResetsTheConnection) {
  Start();
  UniqueFd listener = ListenUnix(uds_ + "_52");
  GuestSend(Guest(kVsockOpRequest, 5000, 52));
  WaitPacket(kVsockOpResponse);
  UniqueFd server(accept(listener.get(), nullptr, nullptr));
  // The host never reads: the guest sends what its credit allows (buf_alloc beyond the fwd_cnt
  // it was last told) until the socket is full and no more credit comes.
  std::string chunk(kVsockMaxPacketBytes, 'a');
  size_t sent = 0, fwd_known = 0;
  while (true) {
    for (const Packet& p : rx_) fwd_known = p.h.fwd_cnt;
    rx_.clear();
    if (kVsockBufAlloc - (sent - fwd_known) < chunk.size()) break;
    GuestSend(Guest(kVsockOpRw, 5000, 52), chunk);
    sent += chunk.size();
    ASSERT_LT(sent, size_t{64} << 20) << "the host socket never filled";
  }
  EXPECT_EQ(vsock_->errors(), 0u);
  // One packet more than the credit.
  GuestSend(Guest(kVsockOpRw, 5000, 52), chunk);
  EXPECT_EQ(vsock_->errors(), 1u);
  EXPECT_EQ(WaitPacket(kVsockOpRst).h.dst_port, 5000u);
  EXPECT_EQ(vsock_->active_connections(), 0u);
}

TEST_F(VsockTest, HostThatDoesNotReadGetsBufferedAndCreditUpdates) {
  Start();
  UniqueFd listener = ListenUnix(uds_ + "_52");
  GuestSend(Guest(kVsockOpRequest, 5000, 52));
  WaitPacket(kVsockOpResponse);
  UniqueFd server(accept(listener.get(), nullptr, nullptr));
  int small = 4096;
  setsockopt(server.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  // The guest sends, respecting the credit it is told, until 1 MiB went through.
  const size_t kTotal = 1 << 20;
  size_t sent = 0, fwd_known = 0, received = 0;
  std::string chunk(16384, 'z');
  while (received < kTotal) {
    for (const Packet& p : rx_) fwd_known = p.h.fwd_cnt;
    rx_.clear();
    size_t credit = kVsockBufAlloc - (sent - fwd_known);
    if (sent < kTotal && credit >= chunk.size()) {
      GuestSend(Guest(kVsockOpRw, 5000, 52), chunk);
      sent += chunk.size();
      continue;
    }
    std::string got = HostRead(server.get(), 1);
    ASSERT_FALSE(got.empty());
    received += got.size();
  }
  EXPECT_EQ(received, kTotal);
  EXPECT_TRUE(watcher_.saw_epollout) << "the socket never filled: the test lost its point";
  EXPECT_EQ(vsock_->errors(), 0u);
}

// --- Limits, reset, snapshots -------------------------------------------------------------------

TEST_F(VsockTest, ConnectionLimit) {
  Start(/*max_connections=*/3);
  UniqueFd listener = ListenUnix(uds_ + "_52");
  for (uint32_t i = 0; i < 3; i++) {
    GuestSend(Guest(kVsockOpRequest, 5000 + i, 52));
    WaitPacket(kVsockOpResponse);
  }
  GuestSend(Guest(kVsockOpRequest, 5003, 52));
  EXPECT_EQ(WaitPacket(kVsockOpRst).h.dst_port, 5003u);
  EXPECT_EQ(vsock_->active_connections(), 3u);
  // The host side is refused too: accepted and closed.
  UniqueFd c = ConnectUnix(uds_);
  EXPECT_TRUE(HostSeesEof(c.get()));
  // One closes, one more fits.
  GuestSend(Guest(kVsockOpRst, 5000, 52));
  GuestSend(Guest(kVsockOpRequest, 5004, 52));
  EXPECT_EQ(WaitPacket(kVsockOpResponse).h.dst_port, 5004u);
}

TEST_F(VsockTest, TransportResetSaveAndRestore) {
  Start();
  uint32_t lp = 0;
  UniqueFd c = Establish(80, &lp);
  drivers_[2].AddChain({{kEventBuf, 4, true}});
  {
    std::lock_guard<std::mutex> lock(transport_->mutex());
    ASSERT_TRUE(vsock_->SendTransportReset().ok());
    EXPECT_FALSE(vsock_->SendTransportReset().ok()) << "no second event buffer";
  }
  ASSERT_EQ(drivers_[2].UsedIdx(), 1);
  EXPECT_EQ(drivers_[2].Used(0).len, 4u);
  uint32_t id = 0xffffffff;
  ASSERT_TRUE(mem_->Read(kEventBuf, &id, 4).ok());
  EXPECT_EQ(id, kVsockEventTransportReset);
  EXPECT_TRUE(HostSeesEof(c.get()));
  EXPECT_EQ(vsock_->active_connections(), 0u);

  VsockState state = vsock_->Save();
  EXPECT_EQ(state.guest_cid, kCid);
  EXPECT_EQ(state.uds_path, uds_);
  EXPECT_EQ(state.last_local_port, lp);

  // Restored onto another path (vsock_override): no connections, ports go on.
  auto other = Vsock::Create({kCid, dir_.path() + "/other.sock"});
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->Restore(state).ok());
  EXPECT_EQ((*other)->Save().last_local_port, lp);
  EXPECT_EQ((*other)->active_connections(), 0u);
  auto wrong = Vsock::Create({kCid + 1, dir_.path() + "/wrong.sock"});
  ASSERT_TRUE(wrong.ok());
  EXPECT_FALSE((*wrong)->Restore(state).ok());
}

TEST_F(VsockTest, DriverResetDropsConnections) {
  Start();
  uint32_t lp = 0;
  UniqueFd c = Establish(80, &lp);
  SetReg(kRegStatus, 0);
  EXPECT_EQ(vsock_->active_connections(), 0u);
  EXPECT_TRUE(HostSeesEof(c.get()));
  EXPECT_EQ(watcher_.fds.size(), 2u);  // only the listener and the timer
}

}  // namespace
}  // namespace ember

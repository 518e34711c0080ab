#include "devices/virtio/vsock.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstring>
#include <vector>

#include "vmm/base/clock.h"
#include "vmm/base/log.h"
#include "vmm/base/strings.h"

namespace ember::virtio {

static_assert(std::endian::native == std::endian::little,
              "virtio_vsock_hdr is little-endian and copied as is");

namespace {

constexpr size_t kRxQueue = 0;
constexpr size_t kTxQueue = 1;
constexpr size_t kEventQueue = 2;
// Firecracker's MUXER_RXQ_SIZE: stray RSTs waiting for rx buffers. When full, tx processing
// pauses so a guest flooding strays is slowed down by its own rx queue instead of growing ours.
constexpr size_t kRstQueueMax = 256;

// Pending indications of what a connection owes the guest (Firecracker's PendingRx).
enum Pending : uint32_t {
  kPendingRequest = 1,
  kPendingResponse = 2,
  kPendingRw = 4,  // the host socket was readable when last looked at
  kPendingCreditUpdate = 8,
};

enum class ConnState {
  kLocalInit,  // host-initiated, REQUEST sent or due, waiting for the guest's RESPONSE
  kPeerInit,   // guest-initiated, our RESPONSE is due
  kEstablished,
  kLocalClosed,  // the host socket hit EOF; SHUTDOWN sent, waiting for the guest's RST
  kPeerClosed,   // the guest sent SHUTDOWN (flags in peer_rcv_off / peer_send_off)
};

uint64_t MakeKey(uint32_t local_port, uint32_t peer_port) {
  return uint64_t{local_port} << 32 | peer_port;
}

// The guest buffers covering [offset, offset + len) of `segments`.

Result<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return Error{StrFormat("vsock socket path '%s' is empty or longer than %zu bytes", path.c_str(),
                           sizeof(addr.sun_path) - 1)};
  }
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// Firecracker's parse of the host's command: whitespace-separated words, the first "connect"
// in any case, the second a u32 (Rust's u32::from_str: an optional '+', then decimal digits).
bool ParseConnectLine(const std::string& line, uint32_t* port) {
  std::vector<std::string> words;
  std::string word;
  for (char c : line) {
    if (isspace(static_cast<unsigned char>(c))) {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else {
      word += c;
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  if (words.size() < 2) return false;
  std::string keyword = words[0];
  for (char& c : keyword) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  if (keyword != "connect") return false;
  std::string digits = words[1];
  if (!digits.empty() && digits[0] == '+') digits.erase(0, 1);
  if (digits.empty() || digits.size() > 10) return false;
  uint64_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (value > UINT32_MAX) return false;
  *port = static_cast<uint32_t>(value);
  return true;
}

}  // namespace

// One stream between a guest port and a host Unix socket (Firecracker's VsockConnection). The
// counters are the protocol's, in wrapping u32 arithmetic (5.10.6.3).
struct Vsock::Connection {
  UniqueFd fd;
  uint32_t local_port = 0;
  uint32_t peer_port = 0;
  bool local_port_allocated = false;  // host-initiated: local_port is in local_ports_
  ConnState state = ConnState::kEstablished;
  bool peer_rcv_off = false;
  bool peer_send_off = false;
  uint32_t pending = 0;
  bool queued = false;  // in rx_ready_
  uint32_t watched = 0;
  uint64_t deadline_us = 0;  // connect or shutdown timeout; 0: none

  // Guest -> host. The guest may send what we advertised: kVsockBufAlloc beyond the fwd_cnt we
  // last told it; whatever the socket does not take waits in tx_buf.
  std::vector<uint8_t> tx_buf;
  uint32_t fwd_cnt = 0;               // bytes written to the host socket
  uint32_t last_fwd_cnt_to_peer = 0;  // fwd_cnt in the last header we sent
  uint32_t rx_from_peer = 0;          // RW bytes the guest sent
  // Host -> guest.
  uint32_t peer_buf_alloc = 0;
  uint32_t peer_fwd_cnt = 0;
  uint32_t rx_cnt = 0;  // RW bytes we sent

  uint64_t key() const { return MakeKey(local_port, peer_port); }
  uint32_t PeerCredit() const {
    uint32_t in_flight = rx_cnt - peer_fwd_cnt;
    // A guest announcing a fwd_cnt ahead of what it was sent gets no credit, not 4 GiB.
    return in_flight > peer_buf_alloc ? 0 : peer_buf_alloc - in_flight;
  }
  // The room the guest believes we have fell to the threshold (Firecracker's
  // peer_needs_credit_update).
  bool PeerNeedsCreditUpdate() const {
    return kVsockBufAlloc - (fwd_cnt - last_fwd_cnt_to_peer) <= kVsockCreditUpdateThreshold;
  }
  bool CanSendToPeer() const {
    return state == ConnState::kEstablished || state == ConnState::kPeerInit ||
           (state == ConnState::kPeerClosed && !peer_rcv_off);
  }
  bool CanReceiveFromPeer() const {
    return state == ConnState::kEstablished || (state == ConnState::kPeerClosed && !peer_send_off);
  }
  uint32_t WantedEvents() const {
    uint32_t events = tx_buf.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT);
    if (state == ConnState::kLocalInit) {
      // Not EPOLLIN: data the host sends before "OK" waits in the socket until the guest
      // answers; only a hang-up matters now.
      events |= EPOLLRDHUP;
    } else if (CanSendToPeer() && PeerCredit() > 0 && !(pending & kPendingRw)) {
      // Without credit, or while readable data waits for an rx buffer, EPOLLIN would only
      // spin the level-triggered loop; it comes back with credit or buffers.
      events |= EPOLLIN;
    }
    return events;
  }
};

Vsock::Vsock(const VsockOptions& options)
    : VirtioDevice("vsock"),
      guest_cid_(options.guest_cid),
      uds_path_(options.uds_path),
      max_connections_(options.max_connections),
      timeout_us_(uint64_t{options.timeout_ms} * 1000) {
  // 5.10.4: le64 guest_cid.
  config_space_.resize(8);
  memcpy(config_space_.data(), &guest_cid_, 8);
}

Result<std::shared_ptr<Vsock>> Vsock::Create(const VsockOptions& options) {
  if (options.guest_cid < kVsockMinGuestCid || options.guest_cid > UINT32_MAX) {
    // Linux's AF_VSOCK addresses are 32-bit (the upper 32 bits of le64 guest_cid are reserved).
    return Error{StrFormat("vsock guest_cid %llu is invalid: it must be at least 3 and fit 32 bits",
                           static_cast<unsigned long long>(options.guest_cid))};
  }
  std::shared_ptr<Vsock> vsock(new Vsock(options));
  TRY_STATUS(vsock->Listen());
  int timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer < 0) return Error::Errno("timerfd_create(CLOCK_MONOTONIC) for vsock");
  vsock->timer_.reset(timer);
  return vsock;
}

Status Vsock::Listen() {
  sockaddr_un addr = TRY(UnixAddress(uds_path_));
  struct stat st;
  if (lstat(uds_path_.c_str(), &st) == 0) {
    return Error{StrFormat("vsock uds_path %s already exists (ember does not remove files it did "
                           "not create)",
                           uds_path_.c_str()),
                 EEXIST};
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error::Errno("socket(AF_UNIX, SOCK_STREAM) for vsock");
  UniqueFd sock(fd);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Error::Errno(StrFormat("bind(vsock uds_path %s)", uds_path_.c_str()));
  }
  if (lstat(uds_path_.c_str(), &st) == 0) {
    listener_dev_ = st.st_dev;
    listener_ino_ = st.st_ino;
  }
  // Firecracker's UnixListener::bind uses std's backlog of 128.
  if (listen(fd, 128) != 0) {
    Error e = Error::Errno(StrFormat("listen(vsock uds_path %s, 128)", uds_path_.c_str()));
    unlink(uds_path_.c_str());
    return e;
  }
  listener_ = std::move(sock);
  return Ok();
}

Vsock::~Vsock() {
  conns_.clear();
  host_clients_.clear();
  if (!listener_.valid()) return;
  listener_.reset();
  struct stat st;
  if (lstat(uds_path_.c_str(), &st) == 0 && st.st_dev == listener_dev_ &&
      st.st_ino == listener_ino_) {
    unlink(uds_path_.c_str());
  }
}

Status Vsock::AttachEvents(EventWatcher* watcher) {
  TRY_STATUS(VirtioDevice::AttachEvents(watcher));
  TRY_STATUS(watcher->Watch(listener_.get(), EPOLLIN));
  TRY_STATUS(watcher->Watch(timer_.get(), EPOLLIN));
  return Ok();
}

void Vsock::Activate(const ActiveQueues& active) {
  VirtioDevice::Activate(active);
  // Host connections may have been waiting for the guest's rx buffers.
  Kick(true);
}

void Vsock::Reset() {
  DropAll();
  VirtioDevice::Reset();
}

void Vsock::ProcessQueue(size_t index) {
  if (!active()) return;
  // New rx buffers may unblock connections; new tx packets produce rx work; the event queue is
  // only written by SendTransportReset.
  if (index == kRxQueue) Kick(false);
  if (index == kTxQueue) Kick(true);
}

// --- Queues ----------------------------------------------------------------------------------

void Vsock::Kick(bool tx) {
  if (!active()) return;
  bool run_tx = tx || tx_stalled_;
  while (true) {
    if (run_tx) ProcessTx();
    ProcessRx();
    // Stray RSTs made room: the tx packets that were waiting can go on.
    run_tx = tx_stalled_ && rst_queue_.size() < kRstQueueMax;
    if (!run_tx) break;
  }
}

void Vsock::ProcessTx() {
  Queue& queue = (*active_.queues)[kTxQueue];
  tx_stalled_ = false;
  bool used = false;
  DescriptorChain chain;
  while (true) {
    if (rst_queue_.size() >= kRstQueueMax) {
      tx_stalled_ = true;
      break;
    }
    if (!NextChain(queue, &chain)) break;
    VsockHeader h;
    if (chain.CopyFromReadable(0, &h, sizeof(h)) < sizeof(h)) {
      CountError(StrFormat("a tx chain of %llu readable bytes, shorter than a packet header",
                           static_cast<unsigned long long>(chain.readable_bytes)));
    } else if (h.len > kVsockMaxPacketBytes) {
      CountError(StrFormat("a tx packet of %u bytes (at most %u)", h.len, kVsockMaxPacketBytes));
    } else if (h.len > chain.readable_bytes - sizeof(h)) {
      CountError(StrFormat("a tx packet claiming %u bytes in a chain holding %llu", h.len,
                           static_cast<unsigned long long>(chain.readable_bytes - sizeof(h))));
    } else {
      HandleGuestPacket(h, chain);
    }
    // 5.10.6.6: tx buffers are returned with nothing written.
    queue.AddUsed(chain.head, 0);
    used = true;
  }
  if (used) MaybeSignal(queue);
}

void Vsock::ProcessRx() {
  Queue& queue = (*active_.queues)[kRxQueue];
  bool used = false;
  DescriptorChain chain;
  while (!rst_queue_.empty() || !rx_ready_.empty()) {
    if (!NextChain(queue, &chain)) break;
    if (chain.writable_bytes < kVsockHeaderBytes) {
      CountError(StrFormat("an rx chain of %llu writable bytes, shorter than a packet header",
                           static_cast<unsigned long long>(chain.writable_bytes)));
      queue.AddUsed(chain.head, 0);
      used = true;
      continue;
    }
    if (!rst_queue_.empty()) {
      chain.CopyToWritable(0, &rst_queue_.front(), kVsockHeaderBytes);
      rst_queue_.pop_front();
      queue.AddUsed(chain.head, kVsockHeaderBytes);
      used = true;
      continue;
    }
    ConnKey key = rx_ready_.front();
    rx_ready_.pop_front();
    auto it = conns_.find(key);
    uint32_t len = 0;
    bool remove = false;
    rx_more_count_ = 0;
    if (it != conns_.end()) {
      it->second->queued = false;
      len = FillRx(*it->second, chain, &remove);
    }
    if (len == 0) {
      queue.UndoPop();
    } else {
      queue.AddUsed(chain.head, len);
      // IN_ORDER: the chains one read filled after `chain` follow it.
      for (size_t i = 0; i < rx_more_count_; i++) {
        queue.AddUsed(rx_more_[i].chain.head, rx_more_[i].len);
      }
      used = true;
    }
    if (it == conns_.end()) continue;
    if (remove) {
      Remove(*it->second);
    } else {
      Update(*it->second);
    }
  }
  if (used) MaybeSignal(queue);
}

uint32_t Vsock::FillRx(Connection& conn, const DescriptorChain& chain, bool* remove) {
  VsockHeader h;
  h.src_cid = kVsockHostCid;
  h.dst_cid = guest_cid_;
  h.src_port = conn.local_port;
  h.dst_port = conn.peer_port;
  h.type = kVsockTypeStream;
  h.buf_alloc = kVsockBufAlloc;
  h.fwd_cnt = conn.fwd_cnt;
  // Priorities as Firecracker's recv_pkt: connection setup, then data, then a bare credit
  // update (any packet carries our credit, so one is only worth a buffer when nothing else is).
  if (conn.pending & kPendingResponse) {
    conn.pending &= ~kPendingResponse;
    conn.state = ConnState::kEstablished;
    h.op = kVsockOpResponse;
  } else if (conn.pending & kPendingRequest) {
    conn.pending &= ~kPendingRequest;
    conn.deadline_us = MonotonicUs() + timeout_us_;
    h.op = kVsockOpRequest;
  } else if (conn.pending & kPendingRw) {
    conn.pending &= ~kPendingRw;
    uint32_t credit = conn.PeerCredit();
    if (!conn.CanSendToPeer()) {
      // The state changed since the socket was found readable; nothing to deliver.
    } else if (credit == 0) {
      // EPOLLIN stays off until the guest's CREDIT_UPDATE.
      h.op = kVsockOpCreditRequest;
    } else {
      uint64_t room =
          std::min<uint64_t>(chain.writable_bytes - kVsockHeaderBytes, kVsockMaxPacketBytes);
      uint32_t want = static_cast<uint32_t>(std::min<uint64_t>(room, credit));
      ssize_t n = want == 0 ? -1 : ReadHostData(conn, chain, want, credit);
      if (want == 0) {
        // A chain with room for the header only: nothing to read into, try the next one.
        conn.pending |= kPendingRw;
        h.op = kVsockOpCreditUpdate;
      } else if (n > 0) {
        h.op = kVsockOpRw;
        h.len = static_cast<uint32_t>(n) - rx_more_bytes_;
        conn.rx_cnt += static_cast<uint32_t>(n);
        conn.pending |= kPendingRw;  // there may be more
      } else if (n == 0) {
        // The host closed its end: neither side sends any more; the guest is to answer with RST
        // within the timeout.
        conn.state = ConnState::kLocalClosed;
        conn.deadline_us = MonotonicUs() + timeout_us_;
        h.op = kVsockOpShutdown;
        h.flags = kVsockShutdownRcv | kVsockShutdownSend;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        // Drained: EPOLLIN is watched again.
      } else {
        LOG_WARN("vsock: reading the host socket of port %u -> %u: %s", conn.local_port,
                 conn.peer_port, strerror(errno));
        h.op = kVsockOpRst;
        *remove = true;
      }
    }
  }
  if (h.op == 0 && (conn.pending & kPendingCreditUpdate)) h.op = kVsockOpCreditUpdate;
  if (h.op == 0) return 0;
  // Our header tells the guest our fwd_cnt, whatever the op.
  conn.pending &= ~kPendingCreditUpdate;
  conn.last_fwd_cnt_to_peer = conn.fwd_cnt;
  chain.CopyToWritable(0, &h, sizeof(h));
  for (size_t i = 0; i < rx_more_count_; i++) {
    VsockHeader more = h;
    more.len = rx_more_[i].len;
    rx_more_[i].chain.CopyToWritable(0, &more, sizeof(more));
    rx_more_[i].len += kVsockHeaderBytes;
  }
  return static_cast<uint32_t>(sizeof(h) + h.len);
}

ssize_t Vsock::ReadHostData(Connection& conn, const DescriptorChain& first, uint32_t first_room,
                            uint32_t credit) {
  // One readv for as many rx chains as the guest has posted, up to a packet's worth and the
  // guest's credit: a 64 KiB host write reaches a guest with 4 KiB rx buffers (as Linux posts
  // them) in one system call instead of sixteen. The chains taken after `first` go back unless
  // data went into them.
  Queue& queue = (*active_.queues)[kRxQueue];
  const uint64_t budget = std::min(credit, kVsockMaxPacketBytes);
  rx_iov_.clear();
  AppendIov(first.writable, kVsockHeaderBytes, first_room, &rx_iov_);
  uint64_t first_covered = 0;  // first_room, or less at IOV_MAX
  for (const iovec& v : rx_iov_) first_covered += v.iov_len;
  uint64_t room = first_covered;
  rx_more_count_ = 0;
  while (room < budget) {
    if (rx_more_count_ == rx_more_.size()) rx_more_.emplace_back();
    RxChain& more = rx_more_[rx_more_count_];
    QueueError error;
    if (!queue.Pop(&more.chain, &error)) break;  // none, or a broken ring NextChain will report
    const size_t before = rx_iov_.size();
    if (error == QueueError::kNone && more.chain.readable.empty() &&
        more.chain.writable_bytes > kVsockHeaderBytes) {
      AppendIov(more.chain.writable, kVsockHeaderBytes,
                std::min<uint64_t>(more.chain.writable_bytes - kVsockHeaderBytes, budget - room),
                &rx_iov_);
    }
    more.len = 0;
    for (size_t i = before; i < rx_iov_.size(); i++) {
      more.len += static_cast<uint32_t>(rx_iov_[i].iov_len);
    }
    if (more.len == 0) {
      // A malformed chain (answered by the next NextChain), or IOV_MAX reached.
      queue.UndoPop();
      break;
    }
    room += more.len;
    rx_more_count_++;
  }
  ssize_t n = readv(conn.fd.get(), rx_iov_.data(), static_cast<int>(rx_iov_.size()));
  // The first chain fills first, then the others in order; those left empty go back.
  uint64_t left = n > 0 ? static_cast<uint64_t>(n) : 0;
  left -= std::min(left, first_covered);
  size_t filled = 0;
  rx_more_bytes_ = 0;
  for (; filled < rx_more_count_ && left > 0; filled++) {
    RxChain& more = rx_more_[filled];
    more.len = static_cast<uint32_t>(std::min<uint64_t>(left, more.len));
    left -= more.len;
    rx_more_bytes_ += more.len;
  }
  queue.UndoPop(static_cast<uint16_t>(rx_more_count_ - filled));
  rx_more_count_ = filled;
  return n;
}

// --- Guest packets ---------------------------------------------------------------------------

void Vsock::HandleGuestPacket(const VsockHeader& h, const DescriptorChain& chain) {
  if (h.src_cid != guest_cid_) {
    CountError(StrFormat("a packet from CID %llu (the guest is %llu)",
                         static_cast<unsigned long long>(h.src_cid),
                         static_cast<unsigned long long>(guest_cid_)));
    return;
  }
  if (h.dst_cid != kVsockHostCid) {
    // Firecracker drops these: there is no one else to deliver to.
    CountError(StrFormat("a packet to CID %llu", static_cast<unsigned long long>(h.dst_cid)));
    return;
  }
  if (h.type != kVsockTypeStream) {
    CountError(StrFormat("a packet of socket type %u (only stream is offered)", h.type));
    EnqueueRst(h);
    return;
  }
  auto it = conns_.find(MakeKey(h.dst_port, h.src_port));
  if (it == conns_.end()) {
    if (h.op == kVsockOpRequest) {
      HandleGuestConnect(h);
    } else if (h.op != kVsockOpRst) {
      // Data or control for a connection we do not know: the guest's socket must reset (5.10.6.4);
      // an RST is never answered, or two confused peers would bounce RSTs forever.
      if (h.op < kVsockOpRequest || h.op > kVsockOpCreditRequest) {
        CountError(StrFormat("a packet with unknown op %u", h.op));
      }
      EnqueueRst(h);
    }
    return;
  }
  Connection& conn = *it->second;
  // Every packet carries the guest's credit.
  conn.peer_buf_alloc = h.buf_alloc;
  conn.peer_fwd_cnt = h.fwd_cnt;
  switch (h.op) {
    case kVsockOpRst:
      Remove(conn);
      return;
    case kVsockOpRw:
      HandleGuestData(conn, h, chain);
      return;
    case kVsockOpResponse:
      if (conn.state == ConnState::kLocalInit) {
        conn.state = ConnState::kEstablished;
        conn.deadline_us = 0;
        // Firecracker's reply to the host's CONNECT, outside the stream's accounting.
        std::string ok = StrFormat("OK %u\n", conn.local_port);
        ssize_t n = send(conn.fd.get(), ok.data(), ok.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n != static_cast<ssize_t>(ok.size())) {
          LOG_WARN("vsock: writing '%s' to the host socket of port %u: %s", "OK", conn.local_port,
                   n < 0 ? strerror(errno) : "short write");
          Kill(conn);
          return;
        }
        connections_opened_++;
      }
      break;
    case kVsockOpShutdown:
      if (conn.state == ConnState::kEstablished || conn.state == ConnState::kPeerClosed) {
        // Shutdown indications add up and cannot be taken back (5.10.6.5).
        conn.state = ConnState::kPeerClosed;
        conn.peer_rcv_off |= (h.flags & kVsockShutdownRcv) != 0;
        conn.peer_send_off |= (h.flags & kVsockShutdownSend) != 0;
        if (conn.peer_rcv_off && conn.peer_send_off) {
          if (conn.tx_buf.empty()) {
            Kill(conn);
            return;
          }
          // Firecracker's kill timer: drain what the guest sent first, but not forever.
          conn.deadline_us = MonotonicUs() + timeout_us_;
        }
      }
      break;
    case kVsockOpCreditUpdate:
      break;  // the credit was taken above
    case kVsockOpCreditRequest:
      if (conn.state == ConnState::kEstablished || conn.state == ConnState::kPeerInit ||
          (conn.state == ConnState::kPeerClosed && !conn.peer_send_off)) {
        conn.pending |= kPendingCreditUpdate;
      }
      break;
    case kVsockOpRequest:
      break;  // a duplicate; Firecracker drops it
    default:
      CountError(
          StrFormat("a packet with unknown op %u on port %u -> %u", h.op, h.src_port, h.dst_port));
      Kill(conn);
      return;
  }
  Update(conn);
}

void Vsock::HandleGuestData(Connection& conn, const VsockHeader& h, const DescriptorChain& chain) {
  if (!conn.CanReceiveFromPeer() || h.len == 0) {
    Update(conn);
    return;
  }
  // 5.10.6.3: the guest may have at most our buf_alloc in flight beyond the fwd_cnt we told it.
  uint32_t in_flight = conn.rx_from_peer - conn.last_fwd_cnt_to_peer;
  if (uint64_t{in_flight} + h.len > kVsockBufAlloc) {
    CountError(StrFormat("%u bytes on port %u -> %u beyond the %u of credit granted", h.len,
                         h.src_port, h.dst_port,
                         kVsockBufAlloc - std::min(in_flight, kVsockBufAlloc)));
    Kill(conn);
    return;
  }
  conn.rx_from_peer += h.len;
  uint32_t written = 0;
  if (conn.tx_buf.empty()) {
    std::vector<iovec> iov;
    AppendIov(chain.readable, kVsockHeaderBytes, h.len, &iov);
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = iov.size();
    ssize_t n = sendmsg(conn.fd.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      LOG_INFO("vsock: writing to the host socket of port %u -> %u: %s", h.src_port, h.dst_port,
               strerror(errno));
      Kill(conn);
      return;
    }
    written = n > 0 ? static_cast<uint32_t>(n) : 0;
    conn.fwd_cnt += written;
  }
  if (written < h.len) {
    // The credit check above bounds tx_buf by kVsockBufAlloc.
    size_t old = conn.tx_buf.size();
    conn.tx_buf.resize(old + (h.len - written));
    chain.CopyFromReadable(kVsockHeaderBytes + written, conn.tx_buf.data() + old, h.len - written);
  }
  if (conn.PeerNeedsCreditUpdate()) conn.pending |= kPendingCreditUpdate;
  Update(conn);
}

void Vsock::HandleGuestConnect(const VsockHeader& h) {
  if (conns_.size() + host_clients_.size() >= max_connections_) {
    LOG_WARN("vsock: refusing the guest's connection to port %u: %u connections open", h.dst_port,
             max_connections_);
    EnqueueRst(h);
    return;
  }
  std::string path = StrFormat("%s_%u", uds_path_.c_str(), h.dst_port);
  Result<sockaddr_un> addr = UnixAddress(path);
  int fd = addr.ok() ? socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) : -1;
  UniqueFd sock(fd);
  // An AF_UNIX connect completes at once or fails (EAGAIN when the listener's backlog is full):
  // it never leaves the loop waiting.
  if (fd < 0 || connect(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(sockaddr_un)) != 0) {
    LOG_DEBUG("vsock: guest connection to %s refused: %s", path.c_str(), strerror(errno));
    EnqueueRst(h);
    return;
  }
  auto conn = std::make_unique<Connection>();
  conn->fd = std::move(sock);
  conn->local_port = h.dst_port;
  conn->peer_port = h.src_port;
  conn->state = ConnState::kPeerInit;
  conn->pending = kPendingResponse;
  conn->peer_buf_alloc = h.buf_alloc;
  conn->peer_fwd_cnt = h.fwd_cnt;
  Connection& c = *conn;
  conn_by_fd_[c.fd.get()] = c.key();
  conns_[c.key()] = std::move(conn);
  active_connections_ = conns_.size();
  connections_opened_++;
  Update(c);
}

// --- Host side -------------------------------------------------------------------------------

void Vsock::OnEventFd(int fd, uint32_t events) {
  if (fd == listener_.get()) {
    AcceptHostClients();
  } else if (fd == timer_.get()) {
    OnTimer();
  } else if (host_clients_.count(fd)) {
    ReadConnectLine(fd);
  } else if (auto it = conn_by_fd_.find(fd); it != conn_by_fd_.end()) {
    auto conn = conns_.find(it->second);
    if (conn != conns_.end()) OnConnectionEvent(*conn->second, events);
  } else {
    return;
  }
  Kick(false);
}

void Vsock::AcceptHostClients() {
  while (true) {
    int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        LOG_WARN("vsock: accept4(%s): %s", uds_path_.c_str(), strerror(errno));
      }
      return;
    }
    UniqueFd client(fd);
    if (conns_.size() + host_clients_.size() >= max_connections_) {
      // Firecracker accepts and drops: the client sees EOF at once.
      host_errors_++;
      LOG_WARN("vsock: refusing a host connection: %u connections open", max_connections_);
      continue;
    }
    HostClient& hc = host_clients_[fd];
    hc.fd = std::move(client);
    hc.deadline_us = MonotonicUs() + timeout_us_;
    ArmTimer(hc.deadline_us);
    if (watcher_) {
      Status s = watcher_->Watch(fd, EPOLLIN);
      if (!s.ok()) {
        LOG_WARN("vsock: watching a host connection: %s", s.error().message.c_str());
        host_clients_.erase(fd);
      }
    }
  }
}

void Vsock::ReadConnectLine(int fd) {
  HostClient& hc = host_clients_[fd];
  // One byte at a time, as Firecracker: whatever follows the line belongs to the stream.
  while (true) {
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
    if (n == 0) return DropHostClient(fd, "closed before finishing its CONNECT line");
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // the rest of the line comes later
      return DropHostClient(fd, "failed while sending its CONNECT line");
    }
    hc.line += c;
    if (c == '\n') break;
    if (hc.line.size() >= kVsockConnectLineMax) {
      return DropHostClient(fd, "sent a CONNECT line longer than 32 bytes");
    }
  }
  uint32_t port = 0;
  if (!ParseConnectLine(hc.line, &port)) return DropHostClient(fd, "sent a malformed CONNECT line");
  auto conn = std::make_unique<Connection>();
  conn->fd = std::move(hc.fd);
  host_clients_.erase(fd);
  conn->local_port = AllocateLocalPort();
  conn->local_port_allocated = true;
  conn->peer_port = port;
  conn->state = ConnState::kLocalInit;
  conn->pending = kPendingRequest;
  conn->watched = EPOLLIN;  // as the host client was
  Connection& c = *conn;
  conn_by_fd_[fd] = c.key();
  conns_[c.key()] = std::move(conn);
  active_connections_ = conns_.size();
  Update(c);
}

void Vsock::DropHostClient(int fd, const char* why) {
  host_errors_++;
  LOG_INFO("vsock: a host client of %s %s", uds_path_.c_str(), why);
  if (watcher_) watcher_->Unwatch(fd);
  host_clients_.erase(fd);
}

void Vsock::OnConnectionEvent(Connection& conn, uint32_t events) {
  if (conn.state == ConnState::kLocalInit && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
    // The host gave up before the guest answered.
    Kill(conn);
    return;
  }
  if (!conn.tx_buf.empty() && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))) {
    if (!FlushTxBuf(conn)) {
      Kill(conn);
      return;
    }
    if (conn.state == ConnState::kPeerClosed && conn.peer_rcv_off && conn.peer_send_off &&
        conn.tx_buf.empty()) {
      Kill(conn);
      return;
    }
    if (conn.PeerNeedsCreditUpdate()) conn.pending |= kPendingCreditUpdate;
  }
  if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && conn.CanSendToPeer() &&
      conn.state != ConnState::kLocalInit) {
    conn.pending |= kPendingRw;
  }
  Update(conn);
}

bool Vsock::FlushTxBuf(Connection& conn) {
  ssize_t n =
      send(conn.fd.get(), conn.tx_buf.data(), conn.tx_buf.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  conn.tx_buf.erase(conn.tx_buf.begin(), conn.tx_buf.begin() + n);
  conn.fwd_cnt += static_cast<uint32_t>(n);
  return true;
}

// --- Bookkeeping -----------------------------------------------------------------------------

void Vsock::Update(Connection& conn) {
  WatchFd(conn.fd.get(), conn.WantedEvents(), &conn.watched);
  if (conn.pending && !conn.queued) {
    conn.queued = true;
    rx_ready_.push_back(conn.key());
  }
  if (conn.deadline_us) ArmTimer(conn.deadline_us);
}

void Vsock::WatchFd(int fd, uint32_t events, uint32_t* watched) {
  if (!watcher_ || events == *watched) return;
  if (events == 0) {
    // Not a Watch with no events: epoll reports EPOLLHUP regardless, which would spin.
    watcher_->Unwatch(fd);
  } else {
    Status s = watcher_->Watch(fd, events);
    if (!s.ok()) {
      LOG_WARN("vsock: watching a connection socket: %s", s.error().message.c_str());
      return;
    }
  }
  *watched = events;
}

void Vsock::Kill(Connection& conn) {
  VsockHeader h;
  h.src_cid = guest_cid_;
  h.dst_cid = kVsockHostCid;
  h.src_port = conn.peer_port;
  h.dst_port = conn.local_port;
  h.type = kVsockTypeStream;
  Remove(conn);
  EnqueueRst(h);
}

void Vsock::Remove(Connection& conn) {
  if (watcher_ && conn.watched) watcher_->Unwatch(conn.fd.get());
  conn_by_fd_.erase(conn.fd.get());
  if (conn.local_port_allocated) local_ports_.erase(conn.local_port);
  conns_.erase(conn.key());  // destroys conn, closing the host socket
  active_connections_ = conns_.size();
}

void Vsock::DropAll() {
  while (!conns_.empty()) Remove(*conns_.begin()->second);
  rx_ready_.clear();
  rst_queue_.clear();
  tx_stalled_ = false;
}

// Answers the guest packet `to` with an RST (5.10.6.4): the addresses swapped.
void Vsock::EnqueueRst(const VsockHeader& to) {
  VsockHeader h;
  h.src_cid = kVsockHostCid;
  h.dst_cid = guest_cid_;
  h.src_port = to.dst_port;
  h.dst_port = to.src_port;
  h.type = kVsockTypeStream;
  h.op = kVsockOpRst;
  rst_queue_.push_back(h);
}

uint32_t Vsock::AllocateLocalPort() {
  // Firecracker's round robin over [2^30, 2^31); at most max_connections are taken.
  do {
    last_local_port_ = ((last_local_port_ + 1) & ~(uint32_t{1} << 31)) | kVsockLocalPortFirst;
  } while (local_ports_.count(last_local_port_));
  local_ports_.insert(last_local_port_);
  return last_local_port_;
}

void Vsock::ArmTimer(uint64_t deadline_us) {
  if (timer_deadline_us_ != 0 && timer_deadline_us_ <= deadline_us) return;
  timer_deadline_us_ = deadline_us;
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(deadline_us / 1000000);
  spec.it_value.tv_nsec = static_cast<long>(deadline_us % 1000000 * 1000);
  if (timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &spec, nullptr) != 0) {
    LOG_WARN("vsock: timerfd_settime: %s", strerror(errno));
  }
}

void Vsock::OnTimer() {
  uint64_t expirations;
  while (read(timer_.get(), &expirations, sizeof(expirations)) > 0) {
  }
  timer_deadline_us_ = 0;
  uint64_t now = MonotonicUs();
  uint64_t next = 0;
  auto later = [&next](uint64_t d) {
    if (d && (next == 0 || d < next)) next = d;
  };
  std::vector<int> silent;
  for (auto& [fd, hc] : host_clients_) {
    if (hc.deadline_us <= now) {
      silent.push_back(fd);
    } else {
      later(hc.deadline_us);
    }
  }
  for (int fd : silent) DropHostClient(fd, "sent no CONNECT line in time");
  std::vector<Connection*> expired;
  for (auto& [key, conn] : conns_) {
    if (conn->deadline_us && conn->deadline_us <= now) {
      expired.push_back(conn.get());
    } else {
      later(conn->deadline_us);
    }
  }
  for (Connection* conn : expired) {
    LOG_DEBUG("vsock: port %u -> %u timed out", conn->local_port, conn->peer_port);
    Kill(*conn);
  }
  if (next) ArmTimer(next);
}

// --- Event queue and snapshots ---------------------------------------------------------------

Status Vsock::SendTransportReset() {
  DropAll();
  if (!active()) return Error{"vsock: transport reset while the device is not active"};
  Queue& queue = (*active_.queues)[kEventQueue];
  DescriptorChain chain;
  while (true) {
    QueueError error;
    if (!queue.Pop(&chain, &error)) {
      if (error != QueueError::kNone) CheckPop(queue, error, chain);
      return Error{"vsock: no event buffer for TRANSPORT_RESET"};
    }
    if (!CheckPop(queue, error, chain)) continue;
    uint32_t id = kVsockEventTransportReset;
    if (chain.CopyToWritable(0, &id, sizeof(id)) < sizeof(id)) {
      CountError("an event buffer shorter than struct virtio_vsock_event");
      queue.AddUsed(chain.head, 0);
      MaybeSignal(queue);
      continue;
    }
    queue.AddUsed(chain.head, sizeof(id));
    MaybeSignal(queue);
    return Ok();
  }
}

VsockState Vsock::Save() const {
  VsockState s;
  s.guest_cid = guest_cid_;
  s.uds_path = uds_path_;
  s.last_local_port = last_local_port_;
  return s;
}

Status Vsock::Restore(const VsockState& state) {
  if (state.guest_cid != guest_cid_) {
    return Error{StrFormat("vsock snapshot is for guest_cid %llu, the device has %llu",
                           static_cast<unsigned long long>(state.guest_cid),
                           static_cast<unsigned long long>(guest_cid_))};
  }
  DropAll();
  last_local_port_ = state.last_local_port;
  return Ok();
}

}  // namespace ember::virtio

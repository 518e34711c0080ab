#include "devices/virtio/net.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>

#include "vmm/base/log.h"
#include "vmm/base/strings.h"

namespace ember::virtio {
namespace {

constexpr size_t kRxQueue = 0;
constexpr size_t kTxQueue = 1;
constexpr size_t kMaxFrameWithHeader = kNetHdrLen + kNetMaxFrame;
// A quarter of the largest queue: see ProcessRx.
constexpr unsigned kRxFramesPerInterrupt = 64;

// Whether the limiter may refuse a frame: it has a bucket, or a wait it is serving.
bool MayRefuse(const RateLimiter& limiter) {
  return limiter.bandwidth() || limiter.ops() || limiter.blocked();
}

// The configuration after Firecracker's update: the buckets given replace the old ones.
RateLimiterConfig Merged(const std::optional<RateLimiterConfig>& old,
                         const RateLimiterConfig& update) {
  RateLimiterConfig merged = old.value_or(RateLimiterConfig{});
  if (update.bandwidth) merged.bandwidth = update.bandwidth;
  if (update.ops) merged.ops = update.ops;
  return merged;
}

}  // namespace

Result<std::shared_ptr<Net>> Net::Open(const NetOptions& options) {
  const std::string what =
      StrFormat("network interface %s: TAP %s", options.iface_id.c_str(), options.host_dev_name.c_str());
  if (options.host_dev_name.empty() || options.host_dev_name.size() >= IFNAMSIZ) {
    return Error{what + ": not a valid interface name"};
  }
  // TUNSETIFF would create a missing TAP (with CAP_NET_ADMIN); the host owns its interfaces.
  if (if_nametoindex(options.host_dev_name.c_str()) == 0) {
    return Error{what + ": no such device (create the TAP first)"};
  }
  UniqueFd tap(open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!tap.valid()) return Error::Errno(what + ": open /dev/net/tun");
  ifreq ifr = {};
  strncpy(ifr.ifr_name, options.host_dev_name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (ioctl(tap.get(), TUNSETIFF, &ifr) != 0) {
    if (errno == EBUSY) return Error{what + ": in use by another process"};
    if (errno == EINVAL) return Error{what + ": not a TAP device"};
    return Error::Errno(what + ": TUNSETIFF");
  }
  int hdr_len = kNetHdrLen;
  if (ioctl(tap.get(), TUNSETVNETHDRSZ, &hdr_len) != 0) {
    return Error::Errno(what + ": TUNSETVNETHDRSZ");
  }
  std::unique_ptr<RateLimiter> rx_limiter =
      TRY(RateLimiter::Create(options.rx_rate_limiter.value_or(RateLimiterConfig{})));
  std::unique_ptr<RateLimiter> tx_limiter =
      TRY(RateLimiter::Create(options.tx_rate_limiter.value_or(RateLimiterConfig{})));
  return std::shared_ptr<Net>(
      new Net(options, std::move(tap), std::move(rx_limiter), std::move(tx_limiter)));
}

Net::Net(const NetOptions& options, UniqueFd tap, std::unique_ptr<RateLimiter> rx_limiter,
         std::unique_ptr<RateLimiter> tx_limiter)
    : VirtioDevice("net " + options.iface_id),
      options_(options),
      tap_(std::move(tap)),
      rx_limiter_(std::move(rx_limiter)),
      tx_limiter_(std::move(tx_limiter)) {
  rx_frame_.resize(kMaxFrameWithHeader);
  // struct virtio_net_config: mac[6], status, max_virtqueue_pairs, mtu.
  config_space_.assign(12, 0);
  if (options_.guest_mac) memcpy(config_space_.data(), options_.guest_mac->data(), 6);
  config_space_[8] = 1;  // max_virtqueue_pairs (meaningful only with MQ, which is not offered)
  if (options_.mtu) memcpy(config_space_.data() + 10, &*options_.mtu, 2);
}

uint64_t Net::offered_features() const {
  uint64_t f = Bit(kFVersion1) | Bit(kFEventIdx) | Bit(kNetFCsum) | Bit(kNetFGuestCsum) |
               Bit(kNetFGuestTso4) | Bit(kNetFGuestTso6) | Bit(kNetFGuestUfo) |
               Bit(kNetFHostTso4) | Bit(kNetFHostTso6) | Bit(kNetFHostUfo) | Bit(kNetFMrgRxbuf);
  if (options_.guest_mac) f |= Bit(kNetFMac);
  if (options_.mtu) f |= Bit(kNetFMtu);
  return f;
}

void Net::Activate(const ActiveQueues& active) {
  VirtioDevice::Activate(active);
  mrg_rxbuf_ = active.features & Bit(kNetFMrgRxbuf);
  // What the guest can receive is what the TAP may hand us (5.1.6.4, TUNSETOFFLOAD).
  unsigned offload = 0;
  if (active.features & Bit(kNetFGuestCsum)) {
    offload |= TUN_F_CSUM;
    if (active.features & Bit(kNetFGuestTso4)) offload |= TUN_F_TSO4;
    if (active.features & Bit(kNetFGuestTso6)) offload |= TUN_F_TSO6;
    if (active.features & Bit(kNetFGuestUfo)) offload |= TUN_F_UFO;
  }
  if (ioctl(tap_.get(), TUNSETOFFLOAD, offload) != 0 &&
      ioctl(tap_.get(), TUNSETOFFLOAD, offload & ~TUN_F_UFO) != 0) {
    LOG_WARN("%s: TUNSETOFFLOAD 0x%x: %s", name().c_str(), offload, strerror(errno));
  }
  rx_waiting_for_buffers_ = false;
  UpdateTapEvents();
}

void Net::Reset() {
  VirtioDevice::Reset();
  rx_frame_len_ = 0;  // a frame held for the old queues is dropped with them
  rx_waiting_for_buffers_ = false;
  tx_waiting_for_tap_ = false;
  UpdateTapEvents();
}

Status Net::AttachEvents(EventWatcher* watcher) {
  TRY_STATUS(VirtioDevice::AttachEvents(watcher));
  TRY_STATUS(WatchLimiterTimers());
  UpdateTapEvents();
  return Ok();
}

Status Net::WatchLimiterTimers() {
  if (!watcher_) return Ok();
  for (auto [limiter, watched] :
       {std::pair{rx_limiter_.get(), &rx_timer_fd_}, std::pair{tx_limiter_.get(), &tx_timer_fd_}}) {
    const int fd = limiter->timer_fd();
    if (*watched >= 0 || fd < 0) continue;
    TRY_STATUS(watcher_->Watch(fd, EPOLLIN));
    *watched = fd;
  }
  return Ok();
}

void Net::UpdateRateLimiters(const std::optional<RateLimiterConfig>& rx,
                             const std::optional<RateLimiterConfig>& tx) {
  std::unique_lock<std::mutex> lock = LockLikeTransport();
  if (rx) {
    rx_limiter_->Update(*rx);
    options_.rx_rate_limiter = Merged(options_.rx_rate_limiter, *rx);
  }
  if (tx) {
    tx_limiter_->Update(*tx);
    options_.tx_rate_limiter = Merged(options_.tx_rate_limiter, *tx);
  }
  if (Status s = WatchLimiterTimers(); !s.ok()) {
    LOG_WARN("%s: a rate limiter's timer cannot be watched: %s", name().c_str(),
             s.error().message.c_str());
  }
  if (active()) {
    // A limiter serving a wait refuses both at once and resumes from its timer; otherwise the
    // queues go on now under the new buckets (frames the old ones held back included).
    ProcessRx();
    ProcessTx();
  }
  UpdateTapEvents();
}

void Net::UpdateTapEvents() {
  if (!watcher_) return;
  uint32_t want = 0;
  if (active()) {
    bool rx_blocked = rx_waiting_for_buffers_ || rx_limiter_->blocked();
    if (!rx_blocked) want |= EPOLLIN;
    if (tx_waiting_for_tap_) want |= EPOLLOUT;
  }
  if (want == tap_events_) return;
  if (want == 0) {
    watcher_->Unwatch(tap_.get());
  } else if (!watcher_->Watch(tap_.get(), want).ok()) {
    LOG_WARN("%s: cannot watch the TAP", name().c_str());
    return;
  }
  tap_events_ = want;
}

void Net::OnEventFd(int fd, uint32_t events) {
  if (fd == rx_timer_fd_) {
    rx_limiter_->OnTimerEvent();
    if (active()) ProcessRx();
  } else if (fd == tx_timer_fd_) {
    tx_limiter_->OnTimerEvent();
    if (active()) ProcessTx();
  } else if (fd == tap_.get() && active()) {
    if (events & EPOLLOUT) {
      tx_waiting_for_tap_ = false;
      ProcessTx();
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ProcessRx();
  }
  UpdateTapEvents();
}

void Net::ProcessQueue(size_t index) {
  if (!active()) return;
  if (index == kRxQueue) {
    // New buffers matter only to a frame or a TAP that waited for them; otherwise the TAP's
    // readability drives RX, and reading it here on every kick would only cost a syscall.
    if (rx_waiting_for_buffers_ || rx_frame_len_ != 0) {
      rx_waiting_for_buffers_ = false;
      ProcessRx();
    }
  } else if (index == kTxQueue) {
    ProcessTx();
  }
  UpdateTapEvents();
}

bool Net::DeliverPending() {
  Queue& queue = (*active_.queues)[kRxQueue];
  // The chains taken for this frame: with MRG_RXBUF a frame may span several; without it one
  // chain must hold it all.
  struct Taken {
    uint16_t head;
    uint32_t len;
  };
  Taken taken[kMaxQueueSize];
  uint16_t count = 0;
  size_t copied = 0;
  DescriptorChain first;  // num_buffers goes into its header once the count is known
  DescriptorChain chain;
  while (copied < rx_frame_len_) {
    QueueError error;
    if (!queue.Pop(&chain, &error)) {
      queue.UndoPop(count);
      if (error != QueueError::kNone) {
        CheckPop(queue, error, chain);
        rx_frame_len_ = 0;  // the ring is broken; the device waits for a reset
        return false;
      }
      if (queue.EnableNotification()) continue;
      return false;  // not enough room yet: keep the frame until the guest adds buffers
    }
    if (!CheckPop(queue, error, chain)) continue;
    if (!chain.readable.empty() || chain.writable_bytes < (count == 0 ? kNetHdrLen : 1)) {
      CountError("an RX chain with device-readable buffers or no room for the header");
      queue.AddUsed(chain.head, 0);
      continue;
    }
    size_t n = chain.CopyToWritable(0, rx_frame_.data() + copied, rx_frame_len_ - copied);
    if (count == 0) first = chain;
    taken[count++] = {chain.head, static_cast<uint32_t>(n)};
    copied += n;
    if (!mrg_rxbuf_ && copied < rx_frame_len_) {
      // A truncated frame would be worse than none: drop it and give the buffer back.
      CountError(StrFormat("an RX buffer of %llu bytes for a %zu-byte frame without MRG_RXBUF",
                           static_cast<unsigned long long>(chain.writable_bytes), rx_frame_len_));
      queue.AddUsed(chain.head, 0);
      rx_frame_len_ = 0;
      return true;
    }
  }
  if (mrg_rxbuf_) {
    uint16_t num_buffers = count;
    first.CopyToWritable(kNetHdrNumBuffersOffset, &num_buffers, sizeof(num_buffers));
  }
  for (uint16_t i = 0; i < count; i++) queue.AddUsed(taken[i].head, taken[i].len);
  counters_.rx_frames++;
  counters_.rx_bytes += rx_frame_len_ - kNetHdrLen;
  rx_frame_len_ = 0;
  rx_frame_charged_ = false;
  return true;
}

Net::DirectRx Net::TryDirectRx() {
  // The fast path: a guest that posts buffers able to hold any frame (64 KiB chains, as Linux
  // does for GSO without MRG_RXBUF) gets the frame read straight into them, with no copy.
  // Smaller buffers, or a rate limiter that may have to hold a frame back, take the copying path.
  if (MayRefuse(*rx_limiter_)) return DirectRx::kNotPossible;
  Queue& queue = (*active_.queues)[kRxQueue];
  DescriptorChain& chain = rx_chain_;
  QueueError error;
  if (!queue.Pop(&chain, &error)) {
    if (error != QueueError::kNone) {
      CheckPop(queue, error, chain);
      return DirectRx::kStop;
    }
    return queue.EnableNotification() ? DirectRx::kNotPossible : DirectRx::kNoBuffers;
  }
  if (error != QueueError::kNone || !chain.readable.empty() ||
      chain.writable_bytes < kMaxFrameWithHeader) {
    queue.UndoPop();
    return DirectRx::kNotPossible;
  }
  iov_.clear();
  AppendIov(chain.writable, 0, chain.writable_bytes, &iov_);
  ssize_t n = readv(tap_.get(), iov_.data(), static_cast<int>(iov_.size()));
  if (n <= static_cast<ssize_t>(kNetHdrLen)) {
    queue.UndoPop();
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      LOG_WARN("%s: TAP read: %s", name().c_str(), strerror(errno));
    }
    return n < 0 ? DirectRx::kStop : DirectRx::kDelivered;  // a runt: read again
  }
  uint16_t num_buffers = mrg_rxbuf_ ? 1 : 0;
  chain.CopyToWritable(kNetHdrNumBuffersOffset, &num_buffers, sizeof(num_buffers));
  queue.AddUsed(chain.head, static_cast<uint32_t>(n));
  counters_.rx_frames++;
  counters_.rx_bytes += static_cast<uint64_t>(n) - kNetHdrLen;
  return DirectRx::kDelivered;
}

void Net::ProcessRx() {
  Queue& queue = (*active_.queues)[kRxQueue];
  // One interrupt per batch of frames, not per frame: a guest woken for every frame while the
  // TAP holds more spends its time entering and leaving its interrupt handler (and, when it
  // shares the CPU with this thread, preempts the reading of the rest of the batch). A long
  // batch still interrupts every kRxFramesPerInterrupt frames so the guest can start on it.
  for (unsigned frames = 1; DeliverFrame(); frames++) {
    if (frames % kRxFramesPerInterrupt == 0) MaybeSignal(queue);
  }
  MaybeSignal(queue);
}

bool Net::DeliverFrame() {
  if (rx_frame_len_ == 0) {
    switch (TryDirectRx()) {
      case DirectRx::kDelivered:
        return true;
      case DirectRx::kStop:
        return false;
      case DirectRx::kNoBuffers:
        // Nothing to read into: leave the frames in the TAP until the guest posts buffers.
        rx_waiting_for_buffers_ = true;
        return false;
      case DirectRx::kNotPossible:
        break;
    }
    ssize_t n = read(tap_.get(), rx_frame_.data(), rx_frame_.size());
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) {
        LOG_WARN("%s: TAP read: %s", name().c_str(), strerror(errno));
      }
      return false;
    }
    if (static_cast<size_t>(n) <= kNetHdrLen) return true;  // nothing after the header
    rx_frame_len_ = static_cast<size_t>(n);
    rx_frame_charged_ = false;
    // Without MRG_RXBUF num_buffers is not used; with it, it is set on delivery.
    memset(rx_frame_.data() + kNetHdrNumBuffersOffset, 0, 2);
  }
  if (!rx_frame_charged_) {
    // The frame waits (it is never dropped) until the limiter lets it through.
    if (!rx_limiter_->Consume(1, TokenType::kOps)) {
      counters_.rx_throttled++;
      return false;
    }
    if (!rx_limiter_->Consume(rx_frame_len_ - kNetHdrLen, TokenType::kBytes)) {
      rx_limiter_->ManualReplenish(1, TokenType::kOps);
      counters_.rx_throttled++;
      return false;
    }
    rx_frame_charged_ = true;
  }
  if (!DeliverPending()) {
    rx_waiting_for_buffers_ = rx_frame_len_ != 0;
    return false;
  }
  return true;
}

void Net::ProcessTx() {
  if (tx_waiting_for_tap_) return;
  Queue& queue = (*active_.queues)[kTxQueue];
  DescriptorChain chain;
  bool used = false;
  while (true) {
    if (tx_limiter_->blocked()) break;
    if (!NextChain(queue, &chain)) break;
    if (!chain.writable.empty() || chain.readable_bytes <= kNetHdrLen ||
        chain.readable_bytes > kMaxFrameWithHeader) {
      CountError(StrFormat("a TX chain of %llu readable and %llu writable bytes",
                           static_cast<unsigned long long>(chain.readable_bytes),
                           static_cast<unsigned long long>(chain.writable_bytes)));
      queue.AddUsed(chain.head, 0);
      used = true;
      continue;
    }
    const uint64_t frame = chain.readable_bytes - kNetHdrLen;
    if (!tx_limiter_->Consume(1, TokenType::kOps)) {
      queue.UndoPop();
      counters_.tx_throttled++;
      break;
    }
    if (!tx_limiter_->Consume(frame, TokenType::kBytes)) {
      tx_limiter_->ManualReplenish(1, TokenType::kOps);
      queue.UndoPop();
      counters_.tx_throttled++;
      break;
    }
    iov_.clear();
    AppendIov(chain.readable, 0, chain.readable_bytes, &iov_);
    ssize_t n = writev(tap_.get(), iov_.data(), static_cast<int>(iov_.size()));
    if (n < 0 && errno == EAGAIN) {
      // The TAP's queue is full: wait for it to drain rather than block or drop.
      tx_limiter_->ManualReplenish(1, TokenType::kOps);
      tx_limiter_->ManualReplenish(frame, TokenType::kBytes);
      queue.UndoPop();
      tx_waiting_for_tap_ = true;
      break;
    }
    if (n < 0) {
      counters_.tx_dropped++;  // e.g. the TAP is down: the frame is lost as on a wire
    } else {
      counters_.tx_frames++;
      counters_.tx_bytes += frame;
    }
    queue.AddUsed(chain.head, 0);
    used = true;
  }
  if (used) MaybeSignal(queue);
}

NetState Net::Save() const {
  NetState s;
  s.guest_mac = options_.guest_mac;
  s.mtu = options_.mtu;
  s.rx_rate_limiter = rx_limiter_->Save();
  s.tx_rate_limiter = tx_limiter_->Save();
  return s;
}

Status Net::Restore(const NetState& state) {
  if (state.guest_mac != options_.guest_mac || state.mtu != options_.mtu) {
    return Error{name() + ": the snapshot's MAC or MTU differs from the configuration"};
  }
  if (state.rx_rate_limiter) TRY_STATUS(rx_limiter_->Restore(*state.rx_rate_limiter));
  if (state.tx_rate_limiter) TRY_STATUS(tx_limiter_->Restore(*state.tx_rate_limiter));
  return WatchLimiterTimers();  // a restored bucket may be the first
}

NetCounters Net::counters() const { return counters_; }

}  // namespace ember::virtio

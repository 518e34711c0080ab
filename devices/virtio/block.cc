#include "devices/virtio/block.h"

#include <sys/epoll.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

#include "vmm/base/log.h"
#include "vmm/base/strings.h"

namespace ember::virtio {
namespace {

// preadv/pwritev until everything moved; a short transfer (EOF, a file truncated behind our
// back) or an error is an I/O error for the guest.
bool TransferAll(int fd, bool write, std::vector<iovec> iov, off_t offset) {
  size_t first = 0;
  while (first < iov.size()) {
    int count = static_cast<int>(iov.size() - first);
    ssize_t n = write ? pwritev(fd, &iov[first], count, offset) : preadv(fd, &iov[first], count, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) return false;
    offset += n;
    size_t left = static_cast<size_t>(n);
    while (first < iov.size() && left >= iov[first].iov_len) {
      left -= iov[first].iov_len;
      first++;
    }
    if (left > 0) {
      iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return true;
}

// The image behind a drive: its fd opened with the drive's access mode, its size in sectors and
// the GET_ID answer derived from it.
struct Image {
  UniqueFd fd;
  uint64_t sectors = 0;
  std::string id;
};

Result<Image> OpenImage(const std::string& drive_id, const std::string& path, bool read_only) {
  const std::string what = StrFormat("drive %s: %s", drive_id.c_str(), path.c_str());
  int fd = open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd < 0) return Error::Errno(what);
  Image image;
  image.fd = UniqueFd(fd);
  struct stat st;
  if (fstat(fd, &st) != 0) return Error::Errno(what);
  uint64_t size = 0;
  if (S_ISREG(st.st_mode)) {
    size = static_cast<uint64_t>(st.st_size);
  } else if (S_ISBLK(st.st_mode)) {
    if (ioctl(fd, BLKGETSIZE64, &size) != 0) return Error::Errno(what);
  } else {
    return Error{what + ": not a regular file or block device"};
  }
  if (size % kSectorSize != 0) {
    return Error{StrFormat("%s: its size, %llu bytes, is not a multiple of 512", what.c_str(),
                           static_cast<unsigned long long>(size))};
  }
  image.sectors = size / kSectorSize;
  // Firecracker's id: the decimal device, rdev and inode numbers, cut to 20 bytes.
  image.id = StrFormat("%llu%llu%llu", static_cast<unsigned long long>(st.st_dev),
                       static_cast<unsigned long long>(st.st_rdev),
                       static_cast<unsigned long long>(st.st_ino));
  image.id.resize(kBlkIdBytes, '\0');
  return image;
}

}  // namespace

Result<std::shared_ptr<Block>> Block::Open(const BlockOptions& options) {
  Image image = TRY(OpenImage(options.drive_id, options.path, options.read_only));
  std::unique_ptr<RateLimiter> limiter =
      TRY(RateLimiter::Create(options.rate_limiter.value_or(RateLimiterConfig{})));
  return std::shared_ptr<Block>(new Block(options, std::move(image.fd), image.sectors,
                                          std::move(image.id), std::move(limiter)));
}

Block::Block(const BlockOptions& options, UniqueFd fd, uint64_t capacity_sectors, std::string id,
             std::unique_ptr<RateLimiter> limiter)
    : VirtioDevice("block " + options.drive_id),
      options_(options),
      fd_(std::move(fd)),
      id_(std::move(id)),
      limiter_(std::move(limiter)) {
  SetCapacity(capacity_sectors);
}

void Block::SetCapacity(uint64_t sectors) {
  capacity_sectors_ = sectors;
  config_space_.resize(8);
  memcpy(config_space_.data(), &capacity_sectors_, 8);  // virtio_blk_config.capacity (LE)
}

Status Block::UpdateBackingFile(const std::string& path) {
  // Opened before taking the lock: the guest goes on being served from the old image meanwhile.
  Image image = TRY(OpenImage(options_.drive_id, path, options_.read_only));
  std::unique_lock<std::mutex> lock = LockLikeTransport();
  fd_ = std::move(image.fd);
  SetCapacity(image.sectors);
  id_ = std::move(image.id);
  options_.path = path;
  if (transport_) transport_->SignalConfigChange();
  return Ok();
}

void Block::UpdateRateLimiter(const RateLimiterConfig& config) {
  std::unique_lock<std::mutex> lock = LockLikeTransport();
  limiter_->Update(config);
  RateLimiterConfig merged = options_.rate_limiter.value_or(RateLimiterConfig{});
  if (config.bandwidth) merged.bandwidth = config.bandwidth;
  if (config.ops) merged.ops = config.ops;
  options_.rate_limiter = merged;
  WatchLimiterTimer();  // a first bucket makes the timer worth watching
}

void Block::WatchLimiterTimer() {
  const int fd = limiter_->timer_fd();
  if (limiter_timer_fd_ >= 0 || !watcher_ || fd < 0) return;
  Status s = watcher_->Watch(fd, EPOLLIN);
  if (!s.ok()) {
    LOG_WARN("%s: the rate limiter's timer cannot be watched: %s", name().c_str(),
             s.error().message.c_str());
    return;
  }
  limiter_timer_fd_ = fd;
}

uint64_t Block::offered_features() const {
  uint64_t f = Bit(kFVersion1) | Bit(kFEventIdx) | Bit(kFIndirectDesc);
  if (options_.read_only) f |= Bit(kBlkFRo);
  if (options_.writeback) f |= Bit(kBlkFFlush);
  return f;
}

Status Block::AttachEvents(EventWatcher* watcher) {
  TRY_STATUS(VirtioDevice::AttachEvents(watcher));
  const int fd = limiter_->timer_fd();
  if (fd >= 0) {
    TRY_STATUS(watcher->Watch(fd, EPOLLIN));
    limiter_timer_fd_ = fd;
  }
  return Ok();
}

void Block::OnEventFd(int fd, uint32_t /*events*/) {
  // Not timer_fd(): an update may have disabled every bucket while a wait was armed, and that
  // expiry must still be drained and unblock the queue.
  if (fd != limiter_timer_fd_) return;
  limiter_->OnTimerEvent();
  if (active()) ProcessQueue(0);
}

void Block::ProcessQueue(size_t index) {
  if (!active() || index != 0) return;
  Queue& queue = (*active_.queues)[0];
  bool used = false;
  DescriptorChain chain;
  while (true) {
    if (limiter_->blocked()) break;  // the timer brings us back
    if (!NextChain(queue, &chain)) break;
    // Data bytes: everything but the 16-byte header and the status byte.
    uint64_t total = chain.readable_bytes + chain.writable_bytes;
    uint64_t bytes = total > 17 ? total - 17 : 0;
    if (!limiter_->Consume(1, TokenType::kOps)) {
      queue.UndoPop();
      throttled_++;
      break;
    }
    if (!limiter_->Consume(bytes, TokenType::kBytes)) {
      limiter_->ManualReplenish(1, TokenType::kOps);
      queue.UndoPop();
      throttled_++;
      break;
    }
    std::optional<uint32_t> len = Execute(chain);  // bounded by the image size plus one
    queue.AddUsed(chain.head, len.value_or(0));
    used = true;
  }
  if (used) MaybeSignal(queue);
}

std::optional<uint32_t> Block::Execute(const DescriptorChain& chain) {
  requests_++;
  // Framing is not assumed (2.6.4): the header is the first 16 readable bytes and the status
  // the last writable byte, however the driver split them into descriptors.
  if (chain.readable_bytes < sizeof(BlkReqHeader)) {
    CountError("a request without a device-readable 16-byte header");
    return std::nullopt;
  }
  if (chain.writable_bytes < 1) {
    CountError("a request without a device-writable status byte");
    return std::nullopt;
  }
  BlkReqHeader header;
  chain.CopyFromReadable(0, &header, sizeof(header));
  const uint64_t status_offset = chain.writable_bytes - 1;
  const uint64_t readable_data = chain.readable_bytes - sizeof(BlkReqHeader);
  const uint64_t writable_data = chain.writable_bytes - 1;
  auto finish = [&](uint8_t status, uint64_t data_written) -> uint32_t {
    chain.CopyToWritable(status_offset, &status, 1);
    return static_cast<uint32_t>(std::min<uint64_t>(data_written + 1, UINT32_MAX));
  };

  switch (header.type) {
    case kBlkTIn:
      if (readable_data != 0) {
        CountError("an IN request with a device-readable data buffer");
        return finish(kBlkSIoErr, 0);
      }
      if (DoIo(false, header.sector, chain, 0, writable_data) != kBlkSOk) {
        return finish(kBlkSIoErr, 0);
      }
      read_bytes_ += writable_data;
      return finish(kBlkSOk, writable_data);
    case kBlkTOut:
      if (writable_data != 0) {
        CountError("an OUT request with a device-writable data buffer");
        return finish(kBlkSIoErr, 0);
      }
      if (options_.read_only) return finish(kBlkSIoErr, 0);
      if (DoIo(true, header.sector, chain, sizeof(BlkReqHeader), readable_data) != kBlkSOk) {
        return finish(kBlkSIoErr, 0);
      }
      write_bytes_ += readable_data;
      return finish(kBlkSOk, 0);
    case kBlkTFlush:
      // Unsafe never offers FLUSH; a flush sent anyway has nothing to make durable.
      if (options_.writeback && !options_.read_only && fdatasync(fd_.get()) != 0) {
        LOG_WARN("%s: fdatasync: %s", name().c_str(), strerror(errno));
        return finish(kBlkSIoErr, 0);
      }
      return finish(kBlkSOk, 0);
    case kBlkTGetId: {
      size_t n = chain.CopyToWritable(0, id_.data(), std::min<uint64_t>(writable_data, kBlkIdBytes));
      return finish(kBlkSOk, n);
    }
    default:
      return finish(kBlkSUnsupp, 0);
  }
}

uint8_t Block::DoIo(bool write, uint64_t sector, const DescriptorChain& chain,
                    uint64_t data_offset, uint64_t data_len) {
  if (data_len % kSectorSize != 0) {
    CountError(StrFormat("a %s of %llu bytes, not whole sectors", write ? "write" : "read",
                         static_cast<unsigned long long>(data_len)));
    return kBlkSIoErr;
  }
  const uint64_t sectors = data_len / kSectorSize;
  // The guest may name any sector; out of range is an ordinary I/O error, not hostile.
  if (sector > capacity_sectors_ || sectors > capacity_sectors_ - sector) return kBlkSIoErr;
  if (data_len == 0) return kBlkSOk;
  std::vector<iovec> iov;
  iov.reserve(8);
  if (!AppendIov(write ? chain.readable : chain.writable, data_offset, data_len, &iov)) {
    return kBlkSIoErr;
  }
  if (!TransferAll(fd_.get(), write, std::move(iov), static_cast<off_t>(sector * kSectorSize))) {
    LOG_WARN("%s: %s at sector %llu failed: %s", name().c_str(), write ? "pwritev" : "preadv",
             static_cast<unsigned long long>(sector), strerror(errno));
    return kBlkSIoErr;
  }
  return kBlkSOk;
}

BlockState Block::Save() const {
  BlockState s;
  s.capacity_sectors = capacity_sectors_;
  s.path = options_.path;
  s.read_only = options_.read_only;
  s.writeback = options_.writeback;
  s.rate_limiter = limiter_->Save();
  return s;
}

}  // namespace ember::virtio

namespace ember::virtio {

Status Block::Restore(const BlockState& state) {
  // The drive is reopened from the configuration; its image must still be the one saved.
  if (state.capacity_sectors != capacity_sectors_ || state.read_only != options_.read_only) {
    return Error{StrFormat("%s: the image has %llu sectors%s, the snapshot %llu%s", name().c_str(),
                           static_cast<unsigned long long>(capacity_sectors_),
                           options_.read_only ? " (read-only)" : "",
                           static_cast<unsigned long long>(state.capacity_sectors),
                           state.read_only ? " (read-only)" : "")};
  }
  if (state.rate_limiter) TRY_STATUS(limiter_->Restore(*state.rate_limiter));
  return Ok();
}

}  // namespace ember::virtio

#include "devices/virtio/queue.h"

#include <atomic>
#include <cstring>

#include "vmm/base/strings.h"

namespace ember::virtio {
namespace {

// Guest memory is shared with running vCPUs: every ring field is read once, with an atomic
// load, so a value the guest changes underneath cannot be checked and then used differently.
uint16_t Load16(const uint16_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void Store16(uint16_t* p, uint16_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

Desc LoadDesc(const Desc* p) {
  Desc d;
  memcpy(&d, p, sizeof(d));
  std::atomic_thread_fence(std::memory_order_acquire);
  return d;
}

bool IsPowerOfTwo(uint32_t n) { return n != 0 && (n & (n - 1)) == 0; }

}  // namespace

const char* QueueErrorName(QueueError error) {
  switch (error) {
    case QueueError::kNone: return "no error";
    case QueueError::kAvailIndexJump: return "the available index jumped by more than the queue size";
    case QueueError::kHeadOutOfRange: return "an available entry names a descriptor outside the table";
    case QueueError::kDescOutOfRange: return "a next index outside the descriptor table";
    case QueueError::kChainTooLong: return "a descriptor chain longer than the queue (or a loop)";
    case QueueError::kBufferOutsideMemory: return "a buffer outside guest memory";
    case QueueError::kIndirectNotNegotiated: return "an indirect descriptor without VIRTIO_F_INDIRECT_DESC";
    case QueueError::kIndirectNested: return "an indirect descriptor inside an indirect table";
    case QueueError::kIndirectWithNext: return "an indirect descriptor with the NEXT flag";
    case QueueError::kIndirectBadLength: return "an indirect table of bad length";
    case QueueError::kIndirectOutsideMemory: return "an indirect table outside guest memory";
    case QueueError::kReadableAfterWritable: return "a device-readable buffer after a device-writable one";
  }
  return "unknown queue error";
}

bool AppendIov(const std::vector<Segment>& segments, uint64_t offset, uint64_t len,
               std::vector<iovec>* iov) {
  constexpr size_t kMaxIov = 1024;  // IOV_MAX
  for (const Segment& s : segments) {
    if (len == 0) break;
    if (offset >= s.len) {
      offset -= s.len;
      continue;
    }
    uint64_t n = std::min<uint64_t>(s.len - offset, len);
    if (iov->size() == kMaxIov) return false;
    iov->push_back({s.host + offset, n});
    len -= n;
    offset = 0;
  }
  return len == 0;
}

size_t DescriptorChain::CopyFromReadable(uint64_t offset, void* dst, size_t len) const {
  auto* out = static_cast<uint8_t*>(dst);
  size_t done = 0;
  for (const Segment& s : readable) {
    if (done == len) break;
    if (offset >= s.len) {
      offset -= s.len;
      continue;
    }
    size_t n = std::min<size_t>(s.len - offset, len - done);
    memcpy(out + done, s.host + offset, n);
    done += n;
    offset = 0;
  }
  return done;
}

size_t DescriptorChain::CopyToWritable(uint64_t offset, const void* src, size_t len) const {
  const auto* in = static_cast<const uint8_t*>(src);
  size_t done = 0;
  for (const Segment& s : writable) {
    if (done == len) break;
    if (offset >= s.len) {
      offset -= s.len;
      continue;
    }
    size_t n = std::min<size_t>(s.len - offset, len - done);
    memcpy(s.host + offset, in + done, n);
    done += n;
    offset = 0;
  }
  return done;
}

Status Queue::Activate(const GuestMemory* memory, uint64_t features) {
  if (!state_.ready) return Error{"the queue is not ready"};
  if (!IsPowerOfTwo(state_.size) || state_.size > state_.max_size) {
    return Error{StrFormat("queue size %u is not a power of two up to %u", state_.size,
                           state_.max_size)};
  }
  state_.event_idx = (features & Bit(kFEventIdx)) != 0;
  state_.indirect = (features & Bit(kFIndirectDesc)) != 0;
  memory_ = memory;
  Status s = ResolveRings();
  if (!s.ok()) memory_ = nullptr;
  return s;
}

Status Queue::ResolveRings() {
  const uint64_t n = state_.size;
  // 2.7: descriptor table 16-byte aligned, available ring 2, used ring 4.
  if (state_.desc_addr % 16 || state_.avail_addr % 2 || state_.used_addr % 4) {
    return Error{"a queue area is misaligned"};
  }
  auto desc = memory_->HostAddress(state_.desc_addr, 16 * n);
  auto avail = memory_->HostAddress(state_.avail_addr, 6 + 2 * n);
  auto used = memory_->HostAddress(state_.used_addr, 6 + 8 * n);
  if (!desc.ok() || !avail.ok() || !used.ok()) return Error{"a queue area is outside guest memory"};
  desc_ = reinterpret_cast<const Desc*>(*desc);
  avail_ = reinterpret_cast<const uint16_t*>(*avail);
  used_ = reinterpret_cast<uint16_t*>(*used);
  return Ok();
}

void Queue::Reset() {
  uint16_t max = state_.max_size;
  state_ = QueueState{};
  state_.max_size = state_.size = max;
  memory_ = nullptr;
  desc_ = nullptr;
  avail_ = nullptr;
  used_ = nullptr;
}

uint16_t Queue::AvailIdx() const { return Load16(&avail_[1]); }
uint16_t Queue::UsedEvent() const { return Load16(&avail_[2 + state_.size]); }

uint16_t Queue::Pending() const {
  if (!activated()) return 0;
  uint16_t pending = static_cast<uint16_t>(AvailIdx() - state_.next_avail);
  return pending > state_.size ? 0 : pending;
}

bool Queue::Pop(DescriptorChain* chain, QueueError* error) {
  *error = QueueError::kNone;
  if (!activated()) return false;
  uint16_t avail_idx = AvailIdx();
  uint16_t pending = static_cast<uint16_t>(avail_idx - state_.next_avail);
  if (pending == 0) return false;
  if (pending > state_.size) {
    *error = QueueError::kAvailIndexJump;
    return false;
  }
  uint16_t head = Load16(&avail_[2 + state_.next_avail % state_.size]);
  if (head >= state_.size) {
    *error = QueueError::kHeadOutOfRange;
    return false;
  }
  state_.next_avail++;
  chain->head = head;
  chain->readable.clear();
  chain->writable.clear();
  chain->readable_bytes = 0;
  chain->writable_bytes = 0;
  *error = WalkChain(head, chain);
  return true;
}

QueueError Queue::AddBuffer(uint64_t addr, uint32_t len, bool writable,
                            DescriptorChain* chain) const {
  if (!writable && !chain->writable.empty()) return QueueError::kReadableAfterWritable;
  if (len == 0) return QueueError::kNone;  // legal and carries nothing
  auto host = memory_->HostAddress(addr, len);
  if (!host.ok()) return QueueError::kBufferOutsideMemory;
  if (writable) {
    chain->writable.push_back({*host, len});
    chain->writable_bytes += len;
  } else {
    chain->readable.push_back({*host, len});
    chain->readable_bytes += len;
  }
  return QueueError::kNone;
}

QueueError Queue::WalkChain(uint16_t head, DescriptorChain* chain) const {
  // Every step counts against the queue size (2.7.5.3.1: no chain is longer), which also ends
  // any loop the driver builds.
  const uint32_t limit = state_.size;
  uint32_t visited = 0;
  uint16_t index = head;
  while (true) {
    if (++visited > limit) return QueueError::kChainTooLong;
    Desc d = LoadDesc(&desc_[index]);
    if (d.flags & kDescFIndirect) {
      if (!state_.indirect) return QueueError::kIndirectNotNegotiated;
      if (d.flags & kDescFNext) return QueueError::kIndirectWithNext;
      if (d.len == 0 || d.len % sizeof(Desc) != 0 || d.len / sizeof(Desc) > limit) {
        return QueueError::kIndirectBadLength;
      }
      auto table_host = memory_->HostAddress(d.addr, d.len);
      // No alignment is required of an indirect table; LoadDesc copies each entry out.
      if (!table_host.ok()) return QueueError::kIndirectOutsideMemory;
      const auto* table = reinterpret_cast<const Desc*>(*table_host);
      const uint32_t entries = d.len / sizeof(Desc);
      uint16_t i = 0;
      for (uint32_t steps = 0;; steps++) {
        // A table holds at most `limit` entries, so this also ends a loop inside the table.
        if (steps >= entries) return QueueError::kChainTooLong;
        Desc e = LoadDesc(&table[i]);
        if (e.flags & kDescFIndirect) return QueueError::kIndirectNested;
        QueueError err = AddBuffer(e.addr, e.len, e.flags & kDescFWrite, chain);
        if (err != QueueError::kNone) return err;
        if (!(e.flags & kDescFNext)) return QueueError::kNone;
        if (e.next >= entries) return QueueError::kDescOutOfRange;
        i = e.next;
      }
    }
    QueueError err = AddBuffer(d.addr, d.len, d.flags & kDescFWrite, chain);
    if (err != QueueError::kNone) return err;
    if (!(d.flags & kDescFNext)) return QueueError::kNone;
    if (d.next >= state_.size) return QueueError::kDescOutOfRange;
    index = d.next;
  }
}

void Queue::AddUsed(uint16_t head, uint32_t len) {
  if (!activated()) return;
  auto* ring = reinterpret_cast<UsedElem*>(used_ + 2);
  UsedElem elem{head, len};
  memcpy(&ring[state_.next_used % state_.size], &elem, sizeof(elem));
  state_.next_used++;
  // The element must be visible before the index that publishes it.
  Store16(&used_[1], state_.next_used);
}

bool Queue::NeedsInterrupt() {
  if (!activated()) return false;
  // The driver's used_event / flags are read after our used.idx store is visible.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  uint16_t old_used = state_.signalled_used;
  uint16_t new_used = state_.next_used;
  state_.signalled_used = new_used;
  if (!state_.event_idx) return !(Load16(&avail_[0]) & kAvailFNoInterrupt);
  // 2.7.10: interrupt iff used_event lies in [old_used, new_used).
  uint16_t event = UsedEvent();
  return static_cast<uint16_t>(new_used - event - 1) < static_cast<uint16_t>(new_used - old_used);
}

bool Queue::EnableNotification() {
  if (!activated()) return false;
  if (state_.event_idx) {
    // avail_event follows the used ring's entries.
    Store16(&used_[2 + 4 * state_.size], state_.next_avail);
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return AvailIdx() != state_.next_avail;
}

}  // namespace ember::virtio

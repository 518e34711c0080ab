// Queue: the device side of one split virtqueue (virtio 1.x section 2.7). The driver (the guest)
// owns the rings and is hostile by assumption: every index, address and length read from guest
// memory is checked before use, and a malformed ring or chain is reported as a QueueError that
// the device counts and answers (drop the chain, or mark itself NEEDS_RESET). Nothing here ever
// touches host memory outside the guest's mappings or loops more than the queue size.
//
// Threading: a Queue is used under its transport's lock only.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <vector>

#include "devices/virtio/virtio_spec.h"
#include "vmm/memory/guest_memory.h"

namespace ember::virtio {

inline constexpr uint16_t kMaxQueueSize = 256;

enum class QueueError {
  kNone = 0,
  // Ring level: the queue cannot be trusted any more; the device must be reset.
  kAvailIndexJump,    // avail.idx moved ahead by more than the queue size
  kHeadOutOfRange,    // an avail ring entry names a descriptor >= queue size
  // Chain level: this request is dropped, the queue goes on.
  kDescOutOfRange,    // a NEXT index >= the table's size
  kChainTooLong,      // more descriptors than the queue size (including any loop)
  kBufferOutsideMemory,
  kIndirectNotNegotiated,
  kIndirectNested,
  kIndirectWithNext,
  kIndirectBadLength,  // zero, not a multiple of 16, or more entries than the queue size
  kIndirectOutsideMemory,
  kReadableAfterWritable,  // 2.7.4.2: device-writable descriptors come last
};
const char* QueueErrorName(QueueError error);
inline bool IsRingError(QueueError e) {
  return e == QueueError::kAvailIndexJump || e == QueueError::kHeadOutOfRange;
}

// One validated buffer of a chain: wholly inside one guest RAM region.
struct Segment {
  uint8_t* host;
  uint32_t len;
};

// A descriptor chain, split into its device-readable and device-writable parts (in chain order).
struct DescriptorChain {
  uint16_t head = 0;
  std::vector<Segment> readable;
  std::vector<Segment> writable;
  uint64_t readable_bytes = 0;
  uint64_t writable_bytes = 0;

  // Copies up to `len` bytes of the readable part starting at `offset`; returns how many.
  size_t CopyFromReadable(uint64_t offset, void* dst, size_t len) const;
  // Copies into the writable part at `offset`; returns how many bytes fitted.
  size_t CopyToWritable(uint64_t offset, const void* src, size_t len) const;
};

// Appends iovecs for bytes [offset, offset + len) of `segments` (a chain's readable or writable
// part), for readv/writev straight to or from guest memory. Returns false when the segments end
// first or IOV_MAX is reached; what fitted is appended either way.
bool AppendIov(const std::vector<Segment>& segments, uint64_t offset, uint64_t len,
               std::vector<iovec>* iov);

// The driver-visible configuration and the device's progress: what a snapshot saves.
struct QueueState {
  uint16_t max_size = kMaxQueueSize;
  uint16_t size = kMaxQueueSize;  // QueueNum: reset value is the maximum
  bool ready = false;
  uint64_t desc_addr = 0;
  uint64_t avail_addr = 0;
  uint64_t used_addr = 0;
  uint16_t next_avail = 0;
  uint16_t next_used = 0;
  // used.idx at the last interrupt decision (VIRTIO_F_EVENT_IDX's "old" index).
  uint16_t signalled_used = 0;
  bool event_idx = false;
  bool indirect = false;
  bool operator==(const QueueState&) const = default;
};

class Queue {
 public:
  explicit Queue(uint16_t max_size = kMaxQueueSize) { state_.max_size = state_.size = max_size; }

  // Driver-side configuration through the transport (before the queue is activated).
  QueueState& config() { return state_; }
  const QueueState& state() const { return state_; }

  // Checks the size (a power of two, 1..max) and that the three areas lie in guest RAM with
  // the alignment 2.7 requires, then resolves their host addresses. Called when the driver sets
  // DRIVER_OK (and after a restore). `features` are the driver's acked features.
  Status Activate(const GuestMemory* memory, uint64_t features);
  bool activated() const { return memory_ != nullptr; }
  void Reset();

  // Takes the next available chain. Returns false when none is pending (and *error is kNone)
  // or when the ring is broken (*error is a ring error: the chain was not taken). Returns true
  // with *error kNone and *chain filled, or true with a chain error: the head was taken and
  // should be returned to the driver with AddUsed(head, 0).
  bool Pop(DescriptorChain* chain, QueueError* error);
  // Puts the last `n` popped chains back (a rate limiter refused them, or they were not needed).
  void UndoPop(uint16_t n = 1) { state_.next_avail -= n; }
  // Entries the driver has made available and the device has not taken (0 on a broken ring).
  uint16_t Pending() const;

  // Publishes a used element and the new used.idx.
  void AddUsed(uint16_t head, uint32_t len);
  // Whether the driver wants an interrupt for the used elements added since the last call
  // (EVENT_IDX's used_event, or the NO_INTERRUPT flag).
  bool NeedsInterrupt();
  // With EVENT_IDX: asks the driver for a notification when it adds the next chain, and
  // returns true if chains arrived meanwhile (process them before sleeping).
  bool EnableNotification();

 private:
  uint16_t AvailIdx() const;
  uint16_t UsedEvent() const;
  Status ResolveRings();
  QueueError WalkChain(uint16_t head, DescriptorChain* chain) const;
  QueueError AddBuffer(uint64_t addr, uint32_t len, bool writable, DescriptorChain* chain) const;

  QueueState state_;
  const GuestMemory* memory_ = nullptr;
  const Desc* desc_ = nullptr;           // the descriptor table (guest memory, read only)
  const uint16_t* avail_ = nullptr;      // flags, idx, ring[size], used_event
  uint16_t* used_ = nullptr;             // flags, idx, then UsedElem ring[size], avail_event
};

}  // namespace ember::virtio

// libFuzzer target over virtio::Queue's parsing of guest-controlled rings and descriptor chains
// (virtio 1.x section 2.7). The input is the guest: it chooses the queue size, the negotiated
// features, where the rings are, the device's starting indices, and the bytes of the descriptor
// table, the available ring and the rest of guest RAM (indirect tables, buffers). The target then
// does what a device does: pops chains until the queue is empty or broken, copies out of every
// readable part and into every writable part, returns each chain with AddUsed and asks whether to
// interrupt. It must never crash, hang, or touch host memory outside the guest's mappings; every
// segment a chain hands out is checked against the mappings here, and ASan/UBSan check the rest.
//
// Guest RAM is two 16 KiB regions with a 16 KiB gap, [0, 0x4000) and [0x8000, 0xc000), so that
// "outside RAM", "in the gap" and "straddling" are all a few bits away.
//
// Input layout (all little-endian; missing bytes read as 0):
//   0      queue size (low 4 bits: 0-8 log2 of the size, 9-15 the size is bytes 14..15 modulo
//          301); bit 4 INDIRECT_DESC, bit 5 EVENT_IDX,
//          bit 6 fold every 64-bit address in RAM to 16 bits, bit 7 UndoPop/re-pop every chain
//   1      ring placement (0-5 the standard one; 6, 7 fuzz-chosen: see PlaceRings)
//   2..3   the device's next_avail (and next_used, signalled_used)
//   4      chains published: avail.idx = next_avail + this (bit 7 set: raw avail.idx at 5..6)
//   5..6   raw avail.idx; 7 avail.flags; 8..9 used_event
//   10..11 copy offset, 12..15 copy length
//   16..   the descriptor table (16 * size bytes), the avail ring (2 * size), then the bytes
//          copied to both ends of the free RAM in each region (0x2000.. and 0x8000..)
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "devices/virtio/queue.h"
#include "devices/virtio/virtio_spec.h"
#include "vmm/memory/guest_memory.h"

namespace {

using ember::GuestMemory;
using ember::virtio::Bit;
using ember::virtio::DescriptorChain;
using ember::virtio::Queue;
using ember::virtio::QueueError;

constexpr uint64_t kRegion0 = 0x0;
constexpr uint64_t kRegion1 = 0x8000;
constexpr uint64_t kRegionSize = 0x4000;
constexpr uint64_t kDesc = 0x0;       // 16 * 256 = 0x1000
constexpr uint64_t kAvail = 0x1000;   // 6 + 2 * 256
constexpr uint64_t kUsed = 0x1400;    // 6 + 8 * 256, ends at 0x1c06
constexpr uint64_t kFreeRam = 0x2000; // the rest of region 0, then region 1
constexpr size_t kHeaderBytes = 16;

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t U8(size_t at) const { return at < size_ ? data_[at] : 0; }
  uint16_t U16(size_t at) const { return static_cast<uint16_t>(U8(at) | U8(at + 1) << 8); }
  uint32_t U32(size_t at) const { return U16(at) | static_cast<uint32_t>(U16(at + 2)) << 16; }
  // Copies up to `len` bytes from `at` (fewer if the input ends); returns how many.
  size_t Copy(size_t at, uint8_t* dst, size_t len) const {
    if (at >= size_) return 0;
    size_t n = std::min(len, size_ - at);
    memcpy(dst, data_ + at, n);
    return n;
  }

 private:
  const uint8_t* data_;
  size_t size_;
};

// Guest RAM. GuestMemory places every region between PROT_NONE guard pages, so a read or write
// past either end of a region faults here instead of landing silently in whatever is mapped next
// (ASan does not watch mmap'd memory).
GuestMemory* CreateGuardedMemory() {
  auto m = GuestMemory::Create({{kRegion0, kRegionSize}, {kRegion1, kRegionSize}});
  if (!m.ok()) abort();
  return new GuestMemory(std::move(*m));
}

const GuestMemory& Memory() {
  static const GuestMemory* memory = CreateGuardedMemory();
  return *memory;
}

uint8_t* Host(uint64_t gpa) { return *Memory().HostAddress(gpa, 1); }

// Aborts (a finding) unless [p, p + len) lies inside one guest mapping.
void CheckInsideGuest(const uint8_t* p, uint32_t len) {
  for (const ember::GuestRegion& r : Memory().regions()) {
    if (p >= r.host && p <= r.host + r.range.size && len <= r.host + r.range.size - p) return;
  }
  abort();
}

void PlaceRings(const Input& in, ember::virtio::QueueState* q) {
  q->desc_addr = kDesc;
  q->avail_addr = kAvail;
  q->used_addr = kUsed;
  uint8_t placement = in.U8(1) & 7;
  if (placement == 6) {
    // Fuzz-chosen offsets around the standard places: misaligned, overlapping, off the end.
    q->desc_addr = kDesc + (in.U8(10) & 0x3f);
    q->avail_addr = kAvail + (in.U8(11) & 0x3f);
    q->used_addr = kUsed + (in.U8(12) & 0x3f);
  } else if (placement == 7) {
    // Anywhere in a 64 KiB window: region 1, the gap, past the end.
    q->desc_addr = in.U16(10);
    q->avail_addr = in.U16(12);
    q->used_addr = in.U16(14);
  }
}

// Folds the 64-bit address at `gpa` (a descriptor's addr field, or anything else) to 16 bits.
void FoldAddress(uint64_t gpa) {
  uint64_t v;
  memcpy(&v, Host(gpa), 8);
  v &= 0xffff;
  memcpy(Host(gpa), &v, 8);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Input in(data, size);
  const GuestMemory& memory = Memory();
  memset(Host(kRegion0), 0, kRegionSize);
  memset(Host(kRegion1), 0, kRegionSize);

  const uint8_t flags = in.U8(0);
  // 0..8: the powers of two 1..256; 9..15: any size up to 300, which Activate must refuse
  // unless it is one of those.
  const uint16_t qsize = (flags & 0xf) <= 8 ? static_cast<uint16_t>(1u << (flags & 0xf))
                                            : static_cast<uint16_t>(in.U16(14) % 301);
  const bool fold = flags & 0x40;
  const bool undo = flags & 0x80;
  uint64_t features = Bit(ember::virtio::kFVersion1);
  if (flags & 0x10) features |= Bit(ember::virtio::kFIndirectDesc);
  if (flags & 0x20) features |= Bit(ember::virtio::kFEventIdx);

  // Guest RAM from the input: descriptor table, avail ring entries, then everything else.
  size_t at = kHeaderBytes;
  at += in.Copy(at, Host(kDesc), 16u * qsize);
  at += in.Copy(at, Host(kAvail + 4), 2u * qsize);
  // The rest goes to both ends of the free part of each region, so that tables and buffers
  // straddling a region's end are within reach of inputs shorter than the RAM.
  const size_t rest = std::min<size_t>(size > at ? size - at : 0, kRegionSize - kFreeRam);
  if (rest > 0) {
    for (uint64_t start : {kFreeRam, kRegion0 + kRegionSize - rest, kRegion1,
                           kRegion1 + kRegionSize - rest}) {
      in.Copy(at, Host(start), rest);
    }
  }
  if (fold) {
    for (uint64_t gpa = kDesc; gpa < kDesc + 16u * qsize; gpa += 16) FoldAddress(gpa);
    for (uint64_t gpa = kFreeRam; gpa + 8 <= kRegionSize; gpa += 16) FoldAddress(gpa);
    for (uint64_t gpa = kRegion1; gpa + 8 <= kRegion1 + kRegionSize; gpa += 16) FoldAddress(gpa);
  }

  Queue queue;
  ember::virtio::QueueState& q = queue.config();
  q.size = qsize;
  q.ready = true;
  PlaceRings(in, &q);
  const uint16_t start = in.U16(2);
  q.next_avail = q.next_used = q.signalled_used = start;
  const uint16_t avail_idx =
      in.U8(4) & 0x80 ? in.U16(5) : static_cast<uint16_t>(start + (in.U8(4) & 0x7f) % (qsize + 3));
  // The ring header is written wherever the (possibly fuzz-placed) avail ring is, if in RAM.
  if (memory.Contains(q.avail_addr, 4)) {
    (void)memory.WriteObj<uint16_t>(q.avail_addr, in.U8(7));
    (void)memory.WriteObj<uint16_t>(q.avail_addr + 2, avail_idx);
  }
  if (memory.Contains(q.avail_addr + 4 + 2u * qsize, 2)) {
    (void)memory.WriteObj<uint16_t>(q.avail_addr + 4 + 2u * qsize, in.U16(8));
  }
  if (!queue.Activate(&memory, features).ok()) return 0;

  const uint64_t copy_offset = in.U16(10);
  const size_t copy_len = in.U32(12) % 8192;
  static std::vector<uint8_t> scratch(8192);
  bool undone = false;
  // Each Pop that returns true takes one of at most `qsize` pending entries; the bound is a
  // second guard against a hang.
  for (int round = 0; round < 4 * 256 + 8; round++) {
    DescriptorChain chain;
    QueueError error;
    uint16_t pending = queue.Pending();
    if (pending > qsize) abort();
    if (!queue.Pop(&chain, &error)) {
      if (error == QueueError::kNone && pending != 0) abort();
      if (error != QueueError::kNone && !ember::virtio::IsRingError(error)) abort();
      if (error == QueueError::kNone && queue.EnableNotification()) continue;
      break;
    }
    if (chain.head >= qsize) abort();
    if (error != QueueError::kNone) {
      if (ember::virtio::IsRingError(error)) abort();
      queue.AddUsed(chain.head, 0);
      (void)queue.NeedsInterrupt();
      continue;
    }
    if (undo && !undone) {
      queue.UndoPop();
      undone = true;
      continue;
    }
    undone = false;
    uint64_t readable = 0, writable = 0;
    for (const auto& s : chain.readable) {
      CheckInsideGuest(s.host, s.len);
      readable += s.len;
    }
    for (const auto& s : chain.writable) {
      CheckInsideGuest(s.host, s.len);
      writable += s.len;
    }
    if (readable != chain.readable_bytes || writable != chain.writable_bytes) abort();
    if (chain.readable.size() + chain.writable.size() > 2u * qsize) abort();

    size_t got = chain.CopyFromReadable(copy_offset, scratch.data(), copy_len);
    if (got > copy_len || (copy_offset + got > chain.readable_bytes && got != 0)) abort();
    got = chain.CopyFromReadable(0, scratch.data(), scratch.size());
    size_t put = chain.CopyToWritable(copy_offset, scratch.data(), copy_len);
    if (put > copy_len) abort();
    put = chain.CopyToWritable(0, scratch.data(), got);
    queue.AddUsed(chain.head, static_cast<uint32_t>(put));
    (void)queue.NeedsInterrupt();
  }
  return 0;
}

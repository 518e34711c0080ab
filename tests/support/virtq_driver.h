// VirtqDriver: the driver's side of one split virtqueue (virtio 1.x section 2.7), for tests and
// fuzz targets. It lays out the descriptor table, available ring and used ring in a GuestMemory,
// writes descriptor chains (direct or through an indirect table), publishes them, and reads back
// what the device put in the used ring. Everything goes through GuestMemory's checked accessors;
// a write the test asked for outside guest RAM aborts (a bug in the test, not the device).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <vector>

#include "devices/virtio/queue.h"
#include "devices/virtio/virtio_spec.h"
#include "vmm/memory/guest_memory.h"

namespace ember::virtio {
// gtest prints a QueueError by name (found by argument-dependent lookup).
inline void PrintTo(QueueError error, std::ostream* os) {
  *os << "QueueError(" << static_cast<int>(error) << ": " << QueueErrorName(error) << ")";
}
}  // namespace ember::virtio

namespace ember::testing {

struct VirtqBuffer {
  uint64_t addr;
  uint32_t len;
  bool writable;  // device-writable (VIRTQ_DESC_F_WRITE)
};

class VirtqDriver {
 public:
  VirtqDriver(const GuestMemory& memory, uint16_t size, uint64_t desc_addr, uint64_t avail_addr,
              uint64_t used_addr)
      : memory_(memory), size_(size), desc_(desc_addr), avail_(avail_addr), used_(used_addr) {
    Clear();
  }

  uint16_t size() const { return size_; }
  uint64_t desc_addr() const { return desc_; }
  uint64_t avail_addr() const { return avail_; }
  uint64_t used_addr() const { return used_; }

  // Zeroes the three areas (sizes of 2.7: 16*n, 6+2*n, 6+8*n) and forgets what was written.
  void Clear() {
    Check(memory_.Fill(desc_, 0, 16ull * size_), "clear descriptor table");
    Check(memory_.Fill(avail_, 0, 6 + 2ull * size_), "clear available ring");
    Check(memory_.Fill(used_, 0, 6 + 8ull * size_), "clear used ring");
    next_desc_ = 0;
    avail_idx_ = 0;
  }

  // What the transport does on QueueNum/QueueDesc/QueueDriver/QueueDevice/QueueReady writes.
  void Configure(virtio::Queue* queue) const {
    virtio::QueueState& q = queue->config();
    q.size = size_;
    q.desc_addr = desc_;
    q.avail_addr = avail_;
    q.used_addr = used_;
    q.ready = true;
  }

  void WriteDesc(uint16_t index, const virtio::Desc& d) {
    Check(memory_.WriteObj(desc_ + 16ull * index, d), "write descriptor");
  }
  virtio::Desc ReadDesc(uint16_t index) const {
    return Value(memory_.ReadObj<virtio::Desc>(desc_ + 16ull * index), "read descriptor");
  }

  // Writes `bufs` as one chain into the next free descriptors (linked with NEXT, wrapping around
  // the table) and publishes its head. Returns the head.
  uint16_t AddChain(const std::vector<VirtqBuffer>& bufs) {
    uint16_t head = WriteChain(bufs);
    Publish(head);
    return head;
  }
  // Writes the chain without publishing it.
  uint16_t WriteChain(const std::vector<VirtqBuffer>& bufs) {
    const uint16_t head = next_desc_;
    for (size_t i = 0; i < bufs.size(); i++) {
      uint16_t index = next_desc_;
      next_desc_ = static_cast<uint16_t>((next_desc_ + 1) % size_);
      bool last = i + 1 == bufs.size();
      WriteDesc(index, {bufs[i].addr, bufs[i].len, Flags(bufs[i].writable, !last),
                        static_cast<uint16_t>(last ? 0 : next_desc_)});
    }
    return head;
  }

  // Writes `bufs` as an indirect table at `table_addr` (entries linked 0 -> 1 -> ...), one
  // descriptor with VIRTQ_DESC_F_INDIRECT pointing at it, and publishes that descriptor.
  uint16_t AddIndirectChain(uint64_t table_addr, const std::vector<VirtqBuffer>& bufs) {
    std::vector<virtio::Desc> table;
    for (size_t i = 0; i < bufs.size(); i++) {
      bool last = i + 1 == bufs.size();
      table.push_back({bufs[i].addr, bufs[i].len, Flags(bufs[i].writable, !last),
                       static_cast<uint16_t>(last ? 0 : i + 1)});
    }
    WriteTable(table_addr, table);
    uint16_t head = next_desc_;
    next_desc_ = static_cast<uint16_t>((next_desc_ + 1) % size_);
    WriteDesc(head, {table_addr, static_cast<uint32_t>(16 * table.size()), virtio::kDescFIndirect,
                     0});
    Publish(head);
    return head;
  }
  void WriteTable(uint64_t table_addr, const std::vector<virtio::Desc>& table) {
    for (size_t i = 0; i < table.size(); i++) {
      Check(memory_.WriteObj(table_addr + 16 * i, table[i]), "write indirect descriptor");
    }
  }

  // Puts `head` in the next available slot and bumps avail.idx.
  void Publish(uint16_t head) {
    SetAvailRing(avail_idx_, head);
    SetAvailIdx(static_cast<uint16_t>(avail_idx_ + 1));
  }
  // Writes ring[slot % size] without touching avail.idx.
  void SetAvailRing(uint16_t slot, uint16_t head) {
    Check(memory_.WriteObj<uint16_t>(avail_ + 4 + 2ull * (slot % size_), head), "write avail ring");
  }
  void SetAvailIdx(uint16_t idx) {
    avail_idx_ = idx;
    Check(memory_.WriteObj<uint16_t>(avail_ + 2, idx), "write avail.idx");
  }
  uint16_t avail_idx() const { return avail_idx_; }
  void SetAvailFlags(uint16_t flags) {
    Check(memory_.WriteObj<uint16_t>(avail_, flags), "write avail.flags");
  }
  // VIRTIO_F_EVENT_IDX: the used index the driver wants an interrupt after.
  void SetUsedEvent(uint16_t idx) {
    Check(memory_.WriteObj<uint16_t>(avail_ + 4 + 2ull * size_, idx), "write used_event");
  }

  uint16_t UsedFlags() const { return Value(memory_.ReadObj<uint16_t>(used_), "used.flags"); }
  uint16_t UsedIdx() const { return Value(memory_.ReadObj<uint16_t>(used_ + 2), "used.idx"); }
  // The element the device published as its n-th (counting from 0, modulo 2^16).
  virtio::UsedElem Used(uint16_t n) const {
    return Value(memory_.ReadObj<virtio::UsedElem>(used_ + 4 + 8ull * (n % size_)), "used ring");
  }
  // VIRTIO_F_EVENT_IDX: the available index the device wants a notification after.
  uint16_t AvailEvent() const {
    return Value(memory_.ReadObj<uint16_t>(used_ + 4 + 8ull * size_), "avail_event");
  }

  static uint16_t Flags(bool writable, bool next) {
    return static_cast<uint16_t>((writable ? virtio::kDescFWrite : 0) |
                                 (next ? virtio::kDescFNext : 0));
  }

 private:
  static void Check(const Status& s, const char* what) {
    if (!s.ok()) {
      fprintf(stderr, "VirtqDriver: %s: %s\n", what, s.error().message.c_str());
      abort();
    }
  }
  template <typename T>
  static T Value(Result<T> r, const char* what) {
    if (!r.ok()) {
      fprintf(stderr, "VirtqDriver: %s: %s\n", what, r.error().message.c_str());
      abort();
    }
    return *r;
  }

  const GuestMemory& memory_;
  uint16_t size_;
  uint64_t desc_;
  uint64_t avail_;
  uint64_t used_;
  uint16_t next_desc_ = 0;
  uint16_t avail_idx_ = 0;
};

}  // namespace ember::testing

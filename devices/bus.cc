#include "devices/bus.h"

#include <algorithm>
#include <cstring>

#include "vmm/base/strings.h"

namespace ember {
namespace {

// The last address of [base, base + len); the caller has checked len > 0 and no wrap.
uint64_t LastAddress(uint64_t base, uint64_t len) { return base + (len - 1); }

}  // namespace

Status Bus::Insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t len) {
  const auto describe = [&] {
    return StrFormat("bus range 0x%llx+0x%llx", static_cast<unsigned long long>(base),
                     static_cast<unsigned long long>(len));
  };
  if (!device) return Error{describe() + ": no device"};
  if (len == 0) return Error{describe() + ": zero length"};
  if (len - 1 > UINT64_MAX - base) return Error{describe() + ": wraps past the address space"};

  auto next = std::upper_bound(ranges_.begin(), ranges_.end(), base,
                               [](uint64_t b, const Range& r) { return b < r.base; });
  if (next != ranges_.end() && next->base <= LastAddress(base, len)) {
    return Error{StrFormat("%s: overlaps the range at 0x%llx", describe().c_str(),
                           static_cast<unsigned long long>(next->base))};
  }
  if (next != ranges_.begin()) {
    const Range& prev = *std::prev(next);
    if (LastAddress(prev.base, prev.len) >= base) {
      return Error{StrFormat("%s: overlaps the range at 0x%llx", describe().c_str(),
                             static_cast<unsigned long long>(prev.base))};
    }
  }
  ranges_.insert(next, Range{base, len, std::move(device)});
  return Ok();
}

const Bus::Range* Bus::Find(uint64_t addr, size_t len) const {
  auto next = std::upper_bound(ranges_.begin(), ranges_.end(), addr,
                               [](uint64_t a, const Range& r) { return a < r.base; });
  if (next == ranges_.begin()) return nullptr;
  const Range& r = *std::prev(next);
  const uint64_t offset = addr - r.base;
  if (offset >= r.len) return nullptr;
  if (len > r.len - offset) return nullptr;  // straddles the end of the range
  return &r;
}

bool Bus::Read(uint64_t addr, uint8_t* data, size_t len) {
  const Range* r = Find(addr, len);
  if (!r) {
    if (len) memset(data, 0xff, len);
    unmapped_reads_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  r->device->Read(addr - r->base, data, len);
  return true;
}

bool Bus::Write(uint64_t addr, const uint8_t* data, size_t len) {
  const Range* r = Find(addr, len);
  if (!r) {
    unmapped_writes_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  r->device->Write(addr - r->base, data, len);
  return true;
}

}  // namespace ember

#include "vmm/memory/guest_memory.h"

#include <sys/mman.h>

namespace ember {
namespace {
constexpr uint64_t kGuardBytes = 4096;
constexpr uint64_t kHugePage2M = 2 << 20;
}  // namespace

Result<GuestMemory> GuestMemory::Create(const std::vector<GuestRange>& ranges,
                                        const MemoryOptions& options) {
  GuestMemory mem;
  uint64_t prev_end = 0;
  for (const GuestRange& r : ranges) {
    if (r.size == 0 || r.gpa + r.size < r.gpa || r.gpa < prev_end)
      return Error{StrFormat("guest memory range 0x%llx+0x%llx is empty, wraps or overlaps",
                             static_cast<unsigned long long>(r.gpa),
                             static_cast<unsigned long long>(r.size))};
    prev_end = r.end();
    // Each region sits inside a PROT_NONE reservation, so an access that runs off either end
    // of it (a bug in a device, say) faults instead of landing in the next mapping, which
    // would otherwise often be the neighbouring region or the heap.
    const uint64_t align = options.huge_pages_2m ? kHugePage2M : kGuardBytes;
    if (r.size > (uint64_t{1} << 52))
      return Error{StrFormat("guest memory range of 0x%llx bytes is too large",
                             static_cast<unsigned long long>(r.size))};
    const uint64_t mapped_len = (r.size + align - 1) / align * align;
    const uint64_t reserve_len = mapped_len + 2 * kGuardBytes + align;
    void* reserve = mmap(nullptr, reserve_len, PROT_NONE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (reserve == MAP_FAILED)
      return Error::Errno(StrFormat("reserve address space for guest memory (%llu MiB)",
                                    static_cast<unsigned long long>(r.size >> 20)));
    Mapping reservation(reserve, reserve_len);
    const uint64_t start =
        (reinterpret_cast<uint64_t>(reserve) + kGuardBytes + align - 1) / align * align;
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED;
    if (options.huge_pages_2m) flags |= MAP_HUGETLB | (21 << MAP_HUGE_SHIFT);
    void* p = mmap(reinterpret_cast<void*>(start), mapped_len, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (p == MAP_FAILED)
      return Error::Errno(StrFormat("mmap guest memory (%llu MiB at 0x%llx%s)",
                                    static_cast<unsigned long long>(r.size >> 20),
                                    static_cast<unsigned long long>(r.gpa),
                                    options.huge_pages_2m ? ", 2M huge pages" : ""));
    mem.mappings_.push_back(std::move(reservation));
    mem.regions_.push_back({r, static_cast<uint8_t*>(p)});
  }
  return mem;
}

uint64_t GuestMemory::total_bytes() const {
  uint64_t total = 0;
  for (const auto& r : regions_) total += r.range.size;
  return total;
}

Result<uint8_t*> GuestMemory::HostAddress(uint64_t gpa, uint64_t len) const {
  for (const auto& r : regions_) {
    // Written so that no addition can overflow: gpa and len both come from the guest.
    if (gpa >= r.range.gpa && gpa - r.range.gpa < r.range.size &&
        len <= r.range.size - (gpa - r.range.gpa))
      return r.host + (gpa - r.range.gpa);
  }
  return Error{StrFormat("guest range 0x%llx+0x%llx is outside guest RAM",
                         static_cast<unsigned long long>(gpa),
                         static_cast<unsigned long long>(len))};
}

Status GuestMemory::Write(uint64_t gpa, const void* src, uint64_t len) const {
  uint8_t* dst = TRY(HostAddress(gpa, len));
  if (len) memcpy(dst, src, len);
  return Ok();
}

Status GuestMemory::Read(uint64_t gpa, void* dst, uint64_t len) const {
  uint8_t* src = TRY(HostAddress(gpa, len));
  if (len) memcpy(dst, src, len);
  return Ok();
}

Status GuestMemory::Fill(uint64_t gpa, uint8_t byte, uint64_t len) const {
  uint8_t* dst = TRY(HostAddress(gpa, len));
  if (len) memset(dst, byte, len);
  return Ok();
}

}  // namespace ember

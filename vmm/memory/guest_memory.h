// GuestMemory: the guest's RAM as a set of host mappings. Every access from the VMM or a device
// goes through the bounds-checked accessors below: a guest-supplied address or length that is not
// wholly inside one region is an Error, never a host access outside a mapping.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "vmm/base/result.h"
#include "vmm/base/unique_fd.h"

namespace ember {

struct GuestRange {
  uint64_t gpa;
  uint64_t size;
  uint64_t end() const { return gpa + size; }
};

struct GuestRegion {
  GuestRange range;
  uint8_t* host;  // start of the host mapping for range.gpa
};

struct MemoryOptions {
  bool huge_pages_2m = false;  // hugetlbfs-backed 2 MiB pages (MAP_HUGETLB)
};

class GuestMemory {
 public:
  // Maps anonymous MAP_PRIVATE|MAP_NORESERVE memory for each range (sorted, non-overlapping).
  static Result<GuestMemory> Create(const std::vector<GuestRange>& ranges,
                                    const MemoryOptions& options = {});

  const std::vector<GuestRegion>& regions() const { return regions_; }
  uint64_t total_bytes() const;

  // Host pointer for [gpa, gpa+len) if it lies wholly inside one region.
  Result<uint8_t*> HostAddress(uint64_t gpa, uint64_t len) const;
  bool Contains(uint64_t gpa, uint64_t len) const { return HostAddress(gpa, len).ok(); }

  Status Write(uint64_t gpa, const void* src, uint64_t len) const;
  Status Read(uint64_t gpa, void* dst, uint64_t len) const;
  Status Fill(uint64_t gpa, uint8_t byte, uint64_t len) const;

  template <typename T>
  Status WriteObj(uint64_t gpa, const T& obj) const {
    static_assert(std::is_trivially_copyable_v<T>);
    return Write(gpa, &obj, sizeof(T));
  }
  template <typename T>
  Result<T> ReadObj(uint64_t gpa) const {
    static_assert(std::is_trivially_copyable_v<T>);
    T obj;
    TRY_STATUS(Read(gpa, &obj, sizeof(T)));
    return obj;
  }

 private:
  std::vector<GuestRegion> regions_;
  std::vector<Mapping> mappings_;
};

}  // namespace ember

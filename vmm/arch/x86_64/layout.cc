#include "vmm/arch/x86_64/layout.h"

#include <algorithm>

namespace ember {

std::vector<GuestRange> RamRanges(uint64_t mem_bytes) {
  std::vector<GuestRange> ranges;
  if (mem_bytes == 0) return ranges;
  const uint64_t low = std::min(mem_bytes, kMmioGapStart);
  ranges.push_back({0, low});
  if (mem_bytes > low) ranges.push_back({kMmioGapEnd, mem_bytes - low});
  return ranges;
}

uint64_t LowMemEnd(const std::vector<GuestRange>& ram) {
  for (const GuestRange& r : ram) {
    if (r.gpa == 0) return std::min(r.end(), kMmioGapStart);
  }
  return 0;
}

std::vector<GuestRange> RamRangesOf(const GuestMemory& memory) {
  std::vector<GuestRange> ranges;
  for (const GuestRegion& region : memory.regions()) ranges.push_back(region.range);
  std::sort(ranges.begin(), ranges.end(),
            [](const GuestRange& a, const GuestRange& b) { return a.gpa < b.gpa; });
  return ranges;
}

uint64_t LowMemEnd(const GuestMemory& memory) { return LowMemEnd(RamRangesOf(memory)); }

}  // namespace ember

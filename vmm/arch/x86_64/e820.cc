#include "vmm/arch/x86_64/e820.h"

#include <algorithm>

#include "vmm/arch/x86_64/layout.h"

namespace ember {

std::vector<E820Entry> BuildE820Map(const std::vector<GuestRange>& ram) {
  std::vector<E820Entry> map;
  map.push_back({0, kEbdaStart, kE820Ram});
  map.push_back({kEbdaStart, kSystemMemEnd - kEbdaStart, kE820Reserved});
  for (const GuestRange& r : ram) {
    const uint64_t start = std::max(r.gpa, kHimemStart);
    if (start < r.end()) map.push_back({start, r.end() - start, kE820Ram});
  }
  map.push_back({kPcieMmconfigStart, kPcieMmconfigSize, kE820Reserved});
  std::stable_sort(map.begin(), map.end(),
                   [](const E820Entry& a, const E820Entry& b) { return a.addr < b.addr; });
  return map;
}

}  // namespace ember

#include "vmm/arch/x86_64/page_tables.h"

#include <array>

#include "vmm/arch/x86_64/layout.h"

namespace ember {

Status WriteIdentityPageTables(const GuestMemory& memory) {
  using Table = std::array<uint64_t, kPageTableEntries>;
  Table pml4{}, pdpt{}, pd{};
  pml4[0] = kPdptAddr | kPtePresent | kPteWritable;
  pdpt[0] = kPdAddr | kPtePresent | kPteWritable;
  for (uint64_t i = 0; i < kPageTableEntries; i++)
    pd[i] = (i << 21) | kPtePresent | kPteWritable | kPtePageSize;
  if (Status s = memory.WriteObj(kPml4Addr, pml4); !s.ok()) return s.error().Wrap("PML4");
  if (Status s = memory.WriteObj(kPdptAddr, pdpt); !s.ok()) return s.error().Wrap("PDPT");
  if (Status s = memory.WriteObj(kPdAddr, pd); !s.ok()) return s.error().Wrap("page directory");
  return Ok();
}

}  // namespace ember

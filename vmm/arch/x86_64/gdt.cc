#include "vmm/arch/x86_64/gdt.h"

#include "vmm/arch/x86_64/layout.h"

namespace ember {

uint64_t GdtEntry(uint16_t flags, uint32_t base, uint32_t limit) {
  return ((uint64_t{base} & 0xff00'0000u) << 32) | ((uint64_t{flags} & 0xf0ffu) << 40) |
         ((uint64_t{limit} & 0x000f'0000u) << 32) | ((uint64_t{base} & 0x00ff'ffffu) << 16) |
         (uint64_t{limit} & 0xffffu);
}

BootGdt MakeBootGdt(BootProtocol protocol) {
  if (protocol == BootProtocol::kPvh) {
    return {0, GdtEntry(0xc09b, 0, 0xfffff), GdtEntry(0xc093, 0, 0xfffff),
            GdtEntry(0x008b, 0, 0x67)};
  }
  return {0, GdtEntry(0xa09b, 0, 0xfffff), GdtEntry(0xc093, 0, 0xfffff),
          GdtEntry(0x808b, 0, 0xfffff)};
}

kvm_segment SegmentFromGdt(const BootGdt& gdt, size_t index) {
  const uint64_t e = gdt[index];
  kvm_segment s{};
  s.base = ((e >> 16) & 0xff'ffff) | (((e >> 56) & 0xff) << 24);
  uint32_t limit = static_cast<uint32_t>((e & 0xffff) | (((e >> 48) & 0xf) << 16));
  s.g = (e >> 55) & 1;
  // With G set the limit counts 4 KiB pages; KVM wants it in bytes.
  s.limit = s.g ? (limit << 12) | 0xfff : limit;
  s.selector = static_cast<uint16_t>(index * 8);
  s.type = (e >> 40) & 0xf;
  s.s = (e >> 44) & 1;
  s.dpl = (e >> 45) & 3;
  s.present = (e >> 47) & 1;
  s.avl = (e >> 52) & 1;
  s.l = (e >> 53) & 1;
  s.db = (e >> 54) & 1;
  s.unusable = s.present ? 0 : 1;
  return s;
}

Status WriteGdtAndIdt(const GuestMemory& memory, const BootGdt& gdt) {
  if (Status s = memory.WriteObj(kBootGdtAddr, gdt); !s.ok()) return s.error().Wrap("boot GDT");
  const uint64_t zero_idt = 0;
  if (Status s = memory.WriteObj(kBootIdtAddr, zero_idt); !s.ok())
    return s.error().Wrap("boot IDT");
  return Ok();
}

}  // namespace ember

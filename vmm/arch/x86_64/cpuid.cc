#include "vmm/arch/x86_64/cpuid.h"

#include <algorithm>
#include <cstring>

namespace ember {
namespace {

// Leaf numbers and bits (Intel SDM vol. 2A "CPUID"; AMD APM vol. 3 appendix E).
constexpr uint32_t kLeafVendor = 0x0;
constexpr uint32_t kLeafFeatures = 0x1;
constexpr uint32_t kLeafCacheParams = 0x4;
constexpr uint32_t kLeafThermalPower = 0x6;
constexpr uint32_t kLeafExtFeatures = 0x7;
constexpr uint32_t kLeafPerfMon = 0xa;
constexpr uint32_t kLeafTopology = 0xb;
constexpr uint32_t kLeafTopologyV2 = 0x1f;
constexpr uint32_t kLeafAmdExtFeatures = 0x8000'0001;
constexpr uint32_t kLeafAmdSizeIds = 0x8000'0008;
constexpr uint32_t kLeafAmdCacheTopology = 0x8000'001d;
constexpr uint32_t kLeafAmdExtApicId = 0x8000'001e;

constexpr uint32_t kLeaf1EcxPdcm = 1u << 15;
constexpr uint32_t kLeaf1EcxTscDeadline = 1u << 24;
constexpr uint32_t kLeaf1EcxHypervisor = 1u << 31;
constexpr uint32_t kLeaf1EdxHtt = 1u << 28;
constexpr uint32_t kClflushLineSize8Bytes = 8;  // 8 * 8 = 64-byte lines
constexpr uint32_t kLeaf6EaxTurbo = 1u << 1;
constexpr uint32_t kLeaf6EcxEpb = 1u << 3;
constexpr uint32_t kLeaf7EbxFdpExcptnOnly = 1u << 6;
constexpr uint32_t kLeaf7EbxFpuCsDsDeprecated = 1u << 13;
constexpr uint32_t kLeaf7EcxWaitpkg = 1u << 5;
constexpr uint32_t kLeaf7EdxArchCapabilities = 1u << 29;
constexpr uint32_t kAmdEcxTopoExt = 1u << 22;

constexpr uint32_t kTopologyLevelSmt = 1;
constexpr uint32_t kTopologyLevelCore = 2;

kvm_cpuid_entry2* Find(std::vector<kvm_cpuid_entry2>& cpuid, uint32_t function,
                       uint32_t index = 0) {
  for (auto& e : cpuid)
    if (e.function == function && e.index == index) return &e;
  return nullptr;
}

// Number of bits needed to hold IDs 0..count-1.
uint32_t IdBits(uint32_t count) {
  uint32_t bits = 0;
  while ((1u << bits) < count) bits++;
  return bits;
}

uint32_t SetField(uint32_t reg, unsigned shift, unsigned width, uint32_t value) {
  const uint32_t mask = ((width == 32) ? ~0u : ((1u << width) - 1)) << shift;
  return (reg & ~mask) | ((value << shift) & mask);
}

struct Topology {
  uint32_t index;
  uint32_t count;
  uint32_t threads_per_core;
  uint32_t smt_bits;   // shift from the x2APIC ID to the core ID
  uint32_t core_bits;  // shift from the x2APIC ID to the package ID
};

Topology MakeTopology(const CpuidOptions& o) {
  Topology t;
  t.index = o.vcpu_index;
  t.count = std::max<uint32_t>(o.vcpu_count, 1);
  t.threads_per_core = o.smt ? 2 : 1;
  t.smt_bits = o.smt ? 1 : 0;
  t.core_bits = std::max(IdBits(t.count), t.smt_bits);
  return t;
}

void NormalizeFeatures(std::vector<kvm_cpuid_entry2>& cpuid, const Topology& t) {
  kvm_cpuid_entry2* e = Find(cpuid, kLeafFeatures);
  if (!e) return;
  e->ebx = SetField(e->ebx, 24, 8, t.index);
  e->ebx = SetField(e->ebx, 16, 8, 1u << t.core_bits);
  e->ebx = SetField(e->ebx, 8, 8, kClflushLineSize8Bytes);
  e->ecx &= ~kLeaf1EcxPdcm;  // no perf capabilities MSR: there is no PMU
  e->ecx |= kLeaf1EcxTscDeadline | kLeaf1EcxHypervisor;
  if (t.count > 1)
    e->edx |= kLeaf1EdxHtt;
  else
    e->edx &= ~kLeaf1EdxHtt;
}

// Leaf 0xB / 0x1F (Intel SDM vol. 3, 10.12.8.1 "x2APIC topology"): SMT level, core level, then
// one invalid level that ends the enumeration.
void FillTopologyLeaf(std::vector<kvm_cpuid_entry2>& cpuid, uint32_t leaf, const Topology& t) {
  cpuid.erase(std::remove_if(cpuid.begin(), cpuid.end(),
                             [leaf](const kvm_cpuid_entry2& e) { return e.function == leaf; }),
              cpuid.end());
  auto make = [&](uint32_t sub, uint32_t shift, uint32_t logical, uint32_t type) {
    kvm_cpuid_entry2 e{};
    e.function = leaf;
    e.index = sub;
    e.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
    e.eax = shift;
    e.ebx = logical;
    e.ecx = (type << 8) | sub;
    e.edx = t.index;
    return e;
  };
  cpuid.push_back(make(0, t.smt_bits, t.threads_per_core, kTopologyLevelSmt));
  cpuid.push_back(make(1, t.core_bits, t.count, kTopologyLevelCore));
  cpuid.push_back(make(2, 0, 0, 0));
}

void NormalizeTopology(std::vector<kvm_cpuid_entry2>& cpuid, const Topology& t) {
  const kvm_cpuid_entry2* vendor = Find(cpuid, kLeafVendor);
  const bool has_b = std::any_of(cpuid.begin(), cpuid.end(), [](const kvm_cpuid_entry2& e) {
    return e.function == kLeafTopology;
  });
  if (has_b || (vendor && vendor->eax >= kLeafTopology)) FillTopologyLeaf(cpuid, kLeafTopology, t);
  const bool has_1f = std::any_of(cpuid.begin(), cpuid.end(), [](const kvm_cpuid_entry2& e) {
    return e.function == kLeafTopologyV2;
  });
  if (has_1f) FillTopologyLeaf(cpuid, kLeafTopologyV2, t);
}

void NormalizePowerAndExtFeatures(std::vector<kvm_cpuid_entry2>& cpuid, CpuVendor vendor) {
  if (kvm_cpuid_entry2* e = Find(cpuid, kLeafThermalPower)) {
    // The guest cannot control host frequency: no turbo, no energy-performance bias.
    e->eax &= ~kLeaf6EaxTurbo;
    e->ecx &= ~kLeaf6EcxEpb;
  }
  if (kvm_cpuid_entry2* e = Find(cpuid, kLeafExtFeatures, 0)) {
    e->ecx &= ~kLeaf7EcxWaitpkg;  // UMWAIT/TPAUSE would let the guest idle in ways KVM can't see
    if (vendor == CpuVendor::kIntel) e->ebx |= kLeaf7EbxFdpExcptnOnly | kLeaf7EbxFpuCsDsDeprecated;
    if (vendor == CpuVendor::kAmd) e->edx &= ~kLeaf7EdxArchCapabilities;
  }
}

void NormalizeIntel(std::vector<kvm_cpuid_entry2>& cpuid, const Topology& t) {
  const uint32_t cores = (t.count + t.threads_per_core - 1) / t.threads_per_core;
  for (auto& e : cpuid) {
    if (e.function != kLeafCacheParams || (e.eax & 0x1f) == 0) continue;
    const uint32_t level = (e.eax >> 5) & 0x7;
    const uint32_t sharing = level <= 2 ? t.threads_per_core : t.count;
    e.eax = SetField(e.eax, 26, 6, cores - 1);
    e.eax = SetField(e.eax, 14, 12, sharing - 1);
  }
  if (kvm_cpuid_entry2* e = Find(cpuid, kLeafPerfMon)) e->eax = e->ebx = e->ecx = e->edx = 0;
}

void NormalizeAmd(std::vector<kvm_cpuid_entry2>& cpuid, const Topology& t) {
  const bool has_ext_apic = Find(cpuid, kLeafAmdExtApicId) != nullptr;
  if (kvm_cpuid_entry2* e = Find(cpuid, kLeafAmdExtFeatures); e && has_ext_apic)
    e->ecx |= kAmdEcxTopoExt;
  if (kvm_cpuid_entry2* e = Find(cpuid, kLeafAmdSizeIds)) {
    e->ecx = SetField(e->ecx, 0, 8, t.count - 1);   // NC: threads in the package - 1
    e->ecx = SetField(e->ecx, 12, 4, t.core_bits);  // ApicIdSize
  }
  for (auto& e : cpuid) {
    if (e.function != kLeafAmdCacheTopology || (e.eax & 0x1f) == 0) continue;
    const uint32_t level = (e.eax >> 5) & 0x7;
    const uint32_t sharing = level <= 2 ? t.threads_per_core : t.count;
    e.eax = SetField(e.eax, 14, 12, sharing - 1);
  }
  if (kvm_cpuid_entry2* e = Find(cpuid, kLeafAmdExtApicId)) {
    e->eax = t.index;  // extended APIC ID
    e->ebx = ((t.threads_per_core - 1) << 8) | ((t.index / t.threads_per_core) & 0xff);
    e->ecx = 0;  // node 0, one node per package
    e->edx = 0;
  }
}

}  // namespace

const kvm_cpuid_entry2* FindCpuid(const std::vector<kvm_cpuid_entry2>& cpuid, uint32_t function,
                                  uint32_t index) {
  for (const auto& e : cpuid)
    if (e.function == function && e.index == index) return &e;
  return nullptr;
}

CpuVendor DetectCpuVendor(const std::vector<kvm_cpuid_entry2>& cpuid) {
  const kvm_cpuid_entry2* e = FindCpuid(cpuid, kLeafVendor);
  if (!e) return CpuVendor::kOther;
  char id[13] = {};
  memcpy(id, &e->ebx, 4);
  memcpy(id + 4, &e->edx, 4);
  memcpy(id + 8, &e->ecx, 4);
  if (strcmp(id, "GenuineIntel") == 0) return CpuVendor::kIntel;
  if (strcmp(id, "AuthenticAMD") == 0 || strcmp(id, "HygonGenuine") == 0) return CpuVendor::kAmd;
  return CpuVendor::kOther;
}

std::vector<kvm_cpuid_entry2> NormalizeCpuid(const std::vector<kvm_cpuid_entry2>& host,
                                             const CpuidOptions& options) {
  std::vector<kvm_cpuid_entry2> cpuid = host;
  const CpuVendor vendor = DetectCpuVendor(cpuid);
  const Topology t = MakeTopology(options);
  NormalizeFeatures(cpuid, t);
  NormalizeTopology(cpuid, t);
  NormalizePowerAndExtFeatures(cpuid, vendor);
  if (vendor == CpuVendor::kIntel) NormalizeIntel(cpuid, t);
  if (vendor == CpuVendor::kAmd) NormalizeAmd(cpuid, t);
  return cpuid;
}

}  // namespace ember

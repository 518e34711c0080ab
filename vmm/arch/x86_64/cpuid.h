// CPUID normalisation: what each vCPU is told about itself (facts 2.4, Firecracker
// docs/cpu_templates/cpuid-normalization.md). A pure function of the host's
// KVM_GET_SUPPORTED_CPUID table and the vCPU's place in the topology, so it is tested offline.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

namespace ember {

enum class CpuVendor { kIntel, kAmd, kOther };

// From leaf 0's EBX/EDX/ECX ("GenuineIntel", "AuthenticAMD"; Hygon counts as AMD).
CpuVendor DetectCpuVendor(const std::vector<kvm_cpuid_entry2>& cpuid);

struct CpuidOptions {
  uint32_t vcpu_index = 0;  // becomes the initial (x2)APIC ID
  uint32_t vcpu_count = 1;
  bool smt = false;  // two threads per core
};

// Returns the table for one vCPU. Common: leaf 1 (APIC ID, max logical IDs, CLFLUSH 64 bytes,
// PDCM off, TSC_DEADLINE and HYPERVISOR on, HTT iff vcpu_count > 1), leaf 0xB (and 0x1F when the
// host has it) topology, leaf 6 turbo/EPB off, leaf 7 WAITPKG off. Intel: leaf 4 sharing counts,
// leaf 7 FDP_EXCPTN_ONLY and FPU CS/DS deprecation on, leaf 0xA zeroed (no PMU). AMD: leaf 7
// ARCH_CAPABILITIES off, TOPOEXT, 0x80000008 NC/ApicIdSize, 0x8000001D sharing, 0x8000001E IDs.
// The KVM leaves (0x40000000...) and everything else pass through unchanged.
std::vector<kvm_cpuid_entry2> NormalizeCpuid(const std::vector<kvm_cpuid_entry2>& host,
                                             const CpuidOptions& options);

// The entry for (function, index), or nullptr.
const kvm_cpuid_entry2* FindCpuid(const std::vector<kvm_cpuid_entry2>& cpuid, uint32_t function,
                                  uint32_t index = 0);

}  // namespace ember

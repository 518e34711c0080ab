// Seccomp filters as plain structs: Firecracker's JSON filter format (firecracker-facts §6,
// docs/seccompiler.md), parsed at the edge (api/seccomp_json.h) and compiled to BPF by
// vmm/seccomp. One filter per thread role; a filter is a default action, the action taken when a
// rule matches, and the rules. Rules are OR-ed; the conditions of one rule are AND-ed.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace ember {

// The thread roles Firecracker filters (its "thread categories"), in its order.
enum class SeccompRole { kVmm, kApi, kVcpu };
inline constexpr std::array<SeccompRole, 3> kSeccompRoles = {SeccompRole::kVmm, SeccompRole::kApi,
                                                             SeccompRole::kVcpu};
inline const char* SeccompRoleName(SeccompRole role) {
  switch (role) {
    case SeccompRole::kVmm: return "vmm";
    case SeccompRole::kApi: return "api";
    case SeccompRole::kVcpu: return "vcpu";
  }
  return "?";
}

// Firecracker's SeccompAction (src/seccompiler/src/types.rs).
struct SeccompAction {
  enum class Kind { kAllow, kErrno, kKillThread, kKillProcess, kLog, kTrace, kTrap };
  Kind kind = Kind::kTrap;
  uint16_t value = 0;  // the errno for kErrno, the tracer's data for kTrace

  bool operator==(const SeccompAction&) const = default;
};

// "dword" compares the low 32 bits of the argument, "qword" all 64.
enum class SeccompArgWidth { kDword, kQword };
enum class SeccompOp { kEq, kNe, kLt, kLe, kGt, kGe, kMaskedEq };

struct SeccompCondition {
  uint8_t index = 0;  // the syscall argument, 0..5
  SeccompArgWidth width = SeccompArgWidth::kDword;
  SeccompOp op = SeccompOp::kEq;
  uint64_t mask = 0;  // kMaskedEq only: (arg & mask) == value
  uint64_t value = 0;

  bool operator==(const SeccompCondition&) const = default;
};

struct SeccompRule {
  std::string syscall;  // the name, resolved for x86_64 when compiled
  std::vector<SeccompCondition> args;  // empty: any arguments

  bool operator==(const SeccompRule&) const = default;
};

struct SeccompFilterConfig {
  SeccompAction default_action;
  SeccompAction filter_action;
  std::vector<SeccompRule> rules;

  bool operator==(const SeccompFilterConfig&) const = default;
};

// One filter per role.
struct SeccompProfiles {
  SeccompFilterConfig vmm;
  SeccompFilterConfig api;
  SeccompFilterConfig vcpu;

  const SeccompFilterConfig& operator[](SeccompRole role) const {
    return role == SeccompRole::kVmm ? vmm : role == SeccompRole::kApi ? api : vcpu;
  }
  SeccompFilterConfig& operator[](SeccompRole role) {
    return role == SeccompRole::kVmm ? vmm : role == SeccompRole::kApi ? api : vcpu;
  }
};

}  // namespace ember

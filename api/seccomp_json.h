// JSON -> SeccompProfiles: Firecracker's seccomp filter format (firecracker-facts §6,
// docs/seccompiler.md), the format of seccomp-profiles/*.json and of --seccomp-filter FILE:
//
//   {"vmm": {"default_action": "trap", "filter_action": "allow",
//            "filter": [{"syscall": "ioctl", "comment": "KVM_RUN",
//                        "args": [{"index": 1, "type": "dword", "op": "eq", "val": 44672}]}]},
//    "api": {...}, "vcpu": {...}}
//
// Actions: "allow", "trap", "log", "kill_thread", "kill_process", {"errno": N}, {"trace": N}.
// Operators: "eq", "ne", "lt", "le", "gt", "ge", {"masked_eq": MASK} ((arg & MASK) == val).
// Firecracker's serde ignores keys it does not know; here only "comment" (a string, on a filter,
// a rule or a condition) may be added, any other unknown key is an error naming its path.
//
// Firecracker's --seccomp-filter takes BPF compiled by its seccompiler-bin; ember's takes this
// JSON and compiles it at startup (the same three roles, all required).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/base/result.h"
#include "vmm/config/seccomp_config.h"

namespace ember {

// A document's filters by role. Every key must be "vmm", "api" or "vcpu"; a document may hold
// any of them (each built-in profile file holds one).
Result<std::map<SeccompRole, SeccompFilterConfig>> ParseSeccompJson(std::string_view json);

// A whole profile set: one document holding all three roles.
Result<SeccompProfiles> ParseSeccompProfiles(std::string_view json);

// Reads and parses one file (whatever roles it holds); errors start with the path.
Result<std::map<SeccompRole, SeccompFilterConfig>> LoadSeccompJsonFile(const std::string& path);

// --seccomp-filter FILE: all three roles in one file.
Result<SeccompProfiles> LoadSeccompProfilesFile(const std::string& path);

// Several files, each holding some roles, merged: a role defined twice is an error, a missing one
// too (seccomp-profiles/{vmm,api,vcpu}.json, compiled at build time by ember-seccompiler).
Result<SeccompProfiles> LoadSeccompProfileFiles(const std::vector<std::string>& paths);

// Adds the rules of `path`'s filters to the same roles of `profiles`. A filter in the file must
// have the actions of the one it extends (seccomp-profiles/sanitizers.json: what the sanitizer
// runtimes need, added in EMBER_SANITIZE builds only).
Status AppendSeccompProfileFile(const std::string& path, SeccompProfiles* profiles);

}  // namespace ember

// The built-in seccomp filters: seccomp-profiles/{vmm,api,vcpu}.json compiled to BPF at build
// time by ember-seccompiler (seccomp-profiles/CMakeLists.txt), as Firecracker's build.rs compiles
// its JSON with seccompiler. The binary carries the programs: a jailed ember cannot read the
// source tree, and a start pays neither the JSON parse nor libseccomp (~0.5 ms measured).
#pragma once

#include "vmm/seccomp/seccomp.h"

namespace ember {

SeccompFilters BuiltInSeccompFilters();

}  // namespace ember

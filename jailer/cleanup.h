// ember-jailer --cleanup: removes a finished jail, which Firecracker leaves to its user
// (docs/jailer.md: "It's up to the user to handle cleanup"): the jail's cgroup in every
// hierarchy (v1 and v2) and <base>/<exec-name>/<id> with everything in it, after detaching
// whatever the user mounted there. A live jail is refused. The shared levels (<base>/<exec-name>,
// the parent cgroup) stay: another jail may be starting in them.
#pragma once

#include "jailer/options.h"
#include "vmm/base/result.h"

namespace ember::jailer {

Status CleanUpJail(const JailerOptions& options);

// Removes `dir` and everything below it without following symlinks or entering another
// filesystem (exposed for the unit tests).
Status RemoveTree(const std::string& dir);

}  // namespace ember::jailer

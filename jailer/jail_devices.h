// What ember finds inside the jail (Firecracker's env.rs run()): /, /dev, /dev/net and /run
// owned by uid:gid with mode 0700 (so ember can make its API socket under /run), and the
// character devices it opens, mode 0600 and owned by uid:gid: /dev/kvm (10,232), /dev/net/tun
// (10,200), /dev/urandom (1,9; best effort, as Firecracker: only MMDS v2 tokens need it) and
// /dev/userfaultfd (10,<minor from /proc/misc>) when the host has it. Runs inside the jail.
#pragma once

#include "jailer/plan.h"
#include "jailer/undo.h"
#include "vmm/base/result.h"

namespace ember::jailer {

Status PopulateJail(const JailPlan& plan, UndoLog* undo);

}  // namespace ember::jailer

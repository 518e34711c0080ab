// The last step before exec: ember keeps nothing of root. No new privileges ever (set-id bits
// and file capabilities are ignored from here on), the ambient and bounding sets emptied, no
// supplementary groups, gid then uid set in all three slots (real, effective, saved), and every
// remaining capability set (effective, permitted, inheritable) cleared. Then checked: what the
// kernel reports must be exactly that, or ember does not start. Firecracker's jailer does only
// setgid/setuid at exec (firecracker-facts §5); this is the stricter contract the issue asks for.
#pragma once

#include "jailer/plan.h"
#include "vmm/base/result.h"

namespace ember::jailer {

Status DropPrivileges(const JailPlan& plan);

}  // namespace ember::jailer

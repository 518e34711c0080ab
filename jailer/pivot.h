// Into the jail: a new mount namespace whose root is <root>, with the host's tree detached
// (Firecracker's chroot.rs): unshare(CLONE_NEWNS); every mount MS_SLAVE, so nothing done here
// propagates back to the host while the host's later mounts under the jail still reach it; the
// jail's root bound onto itself (pivot_root needs a mount point); pivot_root(".", ".") and a
// lazy unmount of the old root stacked on top (pivot_root(2)'s idiom: no old_root directory is
// ever made inside the jail).
#pragma once

#include "jailer/plan.h"
#include "jailer/undo.h"
#include "vmm/base/result.h"

namespace ember::jailer {

// Keeps the host's mount namespace in `undo`, so a later failure can return there to clean up.
Status PivotIntoJail(const JailPlan& plan, UndoLog* undo);

}  // namespace ember::jailer

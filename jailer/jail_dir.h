// The jail's directory <base>/<exec-name>/<id>/root (the layout the go-sdk and Kata hard-code)
// and the copy of the exec file in it. An existing directory is reused, as Firecracker's jailer
// does (Kata prepares it before starting the jailer); a live or left-over jail is not.
#pragma once

#include "jailer/plan.h"
#include "jailer/undo.h"
#include "vmm/base/result.h"
#include "vmm/base/unique_fd.h"

namespace ember::jailer {

// An exclusive lock on the base directory, held while a run creates and claims its jail, so a
// run that loses a race for an id never made (and so never removes) the winner's directories.
Status LockBaseDirectory(const JailPlan& plan, UniqueFd* lock);

// Creates the missing levels of <base>/<exec-name>/<id>/root.
Status CreateJailDirectory(const JailPlan& plan, UndoLog* undo);

// Takes an exclusive lock on <id> (held until exec, close-on-exec) and checks again, under it,
// that no other run holds the id: two jailers racing on one id cannot both pass.
Status ClaimJail(const JailPlan& plan, UniqueFd* lock);

// Copies (never hard-links) the exec file to <root>/<exec-name>, owned by uid:gid: a copy keeps
// tenants from sharing the binary's pages, as Firecracker's copy_exec_to_chroot argues, and its
// ownership can change without touching the original.
Status CopyExecFile(const JailPlan& plan, UndoLog* undo);

}  // namespace ember::jailer

// --daemonize (Firecracker's env.rs): fork, setsid() in the child so it leaves the caller's
// session and terminal, fork again so the daemon is not a session leader and can never regain a
// controlling terminal, and stdin, stdout and stderr onto /dev/null. /dev/null is opened before
// the pivot: the jail has none.
#pragma once

#include "jailer/lineage.h"
#include "jailer/plan.h"
#include "jailer/undo.h"
#include "vmm/base/result.h"
#include "vmm/base/unique_fd.h"

namespace ember::jailer {

Status OpenDevNullToDaemonize(const JailPlan& plan, UniqueFd* dev_null);

// Returns in the daemon; the first process waits there for ember's exec and exits.
Status Daemonize(const JailPlan& plan, UniqueFd dev_null, Lineage* lineage, UndoLog* undo);

}  // namespace ember::jailer

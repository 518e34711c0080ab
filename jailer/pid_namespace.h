// --new-pid-ns and the pid file. With --new-pid-ns, ember runs as pid 1 of a new PID namespace
// (unshare(CLONE_NEWPID), then fork: the child is the namespace's init), and its parent writes
// the child's pid, as the host sees it, to <root>/<exec-name>.pid before letting it go on.
// Without, the process about to become ember writes its own pid. Clients (the go-sdk, Kata)
// read this file to find ember.
#pragma once

#include "jailer/lineage.h"
#include "jailer/plan.h"
#include "jailer/undo.h"
#include "vmm/base/result.h"

namespace ember::jailer {

// Returns in the new namespace's pid 1; the parent exits (the first process after waiting for
// ember's exec).
Status EnterNewPidNamespace(const JailPlan& plan, Lineage* lineage, UndoLog* undo);

// Without --new-pid-ns: this process's pid. Inside the jail, so the path is /<exec-name>.pid.
Status WritePidFile(const JailPlan& plan);

}  // namespace ember::jailer

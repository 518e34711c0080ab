// --netns: the jail lives in a network namespace the caller prepared (with the TAPs ember will
// open); setns(CLONE_NEWNET) as Firecracker's join_netns.
#pragma once

#include "jailer/plan.h"
#include "vmm/base/result.h"

namespace ember::jailer {

Status JoinNetworkNamespace(const JailPlan& plan);

}  // namespace ember::jailer

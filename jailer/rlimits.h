// --resource-limit: RLIMIT_FSIZE when given, RLIMIT_NOFILE always (2048 by default), soft and
// hard alike so ember cannot raise them (Firecracker's resource_limits.rs).
#pragma once

#include "jailer/plan.h"
#include "vmm/base/result.h"

namespace ember::jailer {

Status SetResourceLimits(const JailPlan& plan);

}  // namespace ember::jailer

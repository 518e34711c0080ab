// The jailer's end: exec /<exec-name> --id <id> --start-time-us <t> --start-time-cpu-us <t>
// --parent-cpu-time-us <t> <args after "--">, with an empty environment (Firecracker's
// exec_command). ember's start-up metrics count from the jailer's start: wall time from
// --start-time-us (CLOCK_MONOTONIC at the jailer's start), CPU as its own clock minus
// --start-time-cpu-us (its clock at exec) plus --parent-cpu-time-us (what the jailer used).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "jailer/lineage.h"
#include "jailer/plan.h"
#include "vmm/base/result.h"

namespace ember::jailer {

std::vector<std::string> EmberArgv(const JailPlan& plan, uint64_t start_time_cpu_us,
                                   uint64_t parent_cpu_time_us);

// Returns only if execve failed.
Status ExecEmber(const JailPlan& plan, const Lineage& lineage);

}  // namespace ember::jailer

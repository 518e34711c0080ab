#include "jailer/exec.h"

#include <unistd.h>

#include "jailer/syscall.h"
#include "vmm/base/clock.h"

namespace ember::jailer {

std::vector<std::string> EmberArgv(const JailPlan& plan, uint64_t start_time_cpu_us,
                                   uint64_t parent_cpu_time_us) {
  std::vector<std::string> argv = {"/" + plan.exec_name,
                                   "--id",
                                   plan.options.id,
                                   "--start-time-us",
                                   std::to_string(plan.start.wall_us),
                                   "--start-time-cpu-us",
                                   std::to_string(start_time_cpu_us),
                                   "--parent-cpu-time-us",
                                   std::to_string(parent_cpu_time_us)};
  argv.insert(argv.end(), plan.options.exec_args.begin(), plan.options.exec_args.end());
  return argv;
}

Status ExecEmber(const JailPlan& plan, const Lineage& lineage) {
  const uint64_t own_cpu_us = ProcessCpuUs();
  const std::vector<std::string> args =
      EmberArgv(plan, own_cpu_us, lineage.JailerCpuUs(own_cpu_us));
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  execve(argv[0], argv.data(), envp);
  return CheckSys(-1, "execve(%s)", argv[0]);
}

}  // namespace ember::jailer

#include "jailer/rlimits.h"

#include <sys/resource.h>

#include "jailer/syscall.h"

namespace ember::jailer {

Status SetResourceLimits(const JailPlan& plan) {
  const JailerOptions& o = plan.options;
  if (o.fsize_limit) {
    rlimit fsize = {*o.fsize_limit, *o.fsize_limit};
    TRY_STATUS(CheckSys(setrlimit(RLIMIT_FSIZE, &fsize), "setrlimit(RLIMIT_FSIZE, %llu)",
                        static_cast<unsigned long long>(*o.fsize_limit)));
  }
  rlimit nofile = {o.no_file_limit, o.no_file_limit};
  return CheckSys(setrlimit(RLIMIT_NOFILE, &nofile), "setrlimit(RLIMIT_NOFILE, %llu)",
                  static_cast<unsigned long long>(o.no_file_limit));
}

}  // namespace ember::jailer

// The jailer starts from a clean process: no file descriptor inherited from the caller beyond
// stdin, stdout and stderr (which are opened on /dev/null if the caller closed them), and an
// empty environment (Firecracker's sanitize_process).
#pragma once

#include "vmm/base/result.h"

namespace ember::jailer {

Status SanitizeProcess();

}  // namespace ember::jailer

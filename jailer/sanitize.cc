#include "jailer/sanitize.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "jailer/syscall.h"

namespace ember::jailer {

Status SanitizeProcess() {
  TRY_STATUS(CheckSys(syscall(SYS_close_range, 3u, UINT_MAX, 0u), "close_range(3, ~0U, 0)"));
  // A closed stdio descriptor would be reused by the next open() and receive someone's output.
  for (int fd = 0; fd <= 2; fd++) {
    if (fcntl(fd, F_GETFD) != -1) continue;
    UniqueFd null_fd(open("/dev/null", O_RDWR));
    TRY_STATUS(CheckSys(null_fd.get(), "open(/dev/null, O_RDWR) for fd %d", fd));
    if (null_fd.get() == fd) {
      (void)null_fd.release();  // it landed on the free slot: keep it there
    } else {
      TRY_STATUS(CheckSys(dup2(null_fd.get(), fd), "dup2(/dev/null, %d)", fd));
    }
  }
  TRY_STATUS(CheckSys(clearenv(), "clearenv()"));
  return Ok();
}

}  // namespace ember::jailer

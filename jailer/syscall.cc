#include "jailer/syscall.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>

namespace ember::jailer {

Status CheckSys(long ret, const char* fmt, ...) {
  if (ret >= 0) return Ok();
  const int err = errno;
  char call[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(call, sizeof(call), fmt, ap);
  va_end(ap);
  return Error::Errno(call, err);
}

Result<std::string> ReadSmallFile(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  TRY_STATUS(CheckSys(fd.get(), "open(%s, O_RDONLY)", path.c_str()));
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    TRY_STATUS(CheckSys(n, "read(%s)", path.c_str()));
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

Status WriteExistingFile(const std::string& path, const std::string& value) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  TRY_STATUS(CheckSys(fd.get(), "open(%s, O_WRONLY)", path.c_str()));
  ssize_t n = write(fd.get(), value.data(), value.size());
  TRY_STATUS(CheckSys(n, "write(%s, \"%s\")", path.c_str(), value.c_str()));
  if (static_cast<size_t>(n) != value.size()) {
    return Error{StrFormat("write(%s, \"%s\"): short write (%zd of %zu bytes)", path.c_str(),
                           value.c_str(), n, value.size())};
  }
  return Ok();
}

bool PathExists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

Result<UniqueFd> OpenDirectory(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  TRY_STATUS(CheckSys(fd.get(), "open(%s, O_DIRECTORY)", path.c_str()));
  return fd;
}

}  // namespace ember::jailer

// The one checked-ioctl helper: every KVM ioctl goes through it so a failure names the request,
// its context and errno ("KVM_SET_USER_MEMORY_REGION slot 1 (...): EINVAL (Invalid argument)").
#pragma once

#include <sys/ioctl.h>

#include <cerrno>

#include "vmm/base/result.h"

namespace ember {

inline Result<int> CheckedIoctl(int fd, unsigned long request, const char* name,
                                unsigned long arg = 0) {
  int ret;
  do {
    ret = ioctl(fd, request, arg);
  } while (ret < 0 && errno == EINTR);
  if (ret < 0) return Error::Errno(name);
  return ret;
}

template <typename T>
Result<int> CheckedIoctl(int fd, unsigned long request, const char* name, T* arg) {
  return CheckedIoctl(fd, request, name, reinterpret_cast<unsigned long>(arg));
}

}  // namespace ember

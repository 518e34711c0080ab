// The one checked-ioctl helper: every KVM ioctl goes through it so a failure names the request,
// its context and errno ("KVM_SET_USER_MEMORY_REGION slot 1 (...): EINVAL (Invalid argument)").
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cerrno>

#include "vmm/base/result.h"

namespace ember {

// KVM ioctl numbers whose argument struct ends in a flexible array. An ioctl number encodes the
// struct's size, and g++ sizes these structs differently from the C compiler the kernel's ABI is
// defined by (sizeof(kvm_cpuid2) is 8 in C, 12 in C++ with GCC 12), so the <linux/kvm.h> macros
// give wrong numbers in C++ and the kernel answers EINVAL. These spell out the C sizes.
namespace kvm_ioctl {
inline constexpr unsigned long kGetSupportedCpuid = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x05, 8);
inline constexpr unsigned long kSetCpuid2 = _IOC(_IOC_WRITE, KVMIO, 0x90, 8);
inline constexpr unsigned long kGetCpuid2 = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x91, 8);
inline constexpr unsigned long kGetMsrs = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x88, 8);
inline constexpr unsigned long kSetMsrs = _IOC(_IOC_WRITE, KVMIO, 0x89, 8);
inline constexpr unsigned long kGetXsave = _IOC(_IOC_READ, KVMIO, 0xa4, 4096);
inline constexpr unsigned long kSetXsave = _IOC(_IOC_WRITE, KVMIO, 0xa5, 4096);
inline constexpr unsigned long kSetGsiRouting = _IOC(_IOC_WRITE, KVMIO, 0x6a, 8);
inline constexpr unsigned long kGetMsrIndexList = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x02, 4);
}  // namespace kvm_ioctl

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

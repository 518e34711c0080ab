#include <gtest/gtest.h>

#include "vmm/kvm/ioctl.h"

namespace ember {
namespace {

// The values the C compiler gives for <linux/kvm.h>'s macros (the kernel's ABI); g++ computes
// different ones for these flexible-array structs, which KVM rejects with EINVAL.
TEST(KvmIoctlTest, FlexibleArrayIoctlsUseTheCSizes) {
  EXPECT_EQ(kvm_ioctl::kGetSupportedCpuid, 0xc008ae05ul);
  EXPECT_EQ(kvm_ioctl::kSetCpuid2, 0x4008ae90ul);
  EXPECT_EQ(kvm_ioctl::kGetCpuid2, 0xc008ae91ul);
  EXPECT_EQ(kvm_ioctl::kGetMsrs, 0xc008ae88ul);
  EXPECT_EQ(kvm_ioctl::kSetMsrs, 0x4008ae89ul);
  EXPECT_EQ(kvm_ioctl::kGetXsave, 0x9000aea4ul);
  EXPECT_EQ(kvm_ioctl::kSetXsave, 0x5000aea5ul);
  EXPECT_EQ(kvm_ioctl::kSetGsiRouting, 0x4008ae6aul);
  EXPECT_EQ(kvm_ioctl::kGetMsrIndexList, 0xc004ae02ul);
}

}  // namespace
}  // namespace ember

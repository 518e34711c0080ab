#include <gtest/gtest.h>

#include "vmm/base/log.h"
#include "vmm/base/result.h"
#include "vmm/base/strings.h"
#include "vmm/memory/guest_memory.h"

namespace ember {
namespace {

Result<int> Half(int x) {
  if (x % 2) return Error{StrFormat("%d is odd", x)};
  return x / 2;
}

Result<int> Quarter(int x) {
  int h = TRY(Half(x));
  return TRY(Half(h));
}

TEST(ResultTest, TryPropagatesTheFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "3 is odd");
}

TEST(ResultTest, ErrnoNamesTheCallAndTheError) {
  Error e = Error::Errno("KVM_CREATE_VM", EINVAL);
  EXPECT_EQ(e.message, "KVM_CREATE_VM: EINVAL (Invalid argument)");
  EXPECT_EQ(e.err, EINVAL);
}

TEST(StringsTest, ParseU64RejectsJunkAndOverflow) {
  uint64_t v = 0;
  EXPECT_TRUE(ParseU64("123", &v));
  EXPECT_EQ(v, 123u);
  EXPECT_TRUE(ParseU64("0x1f", &v));
  EXPECT_EQ(v, 31u);
  EXPECT_FALSE(ParseU64("", &v));
  EXPECT_FALSE(ParseU64("12a", &v));
  EXPECT_FALSE(ParseU64("-1", &v));
  EXPECT_FALSE(ParseU64("18446744073709551616", &v));
}

TEST(LogTest, LevelsParseCaseInsensitively) {
  EXPECT_EQ(ParseLogLevel("Warning"), LogLevel::kWarning);
  EXPECT_EQ(ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_EQ(ParseLogLevel("Off"), LogLevel::kOff);
  EXPECT_FALSE(ParseLogLevel("Verbose").has_value());
}

TEST(GuestMemoryTest, AccessOutsideRamIsAnErrorNeverAHostAccess) {
  auto mem = GuestMemory::Create({{0, 0x10000}, {0x100000, 0x1000}});
  ASSERT_TRUE(mem.ok()) << mem.error().message;
  uint32_t v = 0x12345678;
  EXPECT_TRUE(mem->WriteObj(0xfffc, v).ok());
  EXPECT_EQ(*mem->ReadObj<uint32_t>(0xfffc), v);
  EXPECT_FALSE(mem->WriteObj(0xfffe, v).ok());        // straddles the end of region 0
  EXPECT_FALSE(mem->ReadObj<uint32_t>(0x20000).ok());  // in the hole
  EXPECT_FALSE(mem->HostAddress(0x100000, 0x1001).ok());
  EXPECT_FALSE(mem->HostAddress(0x100800, UINT64_MAX).ok());  // length that would wrap
  EXPECT_FALSE(mem->HostAddress(UINT64_MAX, 2).ok());
  EXPECT_TRUE(mem->HostAddress(0x100000, 0x1000).ok());
  EXPECT_EQ(mem->total_bytes(), 0x11000u);
}

// A host access that runs off a region (a device bug) faults on a guard page instead of landing
// in whatever is mapped next.
TEST(GuestMemoryDeathTest, RegionsSitBetweenGuardPages) {
  auto mem = GuestMemory::Create({{0, 0x10000}, {0x100000, 0x1000}});
  ASSERT_TRUE(mem.ok()) << mem.error().message;
  for (const GuestRegion& r : mem->regions()) {
    volatile uint8_t* before = r.host - 1;
    volatile uint8_t* after = r.host + r.range.size;
    EXPECT_DEATH(*after = 1, "");
    EXPECT_DEATH((void)*before, "");
    r.host[0] = 1;  // the region itself is usable
    r.host[r.range.size - 1] = 1;
  }
}

TEST(GuestMemoryTest, OverlappingRangesAreRejected) {
  EXPECT_FALSE(GuestMemory::Create({{0, 0x2000}, {0x1000, 0x1000}}).ok());
  EXPECT_FALSE(GuestMemory::Create({{0, 0}}).ok());
}

}  // namespace
}  // namespace ember

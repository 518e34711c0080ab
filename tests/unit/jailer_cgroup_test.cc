// Planning the jail's cgroups from /proc/self/mountinfo and /proc/self/cgroup: which hierarchy
// each --cgroup goes to, where the jail's cgroup is, where we came from (for the undo), and the
// errors for controllers the host does not have. Creating them is tested against the real
// cgroupfs in tests/integration/jailer_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "jailer/cgroup.h"
#include "jailer/validate.h"

namespace ember::jailer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// This development machine's hybrid layout (v1 controllers plus an empty cgroup2), shortened.
constexpr char kHybridMountinfo[] =
    "26 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
    "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:5 - cgroup cgroup rw,cpu,cpuacct\n"
    "33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
    "41 30 0:38 /sub /mnt/with\\040space rw - cgroup cgroup rw,freezer\n";

constexpr char kSelfCgroup[] =
    "9:name=systemd:/\n"
    "8:pids:/\n"
    "4:memory:/process_api/abc\n"
    "3:cpuset:/\n"
    "1:cpu,cpuacct:/tenant\n"
    "0::/\n";

JailerOptions Options(std::vector<CgroupSetting> settings, int version = 1) {
  JailerOptions o;
  o.id = "vm-1";
  o.cgroups = std::move(settings);
  o.cgroup_version = version;
  return o;
}

CgroupSetting Setting(const std::string& file, const std::string& value) {
  return {file, value, file.substr(0, file.find('.'))};
}

Result<std::string> Controllers(const std::string& path) {
  if (path == "/sys/fs/cgroup/unified/cgroup.controllers") return std::string("hugetlb pids\n");
  return Error{"unexpected read of " + path};
}

Result<CgroupPlan> Plan(const JailerOptions& o) {
  return PlanCgroups(o, "ember", ParseCgroupMounts(kHybridMountinfo), ParseProcCgroup(kSelfCgroup),
                     Controllers);
}

TEST(JailerCgroupTest, MountinfoGivesEveryHierarchyAndItsControllers) {
  std::vector<CgroupMount> m = ParseCgroupMounts(kHybridMountinfo);
  ASSERT_EQ(m.size(), 7u);
  EXPECT_EQ(m[0].mount_point, "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_THAT(m[0].options, ElementsAre("rw", "cpu", "cpuacct"));  // optional fields skipped
  EXPECT_FALSE(m[0].v2);
  EXPECT_TRUE(m[5].v2);
  EXPECT_EQ(m[5].mount_point, "/sys/fs/cgroup/unified");
  EXPECT_EQ(m[6].mount_point, "/mnt/with space");  // \040 unescaped
  EXPECT_EQ(m[6].root, "/sub");
}

TEST(JailerCgroupTest, ProcSelfCgroupLines) {
  std::vector<ProcCgroupLine> l = ParseProcCgroup(kSelfCgroup);
  ASSERT_EQ(l.size(), 6u);
  EXPECT_THAT(l[4].controllers, ElementsAre("cpu", "cpuacct"));
  EXPECT_EQ(l[4].path, "/tenant");
  EXPECT_TRUE(l[5].controllers.empty());
  EXPECT_EQ(l[5].path, "/");
}

TEST(JailerCgroupTest, V1OneCgroupPerHierarchyUnderParentAndId) {
  JailerOptions o =
      Options({Setting("memory.limit_in_bytes", "64M"), Setting("cpu.cfs_quota_us", "5000"),
               Setting("cpuacct.usage", "0"), Setting("cpuset.cpus", "0")});
  Result<CgroupPlan> p = Plan(o);
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_EQ(p->targets.size(), 3u);  // cpu and cpuacct share a hierarchy
  EXPECT_EQ(p->targets[0].path(), "/sys/fs/cgroup/memory/ember/vm-1");
  EXPECT_EQ(p->targets[0].original, "/sys/fs/cgroup/memory/process_api/abc");
  EXPECT_FALSE(p->targets[0].inherit_cpuset);
  EXPECT_EQ(p->targets[1].path(), "/sys/fs/cgroup/cpu,cpuacct/ember/vm-1");
  EXPECT_EQ(p->targets[1].settings.size(), 2u);
  EXPECT_EQ(p->targets[1].original, "/sys/fs/cgroup/cpu,cpuacct/tenant");
  EXPECT_TRUE(p->targets[2].inherit_cpuset);
  EXPECT_EQ(p->targets[2].original, "/sys/fs/cgroup/cpuset");
  for (const CgroupTarget& t : p->targets) EXPECT_TRUE(t.create);
}

TEST(JailerCgroupTest, ParentCgroupIsRelativeToEachHierarchy) {
  JailerOptions o = Options({Setting("pids.max", "16")});
  o.parent_cgroup = "tenants/gold";
  Result<CgroupPlan> p = Plan(o);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->targets[0].path(), "/sys/fs/cgroup/pids/tenants/gold/vm-1");
}

TEST(JailerCgroupTest, V1WithoutCgroupFlagsTouchesNothing) {
  Result<CgroupPlan> p = Plan(Options({}));
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->targets.empty());
}

TEST(JailerCgroupTest, MissingControllerIsRefusedAtValidation) {
  Result<CgroupPlan> p = Plan(Options({Setting("hugetlb.2MB.limit_in_bytes", "0")}));
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.error().message, HasSubstr("no cgroup v1 hierarchy has the hugetlb controller"));
}

TEST(JailerCgroupTest, V2EnablesEachControllerOnTheWayDown) {
  Result<CgroupPlan> p =
      Plan(Options({Setting("pids.max", "16"), Setting("cgroup.max.descendants", "0")}, 2));
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_EQ(p->targets.size(), 1u);
  EXPECT_EQ(p->targets[0].path(), "/sys/fs/cgroup/unified/ember/vm-1");
  EXPECT_THAT(p->targets[0].enable_controllers, ElementsAre("pids"));  // "cgroup." is the core
  EXPECT_EQ(p->targets[0].settings.size(), 2u);
  EXPECT_EQ(p->targets[0].original, "/sys/fs/cgroup/unified");
}

TEST(JailerCgroupTest, V2ControllerNotDelegatedIsRefused) {
  Result<CgroupPlan> p = Plan(Options({Setting("memory.max", "64M")}, 2));
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.error().message, HasSubstr("has no memory controller"));
  EXPECT_THAT(p.error().message, HasSubstr("hugetlb pids"));
}

TEST(JailerCgroupTest, V2WithoutCgroupFlagsJoinsTheParentIfItExists) {
  Result<CgroupPlan> p = Plan(Options({}, 2));
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->targets.size(), 1u);
  EXPECT_FALSE(p->targets[0].create);
  EXPECT_EQ(p->targets[0].path(), "/sys/fs/cgroup/unified/ember");
}

TEST(JailerCgroupTest, V2WithoutAHierarchyIsRefused) {
  Result<CgroupPlan> p = PlanCgroups(Options({}, 2), "ember", {}, {}, Controllers);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.error().message, HasSubstr("no cgroup2 hierarchy"));
}

TEST(JailerCgroupTest, UserfaultfdMinorFromProcMisc) {
  EXPECT_EQ(UserfaultfdMinor("234 btrfs-control\n257 userfaultfd\n200 tun\n"), 257u);
  EXPECT_EQ(UserfaultfdMinor(" 58 userfaultfd\n"), 58u);
  EXPECT_FALSE(UserfaultfdMinor("200 tun\n"));
  EXPECT_FALSE(UserfaultfdMinor("x userfaultfd\n"));
}

}  // namespace
}  // namespace ember::jailer

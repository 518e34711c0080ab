// ember-jailer's command line: Firecracker's jailer flags, their defaults, and one-line errors
// for everything invalid (before anything on the host is touched).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "jailer/options.h"

namespace ember::jailer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Base() {
  return {"--id", "vm-1", "--exec-file", "/usr/bin/ember", "--uid", "123", "--gid", "100"};
}

std::vector<std::string> With(std::vector<std::string> extra) {
  std::vector<std::string> args = Base();
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::string ErrorOf(const std::vector<std::string>& args) {
  Result<JailerOptions> r = ParseJailerArgs(args);
  EXPECT_FALSE(r.ok()) << "expected an error";
  if (r.ok()) return "";
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << "errors are one line";
  return r.error().message;
}

TEST(JailerOptionsTest, DefaultsAreFirecrackers) {
  Result<JailerOptions> r = ParseJailerArgs(Base());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->command, JailerOptions::Command::kRun);
  EXPECT_EQ(r->id, "vm-1");
  EXPECT_EQ(r->exec_file, "/usr/bin/ember");
  EXPECT_EQ(r->uid, 123u);
  EXPECT_EQ(r->gid, 100u);
  EXPECT_EQ(r->chroot_base_dir, "/srv/jailer");
  EXPECT_FALSE(r->netns);
  EXPECT_FALSE(r->daemonize);
  EXPECT_FALSE(r->new_pid_ns);
  EXPECT_TRUE(r->cgroups.empty());
  EXPECT_EQ(r->cgroup_version, 1);
  EXPECT_FALSE(r->parent_cgroup);
  EXPECT_FALSE(r->fsize_limit);
  EXPECT_EQ(r->no_file_limit, 2048u);
  EXPECT_TRUE(r->exec_args.empty());
}

TEST(JailerOptionsTest, EveryFlagInBothSpellings) {
  Result<JailerOptions> r = ParseJailerArgs(With({"--chroot-base-dir=/jails",
                                                  "--netns",
                                                  "/var/run/netns/t1",
                                                  "--daemonize",
                                                  "--new-pid-ns",
                                                  "--cgroup",
                                                  "memory.limit_in_bytes=64M",
                                                  "--cgroup=cpu.cfs_quota_us=50000",
                                                  "--cgroup",
                                                  "io.max=8:0 rbps=1000",
                                                  "--cgroup-version=2",
                                                  "--parent-cgroup",
                                                  "tenants/a",
                                                  "--resource-limit",
                                                  "fsize=1000",
                                                  "--resource-limit=no-file=64",
                                                  "--",
                                                  "--api-sock",
                                                  "/run/x.sock",
                                                  "--level",
                                                  "Debug"}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->chroot_base_dir, "/jails");
  EXPECT_EQ(*r->netns, "/var/run/netns/t1");
  EXPECT_TRUE(r->daemonize);
  EXPECT_TRUE(r->new_pid_ns);
  ASSERT_EQ(r->cgroups.size(), 3u);
  EXPECT_EQ(r->cgroups[0].file, "memory.limit_in_bytes");
  EXPECT_EQ(r->cgroups[0].value, "64M");
  EXPECT_EQ(r->cgroups[0].controller, "memory");
  EXPECT_EQ(r->cgroups[1].controller, "cpu");
  EXPECT_EQ(r->cgroups[2].value, "8:0 rbps=1000");  // split at the first '='
  EXPECT_EQ(r->cgroup_version, 2);
  EXPECT_EQ(*r->parent_cgroup, "tenants/a");
  EXPECT_EQ(*r->fsize_limit, 1000u);
  EXPECT_EQ(r->no_file_limit, 64u);
  EXPECT_THAT(r->exec_args, ElementsAre("--api-sock", "/run/x.sock", "--level", "Debug"));
}

TEST(JailerOptionsTest, CleanupNeedsOnlyTheJailsName) {
  Result<JailerOptions> r =
      ParseJailerArgs({"--cleanup", "--id", "vm-1", "--exec-file", "/usr/bin/ember"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->command, JailerOptions::Command::kCleanup);
  EXPECT_THAT(ErrorOf({"--cleanup", "--exec-file", "/usr/bin/ember"}),
              HasSubstr("--id is required"));
}

TEST(JailerOptionsTest, HelpAndVersionNeedNothingElse) {
  EXPECT_EQ(ParseJailerArgs({"--help"})->command, JailerOptions::Command::kHelp);
  EXPECT_EQ(ParseJailerArgs({"--version"})->command, JailerOptions::Command::kVersion);
  const std::string usage = JailerUsage();
  for (const char* flag : {"--id", "--exec-file", "--uid", "--gid", "--chroot-base-dir", "--netns",
                           "--daemonize", "--new-pid-ns", "--cgroup ", "--cgroup-version",
                           "--parent-cgroup", "--resource-limit", "--cleanup"}) {
    EXPECT_THAT(usage, HasSubstr(flag));
  }
}

TEST(JailerOptionsTest, IdIsFirecrackersInstanceId) {
  EXPECT_TRUE(IsValidJailId("a"));
  EXPECT_TRUE(IsValidJailId("551e7604-e35c-42b3-b825-416853441234"));
  EXPECT_TRUE(IsValidJailId(std::string(64, 'x')));
  EXPECT_FALSE(IsValidJailId(""));
  EXPECT_FALSE(IsValidJailId(std::string(65, 'x')));
  for (const char* bad : {"a_b", "a/b", "..", "a b", "a.b", "é"})
    EXPECT_FALSE(IsValidJailId(bad)) << bad;
}

// Every invalid invocation is refused with a message naming the flag (the integration test runs
// the same list against the binary and checks the host is unchanged).
TEST(JailerOptionsTest, InvalidFlagsAreRefused) {
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const std::vector<Case> cases = {
      {{}, "--id is required"},
      {{"--exec-file", "/e", "--uid", "1", "--gid", "1"}, "--id is required"},
      {{"--id", "a", "--uid", "1", "--gid", "1"}, "--exec-file is required"},
      {{"--id", "a", "--exec-file", "/e", "--gid", "1"}, "--uid is required"},
      {{"--id", "a", "--exec-file", "/e", "--uid", "1"}, "--gid is required"},
      {With({"--bogus"}), "unknown flag --bogus"},
      {With({"stray"}), "unexpected argument \"stray\""},
      {With({"--id", "b"}), "--id given more than once"},
      {With({"--daemonize=yes"}), "--daemonize takes no value"},
      {With({"--netns"}), "--netns needs a value"},
      {{"--id", "a/b", "--exec-file", "/e", "--uid", "1", "--gid", "1"}, "invalid value for --id"},
      {{"--id", "", "--exec-file", "/e", "--uid", "1", "--gid", "1"}, "invalid value for --id"},
      {{"--id", "a", "--exec-file", "/e", "--uid", "-1", "--gid", "1"}, "invalid value for --uid"},
      {{"--id", "a", "--exec-file", "/e", "--uid", "4294967295", "--gid", "1"},
       "invalid value for --uid"},
      {{"--id", "a", "--exec-file", "/e", "--uid", "1", "--gid", "0x10"},
       "invalid value for --gid"},
      {{"--id", "a", "--exec-file", "", "--uid", "1", "--gid", "1"},
       "invalid value for --exec-file"},
      {With({"--chroot-base-dir", ""}), "invalid value for --chroot-base-dir"},
      {With({"--cgroup", "memory.limit_in_bytes"}), "invalid value for --cgroup"},
      {With({"--cgroup", "nocontroller=1"}), "invalid value for --cgroup"},
      {With({"--cgroup", ".x=1"}), "invalid value for --cgroup"},
      {With({"--cgroup", "memory.=1"}), "invalid value for --cgroup"},
      {With({"--cgroup", "../memory.max=1"}), "invalid value for --cgroup"},
      {With({"--cgroup", "memory.max="}), "invalid value for --cgroup"},
      {With({"--cgroup", "memory.max=1\n2"}), "invalid value for --cgroup"},
      {With({"--cgroup", "pids.max=1", "--cgroup", "pids.max=2"}), "set twice"},
      {With({"--cgroup-version", "3"}), "invalid value for --cgroup-version"},
      {With({"--parent-cgroup", "/abs"}), "invalid value for --parent-cgroup"},
      {With({"--parent-cgroup", "a/../b"}), "invalid value for --parent-cgroup"},
      {With({"--parent-cgroup", "a//b"}), "invalid value for --parent-cgroup"},
      {With({"--parent-cgroup", "."}), "invalid value for --parent-cgroup"},
      {With({"--resource-limit", "nproc=1"}), "invalid value for --resource-limit"},
      {With({"--resource-limit", "fsize=-1"}), "invalid value for --resource-limit"},
      {With({"--resource-limit", "fsize"}), "invalid value for --resource-limit"},
      {With({"--resource-limit", "no-file=0"}), "no-file must be at least 1"},
      {With({"--", "--id", "x"}), "--id after \"--\""},
      {With({"--", "--start-time-us=5"}), "--start-time-us after \"--\""},
  };
  for (const Case& c : cases) {
    std::string joined;
    for (const std::string& a : c.args) joined += "[" + a + "] ";
    EXPECT_THAT(ErrorOf(c.args), HasSubstr(c.message)) << joined;
  }
}

}  // namespace
}  // namespace ember::jailer

// The jailer's host-side steps on a scratch directory: the jail's directories and the undo log
// that takes them back, the exec file's copy, the claim on an id (live, left over, locked), the
// tree removal --cleanup uses, and ember's command line. The namespace steps need a process of
// their own: tests/integration/jailer_test.cc runs the binary.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "jailer/cleanup.h"
#include "jailer/exec.h"
#include "jailer/jail_dir.h"
#include "jailer/syscall.h"
#include "jailer/undo.h"
#include "jailer/validate.h"
#include "tests/support/process.h"

namespace ember::jailer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string ReadOrEmpty(const std::string& path) {
  Result<std::string> r = ReadSmallFile(path);
  return r.ok() ? *r : "";
}

#define REQUIRE_ROOT()                                                  \
  do {                                                                  \
    if (geteuid() != 0) GTEST_SKIP() << "the jailer's steps need root"; \
  } while (0)

class JailerStepsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    exec_ = dir_.Write("ember-probe-bin", std::string(200000, 'x'));
    chmod(exec_.c_str(), 04755);  // set-uid on the source: the copy must not carry it
    mkdir((dir_.path() + "/base").c_str(), 0755);
    plan_.options.id = "vm-1";
    plan_.options.uid = 4242;
    plan_.options.gid = 4343;
    plan_.exec_path = exec_;
    SetJailPaths(dir_.path() + "/base", "ember-probe-bin", "vm-1", &plan_);
  }

  ember::testing::TempDir dir_;
  std::string exec_;
  JailPlan plan_;
};

TEST_F(JailerStepsTest, JailDirectoryAndCopyAreUndoneCompletely) {
  REQUIRE_ROOT();
  UndoLog undo;
  ASSERT_TRUE(CreateJailDirectory(plan_, &undo).ok());
  ASSERT_TRUE(CopyExecFile(plan_, &undo).ok());
  struct stat src, copy;
  ASSERT_EQ(stat(exec_.c_str(), &src), 0);
  ASSERT_EQ(stat((plan_.root_dir + "/ember-probe-bin").c_str(), &copy), 0);
  EXPECT_NE(src.st_ino, copy.st_ino) << "a copy, not a hard link";
  EXPECT_EQ(copy.st_size, src.st_size);
  EXPECT_EQ(copy.st_nlink, 1u);
  EXPECT_EQ(copy.st_uid, 4242u);
  EXPECT_EQ(copy.st_gid, 4343u);
  EXPECT_EQ(copy.st_mode & 07777, 0755u) << "no set-id bits";
  EXPECT_EQ(ReadOrEmpty((plan_.root_dir + "/ember-probe-bin")).size(), 200000u);

  EXPECT_TRUE(undo.Run().empty());
  EXPECT_FALSE(PathExists(plan_.exec_dir)) << "everything this run made is gone";
  EXPECT_TRUE(PathExists(dir_.path() + "/base"));
}

TEST_F(JailerStepsTest, ExistingLevelsAreReusedAndKept) {
  REQUIRE_ROOT();
  ASSERT_EQ(mkdir(plan_.exec_dir.c_str(), 0755), 0);
  UndoLog undo;
  ASSERT_TRUE(CreateJailDirectory(plan_, &undo).ok());
  EXPECT_TRUE(undo.Run().empty());
  EXPECT_TRUE(PathExists(plan_.exec_dir)) << "not made by this run: kept";
  EXPECT_FALSE(PathExists(plan_.id_dir));
}

TEST_F(JailerStepsTest, AFileWhereADirectoryGoesIsAnError) {
  REQUIRE_ROOT();
  dir_.Write("base/ember-probe-bin", "");
  UndoLog undo;
  Status s = CreateJailDirectory(plan_, &undo);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message, HasSubstr("is not a directory"));
}

TEST_F(JailerStepsTest, ClaimRefusesLiveLeftOverAndLockedJails) {
  REQUIRE_ROOT();
  UndoLog undo;
  ASSERT_TRUE(CreateJailDirectory(plan_, &undo).ok());
  {
    UniqueFd lock;
    ASSERT_TRUE(ClaimJail(plan_, &lock).ok());
    UniqueFd second;
    Status s = ClaimJail(plan_, &second);
    ASSERT_FALSE(s.ok()) << "a second run racing on the same id";
    EXPECT_THAT(s.error().message, HasSubstr("being built by another ember-jailer"));
  }
  // A pid file naming a process that is gone: left over.
  pid_t gone = fork();
  if (gone == 0) _exit(0);
  waitpid(gone, nullptr, 0);
  std::ofstream(plan_.pid_file) << gone;
  EXPECT_EQ(InspectJail(plan_).state, JailOccupant::State::kLeftOver);
  Status s = CheckJailFree(plan_);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message, HasSubstr("left by an earlier run"));
  EXPECT_THAT(s.error().message, HasSubstr("--cleanup"));
  // A live process whose root is not the jail: its pid was reused, the jail is left over.
  std::ofstream(plan_.pid_file) << getpid();
  EXPECT_EQ(InspectJail(plan_).state, JailOccupant::State::kLeftOver);
  // Live: the named process's root is the jail's root (here, both are this process's "/").
  JailPlan rooted = plan_;
  rooted.root_dir = "/";
  JailOccupant live = InspectJail(rooted);
  EXPECT_EQ(live.state, JailOccupant::State::kLive);
  EXPECT_EQ(live.pid, getpid());
  unlink(plan_.pid_file.c_str());
  EXPECT_EQ(InspectJail(plan_).state, JailOccupant::State::kFree);
  undo.Run();
}

TEST_F(JailerStepsTest, RemoveTreeStaysInsideAndFollowsNoSymlink) {
  REQUIRE_ROOT();
  const std::string outside = dir_.Write("outside", "keep me");
  const std::string tree = dir_.path() + "/tree";
  ASSERT_EQ(mkdir(tree.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((tree + "/a").c_str(), 0700), 0);
  ASSERT_EQ(mkdir((tree + "/a/b").c_str(), 0700), 0);
  dir_.Write("tree/a/b/f", "x");
  ASSERT_EQ(symlink(dir_.path().c_str(), (tree + "/a/up").c_str()), 0);
  ASSERT_EQ(symlink(outside.c_str(), (tree + "/link").c_str()), 0);
  ASSERT_EQ(mkfifo((tree + "/fifo").c_str(), 0600), 0);
  ASSERT_TRUE(RemoveTree(tree).ok());
  EXPECT_FALSE(PathExists(tree));
  EXPECT_EQ(ReadOrEmpty((outside)), "keep me");
}

TEST_F(JailerStepsTest, EmberArgvCarriesIdStartTimesThenTheCallersArgs) {
  plan_.start.wall_us = 111;
  plan_.options.exec_args = {"--api-sock", "/run/a.sock"};
  EXPECT_THAT(EmberArgv(plan_, 222, 333),
              ElementsAre("/ember-probe-bin", "--id", "vm-1", "--start-time-us", "111",
                          "--start-time-cpu-us", "222", "--parent-cpu-time-us", "333", "--api-sock",
                          "/run/a.sock"));
}

}  // namespace
}  // namespace ember::jailer

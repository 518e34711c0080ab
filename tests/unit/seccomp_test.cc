// Seccomp: Firecracker's JSON filter format -> SeccompFilterConfig (api/seccomp_json.h), the
// built-in profiles, the libseccomp compiler and the per-thread install with its SIGSYS handler
// (vmm/seccomp). Filters are installed only in forked children: a filter cannot be removed.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <set>
#include <string>

#include "api/seccomp_json.h"
#include "seccomp-profiles/builtin_filters.h"
#include "tests/support/process.h"
#include "vmm/seccomp/compiler.h"
#include "vmm/seccomp/seccomp.h"

namespace ember {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using Kind = SeccompAction::Kind;

// ---- Parsing ------------------------------------------------------------------------------

std::string ErrorOf(const std::string& json) {
  auto r = ParseSeccompJson(json);
  EXPECT_FALSE(r.ok()) << "expected an error for " << json;
  return r.ok() ? "" : r.error().message;
}

// One role's filter with `rules` as its "filter" array.
std::string Filter(const std::string& rules, const std::string& default_action = R"("trap")",
                   const std::string& filter_action = R"("allow")") {
  return R"({"vcpu": {"default_action": )" + default_action + R"(, "filter_action": )" +
         filter_action + R"(, "filter": [)" + rules + "]}}";
}

// A rule with one condition on argument 1.
std::string Condition(const std::string& fields) {
  return Filter(R"({"syscall": "ioctl", "args": [{"index": 1, )" + fields + "}]}");
}

TEST(SeccompJsonTest, EveryFieldOfFirecrackersFormat) {
  auto r = ParseSeccompJson(R"({
    "vmm": {
      "default_action": "trap", "filter_action": "allow", "comment": "the VMM thread",
      "filter": [
        {"syscall": "read"},
        {"syscall": "ioctl", "comment": "KVM_RUN",
         "args": [{"index": 1, "type": "dword", "op": "eq", "val": 44672, "comment": "KVM_RUN"}]},
        {"syscall": "mmap", "args": [
          {"index": 3, "type": "dword", "op": "eq", "val": 34},
          {"index": 2, "type": "dword", "op": {"masked_eq": 4}, "val": 0}]},
        {"syscall": "lseek", "args": [{"index": 1, "type": "qword", "op": "ne", "val": 18446744073709551615}]},
        {"syscall": "dup", "args": [{"index": 0, "type": "qword", "op": "lt", "val": 1}]},
        {"syscall": "dup2", "args": [{"index": 5, "type": "dword", "op": "le", "val": 2}]},
        {"syscall": "dup3", "args": [{"index": 0, "type": "qword", "op": "gt", "val": 3}]},
        {"syscall": "close", "args": [{"index": 0, "type": "dword", "op": "ge", "val": 4}]},
        {"syscall": "write", "args": []},
        {"syscall": "exit", "args": null}
      ]
    },
    "api": {"default_action": {"errno": 1}, "filter_action": "log", "filter": []},
    "vcpu": {"default_action": "kill_process", "filter_action": {"trace": 7}, "filter": []}
  })");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 3u);

  const SeccompFilterConfig& vmm = r->at(SeccompRole::kVmm);
  EXPECT_EQ(vmm.default_action, (SeccompAction{Kind::kTrap, 0}));
  EXPECT_EQ(vmm.filter_action, (SeccompAction{Kind::kAllow, 0}));
  ASSERT_EQ(vmm.rules.size(), 10u);
  EXPECT_EQ(vmm.rules[0], (SeccompRule{"read", {}}));
  EXPECT_EQ(vmm.rules[1],
            (SeccompRule{"ioctl", {{1, SeccompArgWidth::kDword, SeccompOp::kEq, 0, 44672}}}));
  EXPECT_EQ(vmm.rules[2], (SeccompRule{"mmap",
                                       {{3, SeccompArgWidth::kDword, SeccompOp::kEq, 0, 34},
                                        {2, SeccompArgWidth::kDword, SeccompOp::kMaskedEq, 4, 0}}}));
  EXPECT_EQ(vmm.rules[3].args[0], (SeccompCondition{1, SeccompArgWidth::kQword, SeccompOp::kNe, 0,
                                                    18446744073709551615ull}));
  EXPECT_EQ(vmm.rules[4].args[0].op, SeccompOp::kLt);
  EXPECT_EQ(vmm.rules[5].args[0], (SeccompCondition{5, SeccompArgWidth::kDword, SeccompOp::kLe, 0, 2}));
  EXPECT_EQ(vmm.rules[6].args[0].op, SeccompOp::kGt);
  EXPECT_EQ(vmm.rules[7].args[0].op, SeccompOp::kGe);
  EXPECT_TRUE(vmm.rules[8].args.empty());  // an empty list: no conditions, as in Firecracker
  EXPECT_TRUE(vmm.rules[9].args.empty());

  EXPECT_EQ(r->at(SeccompRole::kApi).default_action, (SeccompAction{Kind::kErrno, 1}));
  EXPECT_EQ(r->at(SeccompRole::kApi).filter_action, (SeccompAction{Kind::kLog, 0}));
  EXPECT_EQ(r->at(SeccompRole::kVcpu).default_action, (SeccompAction{Kind::kKillProcess, 0}));
  EXPECT_EQ(r->at(SeccompRole::kVcpu).filter_action, (SeccompAction{Kind::kTrace, 7}));
}

TEST(SeccompJsonTest, EveryAction) {
  const struct {
    const char* json;
    SeccompAction action;
  } kActions[] = {{R"("allow")", {Kind::kAllow, 0}},
                  {R"("trap")", {Kind::kTrap, 0}},
                  {R"("log")", {Kind::kLog, 0}},
                  {R"("kill_thread")", {Kind::kKillThread, 0}},
                  {R"("kill_process")", {Kind::kKillProcess, 0}},
                  {R"({"errno": 38})", {Kind::kErrno, 38}},
                  {R"({"errno": 65535})", {Kind::kErrno, 65535}},
                  {R"({"trace": 0})", {Kind::kTrace, 0}}};
  for (const auto& a : kActions) {
    auto r = ParseSeccompJson(Filter("", a.json));
    ASSERT_TRUE(r.ok()) << a.json << ": " << r.error().message;
    EXPECT_EQ(r->at(SeccompRole::kVcpu).default_action, a.action) << a.json;
  }
}

TEST(SeccompJsonTest, BadDocumentsAreNamed) {
  EXPECT_THAT(ErrorOf("{"), HasSubstr("JSON syntax error"));
  EXPECT_THAT(ErrorOf("[]"), HasSubstr("must be a JSON object of thread categories"));
  EXPECT_THAT(ErrorOf(R"({"vmm": 1})"), HasSubstr("vmm: expected an object, got 1"));
  EXPECT_THAT(ErrorOf(R"({"main": {}})"),
              AllOf(HasSubstr("unknown thread category \"main\""), HasSubstr("vmm, api or vcpu")));
  EXPECT_THAT(ErrorOf(R"({"VMM": {}})"), HasSubstr("unknown thread category \"VMM\""));
  EXPECT_THAT(ErrorOf(R"({"vcpu": {"filter_action": "allow", "filter": []}})"),
              HasSubstr("missing required field \"default_action\" in vcpu"));
  EXPECT_THAT(ErrorOf(R"({"vcpu": {"default_action": "trap", "filter": []}})"),
              HasSubstr("missing required field \"filter_action\" in vcpu"));
  EXPECT_THAT(ErrorOf(R"({"vcpu": {"default_action": "trap", "filter_action": "allow"}})"),
              HasSubstr("missing required field \"filter\" in vcpu"));
  EXPECT_THAT(ErrorOf(R"({"vcpu": {"default_action": "trap", "filter_action": "allow",
                                   "filter": [], "extra": 1}})"),
              HasSubstr("unknown field \"extra\" in vcpu"));
  EXPECT_THAT(ErrorOf(R"({"vcpu": {"default_action": "trap", "filter_action": "allow",
                                   "filter": {}}})"),
              HasSubstr("vcpu.filter: expected an array of rules, got an object"));
  EXPECT_THAT(ErrorOf(R"({"vcpu": {"default_action": "trap", "default_action": "allow",
                                   "filter_action": "allow", "filter": []}})"),
              HasSubstr("duplicate field \"default_action\""));
}

TEST(SeccompJsonTest, BadActionsAreNamed) {
  EXPECT_THAT(ErrorOf(Filter("", R"("kill")")),
              AllOf(HasSubstr("vcpu.default_action: expected \"allow\""), HasSubstr("got \"kill\"")));
  EXPECT_THAT(ErrorOf(Filter("", R"("Allow")")), HasSubstr("vcpu.default_action"));
  EXPECT_THAT(ErrorOf(Filter("", R"("trap")", "3")), HasSubstr("vcpu.filter_action: expected"));
  EXPECT_THAT(ErrorOf(Filter("", R"({"errno": 65536})")),
              HasSubstr("vcpu.default_action.errno: expected an integer from 0 to 65535"));
  EXPECT_THAT(ErrorOf(Filter("", R"({"errno": -1})")), HasSubstr("vcpu.default_action.errno"));
  EXPECT_THAT(ErrorOf(Filter("", R"({"signal": 9})")),
              HasSubstr("unknown field \"signal\" in vcpu.default_action"));
  EXPECT_THAT(ErrorOf(Filter("", R"({"errno": 1, "trace": 1})")),
              HasSubstr("vcpu.default_action: expected"));
}

TEST(SeccompJsonTest, BadRulesAreNamed) {
  EXPECT_THAT(ErrorOf(Filter("3")), HasSubstr("vcpu.filter[0]: expected an object, got 3"));
  EXPECT_THAT(ErrorOf(Filter(R"({"args": []})")),
              HasSubstr("missing required field \"syscall\" in vcpu.filter[0]"));
  EXPECT_THAT(ErrorOf(Filter(R"({"syscall": "read"}, {"syscall": 0})")),
              HasSubstr("vcpu.filter[1].syscall: expected a string, got 0"));
  EXPECT_THAT(ErrorOf(Filter(R"({"syscall": ""})")),
              HasSubstr("vcpu.filter[0].syscall: must not be empty"));
  EXPECT_THAT(ErrorOf(Filter(R"({"syscall": "read", "action": "allow"})")),
              HasSubstr("unknown field \"action\" in vcpu.filter[0]"));
  EXPECT_THAT(ErrorOf(Filter(R"({"syscall": "read", "comment": 1})")),
              HasSubstr("vcpu.filter[0].comment: expected a string"));
  EXPECT_THAT(ErrorOf(Filter(R"({"syscall": "read", "args": {}})")),
              HasSubstr("vcpu.filter[0].args: expected an array of conditions"));
}

TEST(SeccompJsonTest, BadConditionsAreNamed) {
  EXPECT_THAT(ErrorOf(Condition(R"("type": "dword", "op": "eq")")),
              HasSubstr("missing required field \"val\" in vcpu.filter[0].args[0]"));
  EXPECT_THAT(ErrorOf(Filter(R"({"syscall": "ioctl", "args": [{"type": "dword", "op": "eq", "val": 1}]})")),
              HasSubstr("missing required field \"index\""));
  EXPECT_THAT(ErrorOf(Filter(R"({"syscall": "ioctl", "args": [{"index": 6, "type": "dword", "op": "eq", "val": 1}]})")),
              HasSubstr("vcpu.filter[0].args[0].index: expected an integer from 0 to 5, got 6"));
  EXPECT_THAT(ErrorOf(Condition(R"("type": "word", "op": "eq", "val": 1)")),
              HasSubstr("vcpu.filter[0].args[0].type: expected \"dword\" or \"qword\", got \"word\""));
  EXPECT_THAT(ErrorOf(Condition(R"("op": "eq", "val": 1)")), HasSubstr("missing required field \"type\""));
  EXPECT_THAT(ErrorOf(Condition(R"("type": "dword", "val": 1)")), HasSubstr("missing required field \"op\""));
  EXPECT_THAT(ErrorOf(Condition(R"("type": "dword", "op": "==", "val": 1)")),
              HasSubstr("vcpu.filter[0].args[0].op: expected \"eq\""));
  EXPECT_THAT(ErrorOf(Condition(R"("type": "dword", "op": "masked_eq", "val": 1)")),
              HasSubstr("masked_eq takes its mask: {\"masked_eq\": MASK}"));
  EXPECT_THAT(ErrorOf(Condition(R"("type": "dword", "op": {"masked": 1}, "val": 1)")),
              HasSubstr("unknown field \"masked\" in vcpu.filter[0].args[0].op"));
  EXPECT_THAT(ErrorOf(Condition(R"("type": "dword", "op": {"masked_eq": "4"}, "val": 1)")),
              HasSubstr("vcpu.filter[0].args[0].op.masked_eq: expected an integer"));
  EXPECT_THAT(ErrorOf(Condition(R"("type": "dword", "op": "eq", "val": 4294967296)")),
              HasSubstr("vcpu.filter[0].args[0].val: expected an integer from 0 to 4294967295"));
  EXPECT_THAT(ErrorOf(Condition(R"("type": "dword", "op": {"masked_eq": 4294967296}, "val": 0)")),
              HasSubstr("a dword mask must fit in 32 bits"));
  EXPECT_THAT(ErrorOf(Condition(R"("type": "qword", "op": "eq", "val": -1)")),
              HasSubstr("vcpu.filter[0].args[0].val: expected an integer from 0 to 18446744073709551615"));
  EXPECT_THAT(ErrorOf(Condition(R"("type": "qword", "op": "eq", "val": 1.5)")),
              HasSubstr("vcpu.filter[0].args[0].val"));
  EXPECT_THAT(ErrorOf(Condition(R"("type": "dword", "op": "eq", "val": 1, "value": 2)")),
              HasSubstr("unknown field \"value\" in vcpu.filter[0].args[0]"));
  // A qword takes any 64-bit value.
  EXPECT_TRUE(ParseSeccompJson(Condition(R"("type": "qword", "op": "eq", "val": 4294967296)")).ok());
}

TEST(SeccompJsonTest, AProfileNeedsAllThreeRoles) {
  const std::string filter = R"({"default_action": "trap", "filter_action": "allow", "filter": []})";
  auto ok = ParseSeccompProfiles(R"({"vmm": )" + filter + R"(, "api": )" + filter +
                                 R"(, "vcpu": )" + filter + "}");
  EXPECT_TRUE(ok.ok()) << ok.error().message;
  auto missing = ParseSeccompProfiles(R"({"vmm": )" + filter + R"(, "vcpu": )" + filter + "}");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message, HasSubstr("missing thread category \"api\""));
}

TEST(SeccompJsonTest, ProfileFilesMergeTheirRolesOnce) {
  testing::TempDir dir;
  const std::string filter = R"({"default_action": "trap", "filter_action": "allow", "filter": []})";
  const std::string vmm = dir.Write("vmm.json", R"({"vmm": )" + filter + "}");
  const std::string rest = dir.Write("rest.json", R"({"api": )" + filter + R"(, "vcpu": )" + filter + "}");
  auto ok = LoadSeccompProfileFiles({vmm, rest});
  EXPECT_TRUE(ok.ok()) << ok.error().message;
  auto twice = LoadSeccompProfileFiles({vmm, rest, vmm});
  ASSERT_FALSE(twice.ok());
  EXPECT_THAT(twice.error().message, AllOf(HasSubstr(vmm), HasSubstr("\"vmm\" is defined twice")));
  auto missing = LoadSeccompProfilesFile(rest);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message, AllOf(HasSubstr(rest), HasSubstr("missing thread category \"vmm\"")));
}

TEST(SeccompJsonTest, AnAppendedFileAddsRulesToTheRolesItNames) {
  testing::TempDir dir;
  const std::string filter = R"({"default_action": "trap", "filter_action": "allow", "filter": [{"syscall": "read"}]})";
  auto profiles = ParseSeccompProfiles(R"({"vmm": )" + filter + R"(, "api": )" + filter +
                                       R"(, "vcpu": )" + filter + "}");
  ASSERT_TRUE(profiles.ok()) << profiles.error().message;
  const std::string extra = dir.Write("extra.json", R"({"vcpu": {"default_action": "trap",
      "filter_action": "allow", "filter": [{"syscall": "sched_yield"}]}})");
  ASSERT_TRUE(AppendSeccompProfileFile(extra, &*profiles).ok());
  EXPECT_EQ(profiles->vcpu.rules, (std::vector<SeccompRule>{{"read", {}}, {"sched_yield", {}}}));
  EXPECT_EQ(profiles->vmm.rules, (std::vector<SeccompRule>{{"read", {}}}));
  const std::string other = dir.Write("other.json", R"({"api": {"default_action": "kill_process",
      "filter_action": "allow", "filter": []}})");
  Status s = AppendSeccompProfileFile(other, &*profiles);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message,
              AllOf(HasSubstr(other), HasSubstr("the \"api\" filter's actions differ")));
}

TEST(SeccompJsonTest, FilesAreReadAndTheirErrorsNameThem) {
  testing::TempDir dir;
  auto missing = LoadSeccompProfilesFile(dir.path() + "/none.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message,
              AllOf(HasSubstr("cannot read seccomp filter file"), HasSubstr("none.json"),
                    HasSubstr("ENOENT")));
  const std::string bad = dir.Write("bad.json", Filter(R"({"syscall": 1})"));
  auto r = LoadSeccompProfilesFile(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, AllOf(HasSubstr(bad), HasSubstr("vcpu.filter[0].syscall")));
}

// ---- The built-in profiles ------------------------------------------------------------------

// seccomp-profiles/*.json, from the source tree.
const SeccompProfiles& BuiltIn() {
  static const SeccompProfiles profiles = [] {
    const std::string dir = std::string(EMBER_SOURCE_DIR) + "/seccomp-profiles/";
    auto p = LoadSeccompProfileFiles({dir + "vmm.json", dir + "api.json", dir + "vcpu.json"});
    EXPECT_TRUE(p.ok()) << p.error().message;
    return p.ok() ? *p : SeccompProfiles{};
  }();
  return profiles;
}

// What the build embeds: the profiles, plus sanitizers.json in a sanitizer build.
const SeccompProfiles& Embedded() {
  static const SeccompProfiles profiles = [] {
    SeccompProfiles p = BuiltIn();
#if defined(__SANITIZE_ADDRESS__)
    Status s = AppendSeccompProfileFile(
        std::string(EMBER_SOURCE_DIR) + "/seccomp-profiles/sanitizers.json", &p);
    EXPECT_TRUE(s.ok()) << s.error().message;
#endif
    return p;
  }();
  return profiles;
}

const SeccompCondition* ArgCondition(const SeccompRule& rule, uint8_t index) {
  for (const SeccompCondition& c : rule.args) {
    if (c.index == index) return &c;
  }
  return nullptr;
}

TEST(SeccompProfilesTest, TrapWhatIsNotAllowed) {
  for (SeccompRole role : kSeccompRoles) {
    const SeccompFilterConfig& f = BuiltIn()[role];
    EXPECT_EQ(f.default_action, (SeccompAction{Kind::kTrap, 0})) << SeccompRoleName(role);
    EXPECT_EQ(f.filter_action, (SeccompAction{Kind::kAllow, 0})) << SeccompRoleName(role);
    EXPECT_FALSE(f.rules.empty()) << SeccompRoleName(role);
  }
  // KVM_RUN first: the hottest syscall of a vCPU is the first the program tests.
  const SeccompRule& first = BuiltIn().vcpu.rules.at(0);
  EXPECT_EQ(first.syscall, "ioctl");
  ASSERT_NE(ArgCondition(first, 1), nullptr);
  EXPECT_EQ(ArgCondition(first, 1)->value, 0xae80u);
}

TEST(SeccompProfilesTest, ArgumentsAreCheckedWhereTheyMatter) {
  for (SeccompRole role : kSeccompRoles) {
    for (const SeccompRule& rule : BuiltIn()[role].rules) {
      const std::string where = std::string(SeccompRoleName(role)) + ": " + rule.syscall;
      if (rule.syscall == "mmap" || rule.syscall == "mprotect") {
        // Never executable memory: PROT_EXEC (4) must be clear.
        const SeccompCondition* prot = ArgCondition(rule, 2);
        ASSERT_NE(prot, nullptr) << where;
        EXPECT_EQ(prot->op, SeccompOp::kMaskedEq) << where;
        EXPECT_EQ(prot->mask & 4, 4u) << where;
        EXPECT_EQ(prot->value & 4, 0u) << where;
      }
      if (rule.syscall == "ioctl" || rule.syscall == "fcntl" || rule.syscall == "futex" ||
          rule.syscall == "prctl" || rule.syscall == "madvise") {
        EXPECT_FALSE(rule.args.empty()) << where << " allows any request";
      }
      if (rule.syscall == "socket") {
        const SeccompCondition* family = ArgCondition(rule, 0);
        ASSERT_NE(family, nullptr) << where;
        EXPECT_EQ(family->op, SeccompOp::kEq);
        EXPECT_EQ(family->value, 1u) << where << ": AF_UNIX only";
      }
    }
  }
}

TEST(SeccompProfilesTest, NothingThatEscapesIsAllowed) {
  const std::set<std::string> kNever = {
      "execve", "execveat", "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev",
      "kexec_load", "kexec_file_load", "init_module", "finit_module", "mount", "umount2",
      "pivot_root", "chroot", "setns", "unshare", "bpf", "perf_event_open", "open_by_handle_at",
      "setuid", "setgid", "capset", "keyctl", "add_key", "userfaultfd", "io_uring_setup",
      "socketpair", "bind", "listen"};
  for (SeccompRole role : kSeccompRoles) {
    for (const SeccompRule& rule : BuiltIn()[role].rules) {
      EXPECT_EQ(kNever.count(rule.syscall), 0u) << SeccompRoleName(role) << ": " << rule.syscall;
    }
  }
  // Only the API thread starts threads.
  for (SeccompRole role : {SeccompRole::kVmm, SeccompRole::kVcpu}) {
    for (const SeccompRule& rule : BuiltIn()[role].rules) {
      EXPECT_NE(rule.syscall, "clone") << SeccompRoleName(role);
      EXPECT_NE(rule.syscall, "clone3") << SeccompRoleName(role);
    }
  }
}

// A sanitizer build appends sanitizers.json; it must fit whatever the build type.
TEST(SeccompProfilesTest, TheSanitizerAllowancesCompile) {
  SeccompProfiles p = BuiltIn();
  ASSERT_TRUE(AppendSeccompProfileFile(
                  std::string(EMBER_SOURCE_DIR) + "/seccomp-profiles/sanitizers.json", &p)
                  .ok());
  auto filters = CompileSeccompProfiles(p);
  ASSERT_TRUE(filters.ok()) << filters.error().message;
  for (SeccompRole role : kSeccompRoles) {
    EXPECT_LE((*filters)[role].instructions.size(), kMaxBpfInstructions);
  }
}

// The programs in the binary are the JSON in the tree, compiled as --seccomp-filter would be.
TEST(SeccompProfilesTest, TheBinaryCarriesTheTreesProfilesCompiled) {
  auto filters = CompileSeccompProfiles(Embedded());
  ASSERT_TRUE(filters.ok()) << filters.error().message;
  const SeccompFilters built_in = BuiltInSeccompFilters();
  for (SeccompRole role : kSeccompRoles) {
    const std::vector<sock_filter>& want = (*filters)[role].instructions;
    const std::vector<sock_filter>& got = built_in[role].instructions;
    ASSERT_EQ(got.size(), want.size()) << SeccompRoleName(role);
    EXPECT_EQ(memcmp(got.data(), want.data(), want.size() * sizeof(sock_filter)), 0)
        << SeccompRoleName(role);
    EXPECT_LE(got.size(), kMaxBpfInstructions);
  }
}

// ---- The compiler ---------------------------------------------------------------------------

SeccompFilterConfig Config(std::vector<SeccompRule> rules,
                           SeccompAction default_action = {Kind::kErrno, EPERM}) {
  SeccompFilterConfig c;
  c.default_action = default_action;
  c.filter_action = {Kind::kAllow, 0};
  c.rules = std::move(rules);
  return c;
}

TEST(SeccompCompilerTest, ErrorsNameTheRule) {
  auto unknown = CompileSeccompFilter(Config({{"read", {}}, {"no_such_call", {}}}));
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.error().message,
              AllOf(HasSubstr("rule 1 (\"no_such_call\")"), HasSubstr("unknown system call")));
  // socketcall exists on i386, not on x86_64.
  auto foreign = CompileSeccompFilter(Config({{"socketcall", {}}}));
  ASSERT_FALSE(foreign.ok());
  EXPECT_THAT(foreign.error().message, HasSubstr("not a system call on x86_64"));
  auto same = CompileSeccompFilter(Config({{"read", {}}}, {Kind::kAllow, 0}));
  ASSERT_FALSE(same.ok());
  EXPECT_THAT(same.error().message, HasSubstr("the filter action is the default action"));
}

// Runs `body` in a forked child, which may install filters; returns its exit status as
// Subprocess does (the code, or 128 + signal).
int InChild(const std::function<int()>& body) {
  fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    alarm(20);  // a child that hangs is killed, and the test fails
    _exit(body());
  }
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// getppid takes no arguments, but the filter sees whatever the registers hold: a harmless
// syscall to test conditions with.
long Probe(uint64_t a0 = 0, uint64_t a1 = 0) { return syscall(SYS_getppid, a0, a1); }

SeccompRule ProbeRule(std::vector<SeccompCondition> args) { return {"getppid", std::move(args)}; }

// The child's own basics: write for gtest-free reporting, exit_group to end; in a sanitizer
// build also what the sanitizer runtime calls on the way (sanitizers.json, as ember has).
std::vector<SeccompRule> WithBasics(std::vector<SeccompRule> rules) {
  rules.push_back({"exit_group", {}});
  rules.push_back({"write", {}});
#if defined(__SANITIZE_ADDRESS__)
  auto sanitizers =
      LoadSeccompJsonFile(std::string(EMBER_SOURCE_DIR) + "/seccomp-profiles/sanitizers.json");
  EXPECT_TRUE(sanitizers.ok()) << sanitizers.error().message;
  if (sanitizers.ok()) {
    const std::vector<SeccompRule>& extra = sanitizers->at(SeccompRole::kVcpu).rules;
    rules.insert(rules.end(), extra.begin(), extra.end());
  }
#endif
  return rules;
}

// Installs `rules` (default errno EPERM) and returns a bit per probe: 1 = allowed.
int ProbeBits(std::vector<SeccompRule> rules,
              const std::vector<std::pair<uint64_t, uint64_t>>& probes) {
  auto program = CompileSeccompFilter(Config(WithBasics(std::move(rules))));
  EXPECT_TRUE(program.ok()) << program.error().message;
  if (!program.ok()) return -1;
  return InChild([&] {
    if (!InstallSeccompFilter(*program).ok()) return 255;
    int bits = 0;
    for (size_t i = 0; i < probes.size(); ++i) {
      long r = Probe(probes[i].first, probes[i].second);
      if (r > 0) {
        bits |= 1 << i;
      } else if (errno != EPERM) {
        return 254;
      }
    }
    return bits;
  });
}

TEST(SeccompCompilerTest, EveryOperatorAllowsExactlyItsValues) {
  using W = SeccompArgWidth;
  // A dword eq looks at the low 32 bits only (Firecracker's choice: musl leaves garbage above).
  EXPECT_EQ(ProbeBits({ProbeRule({{0, W::kDword, SeccompOp::kEq, 0, 5}})},
                      {{5, 0}, {6, 0}, {0x100000005ull, 0}}),
            0b101);
  EXPECT_EQ(ProbeBits({ProbeRule({{0, W::kQword, SeccompOp::kEq, 0, 5}})},
                      {{5, 0}, {6, 0}, {0x100000005ull, 0}}),
            0b001);
  EXPECT_EQ(ProbeBits({ProbeRule({{0, W::kQword, SeccompOp::kNe, 0, 5}})}, {{5, 0}, {6, 0}}),
            0b10);
  EXPECT_EQ(ProbeBits({ProbeRule({{0, W::kQword, SeccompOp::kLt, 0, 5}})}, {{4, 0}, {5, 0}, {6, 0}}),
            0b001);
  EXPECT_EQ(ProbeBits({ProbeRule({{0, W::kQword, SeccompOp::kLe, 0, 5}})}, {{4, 0}, {5, 0}, {6, 0}}),
            0b011);
  EXPECT_EQ(ProbeBits({ProbeRule({{0, W::kQword, SeccompOp::kGt, 0, 5}})}, {{4, 0}, {5, 0}, {6, 0}}),
            0b100);
  EXPECT_EQ(ProbeBits({ProbeRule({{0, W::kQword, SeccompOp::kGe, 0, 5}})}, {{4, 0}, {5, 0}, {6, 0}}),
            0b110);
  // PROT_EXEC clear: (arg & 4) == 0.
  EXPECT_EQ(ProbeBits({ProbeRule({{1, W::kDword, SeccompOp::kMaskedEq, 4, 0}})},
                      {{0, 3}, {0, 7}, {0, 4}, {0, 0}}),
            0b1001);
}

TEST(SeccompCompilerTest, ConditionsAndAndRulesOr) {
  using W = SeccompArgWidth;
  const SeccompCondition a0_is_1{0, W::kDword, SeccompOp::kEq, 0, 1};
  const SeccompCondition a1_is_2{1, W::kDword, SeccompOp::kEq, 0, 2};
  const SeccompCondition a0_is_7{0, W::kDword, SeccompOp::kEq, 0, 7};
  EXPECT_EQ(ProbeBits({ProbeRule({a0_is_1, a1_is_2}), ProbeRule({a0_is_7})},
                      {{1, 2}, {1, 3}, {0, 2}, {7, 9}, {8, 2}}),
            0b01001);
}

TEST(SeccompCompilerTest, NoNewPrivsIsSetWithTheFilter) {
  auto program = CompileSeccompFilter(Config(WithBasics({{"prctl", {}}})));
  ASSERT_TRUE(program.ok()) << program.error().message;
  EXPECT_EQ(InChild([&] {
              if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 0) return 1;
              if (!InstallSeccompFilter(*program).ok()) return 2;
              if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) return 3;
              if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 2) return 4;
              return 0;
            }),
            0);
}

// ---- Per-thread install and the SIGSYS handler ---------------------------------------------

// The same program for every role.
SeccompFilters Everywhere(const BpfProgram& program) { return {program, program, program}; }

TEST(SeccompThreadTest, NothingIsInstalledUntilEnabled) {
  EXPECT_EQ(InChild([] {
              if (SeccompFiltersEnabled()) return 1;
              if (!ApplySeccompFilter(SeccompRole::kVcpu, "t").ok()) return 2;
              return prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 0 ? 0 : 3;
            }),
            0);
}

TEST(SeccompThreadTest, EnsureKeepsAnInheritedFilter) {
  // prctl is allowed, seccomp(2) is not: a second install would fail with EPERM.
  auto program = CompileSeccompFilter(Config(WithBasics({{"prctl", {}}})));
  ASSERT_TRUE(program.ok()) << program.error().message;
  EXPECT_EQ(InChild([&] {
              if (!EnableSeccompFilters(Everywhere(*program)).ok()) return 1;
              if (!EnsureSeccompFilter(SeccompRole::kApi, "api").ok()) return 2;  // installs
              if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 2) return 3;
              if (!EnsureSeccompFilter(SeccompRole::kApi, "api").ok()) return 4;  // keeps
              return ApplySeccompFilter(SeccompRole::kApi, "api").ok() ? 5 : 0;  // cannot stack
            }),
            0);
}

TEST(SeccompThreadTest, AViolationLogsTheSyscallAndThreadAndExits148) {
  auto program = CompileSeccompFilter(Config(WithBasics({}), {Kind::kTrap, 0}));
  ASSERT_TRUE(program.ok()) << program.error().message;
  int pipe_fds[2];
  ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  const int code = InChild([&] {
    close(pipe_fds[0]);
    if (!EnableSeccompFilters(Everywhere(*program)).ok()) return 1;
    SetSeccompViolationLog(pipe_fds[1], "unit-vm");
    if (!ApplySeccompFilter(SeccompRole::kVcpu, "ember_vcpu 3").ok()) return 2;
    Probe(0x2a, 0x80000);  // getppid is not allowed: SIGSYS
    return 3;
  });
  close(pipe_fds[1]);
  std::string line;
  char buf[512];
  for (ssize_t n; (n = read(pipe_fds[0], buf, sizeof(buf))) > 0;) line.append(buf, n);
  close(pipe_fds[0]);
  EXPECT_EQ(code, kExitBadSyscall);
  EXPECT_THAT(line, AllOf(HasSubstr("[unit-vm:ember_vcpu 3:ERROR]"),
                          HasSubstr("Shutting down VM after intercepting a bad syscall (110)"),
                          HasSubstr("getppid(0x2a, 0x80000, "),
                          HasSubstr("on thread \"ember_vcpu 3\" (vcpu filter)")));
  EXPECT_EQ(line.back(), '\n');
}

TEST(SeccompThreadTest, SyscallNamesComeFromTheKernelHeaders) {
  EXPECT_STREQ(SyscallName(0), "read");
  EXPECT_STREQ(SyscallName(41), "socket");
  EXPECT_STREQ(SyscallName(SYS_clone3), "clone3");
  EXPECT_EQ(SyscallName(-1), nullptr);
  EXPECT_EQ(SyscallName(100000), nullptr);
}

}  // namespace
}  // namespace ember

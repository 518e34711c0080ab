// Seccomp in the real binary: every ember thread runs under its role's filter once the VM runs
// (checked in /proc), --no-seccomp turns them off, --seccomp-filter takes a custom JSON profile,
// and a forbidden syscall on each thread role (bin/ember-seccomp-selftest, whose test hook makes
// the chosen role call socket(AF_INET)) ends the process with exit code 148, a log line naming the
// syscall and the thread, and seccomp.num_faults in the last metrics line.
#include <dirent.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>

#include "tests/integration/ember_runner.h"
#include "tests/support/api_client.h"

namespace ember::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kExitBadSyscall = 148;

std::string SelftestBinary() {
  const char* env = getenv("EMBER_SECCOMP_SELFTEST_BIN");
  return env ? env : BuildPath("bin/ember-seccomp-selftest");
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The value of `field` in /proc/<pid>/task/<tid>/status, per thread name.
struct ThreadStatus {
  std::string name;
  std::string seccomp;
  std::string no_new_privs;
};

// The rest of the line after "<field>:" and blanks ("ember_vcpu 0" keeps its space).
std::string StatusField(const std::string& status, const std::string& field) {
  std::smatch m;
  const std::regex re(field + ":[ \\t]*([^\\n]*)");
  return std::regex_search(status, m, re) ? m[1].str() : "";
}

std::vector<ThreadStatus> Threads(pid_t pid) {
  std::vector<ThreadStatus> threads;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (!d) return threads;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string status = ReadFile(dir + "/" + e->d_name + "/status");
    if (status.empty()) continue;  // the thread just ended
    threads.push_back({StatusField(status, "Name"), StatusField(status, "Seccomp"),
                       StatusField(status, "NoNewPrivs")});
  }
  closedir(d);
  return threads;
}

std::string Describe(const std::vector<ThreadStatus>& threads) {
  std::string out;
  for (const ThreadStatus& t : threads)
    out += t.name + ": Seccomp " + t.seccomp + ", NoNewPrivs " + t.no_new_privs + "\n";
  return out;
}

// Waits (a condition with a timeout, never a fixed sleep) until `done(threads)` holds.
bool WaitForThreads(Subprocess& proc, const std::function<bool(const std::vector<ThreadStatus>&)>& done,
                    std::chrono::milliseconds timeout, std::vector<ThreadStatus>* last) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    *last = Threads(proc.pid());
    if (done(*last)) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    // Reading the output is the pause between two looks.
    proc.WaitFor([](const std::string&, const std::string&) { return false; }, milliseconds(20));
  }
}

// An ember serving its API in a fresh directory, optionally the selftest binary.
class ApiEmber {
 public:
  explicit ApiEmber(std::vector<std::string> extra_args = {}, std::string binary = EmberBinary())
      : sock_(dir_.path() + "/api.sock") {
    std::vector<std::string> argv = {std::move(binary), "--api-sock", sock_, "--id", "seccomp-vm"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    proc_ = std::make_unique<Subprocess>(argv);
  }
  bool WaitReady() { return ApiClient(sock_).WaitUntilAccepting(seconds(10)); }
  Subprocess& proc() { return *proc_; }
  const TempDir& dir() const { return dir_; }
  ApiClient client() const { return ApiClient(sock_); }
  int Status(const std::string& method, const std::string& path, const std::string& body = "") {
    std::optional<ApiReply> r = client().Request(method, path, body);
    return r ? r->status : 0;
  }
  // Boots the probe's ticks scenario (it runs until Ctrl-Alt-Del).
  bool BootTicks(int vcpus = 1) {
    return Status("PUT", "/boot-source",
                  "{\"kernel_image_path\": \"" + GuestImage("probe.elf") +
                      "\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 probe=ticks\"}") ==
               204 &&
           Status("PUT", "/machine-config",
                  StrFormat(R"({"vcpu_count": %d, "mem_size_mib": 128})", vcpus)) == 204 &&
           Status("PUT", "/actions", R"({"action_type": "InstanceStart"})") == 204;
  }

 private:
  static std::string StrFormat(const char* fmt, int v) {
    char buf[128];
    snprintf(buf, sizeof(buf), fmt, v);
    return buf;
  }
  TempDir dir_;
  std::string sock_;
  std::unique_ptr<Subprocess> proc_;
};

// Sets an environment variable for the processes a test starts, and unsets it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

// --- Filters on every thread ---------------------------------------------------------------

TEST(SeccompTest, EveryThreadIsFilteredOnceTheVmRuns) {
  REQUIRE_KVM();
  ApiEmber vm;
  ASSERT_TRUE(vm.WaitReady()) << vm.proc().err();
  // Before boot the API thread is filtered, the main thread (it builds the VM) not yet.
  std::vector<ThreadStatus> threads = Threads(vm.proc().pid());
  for (const ThreadStatus& t : threads) {
    EXPECT_EQ(t.seccomp, t.name == "api" ? "2" : "0") << Describe(threads);
  }
  ASSERT_TRUE(vm.BootTicks(2)) << vm.proc().err();
  ASSERT_TRUE(vm.proc().WaitForStdout("probe: tick 2", seconds(60))) << vm.proc().out();
  // A few requests at once so that the API runs worker threads too.
  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) fds.push_back(vm.client().Connect());
  EXPECT_EQ(vm.Status("GET", "/"), 200);
  std::map<std::string, int> names;
  const bool all = WaitForThreads(
      vm.proc(),
      [&](const std::vector<ThreadStatus>& ts) {
        names.clear();
        for (const ThreadStatus& t : ts) {
          if (t.seccomp != "2" || t.no_new_privs != "1") return false;
          names[t.name]++;
        }
        return names["ember_vcpu 0"] == 1 && names["ember_vcpu 1"] == 1 && names["api"] >= 2;
      },
      seconds(20), &threads);
  for (int fd : fds) close(fd);
  EXPECT_TRUE(all) << Describe(threads);
  // The main (VMM) thread keeps the executable's name.
  EXPECT_EQ(names["ember"], 1) << Describe(threads);

  ASSERT_EQ(vm.Status("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})"), 204);
  std::optional<int> code = vm.proc().WaitExit(seconds(60));
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 0) << vm.proc().err();
}

TEST(SeccompTest, NoSeccompLeavesEveryThreadUnfiltered) {
  REQUIRE_KVM();
  ApiEmber vm({"--no-seccomp"});
  ASSERT_TRUE(vm.WaitReady()) << vm.proc().err();
  ASSERT_TRUE(vm.BootTicks()) << vm.proc().err();
  ASSERT_TRUE(vm.proc().WaitForStdout("probe: tick 2", seconds(60))) << vm.proc().out();
  std::vector<ThreadStatus> threads = Threads(vm.proc().pid());
  EXPECT_GE(threads.size(), 3u) << Describe(threads);
  for (const ThreadStatus& t : threads) EXPECT_EQ(t.seccomp, "0") << Describe(threads);
  ASSERT_EQ(vm.Status("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})"), 204);
  EXPECT_EQ(vm.proc().WaitExit(seconds(60)), std::optional<int>(0)) << vm.proc().err();
}

// --- --seccomp-filter ------------------------------------------------------------------------

// A custom profile that allows everything but `trapped` on the API thread.
std::string AllowAllBut(const std::string& trapped) {
  const std::string allow_all =
      R"({"default_action": "allow", "filter_action": "trap", "filter": [{"syscall": "ptrace"}]})";
  return R"({"vmm": )" + allow_all + R"(, "vcpu": )" + allow_all +
         R"(, "api": {"default_action": "allow", "filter_action": "trap", "filter": [{"syscall": ")" +
         trapped + R"("}]}})";
}

TEST(SeccompTest, ACustomProfileReplacesTheBuiltInOne) {
  TempDir dir;
  const std::string profile = dir.Write("profile.json", AllowAllBut("accept"));
  ApiEmber vm({"--seccomp-filter", profile});
  // Connecting makes the API thread accept(2), which this profile traps.
  const auto deadline = std::chrono::steady_clock::now() + seconds(10);
  for (int fd = -1; fd < 0 && std::chrono::steady_clock::now() < deadline;) {
    fd = vm.client().Connect();
    if (fd >= 0) {
      close(fd);
    } else {
      vm.proc().WaitFor([](const std::string&, const std::string&) { return false; },
                        milliseconds(20));
    }
  }
  std::optional<int> code = vm.proc().WaitExit(seconds(30));
  ASSERT_TRUE(code) << vm.proc().err();
  EXPECT_EQ(*code, kExitBadSyscall) << vm.proc().err();
  EXPECT_NE(vm.proc().err().find("bad syscall (43): accept("), std::string::npos) << vm.proc().err();
  EXPECT_NE(vm.proc().err().find("on thread \"api\" (api filter)"), std::string::npos)
      << vm.proc().err();
}

TEST(SeccompTest, ABadCustomProfileStopsTheStart) {
  TempDir dir;
  RunResult missing = RunEmber({"--api-sock", dir.path() + "/a.sock", "--seccomp-filter",
                                dir.path() + "/none.json"});
  ASSERT_TRUE(missing.exit_code);
  EXPECT_EQ(*missing.exit_code, 1);
  EXPECT_NE(missing.err.find("cannot read seccomp filter file " + dir.path() + "/none.json"),
            std::string::npos)
      << missing.err;

  const std::string bad = dir.Write("bad.json", R"({"vmm": {"default_action": "trap",
      "filter_action": "allow", "filter": [{"syscall": "no_such_call"}]}, "api": {
      "default_action": "trap", "filter_action": "allow", "filter": []}, "vcpu": {
      "default_action": "trap", "filter_action": "allow", "filter": []}})");
  RunResult r = RunEmber({"--api-sock", dir.path() + "/a.sock", "--seccomp-filter", bad});
  ASSERT_TRUE(r.exit_code);
  EXPECT_EQ(*r.exit_code, 1);
  EXPECT_NE(r.err.find("invalid seccomp filters"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("\"vmm\": rule 0 (\"no_such_call\"): unknown system call"),
            std::string::npos)
      << r.err;
  // Nothing was served.
  EXPECT_FALSE(ApiClient(dir.path() + "/a.sock").Get("/"));

  RunResult both = RunEmber({"--no-seccomp", "--seccomp-filter", bad});
  ASSERT_TRUE(both.exit_code);
  EXPECT_EQ(*both.exit_code, 153) << both.err;
}

// --- A violation on each thread role ---------------------------------------------------------

void ExpectViolation(Subprocess& proc, const std::string& thread, const std::string& role) {
  std::optional<int> code = proc.WaitExit(seconds(60));
  ASSERT_TRUE(code) << proc.out() << proc.err();
  EXPECT_EQ(*code, kExitBadSyscall) << proc.err();
  // socket(AF_INET, SOCK_STREAM, 0)
  EXPECT_NE(proc.err().find("Shutting down VM after intercepting a bad syscall (41): socket(0x2, 0x1, 0x0"),
            std::string::npos)
      << proc.err();
  EXPECT_NE(proc.err().find("on thread \"" + thread + "\" (" + role + " filter)"), std::string::npos)
      << proc.err();
}

TEST(SeccompTest, AForbiddenSyscallOnTheApiThreadExits148) {
  ScopedEnv env("EMBER_SECCOMP_SELFTEST", "api");
  ApiEmber vm({}, SelftestBinary());
  ExpectViolation(vm.proc(), "api", "api");
}

TEST(SeccompTest, AForbiddenSyscallOnAVcpuThreadExits148) {
  REQUIRE_KVM();
  ScopedEnv env("EMBER_SECCOMP_SELFTEST", "vcpu");
  TempDir dir;
  ProbeVm probe;
  probe.boot_args = "probe=ticks";
  const std::string config = WriteProbeConfig(dir, probe);
  Subprocess proc({SelftestBinary(), "--no-api", "--config-file", config});
  ExpectViolation(proc, "ember_vcpu 0", "vcpu");
}

TEST(SeccompTest, AForbiddenSyscallOnTheVmmThreadExits148AndCountsIt) {
  REQUIRE_KVM();
  ScopedEnv env("EMBER_SECCOMP_SELFTEST", "vmm");
  TempDir dir;
  ProbeVm probe;
  probe.boot_args = "probe=ticks";
  const std::string config = WriteProbeConfig(dir, probe);
  const std::string metrics = dir.path() + "/metrics.json";
  const std::string log = dir.path() + "/ember.log";
  Subprocess proc({SelftestBinary(), "--no-api", "--config-file", config, "--metrics-path",
                   metrics, "--log-path", log, "--id", "selftest-vm"});
  ExpectViolation(proc, "vmm", "vmm");
  // The line also went to the log, with the instance id; the handler wrote a last metrics line.
  EXPECT_NE(ReadFile(log).find("[selftest-vm:vmm:ERROR] Shutting down VM after intercepting a bad "
                               "syscall (41)"),
            std::string::npos)
      << ReadFile(log);
  const std::string lines = ReadFile(metrics);
  const std::string last = lines.substr(lines.rfind('\n', lines.size() - 2) + 1);
  EXPECT_TRUE(std::regex_search(last, std::regex("\"seccomp\":\\s*\\{\"num_faults\":\\s*1\\}")))
      << last;
}

}  // namespace
}  // namespace ember::testing

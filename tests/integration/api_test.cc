// ember driven through its REST API alone, as Firecracker's clients drive Firecracker: the
// getting-started sequence in curl's wire format, pause and resume of a running guest,
// Ctrl-Alt-Del, a drive swapped under a running guest, and the configuration round trip through
// GET /vm/config and --config-file. ApiPreBootTest needs no KVM (nothing is booted); ApiTest
// boots the probe guest.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>

#include "tests/integration/ember_runner.h"
#include "tests/support/api_client.h"
#include "vmm/base/strings.h"

namespace ember::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// An ember process serving its API on a socket in a fresh directory.
class ApiVm {
 public:
  explicit ApiVm(std::vector<std::string> extra_args = {}) : sock_(dir_.path() + "/api.sock") {
    std::vector<std::string> argv = {EmberBinary(), "--api-sock", sock_, "--id", "api-test-vm"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    proc_ = std::make_unique<Subprocess>(argv);
    ready_ = ApiClient(sock_).WaitUntilAccepting(seconds(10));
  }

  bool ready() const { return ready_; }
  const TempDir& dir() const { return dir_; }
  const std::string& sock() const { return sock_; }
  Subprocess& proc() { return *proc_; }
  ApiClient client() const { return ApiClient(sock_); }

  ApiReply Call(const std::string& method, const std::string& path, const std::string& body = "") {
    std::optional<ApiReply> r = client().Request(method, path, body);
    EXPECT_TRUE(r) << method << " " << path << ": no reply; stderr:\n" << proc_->err();
    return r.value_or(ApiReply{});
  }

  // PUTs the probe's boot source with `scenario` on the command line.
  void PutProbeBootSource(const std::string& scenario) {
    ApiReply r = Call("PUT", "/boot-source",
                      "{\"kernel_image_path\": \"" + GuestImage("probe.elf") +
                          "\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 probe=" +
                          scenario + "\"}");
    EXPECT_EQ(r.status, 204) << r.body;
  }

  int TicksSeen() const { return CountLines(proc_->out(), "probe: tick "); }

 private:
  TempDir dir_;
  std::string sock_;
  std::unique_ptr<Subprocess> proc_;
  bool ready_ = false;
};

std::string StateOf(const ApiReply& r) {
  std::smatch m;
  static const std::regex kState("\"state\"\\s*:\\s*\"([^\"]*)\"");
  return std::regex_search(r.body, m, kState) ? m[1].str() : "";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// --- Before boot: no KVM needed ---

TEST(ApiPreBootTest, InstanceInfoAndMachineConfigAnswerAtOnce) {
  ApiVm vm;
  ASSERT_TRUE(vm.ready()) << vm.proc().err();
  ApiReply r = vm.Call("GET", "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"app_name\":\"ember\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"id\":\"api-test-vm\""), std::string::npos) << r.body;
  EXPECT_EQ(StateOf(r), "Not started");
  r = vm.Call("GET", "/machine-config");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"vcpu_count\":1"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"mem_size_mib\":128"), std::string::npos) << r.body;
  r = vm.Call("GET", "/version");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("firecracker_version"), std::string::npos) << r.body;
}

TEST(ApiPreBootTest, ARejectedRequestChangesNothing) {
  ApiVm vm;
  ASSERT_TRUE(vm.ready()) << vm.proc().err();
  EXPECT_EQ(vm.Call("PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 256})").status,
            204);
  const std::string before = vm.Call("GET", "/vm/config").body;
  ApiReply r = vm.Call("PUT", "/machine-config", R"({"vcpu_count": 0, "mem_size_mib": 64})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("fault_message"), std::string::npos);
  r = vm.Call("PATCH", "/machine-config", R"({"mem_size_mib": "lots"})");
  EXPECT_EQ(r.status, 400);
  // A drive whose file does not exist is refused when it is PUT, as Firecracker does.
  r = vm.Call("PUT", "/drives/rootfs",
              R"({"drive_id": "rootfs", "path_on_host": "/nonexistent.img", "is_root_device": true,
                  "is_read_only": false})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("/nonexistent.img"), std::string::npos) << r.body;
  // Two root devices: the second is refused, the first stays.
  std::string a = MakeProbeImage(vm.dir(), "a.img", 4096);
  std::string b = MakeProbeImage(vm.dir(), "b.img", 4096);
  EXPECT_EQ(vm.Call("PUT", "/drives/a",
                    "{\"drive_id\": \"a\", \"path_on_host\": \"" + a +
                        "\", \"is_root_device\": true, \"is_read_only\": false}")
                .status,
            204);
  const std::string with_a = vm.Call("GET", "/vm/config").body;
  r = vm.Call("PUT", "/drives/b",
              "{\"drive_id\": \"b\", \"path_on_host\": \"" + b +
                  "\", \"is_root_device\": true, \"is_read_only\": false}");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(vm.Call("GET", "/vm/config").body, with_a);
  EXPECT_NE(with_a, before);
  EXPECT_NE(with_a.find("\"vcpu_count\":2"), std::string::npos) << with_a;
}

TEST(ApiPreBootTest, RuntimeRequestsBeforeBootAreRefused) {
  ApiVm vm;
  ASSERT_TRUE(vm.ready()) << vm.proc().err();
  ApiReply r = vm.Call("PATCH", "/vm", R"({"state": "Paused"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("not supported before starting the microVM"), std::string::npos)
      << r.body;
  r = vm.Call("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})");
  EXPECT_EQ(r.status, 400);
  r = vm.Call("PUT", "/actions", R"({"action_type": "InstanceStart"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("without kernel configuration"), std::string::npos) << r.body;
  EXPECT_EQ(StateOf(vm.Call("GET", "/")), "Not started");
}

TEST(ApiPreBootTest, DeprecatedFieldsAreAcceptedWithADeprecationHeader) {
  ApiVm vm;
  ASSERT_TRUE(vm.ready()) << vm.proc().err();
  ApiReply r = vm.Call("PUT", "/vsock",
                       "{\"vsock_id\": \"vsock0\", \"guest_cid\": 3, \"uds_path\": \"" +
                           vm.dir().path() + "/v.sock\"}");
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_TRUE(r.HasHeader("deprecation")) << r.headers;
  r = vm.Call("PUT", "/vsock",
              "{\"guest_cid\": 3, \"uds_path\": \"" + vm.dir().path() + "/v.sock\"}");
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_FALSE(r.HasHeader("deprecation")) << r.headers;
}

TEST(ApiPreBootTest, ALiveSocketIsNotTakenOver) {
  ApiVm vm;
  ASSERT_TRUE(vm.ready()) << vm.proc().err();
  RunResult second = RunEmber({"--api-sock", vm.sock()}, "", seconds(20));
  ASSERT_TRUE(second.exit_code);
  EXPECT_EQ(*second.exit_code, 1);
  EXPECT_NE(second.err.find("in use"), std::string::npos) << second.err;
  EXPECT_EQ(vm.Call("GET", "/").status, 200);
}

// --- Booted through the API ---

TEST(ApiTest, GettingStartedSequenceBootsTheProbe) {
  REQUIRE_KVM();
  ApiVm vm;
  ASSERT_TRUE(vm.ready()) << vm.proc().err();
  constexpr uint64_t kBytes = 64 * 1024;
  std::string image = MakeProbeImage(vm.dir(), "rootfs.img", kBytes);
  EXPECT_EQ(vm.Call("PUT", "/logger",
                    "{\"log_path\": \"" + vm.dir().path() +
                        "/ember.log\", \"level\": \"Info\", \"show_level\": true}")
                .status,
            204);
  vm.PutProbeBootSource("boot,blk");
  EXPECT_EQ(vm.Call("PUT", "/drives/rootfs",
                    "{\"drive_id\": \"rootfs\", \"path_on_host\": \"" + image +
                        "\", \"is_root_device\": true, \"is_read_only\": false}")
                .status,
            204);
  EXPECT_EQ(vm.Call("PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 128})").status,
            204);
  ApiReply r = vm.Call("PUT", "/actions", R"({"action_type": "InstanceStart"})");
  EXPECT_EQ(r.status, 204) << r.body;
  std::optional<int> code = vm.proc().WaitExit(seconds(60));
  ASSERT_TRUE(code) << vm.proc().out() << vm.proc().err();
  EXPECT_EQ(*code, 0) << vm.proc().out() << vm.proc().err();
  EXPECT_EQ(CountLines(vm.proc().out(), "probe: done passed=2 failed=0"), 1) << vm.proc().out();
  EXPECT_NE(vm.proc().out().find(" root=/dev/vda rw"), std::string::npos) << vm.proc().out();
  // The logger went where PUT /logger said, with levels shown.
  std::string log = ReadFile(vm.dir().path() + "/ember.log");
  EXPECT_NE(log.find(":INFO]"), std::string::npos) << log;
  // The socket is gone with the process.
  EXPECT_FALSE(vm.client().Get("/"));
}

TEST(ApiTest, PauseStopsTheGuestAndResumeContinuesIt) {
  REQUIRE_KVM();
  ApiVm vm;
  ASSERT_TRUE(vm.ready()) << vm.proc().err();
  vm.PutProbeBootSource("ticks");
  ASSERT_EQ(vm.Call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  EXPECT_EQ(StateOf(vm.Call("GET", "/")), "Running");
  ASSERT_TRUE(vm.proc().WaitForStdout("probe: tick 3", seconds(60)))
      << vm.proc().out() << vm.proc().err();

  // A runtime PUT of pre-boot configuration is refused.
  ApiReply r = vm.Call("PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 128})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("not supported after starting the microVM"), std::string::npos) << r.body;
  EXPECT_EQ(vm.Call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 400);

  ASSERT_EQ(vm.Call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
  EXPECT_EQ(StateOf(vm.Call("GET", "/")), "Paused");
  // Everything the guest printed before it was parked is in the pipe by now.
  vm.proc().WaitFor([](const std::string&, const std::string&) { return false; }, milliseconds(50));
  const int paused_at = vm.TicksSeen();
  // Paused: no tick may appear. Absence needs a window; 10 tick periods of guest time.
  EXPECT_FALSE(vm.proc().WaitForStdout(StrFormat("probe: tick %d\n", paused_at + 1), seconds(1)))
      << "the guest ran while paused";
  EXPECT_EQ(vm.TicksSeen(), paused_at);

  ASSERT_EQ(vm.Call("PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
  EXPECT_EQ(StateOf(vm.Call("GET", "/")), "Running");
  EXPECT_TRUE(vm.proc().WaitForStdout(StrFormat("probe: tick %d\n", paused_at + 2), seconds(30)))
      << vm.proc().out();

  ASSERT_EQ(vm.Call("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
  std::optional<int> code = vm.proc().WaitExit(seconds(60));
  ASSERT_TRUE(code) << vm.proc().out();
  EXPECT_EQ(*code, 0) << vm.proc().out() << vm.proc().err();
  EXPECT_EQ(CountLines(vm.proc().out(), "probe: ctrl-alt-del"), 1) << vm.proc().out();
  EXPECT_EQ(CountLines(vm.proc().out(), "probe: done passed=1 failed=0"), 1) << vm.proc().out();
}

TEST(ApiTest, MetricsLinesAtStartOnFlushAndAtExit) {
  REQUIRE_KVM();
  ApiVm vm;
  ASSERT_TRUE(vm.ready()) << vm.proc().err();
  const std::string path = vm.dir().path() + "/metrics.json";
  ASSERT_EQ(vm.Call("PUT", "/metrics", "{\"metrics_path\": \"" + path + "\"}").status, 204);
  // Once only, as Firecracker.
  ApiReply r = vm.Call("PUT", "/metrics", "{\"metrics_path\": \"" + path + "\"}");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("Reinitialization of metrics not allowed"), std::string::npos) << r.body;
  vm.PutProbeBootSource("ticks");
  ASSERT_EQ(vm.Call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  ASSERT_TRUE(vm.proc().WaitForStdout("probe: tick 1", seconds(60))) << vm.proc().out();
  ASSERT_EQ(vm.Call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
  ASSERT_EQ(vm.Call("PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
  ASSERT_EQ(vm.Call("PUT", "/actions", R"({"action_type": "FlushMetrics"})").status, 204);

  std::vector<std::string> lines;
  {
    std::istringstream in(ReadFile(path));
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  // One line at InstanceStart, one for FlushMetrics.
  ASSERT_EQ(lines.size(), 2u) << ReadFile(path);
  for (const char* group : {"\"api_server\"", "\"put_api_requests\"", "\"vcpu\"", "\"uart\"",
                            "\"i8042\"", "\"latencies_us\"", "\"logger\"", "\"seccomp\""}) {
    EXPECT_NE(lines[0].find(group), std::string::npos) << group << " in " << lines[0];
  }
  EXPECT_EQ(lines[0].front(), '{');
  EXPECT_EQ(lines[0].back(), '}');
  // The start-up time is known from the first line on.
  EXPECT_EQ(lines[0].find("\"process_startup_time_us\":0,"), std::string::npos) << lines[0];
  // The second line has the pause and resume, and counts only what happened since the first:
  // the InstanceStart went into the first line, FlushMetrics into the second.
  EXPECT_EQ(lines[1].find("\"pause_vm\":0,"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("\"actions_count\":1,"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("\"exit_io_out\":"), std::string::npos) << lines[1];
  EXPECT_EQ(lines[1].find("\"exit_io_out\":0,"), std::string::npos) << "the guest printed ticks";

  ASSERT_EQ(vm.Call("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
  std::optional<int> code = vm.proc().WaitExit(seconds(60));
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 0) << vm.proc().err();
  // And a last line at exit.
  EXPECT_EQ(CountLines(ReadFile(path), "utc_timestamp_ms"), 3) << ReadFile(path);
}

TEST(ApiTest, PatchDriveSwapsTheBackingFileOfARunningGuest) {
  REQUIRE_KVM();
  ApiVm vm;
  ASSERT_TRUE(vm.ready()) << vm.proc().err();
  std::string first = MakeProbeImage(vm.dir(), "first.img", 4096);
  // The new image is twice the size and its bytes inverted, so the guest can tell it apart.
  std::string inverted(8192, '\0');
  for (uint64_t o = 0; o < inverted.size(); o++)
    inverted[o] = static_cast<char>(ProbeImageByte(o) ^ 0xff);
  std::string second = vm.dir().Write("second.img", inverted);
  vm.PutProbeBootSource("blk-swap");
  ASSERT_EQ(vm.Call("PUT", "/drives/scratch",
                    "{\"drive_id\": \"scratch\", \"path_on_host\": \"" + first +
                        "\", \"is_root_device\": false, \"is_read_only\": true}")
                .status,
            204);
  ASSERT_EQ(vm.Call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  ASSERT_TRUE(vm.proc().WaitForStdout("probe: blk-swap waiting", seconds(60)))
      << vm.proc().out() << vm.proc().err();
  EXPECT_EQ(CountLines(vm.proc().out(), "probe: blk-swap capacity 8"), 1) << vm.proc().out();
  EXPECT_EQ(CountLines(vm.proc().out(), "probe: blk-swap sector0 1112131415161718"), 1);

  // Refused without touching the drive: a file that does not exist, a drive that does not.
  EXPECT_EQ(vm.Call("PATCH", "/drives/scratch",
                    R"({"drive_id": "scratch", "path_on_host": "/nonexistent.img"})")
                .status,
            400);
  EXPECT_EQ(vm.Call("PATCH", "/drives/nosuch", R"({"drive_id": "nosuch", "path_on_host": "/x"})")
                .status,
            400);
  ApiReply r = vm.Call("PATCH", "/drives/scratch",
                       R"({"drive_id": "scratch", "rate_limiter": {"bandwidth": {"size": 1048576,
                           "refill_time": 100}}})");
  EXPECT_EQ(r.status, 204) << r.body;
  const std::string config = vm.Call("GET", "/vm/config").body;
  EXPECT_NE(config.find("1048576"), std::string::npos) << config;

  r = vm.Call("PATCH", "/drives/scratch",
              "{\"drive_id\": \"scratch\", \"path_on_host\": \"" + second + "\"}");
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_NE(vm.Call("GET", "/vm/config").body.find(second), std::string::npos);

  // The guest took the configuration-change interrupt and now reads the new file, past the
  // old end (resources/probe: scenario blk-swap).
  std::optional<int> code = vm.proc().WaitExit(seconds(60));
  ASSERT_TRUE(code) << vm.proc().out();
  EXPECT_EQ(*code, 0) << vm.proc().out() << vm.proc().err();
  const std::string& out = vm.proc().out();
  EXPECT_EQ(CountLines(out, "probe: blk-swap changed capacity 16"), 1) << out;
  EXPECT_EQ(CountLines(out, "probe: blk-swap sector0 eeedecebeae9e8e7"), 1) << out;
  EXPECT_EQ(CountLines(out, "probe: blk-swap last-sector 15 1d1c1b1a19181716"), 1) << out;
  EXPECT_EQ(CountLines(out, "probe: done passed=1 failed=0"), 1) << out;
}

TEST(ApiTest, VmConfigRoundTripsThroughAConfigFile) {
  REQUIRE_KVM();
  ApiVm vm;
  ASSERT_TRUE(vm.ready()) << vm.proc().err();
  std::string image = MakeProbeImage(vm.dir(), "rootfs.img", 64 * 1024);
  vm.PutProbeBootSource("boot,blk");
  ASSERT_EQ(vm.Call("PUT", "/drives/rootfs",
                    "{\"drive_id\": \"rootfs\", \"path_on_host\": \"" + image +
                        "\", \"is_root_device\": true, \"is_read_only\": false, "
                        "\"rate_limiter\": {\"ops\": {\"size\": 1000, \"refill_time\": 100}}}")
                .status,
            204);
  ASSERT_EQ(vm.Call("PUT", "/machine-config",
                    R"({"vcpu_count": 2, "mem_size_mib": 96, "track_dirty_pages": true})")
                .status,
            204);
  ASSERT_EQ(vm.Call("PUT", "/entropy", R"({})").status, 204);
  ApiReply config = vm.Call("GET", "/vm/config");
  ASSERT_EQ(config.status, 200);
  std::string path = vm.dir().Write("round-trip.json", config.body);

  // The same configuration from the file boots the same guest...
  RunResult booted = RunEmber({"--no-api", "--config-file", path});
  ASSERT_TRUE(booted.exit_code) << booted.err;
  EXPECT_EQ(*booted.exit_code, 0) << booted.out << booted.err;
  EXPECT_EQ(CountLines(booted.out, "probe: done passed=2 failed=0"), 1) << booted.out;
  EXPECT_NE(booted.out.find(" root=/dev/vda rw"), std::string::npos) << booted.out;

  // ...and, served with the API too, reads back identically.
  ApiVm again({"--config-file", path});
  ASSERT_TRUE(again.ready()) << again.proc().err();
  std::optional<ApiReply> back = again.client().Get("/vm/config");
  if (back) {  // the probe may already have finished and taken the socket with it
    EXPECT_EQ(back->body, config.body);
  }
  std::optional<int> code = again.proc().WaitExit(seconds(60));
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 0) << again.proc().err();
}

}  // namespace
}  // namespace ember::testing

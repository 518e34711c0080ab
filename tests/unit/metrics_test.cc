// Metrics: Firecracker's line format, counts as increases, the destination's rules (configured
// once, non-blocking, lost lines counted), device sources, and API request counting.
#include "vmm/base/metrics.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api/request_metrics.h"

namespace ember {
namespace {

using rapidjson::Document;
using rapidjson::Value;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ember-metrics-test-XXXXXX";
    EXPECT_NE(mkdtemp(tmpl), nullptr);
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Everything a non-blocking fd has to give now.
std::string DrainFd(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Writes filler until a non-blocking pipe refuses more.
void FillPipe(int fd) {
  std::string filler(4096, 'x');
  while (write(fd, filler.data(), filler.size()) > 0) {
  }
  ASSERT_EQ(errno, EAGAIN);
}

Document ParseJson(const std::string& text) {
  Document d;
  d.Parse(text.c_str(), text.size());
  EXPECT_FALSE(d.HasParseError()) << "offset " << d.GetErrorOffset() << " in " << text;
  EXPECT_TRUE(d.IsObject()) << text;
  return d;
}

const Value& Group(const Document& line, const char* group) {
  static const Value kNull;
  if (!line.IsObject() || !line.HasMember(group) || !line[group].IsObject()) {
    ADD_FAILURE() << "no group " << group;
    return kNull;
  }
  return line[group];
}

uint64_t FieldOf(const Document& line, const char* group, const char* field) {
  const Value& g = Group(line, group);
  if (!g.IsObject() || !g.HasMember(field) || !g[field].IsUint64()) {
    ADD_FAILURE() << "no field " << group << "." << field;
    return ~0ull;
  }
  return g[field].GetUint64();
}

// Every group of a Firecracker metrics line that ember emits, device present or not.
const char* const kGroups[] = {"api_server",
                               "block",
                               "deprecated_api",
                               "get_api_requests",
                               "i8042",
                               "uart",
                               "latencies_us",
                               "logger",
                               "mmds",
                               "net",
                               "patch_api_requests",
                               "put_api_requests",
                               "seccomp",
                               "vcpu",
                               "vmm",
                               "signals",
                               "vsock",
                               "entropy",
                               "interrupts"};

// A store and a system of the test's own, writing to a file.
class MetricsTest : public ::testing::Test {
 protected:
  void Configure() { ASSERT_TRUE(system_.Configure(path_).ok()); }
  // Writes a line and returns it, parsed; the file must have grown by exactly one line.
  Document FlushAndRead() {
    Status s = system_.Flush();
    EXPECT_TRUE(s.ok()) << s.error().message;
    std::string all = ReadAll(path_);
    std::string line = all.substr(read_offset_);
    read_offset_ = all.size();
    EXPECT_FALSE(line.empty());
    EXPECT_EQ(line.find('\n'), line.size() - 1) << "not exactly one line: " << line;
    return ParseJson(line);
  }

  TempDir dir_;
  std::string path_ = dir_.File("metrics.json");
  MetricsStore store_;
  MetricsSystem system_{&store_};
  size_t read_offset_ = 0;
};

TEST_F(MetricsTest, LineIsOneJsonObjectWithEveryGroup) {
  Configure();
  const auto before_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  Document line = FlushAndRead();
  ASSERT_TRUE(line.IsObject());
  // Firecracker's first key, wall-clock milliseconds.
  ASSERT_GT(line.MemberCount(), 0u);
  EXPECT_STREQ(line.MemberBegin()->name.GetString(), "utc_timestamp_ms");
  ASSERT_TRUE(line["utc_timestamp_ms"].IsUint64());
  EXPECT_GE(line["utc_timestamp_ms"].GetUint64(), static_cast<uint64_t>(before_ms));
  EXPECT_LT(line["utc_timestamp_ms"].GetUint64(), static_cast<uint64_t>(before_ms) + 60000);

  for (const char* group : kGroups) {
    const Value& g = Group(line, group);
    ASSERT_TRUE(g.IsObject()) << group;
    EXPECT_GT(g.MemberCount(), 0u) << group;
    for (auto it = g.MemberBegin(); it != g.MemberEnd(); ++it)
      EXPECT_TRUE(it->value.IsUint64()) << group << "." << it->name.GetString();
  }
  EXPECT_EQ(line.MemberCount(), 1 + std::size(kGroups));  // no device: no block_<id>, net_<id>

  // A field of each group, by Firecracker's name.
  const std::pair<const char*, const char*> kFields[] = {
      {"api_server", "process_startup_time_us"},
      {"api_server", "process_startup_time_cpu_us"},
      {"api_server", "sync_response_fails"},
      {"api_server", "sync_vmm_send_timeout_count"},
      {"get_api_requests", "instance_info_count"},
      {"get_api_requests", "machine_cfg_count"},
      {"get_api_requests", "vmm_version_count"},
      {"put_api_requests", "actions_count"},
      {"put_api_requests", "actions_fails"},
      {"put_api_requests", "boot_source_fails"},
      {"put_api_requests", "drive_count"},
      {"put_api_requests", "network_fails"},
      {"put_api_requests", "machine_cfg_count"},
      {"put_api_requests", "vsock_count"},
      {"put_api_requests", "entropy_fails"},
      {"put_api_requests", "logger_count"},
      {"put_api_requests", "metrics_fails"},
      {"put_api_requests", "serial_count"},
      {"patch_api_requests", "drive_fails"},
      {"patch_api_requests", "network_count"},
      {"patch_api_requests", "machine_cfg_fails"},
      {"deprecated_api", "deprecated_http_api_calls"},
      {"latencies_us", "pause_vm"},
      {"latencies_us", "resume_vm"},
      {"latencies_us", "load_snapshot"},
      {"logger", "missed_metrics_count"},
      {"logger", "metrics_fails"},
      {"logger", "missed_log_count"},
      {"logger", "log_fails"},
      {"seccomp", "num_faults"},
      {"vmm", "device_events"},
      {"vmm", "panic_count"},
      {"signals", "sigsegv"},
      {"signals", "sigpipe"},
      {"vcpu", "exit_io_in"},
      {"vcpu", "exit_io_out"},
      {"vcpu", "exit_mmio_read"},
      {"vcpu", "exit_mmio_write"},
      {"vcpu", "failures"},
      {"block", "read_bytes"},
      {"block", "guest_errors"},
      {"net", "tx_bytes_count"},
      {"net", "guest_errors"},
      {"vsock", "conns_added"},
      {"entropy", "entropy_bytes"},
      {"uart", "error_count"},
      {"i8042", "reset_count"},
      {"interrupts", "triggers"},
  };
  for (const auto& [group, field] : kFields) EXPECT_EQ(FieldOf(line, group, field), 0u);
}

TEST_F(MetricsTest, CountersReportTheIncreaseSinceTheLastLine) {
  Configure();
  Counter& drives = store_.put_api_requests.drive_count;
  drives.Inc(3);
  EXPECT_EQ(FieldOf(FlushAndRead(), "put_api_requests", "drive_count"), 3u);
  EXPECT_EQ(FieldOf(FlushAndRead(), "put_api_requests", "drive_count"), 0u);
  drives.Inc();
  drives.Inc();
  EXPECT_EQ(FieldOf(FlushAndRead(), "put_api_requests", "drive_count"), 2u);
  EXPECT_EQ(drives.count(), 5u);  // the counter itself only grows
}

TEST_F(MetricsTest, GaugesReportTheirValue) {
  Configure();
  store_.latencies_us.pause_vm.Set(1234);
  store_.api_server.process_startup_time_us.Set(5000);
  for (int i = 0; i < 2; i++) {
    Document line = FlushAndRead();
    EXPECT_EQ(FieldOf(line, "latencies_us", "pause_vm"), 1234u);
    EXPECT_EQ(FieldOf(line, "api_server", "process_startup_time_us"), 5000u);
  }
}

TEST_F(MetricsTest, ConfiguresOnlyOnce) {
  Configure();
  Status again = system_.Configure(dir_.File("other.json"));
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("Reinitialization of metrics not allowed"),
            std::string::npos)
      << again.error().message;
  FlushAndRead();  // still the first destination
  EXPECT_FALSE(std::filesystem::exists(dir_.File("other.json")));
}

TEST_F(MetricsTest, FlushBeforeConfigureFails) {
  EXPECT_FALSE(system_.configured());
  Status s = system_.Flush();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("not configured"), std::string::npos) << s.error().message;
}

TEST_F(MetricsTest, AnUnopenablePathIsReportedAndDoesNotConfigure) {
  Status s = system_.Configure(dir_.File("no/such/dir/metrics.json"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("no/such/dir/metrics.json"), std::string::npos)
      << s.error().message;
  EXPECT_NE(s.error().message.find("ENOENT"), std::string::npos) << s.error().message;
  EXPECT_FALSE(system_.configured());
  Configure();  // a good path still works
  FlushAndRead();
}

TEST_F(MetricsTest, AFileKeepsItsContentsAndGetsOneLinePerFlush) {
  { std::ofstream(path_) << "earlier\n"; }
  read_offset_ = 8;
  Configure();
  FlushAndRead();
  FlushAndRead();
  EXPECT_EQ(ReadAll(path_).substr(0, 8), "earlier\n");
}

// A FIFO whose reader is the test: Configure opens it like Firecracker (no ENXIO without a
// reader: read-write, non-blocking).
class MetricsFifoTest : public MetricsTest {
 protected:
  void SetUp() override {
    path_ = dir_.File("metrics.fifo");
    ASSERT_EQ(mkfifo(path_.c_str(), 0600), 0);
    Configure();
    reader_ = UniqueFd(open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    filler_ = UniqueFd(open(path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    ASSERT_TRUE(reader_.valid());
    ASSERT_TRUE(filler_.valid());
  }
  // Flush on another thread: a Flush that blocked would fail the wait instead of hanging.
  Status FlushWithin(std::chrono::seconds limit) {
    auto done = std::async(std::launch::async, [this] { return system_.Flush(); });
    if (done.wait_for(limit) != std::future_status::ready) {
      ADD_FAILURE() << "Flush blocked";
      std::abort();  // the thread cannot be abandoned safely
    }
    return done.get();
  }

  UniqueFd reader_;
  UniqueFd filler_;
};

TEST_F(MetricsFifoTest, AFullFifoCountsTheLostLineAndNeverBlocks) {
  FillPipe(filler_.get());
  store_.put_api_requests.drive_count.Inc();
  Status s = FlushWithin(std::chrono::seconds(10));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("EAGAIN"), std::string::npos) << s.error().message;
  EXPECT_EQ(store_.logger.missed_metrics_count.count(), 1u);
  EXPECT_EQ(store_.logger.metrics_fails.count(), 0u);  // a full pipe is not a failure

  // Once the reader catches up, the next line gets through and carries the lost line's counts.
  std::string filler = DrainFd(reader_.get());
  EXPECT_EQ(filler.find_first_not_of('x'), std::string::npos);
  ASSERT_TRUE(FlushWithin(std::chrono::seconds(10)).ok());
  std::string line = DrainFd(reader_.get());
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  Document d = ParseJson(line);
  EXPECT_EQ(FieldOf(d, "logger", "missed_metrics_count"), 1u);
  EXPECT_EQ(FieldOf(d, "put_api_requests", "drive_count"), 1u);
}

TEST_F(MetricsFifoTest, ALineThePipeTakesInPartIsFinishedBeforeTheNext) {
  // One page of pipe: less than a line, which then goes in pieces. A flush that finds no room
  // at all (the previous tail not finished, or nothing more fits) loses its line, counted.
  ASSERT_GE(fcntl(reader_.get(), F_SETPIPE_SZ, 4096), 0);
  int owner = 0;
  for (const char* drive : {"rootfs", "scratch", "data", "logs"})
    system_.AddSource(&owner, drive, [] { return BlockDeviceMetrics{}; });
  std::string received;
  uint64_t written = 0, lost = 0;
  for (int i = 0; i < 6; i++) {
    (FlushWithin(std::chrono::seconds(10)).ok() ? written : lost)++;
    received += DrainFd(reader_.get());
    if (i == 0) {
      ASSERT_EQ(received.size(), 4096u);
      ASSERT_EQ(received.find('\n'), std::string::npos) << "a line should not fit in a page";
    }
  }
  EXPECT_GE(written, 2u);
  EXPECT_EQ(store_.logger.missed_metrics_count.count(), lost);
  // Room for everything: the last line's tail, then one more whole line.
  ASSERT_GE(fcntl(reader_.get(), F_SETPIPE_SZ, 1 << 20), 0);
  ASSERT_TRUE(FlushWithin(std::chrono::seconds(10)).ok());
  written++;
  received += DrainFd(reader_.get());

  ASSERT_EQ(received.back(), '\n');
  uint64_t lines = 0;
  std::istringstream in(received);
  for (std::string line; std::getline(in, line); lines++) {
    Document d = ParseJson(line);
    EXPECT_TRUE(d.IsObject() && d.HasMember("utc_timestamp_ms")) << line;
  }
  EXPECT_EQ(lines, written);
}

TEST_F(MetricsTest, SourcesReportTheirCumulativeCountsAsIncreases) {
  Configure();
  uint64_t rootfs_read = 100, data_read = 7, vcpu0_io_in = 5, vcpu1_io_in = 6;
  int owner = 0;
  system_.AddSource(&owner, "rootfs", [&] {
    BlockDeviceMetrics m;
    m.read_bytes = rootfs_read;
    m.guest_errors = 1;
    return m;
  });
  system_.AddSource(&owner, "data", [&] {
    BlockDeviceMetrics m;
    m.read_bytes = data_read;
    return m;
  });
  system_.AddSource(&owner, [&] {
    VcpuMetrics m;
    m.exit_io_in = vcpu0_io_in;
    return m;
  });
  system_.AddSource(&owner, [&] {
    VcpuMetrics m;
    m.exit_io_in = vcpu1_io_in;
    return m;
  });

  Document first = FlushAndRead();
  EXPECT_EQ(FieldOf(first, "block_rootfs", "read_bytes"), 100u);
  EXPECT_EQ(FieldOf(first, "block_rootfs", "guest_errors"), 1u);
  EXPECT_EQ(FieldOf(first, "block_data", "read_bytes"), 7u);
  EXPECT_EQ(FieldOf(first, "block", "read_bytes"), 107u);  // the aggregate
  EXPECT_EQ(FieldOf(first, "block", "guest_errors"), 1u);
  EXPECT_EQ(FieldOf(first, "vcpu", "exit_io_in"), 11u);
  // A per-device group has every field of its kind.
  EXPECT_EQ(Group(first, "block_data").MemberCount(), Group(first, "block").MemberCount());

  rootfs_read = 150;
  vcpu1_io_in = 10;
  Document second = FlushAndRead();
  EXPECT_EQ(FieldOf(second, "block_rootfs", "read_bytes"), 50u);
  EXPECT_EQ(FieldOf(second, "block_rootfs", "guest_errors"), 0u);
  EXPECT_EQ(FieldOf(second, "block_data", "read_bytes"), 0u);
  EXPECT_EQ(FieldOf(second, "block", "read_bytes"), 50u);
  EXPECT_EQ(FieldOf(second, "vcpu", "exit_io_in"), 4u);

  // A counter that goes back (a restored device) counts from zero again.
  data_read = 3;
  EXPECT_EQ(FieldOf(FlushAndRead(), "block_data", "read_bytes"), 3u);

  system_.RemoveSources(&owner);
  Document after = FlushAndRead();
  EXPECT_FALSE(after.HasMember("block_rootfs"));
  EXPECT_FALSE(after.HasMember("block_data"));
  EXPECT_EQ(FieldOf(after, "block", "read_bytes"), 0u);
  EXPECT_EQ(FieldOf(after, "vcpu", "exit_io_in"), 0u);
}

TEST_F(MetricsTest, SourcesOfOtherOwnersStay) {
  Configure();
  int vmm_a = 0, vmm_b = 0;
  system_.AddSource(&vmm_a, "eth0", [] {
    NetDeviceMetrics m;
    m.tx_bytes_count = 10;
    return m;
  });
  system_.AddSource(&vmm_b, "eth1", [] {
    NetDeviceMetrics m;
    m.tx_bytes_count = 20;
    return m;
  });
  system_.RemoveSources(&vmm_a);
  Document line = FlushAndRead();
  EXPECT_FALSE(line.HasMember("net_eth0"));
  EXPECT_EQ(FieldOf(line, "net_eth1", "tx_bytes_count"), 20u);
  EXPECT_EQ(FieldOf(line, "net", "tx_bytes_count"), 20u);
}

TEST_F(MetricsTest, DeviceIdsAreEscapedInGroupNames) {
  Configure();
  int owner = 0;
  system_.AddSource(&owner, "we\"ird\\id\n", [] {
    BlockDeviceMetrics m;
    m.write_bytes = 9;
    return m;
  });
  Document line = FlushAndRead();
  EXPECT_EQ(FieldOf(line, "block_we\"ird\\id\n", "write_bytes"), 9u);
}

TEST_F(MetricsTest, CountersIncrementedFromManyThreadsAreAllReported) {
  Configure();
  constexpr int kThreads = 4;
  constexpr uint64_t kIncrements = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([this] {
      for (uint64_t i = 0; i < kIncrements; i++) store_.vmm.device_events.Inc();
    });
  }
  uint64_t reported = 0;
  for (int i = 0; i < 20; i++) reported += FieldOf(FlushAndRead(), "vmm", "device_events");
  for (auto& t : threads) t.join();
  reported += FieldOf(FlushAndRead(), "vmm", "device_events");
  EXPECT_EQ(reported, kThreads * kIncrements);
}

TEST_F(MetricsTest, TheTimerWritesALineWhenItFires) {
  auto timer = MetricsTimer::Create(&system_, 10);
  ASSERT_TRUE(timer.ok()) << timer.error().message;
  pollfd p{timer->fd(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  timer->OnTimer();  // not configured: nothing to write, nothing fails
  EXPECT_FALSE(std::filesystem::exists(path_));

  Configure();
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  timer->OnTimer();
  std::string written = ReadAll(path_);
  ASSERT_FALSE(written.empty());
  EXPECT_EQ(written.find('\n'), written.size() - 1);
  ParseJson(written);
}

// ---- API requests -------------------------------------------------------------------------------

struct ApiCase {
  VmmAction action;
  const char* group;  // nullptr: not counted
  const char* field;
  const char* fails_field;  // nullptr: the group has no _fails (GET)
};

TEST(MetricsApiTest, EachActionCountsInFirecrackersField) {
  const ApiCase cases[] = {
      {GetInstanceInfo{}, "get_api_requests", "instance_info_count", nullptr},
      {GetVersion{}, "get_api_requests", "vmm_version_count", nullptr},
      {GetMachineConfig{}, "get_api_requests", "machine_cfg_count", nullptr},
      {BootSourceConfig{}, "put_api_requests", "boot_source_count", "boot_source_fails"},
      {MachineConfig{}, "put_api_requests", "machine_cfg_count", "machine_cfg_fails"},
      {MachineConfigUpdate{}, "patch_api_requests", "machine_cfg_count", "machine_cfg_fails"},
      {DriveConfig{}, "put_api_requests", "drive_count", "drive_fails"},
      {DriveUpdate{}, "patch_api_requests", "drive_count", "drive_fails"},
      {NetworkInterfaceConfig{}, "put_api_requests", "network_count", "network_fails"},
      {NetworkInterfaceUpdate{}, "patch_api_requests", "network_count", "network_fails"},
      {VsockConfig{}, "put_api_requests", "vsock_count", "vsock_fails"},
      {EntropyConfig{}, "put_api_requests", "entropy_count", "entropy_fails"},
      {SerialConfig{}, "put_api_requests", "serial_count", "serial_fails"},
      {LoggerConfigFile{}, "put_api_requests", "logger_count", "logger_fails"},
      {MetricsConfig{}, "put_api_requests", "metrics_count", "metrics_fails"},
      {InstanceStart{}, "put_api_requests", "actions_count", "actions_fails"},
      {SendCtrlAltDel{}, "put_api_requests", "actions_count", "actions_fails"},
      {FlushMetrics{}, "put_api_requests", "actions_count", "actions_fails"},
      {GetVmConfig{}, nullptr, nullptr, nullptr},
      {PauseVm{}, nullptr, nullptr, nullptr},
      {ResumeVm{}, nullptr, nullptr, nullptr},
  };
  const char* const kRequestGroups[] = {"get_api_requests", "put_api_requests",
                                        "patch_api_requests", "deprecated_api"};
  TempDir dir;
  const std::string path = dir.File("metrics.json");
  MetricsStore store;
  MetricsSystem system(&store);
  ASSERT_TRUE(system.Configure(path).ok());
  size_t offset = 0;
  auto flush = [&] {
    EXPECT_TRUE(system.Flush().ok());
    std::string all = ReadAll(path);
    Document d = ParseJson(all.substr(offset));
    offset = all.size();
    return d;
  };

  for (const ApiCase& c : cases) {
    for (bool failed : {false, true}) {
      SCOPED_TRACE(std::string(c.field ? c.field : "uncounted") + (failed ? " failed" : ""));
      CountApiRequest(c.action, failed, false, store);
      Document line = flush();
      // Exactly the expected fields moved, by one.
      for (const char* group : kRequestGroups) {
        const Value& g = Group(line, group);
        for (auto it = g.MemberBegin(); it != g.MemberEnd(); ++it) {
          const std::string field = it->name.GetString();
          const bool in_group = c.group && std::string(c.group) == group;
          const bool expected =
              in_group && (field == c.field || (failed && c.fails_field && field == c.fails_field));
          EXPECT_EQ(it->value.GetUint64(), expected ? 1u : 0u) << group << "." << field;
        }
      }
    }
  }

  CountApiRequest(VmmAction{VsockConfig{}}, false, /*deprecated=*/true, store);
  Document line = flush();
  EXPECT_EQ(FieldOf(line, "deprecated_api", "deprecated_http_api_calls"), 1u);
  EXPECT_EQ(FieldOf(line, "put_api_requests", "vsock_count"), 1u);
}

TEST(MetricsApiTest, RequestsWithoutAnActionCountByKind) {
  MetricsStore store;
  CountApiRequest(ApiRequest::kPutDrive, /*failed=*/true, store);  // e.g. a body that did not parse
  CountApiRequest(ApiRequest::kGetMmds, /*failed=*/true, store);   // GETs have no _fails
  EXPECT_EQ(store.put_api_requests.drive_count.count(), 1u);
  EXPECT_EQ(store.put_api_requests.drive_fails.count(), 1u);
  EXPECT_EQ(store.get_api_requests.mmds_count.count(), 1u);
}

TEST(MetricsApiTest, StartupTimesGoToTheProcessStore) {
  SetProcessStartupTimes(1500, 700);
  EXPECT_EQ(metrics().api_server.process_startup_time_us.value(), 1500u);
  EXPECT_EQ(metrics().api_server.process_startup_time_cpu_us.value(), 700u);
}

}  // namespace
}  // namespace ember

// The request sequences real Firecracker clients send before InstanceStart, replayed against
// ember byte for byte (bodies as the client's JSON encoder writes them, headers as Go's net/http
// writes them, one kept-alive connection), each answer checked as the client checks it. Nothing
// is booted, so no KVM is needed; the network variants need root for their own namespace.
//
// Where each sequence comes from (wire shapes only, no code):
//   firecracker-go-sdk, github.com/firecracker-microvm/firecracker-go-sdk at 6fb280e9 (v1.0.0-166):
//     handlers.go defaultFcInitHandlerList (order: logger, metrics, machine-config, boot-source,
//     drives, network-interfaces, vsock, mmds/config), machine.go (waitForSocket polls
//     GET /machine-config; createMachine re-reads it; setupLogging sends show_level true and
//     show_log_origin false; createNetworkInterface numbers interfaces from "1"; setMmdsConfig
//     defaults to version V1 and runs only when an interface allows MMDS), drives.go (root drive
//     "root_drive" PUT last, extra drives "0", "1"...), client/models/*.go (swagger models: keys in
//     declaration order, which is alphabetical; pointer fields are sent even when false,
//     `omitempty` non-pointers are left out when empty). The same repository at tag v0.22.0
//     (2206275) for the pre-1.0 shapes: machine-config `ht_enabled` (pointer, always sent), drive
//     without cache_type/io_engine, network interface `allow_mmds_requests`, vsock `vsock_id`
//     required. The go-openapi runtime encodes bodies with json.Encoder, so each ends in "\n".
//   firectl, github.com/firecracker-microvm/firectl at df2fb87a (v0.2.0-26, go-sdk v1.0.0):
//     options.go getFirecrackerConfig (defaults: 1 vCPU, 512 MiB, smt = !--disable-smt, log level
//     Debug, kernel opts "ro console=ttyS0 noapic reboot=k panic=1 pci=off nomodules"),
//     getBlockDevices (root drive id "1", extra drives "2".., ":ro" suffix), parseVsocks (no id),
//     handleFifos (a missing log or metrics FIFO is generated as fc_fifo / fc_metrics_fifo).
//   Kata Containers, github.com/kata-containers/kata-containers at 7c6ba40c (4.1.0-23):
//     src/runtime/virtcontainers/fc.go (StartVM writes types.FcConfig with MarshalIndent("", "\t")
//     and starts `firecracker --api-sock S --config-file F`, then polls GET / until the state is
//     "Running"; fcSetVMBaseConfig sends smt false; fcSetVMRootfs a read-only non-root "rootfs";
//     createDiskPool eight empty placeholder drives "drive_0".."drive_7"; fcAddNetDevice always
//     sends rx_rate_limiter and tx_rate_limiter, `{}` when unlimited; fcAddVsock id "root", cid 3;
//     fcListenToFifo opens the log and metrics FIFOs for reading before the VMM starts),
//     src/runtime/virtcontainers/types/fcConfig.go (top-level key order), hypervisor.go
//     GetKernelRootParams (virtio-blk ext4 root parameters).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "tests/integration/ember_runner.h"
#include "tests/support/api_client.h"
#include "tests/support/netns.h"
#include "vmm/base/unique_fd.h"

namespace ember::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

#define REQUIRE_ROOT()                                                  \
  do {                                                                  \
    if (geteuid() != 0) GTEST_SKIP() << "network namespaces need root"; \
  } while (0)

// The bytes Go's net/http writes for a go-openapi request: Host, User-Agent, Content-Length
// (bodies are buffered first, so never chunked), the remaining headers sorted by name, then the
// transport's Accept-Encoding.
std::string GoRequest(const std::string& method, const std::string& path, const std::string& body) {
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: localhost\r\n" +
                    "User-Agent: Go-http-client/1.1\r\n";
  if (!body.empty()) req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "Accept: application/json\r\nContent-Type: application/json\r\n";
  return req + "Accept-Encoding: gzip\r\n\r\n" + body;
}

// A Go http.Transport talking to one Unix socket: it keeps the connection open between
// requests and opens a new one when the server said "Connection: close" or has closed the idle
// connection meanwhile.
class GoTransport {
 public:
  explicit GoTransport(std::string sock) : client_(std::move(sock)) {}

  std::optional<ApiReply> RoundTrip(const std::string& method, const std::string& path,
                                    const std::string& body) {
    if (conn_.valid() && IdleConnectionClosed()) conn_.reset();
    if (!conn_.valid()) conn_.reset(client_.Connect());
    if (!conn_.valid()) return std::nullopt;
    const std::string req = GoRequest(method, path, body);
    for (size_t done = 0; done < req.size();) {
      ssize_t n = send(conn_.get(), req.data() + done, req.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        conn_.reset();
        return std::nullopt;
      }
      done += static_cast<size_t>(n);
    }
    std::optional<ApiReply> reply = ApiClient::ReadReply(conn_.get(), seconds(30));
    if (!reply || reply->headers.find("connection: close") != std::string::npos) conn_.reset();
    return reply;
  }

 private:
  // What Go's persistConn.readLoop notices on an idle connection: EOF or stray bytes.
  bool IdleConnectionClosed() const {
    pollfd p{conn_.get(), POLLIN, 0};
    return poll(&p, 1, 0) != 0;
  }

  ApiClient client_;
  UniqueFd conn_;
};

// ember serving its API, optionally inside a network namespace, with a client speaking Go's wire
// format.
class EmberUnderClient {
 public:
  explicit EmberUnderClient(const NetNamespace* ns = nullptr,
                            std::vector<std::string> extra_args = {})
      : sock_(dir_.path() + "/firecracker.socket"), go_(sock_) {
    std::vector<std::string> argv = {EmberBinary(), "--api-sock", sock_, "--id", "client-vm"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    proc_ = std::make_unique<Subprocess>(ns ? ns->Exec(argv) : argv);
  }

  const TempDir& dir() const { return dir_; }
  const std::string& sock() const { return sock_; }
  Subprocess& proc() { return *proc_; }

  ApiReply Call(const std::string& method, const std::string& path, const std::string& body = "") {
    std::optional<ApiReply> r = go_.RoundTrip(method, path, body);
    EXPECT_TRUE(r) << method << " " << path << ": no reply; stderr:\n" << proc_->err();
    return r.value_or(ApiReply{});
  }

  // A PUT the client treats as success only on 204.
  ApiReply Put(const std::string& path, const std::string& body) {
    ApiReply r = Call("PUT", path, body);
    EXPECT_EQ(r.status, 204) << "PUT " << path << " " << body << "-> " << r.body;
    return r;
  }

  // go-sdk waitForSocket: stat the socket, then GET /machine-config every 10 ms until it answers.
  ApiReply WaitForMachineConfig(milliseconds timeout = seconds(10)) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      struct stat st;
      if (stat(sock_.c_str(), &st) == 0) {
        std::optional<ApiReply> r = go_.RoundTrip("GET", "/machine-config", "");
        if (r && r->status == 200) return *r;
      }
      proc_->WaitFor([](const std::string&, const std::string&) { return false; },
                     milliseconds(10));
    }
    ADD_FAILURE() << "GET /machine-config never answered; stderr:\n" << proc_->err();
    return ApiReply{};
  }

 private:
  TempDir dir_;
  std::string sock_;
  GoTransport go_;
  std::unique_ptr<Subprocess> proc_;
};

// go-openapi unmarshals into the swagger models: a present key of the wrong JSON type fails the
// whole call.
enum class JsonType { kInteger, kBool, kString };

bool HasField(const std::string& body, const std::string& key, JsonType type) {
  static const char* kValue[] = {"-?[0-9]+[,}]", "(true|false)[,}]", "\"[^\"]*\""};
  const std::regex re("\"" + key + "\"\\s*:\\s*" + kValue[static_cast<int>(type)]);
  return std::regex_search(body, re);
}

// The fields go-sdk's MachineConfiguration parses (cpu_template, when present, is a string).
void ExpectMachineConfiguration(const ApiReply& r, int vcpus, int mib) {
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(HasField(r.body, "vcpu_count", JsonType::kInteger)) << r.body;
  EXPECT_TRUE(HasField(r.body, "mem_size_mib", JsonType::kInteger)) << r.body;
  EXPECT_TRUE(HasField(r.body, "smt", JsonType::kBool)) << r.body;
  EXPECT_TRUE(HasField(r.body, "track_dirty_pages", JsonType::kBool)) << r.body;
  if (r.body.find("\"cpu_template\"") != std::string::npos) {
    EXPECT_TRUE(HasField(r.body, "cpu_template", JsonType::kString)) << r.body;
  }
  EXPECT_TRUE(std::regex_search(
      r.body, std::regex("\"vcpu_count\"\\s*:\\s*" + std::to_string(vcpus) + "[,}]")))
      << r.body;
  EXPECT_TRUE(std::regex_search(
      r.body, std::regex("\"mem_size_mib\"\\s*:\\s*" + std::to_string(mib) + "[,}]")))
      << r.body;
}

// The InstanceInfo model: app_name, id, state, vmm_version, all required strings.
std::string ExpectInstanceInfo(const ApiReply& r) {
  EXPECT_EQ(r.status, 200) << r.body;
  for (const char* key : {"app_name", "id", "state", "vmm_version"})
    EXPECT_TRUE(HasField(r.body, key, JsonType::kString)) << key << " in " << r.body;
  std::smatch m;
  static const std::regex kState("\"state\"\\s*:\\s*\"([^\"]*)\"");
  return std::regex_search(r.body, m, kState) ? m[1].str() : "";
}

void ExpectRefusedAsUnsupported(const ApiReply& r, const std::string& what) {
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("\"fault_message\":\"" + what + " is not supported"), std::string::npos)
      << r.body;
}

// go-sdk createFifoOrFile for a plain path: O_RDWR|O_CREATE|O_APPEND, 0600.
void CreateLikeGoSdk(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd.valid()) << path << ": " << strerror(errno);
}
// go-sdk createFifo: mkfifo(path, 0700).
void CreateFifoLikeGoSdk(const std::string& path) {
  ASSERT_EQ(mkfifo(path.c_str(), 0700), 0) << path << ": " << strerror(errno);
}

std::string Go(const std::string& json) { return json + "\n"; }  // json.Encoder's newline

constexpr char kGuestMac[] = "06:00:ac:10:00:02";

// --- firecracker-go-sdk ---

// Machine.Start with LogPath and MetricsPath files, a root drive with io_engine and partuuid,
// an extra read-only drive with cache_type and a rate limiter, and a vsock with an id.
TEST(ApiClientsTest, GoSdkSequenceWithLoggingMetricsDrivesAndVsock) {
  EmberUnderClient vm;
  const std::string d = vm.dir().path();
  const std::string log = d + "/fc.log", metrics = d + "/fc-metrics";
  const std::string root = MakeProbeImage(vm.dir(), "rootfs.ext4", 64 * 1024);
  const std::string extra = MakeProbeImage(vm.dir(), "data.img", 4096);

  ExpectMachineConfiguration(vm.WaitForMachineConfig(), 1, 128);
  CreateLikeGoSdk(metrics);  // CreateLogFilesHandler: metrics first, then the log
  CreateLikeGoSdk(log);
  vm.Put("/logger", Go(R"({"level":"Debug","log_path":")" + log +
                       R"(","show_level":true,"show_log_origin":false})"));
  vm.Put("/metrics", Go(R"({"metrics_path":")" + metrics + R"("})"));
  vm.Put("/machine-config",
         Go(R"({"mem_size_mib":256,"smt":false,"track_dirty_pages":true,"vcpu_count":2})"));
  ApiReply refreshed = vm.Call("GET", "/machine-config");
  ExpectMachineConfiguration(refreshed, 2, 256);
  EXPECT_TRUE(std::regex_search(refreshed.body, std::regex("\"track_dirty_pages\"\\s*:\\s*true")))
      << refreshed.body;
  vm.Put("/boot-source", Go(R"({"boot_args":"console=ttyS0 reboot=k panic=1 pci=off",)"
                            R"("kernel_image_path":")" +
                            GuestImage("probe.elf") + R"("})"));
  vm.Put("/drives/0",
         Go(R"({"cache_type":"Writeback","drive_id":"0","is_read_only":true,)"
            R"("is_root_device":false,"path_on_host":")" +
            extra +
            R"(","rate_limiter":{"bandwidth":{"one_time_burst":1048576,"refill_time":100,)"
            R"("size":1048576},"ops":{"refill_time":100,"size":1000}}})"));
  vm.Put("/drives/root_drive",
         Go(R"({"drive_id":"root_drive","io_engine":"Sync","is_read_only":false,)"
            R"("is_root_device":true,"partuuid":"0eaa91a0-01","path_on_host":")" +
            root + R"("})"));
  ApiReply vsock = vm.Put(
      "/vsock", Go(R"({"guest_cid":3,"uds_path":")" + d + R"(/v.sock","vsock_id":"vsock0"})"));
  EXPECT_TRUE(vsock.HasHeader("deprecation")) << vsock.headers;  // vsock_id
  EXPECT_EQ(ExpectInstanceInfo(vm.Call("GET", "/")), "Not started");
  // Everything stuck: the full configuration names what the client configured.
  const std::string config = vm.Call("GET", "/vm/config").body;
  for (const std::string& s : {log, metrics, root, extra, std::string("0eaa91a0-01")})
    EXPECT_NE(config.find(s), std::string::npos) << s << " in " << config;
}

// An interface that allows MMDS: go-sdk PUTs it as "1", then PUT /mmds/config, which ember
// does not support (Firecracker answers 204).
TEST(ApiClientsTest, GoSdkSequenceWithNetworkAndMmdsConfig) {
  REQUIRE_ROOT();
  NetNamespace ns;
  ASSERT_TRUE(ns.ok()) << ns.error();
  ASSERT_EQ(CreateTap(ns, "tap0", "172.16.0.1/24"), "");
  EmberUnderClient vm(&ns);
  const std::string root = MakeProbeImage(vm.dir(), "rootfs.ext4", 4096);

  ExpectMachineConfiguration(vm.WaitForMachineConfig(), 1, 128);
  vm.Put("/machine-config", Go(R"({"mem_size_mib":128,"smt":false,"vcpu_count":1})"));
  ExpectMachineConfiguration(vm.Call("GET", "/machine-config"), 1, 128);
  vm.Put("/boot-source",
         Go(R"({"boot_args":"console=ttyS0 reboot=k panic=1","kernel_image_path":")" +
            GuestImage("probe.elf") + R"("})"));
  vm.Put("/drives/root_drive", Go(R"({"drive_id":"root_drive","is_read_only":false,)"
                                  R"("is_root_device":true,"path_on_host":")" +
                                  root + R"("})"));
  vm.Put("/network-interfaces/1", Go(std::string(R"({"guest_mac":")") + kGuestMac +
                                     R"(","host_dev_name":"tap0","iface_id":"1"})"));
  ExpectRefusedAsUnsupported(
      vm.Call("PUT", "/mmds/config", Go(R"({"network_interfaces":["1"],"version":"V1"})")),
      "PUT /mmds/config");
  EXPECT_EQ(ExpectInstanceInfo(vm.Call("GET", "/")), "Not started");
  EXPECT_NE(vm.Call("GET", "/vm/config").body.find("\"host_dev_name\":\"tap0\""),
            std::string::npos);
}

// go-sdk v0.22.0 against a Firecracker of its day: the pre-1.0 names, accepted with a
// Deprecation header.
TEST(ApiClientsTest, GoSdkSequenceV022WithDeprecatedFields) {
  REQUIRE_ROOT();
  NetNamespace ns;
  ASSERT_TRUE(ns.ok()) << ns.error();
  ASSERT_EQ(CreateTap(ns, "tap0", "172.16.0.1/24"), "");
  EmberUnderClient vm(&ns);
  const std::string d = vm.dir().path();
  const std::string log = d + "/fc.log";
  const std::string root = MakeProbeImage(vm.dir(), "rootfs.ext4", 4096);

  ExpectMachineConfiguration(vm.WaitForMachineConfig(), 1, 128);
  CreateLikeGoSdk(log);
  vm.Put("/logger", Go(R"({"level":"Info","log_path":")" + log +
                       R"(","show_level":true,"show_log_origin":false})"));
  ApiReply machine =
      vm.Put("/machine-config", Go(R"({"ht_enabled":false,"mem_size_mib":256,"vcpu_count":2})"));
  EXPECT_TRUE(machine.HasHeader("deprecation")) << machine.headers;
  ExpectMachineConfiguration(vm.Call("GET", "/machine-config"), 2, 256);
  vm.Put("/boot-source",
         Go(R"({"boot_args":"console=ttyS0 reboot=k panic=1","kernel_image_path":")" +
            GuestImage("probe.elf") + R"("})"));
  vm.Put("/drives/root_drive", Go(R"({"drive_id":"root_drive","is_read_only":false,)"
                                  R"("is_root_device":true,"path_on_host":")" +
                                  root + R"("})"));
  ApiReply net = vm.Put("/network-interfaces/1",
                        Go(std::string(R"({"allow_mmds_requests":true,"guest_mac":")") + kGuestMac +
                           R"(","host_dev_name":"tap0","iface_id":"1"})"));
  EXPECT_TRUE(net.HasHeader("deprecation")) << net.headers;
  // v0.22's VsockDevice.ID is a plain string: an unnamed device sends "".
  ApiReply vsock =
      vm.Put("/vsock", Go(R"({"guest_cid":3,"uds_path":")" + d + R"(/v.sock","vsock_id":""})"));
  EXPECT_TRUE(vsock.HasHeader("deprecation")) << vsock.headers;
  EXPECT_EQ(ExpectInstanceInfo(vm.Call("GET", "/")), "Not started");
}

// --- firectl ---

// `firectl --kernel K --root-drive R --add-drive D:ro --vsock-device V:3 --vmm-log-fifo L`:
// the metrics FIFO is generated, neither FIFO has a reader while the VMM is configured.
TEST(ApiClientsTest, FirectlSequenceWithFifosExtraDriveAndVsock) {
  EmberUnderClient vm;
  const std::string d = vm.dir().path();
  const std::string log_fifo = d + "/fc_fifo", metrics_fifo = d + "/fc_metrics_fifo";
  const std::string root = MakeProbeImage(vm.dir(), "rootfs.ext4", 64 * 1024);
  const std::string extra = MakeProbeImage(vm.dir(), "extra.img", 4096);

  ExpectMachineConfiguration(vm.WaitForMachineConfig(), 1, 128);
  CreateFifoLikeGoSdk(metrics_fifo);
  CreateFifoLikeGoSdk(log_fifo);
  vm.Put("/logger", Go(R"({"level":"Debug","log_path":")" + log_fifo +
                       R"(","show_level":true,"show_log_origin":false})"));
  vm.Put("/metrics", Go(R"({"metrics_path":")" + metrics_fifo + R"("})"));
  vm.Put("/machine-config", Go(R"({"mem_size_mib":512,"smt":true,"vcpu_count":1})"));
  ExpectMachineConfiguration(vm.Call("GET", "/machine-config"), 1, 512);
  vm.Put("/boot-source",
         Go(R"({"boot_args":"ro console=ttyS0 noapic reboot=k panic=1 pci=off nomodules",)"
            R"("kernel_image_path":")" +
            GuestImage("probe.elf") + R"("})"));
  vm.Put("/drives/2", Go(R"({"drive_id":"2","is_read_only":true,"is_root_device":false,)"
                         R"("path_on_host":")" +
                         extra + R"("})"));
  vm.Put("/drives/1", Go(R"({"drive_id":"1","is_read_only":false,"is_root_device":true,)"
                         R"("path_on_host":")" +
                         root + R"("})"));
  ApiReply vsock = vm.Put("/vsock", Go(R"({"guest_cid":3,"uds_path":")" + d + R"(/v.sock"})"));
  EXPECT_FALSE(vsock.HasHeader("deprecation")) << vsock.headers;
  EXPECT_EQ(ExpectInstanceInfo(vm.Call("GET", "/")), "Not started");
}

// `firectl --cpu-template T2 ...` (options.go FcCPUTemplate, "C3 or T2"). Firecracker 1.x takes
// the static template at PUT time (deprecated since 1.5). ember has no CPU templates and refuses
// every one but "None" with a 400 that says so, rather than boot a guest whose CPUID is not the
// template the client asked for (a template is a promise about what the guest sees). A known,
// documented difference (README, "The REST API"); the rest of the machine-config is untouched.
TEST(ApiClientsTest, FirectlCpuTemplateIsRefusedClearlyAndChangesNothing) {
  EmberUnderClient vm;
  ExpectMachineConfiguration(vm.WaitForMachineConfig(), 1, 128);
  ApiReply r = vm.Call("PUT", "/machine-config",
                       Go(R"({"cpu_template":"T2","mem_size_mib":512,"smt":true,"vcpu_count":1})"));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find(R"(cpu_template: \"T2\" is not supported (CPU templates are deprecated)"),
            std::string::npos)
      << r.body;
  ExpectMachineConfiguration(vm.Call("GET", "/machine-config"), 1, 128);
}

// --- Kata Containers ---

// Kata writes the whole configuration as a file and only polls GET / over the API. Without
// KVM the file must get past ember's configuration checks (exit 1 at /dev/kvm, not 152); with
// KVM the probe boots from it and GET / turns "Running", which is what Kata waits for.
TEST(ApiClientsTest, KataSequenceConfigFileThenInstanceInfoPolls) {
  REQUIRE_ROOT();
  NetNamespace ns;
  ASSERT_TRUE(ns.ok()) << ns.error();
  ASSERT_EQ(CreateTap(ns, "tap0_kata", "172.16.0.1/24"), "");
  TempDir dir;
  const std::string d = dir.path();
  // fcListenToFifo: Kata creates both FIFOs and holds them open for reading.
  std::vector<UniqueFd> readers;
  for (const char* name : {"logs.fifo", "metrics.fifo"}) {
    const std::string p = d + "/" + name;
    ASSERT_EQ(mkfifo(p.c_str(), 0600), 0) << strerror(errno);
    readers.emplace_back(open(p.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    ASSERT_TRUE(readers.back().valid()) << strerror(errno);
  }
  const std::string rootfs = MakeProbeImage(dir, "rootfs", 64 * 1024);
  // Debug mode (console=ttyS0), with the user's kernel parameters first: the probe's scenario.
  const std::string boot_args =
      "probe=ticks root=/dev/vda1 rootflags=data=ordered,errors=remount-ro ro rootfstype=ext4 "
      "pci=off reboot=k panic=1 iommu=off net.ifnames=0 random.trust_cpu=on acpi=off "
      "console=ttyS0";
  std::string drives =
      "\t\t{\n\t\t\t\"drive_id\": \"rootfs\",\n\t\t\t\"is_read_only\": true,"
      "\n\t\t\t\"is_root_device\": false,\n\t\t\t\"path_on_host\": \"" +
      rootfs + "\"\n\t\t}";
  for (int i = 0; i < 8; i++) {  // createDiskPool: empty placeholder files
    const std::string id = "drive_" + std::to_string(i);
    const std::string path = dir.Write(id, "");
    drives += ",\n\t\t{\n\t\t\t\"drive_id\": \"" + id + "\",\n\t\t\t\"is_read_only\": false," +
              "\n\t\t\t\"is_root_device\": false,\n\t\t\t\"path_on_host\": \"" + path + "\"\n\t\t}";
  }
  const std::string config =
      "{\n\t\"boot-source\": {\n\t\t\"boot_args\": \"" + boot_args +
      "\",\n\t\t\"kernel_image_path\": \"" + GuestImage("probe.elf") +
      "\"\n\t},\n\t\"machine-config\": {\n\t\t\"mem_size_mib\": 128,\n\t\t\"smt\": false,"
      "\n\t\t\"vcpu_count\": 1\n\t},\n\t\"vsock\": {\n\t\t\"guest_cid\": 3,\n\t\t\"uds_path\": \"" +
      d +
      "/kata.hvsock\",\n\t\t\"vsock_id\": \"root\"\n\t},\n\t\"logger\": {\n\t\t\"level\": "
      "\"Debug\",\n\t\t\"log_path\": \"" +
      d + "/logs.fifo\"\n\t},\n\t\"metrics\": {\n\t\t\"metrics_path\": \"" + d +
      "/metrics.fifo\"\n\t},\n\t\"drives\": [\n" + drives +
      "\n\t],\n\t\"network-interfaces\": [\n\t\t{\n\t\t\t\"guest_mac\": \"" + kGuestMac +
      "\",\n\t\t\t\"host_dev_name\": \"tap0_kata\",\n\t\t\t\"iface_id\": \"eth0\","
      "\n\t\t\t\"rx_rate_limiter\": {},\n\t\t\t\"tx_rate_limiter\": {}\n\t\t}\n\t]\n}";
  const std::string config_path = dir.Write("fcConfig.json", config);

  EmberUnderClient vm(&ns, {"--config-file", config_path});
  if (!KvmUsable()) {
    std::optional<int> code = vm.proc().WaitExit(seconds(30));
    ASSERT_TRUE(code) << vm.proc().err();
    // ember logs to the FIFO from the configuration on, so its last word is there.
    std::string log(64 * 1024, '\0');
    ssize_t n = read(readers[0].get(), log.data(), log.size());
    log.resize(n > 0 ? static_cast<size_t>(n) : 0);
    EXPECT_EQ(*code, 1) << "the configuration was refused:\n" << vm.proc().err() << log;
    EXPECT_NE(log.find("open /dev/kvm"), std::string::npos) << vm.proc().err() << log;
    return;
  }
  // waitVMMRunning: GET / every 10 ms until "Running" (fcTimeout 10 s; generous here).
  std::string state;
  const auto deadline = Clock::now() + seconds(60);
  GoTransport go(vm.sock());
  while (state != "Running" && Clock::now() < deadline) {
    std::optional<ApiReply> r = go.RoundTrip("GET", "/", "");
    if (r) state = ExpectInstanceInfo(*r);
    if (state != "Running") {
      vm.proc().WaitFor([](const std::string&, const std::string&) { return false; },
                        milliseconds(10));
    }
  }
  ASSERT_EQ(state, "Running") << vm.proc().out() << vm.proc().err();
  // Kata stops a VM that has been running a while. "Running" comes before the guest has routed
  // its keyboard interrupt (the probe does at its scenario's start; Linux's i8042 driver flushes
  // what came earlier), and a key press before that raises an IRQ nobody takes: wait for a tick.
  ASSERT_TRUE(vm.proc().WaitFor(
      [](const std::string& out, const std::string&) {
        return out.find("probe: tick 1") != std::string::npos;
      },
      seconds(60)))
      << vm.proc().out();
  ASSERT_EQ(go.RoundTrip("PUT", "/actions", Go(R"({"action_type":"SendCtrlAltDel"})"))
                .value_or(ApiReply{})
                .status,
            204);
  std::optional<int> code = vm.proc().WaitExit(seconds(60));
  ASSERT_TRUE(code) << vm.proc().out();
  EXPECT_EQ(*code, 0) << vm.proc().out() << vm.proc().err();
}

}  // namespace
}  // namespace ember::testing

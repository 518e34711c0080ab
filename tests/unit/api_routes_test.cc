// The REST API's parsing layer (api/routes.h): each route's happy path down to the struct
// fields, a battery of refusals with their fault messages, deprecation notices, and the JSON
// rendering of answers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <set>
#include <string>
#include <utility>

#include "api/routes.h"

namespace ember {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

ParsedRequest ParseOk(std::string_view method, std::string_view path, std::string_view body = "") {
  auto r = ParseApiRequest(method, path, body);
  EXPECT_TRUE(r.ok()) << method << " " << path << " " << body << ": " << r.error().message;
  return r.ok() ? std::move(*r) : ParsedRequest{};
}

// The action a request parses to, which must be a T; a default T (and a failure) otherwise.
template <typename T>
T ActionOf(std::string_view method, std::string_view path, std::string_view body = "") {
  ParsedRequest parsed = ParseOk(method, path, body);
  EXPECT_FALSE(parsed.deprecation.has_value()) << *parsed.deprecation;
  const T* action = std::get_if<T>(&parsed.action);
  EXPECT_NE(action, nullptr) << method << " " << path << " parsed to alternative "
                             << parsed.action.index();
  return action ? *action : T{};
}

std::string ErrorOf(std::string_view method, std::string_view path, std::string_view body = "") {
  auto r = ParseApiRequest(method, path, body);
  EXPECT_FALSE(r.ok()) << "expected an error for " << method << " " << path << " " << body;
  return r.ok() ? "" : r.error().message;
}

// --- Happy paths ---

TEST(ApiRoutesTest, GetsWithoutBodies) {
  ActionOf<GetInstanceInfo>("GET", "/");
  ActionOf<GetVersion>("GET", "/version");
  ActionOf<GetMachineConfig>("GET", "/machine-config");
  ActionOf<GetVmConfig>("GET", "/vm/config");
}

TEST(ApiRoutesTest, SlashesAreNormalisedAsFirecrackerDoes) {
  // trim_start_matches('/') and split_terminator('/'): extra leading slashes and one trailing
  // slash do not change the route.
  ActionOf<GetMachineConfig>("GET", "/machine-config/");
  ActionOf<GetMachineConfig>("GET", "//machine-config");
  ActionOf<GetVmConfig>("GET", "/vm/config/");
  ActionOf<GetInstanceInfo>("GET", "//");
  EXPECT_EQ(ActionOf<DriveUpdate>("PATCH", "/drives/rootfs/", R"({"drive_id": "rootfs"})").drive_id,
            "rootfs");
}

TEST(ApiRoutesTest, PutMachineConfigGivesAWholeConfig) {
  auto m = ActionOf<MachineConfig>(
      "PUT", "/machine-config",
      R"({"vcpu_count": 4, "mem_size_mib": 1024, "smt": true, "track_dirty_pages": true,
          "huge_pages": "2M"})");
  EXPECT_EQ(m.vcpu_count, 4u);
  EXPECT_EQ(m.mem_size_mib, 1024u);
  EXPECT_TRUE(m.smt);
  EXPECT_TRUE(m.track_dirty_pages);
  EXPECT_EQ(m.huge_pages, HugePages::k2M);

  // Omitted optional fields take their defaults (Firecracker resets them on PUT).
  auto d =
      ActionOf<MachineConfig>("PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64})");
  EXPECT_FALSE(d.smt);
  EXPECT_FALSE(d.track_dirty_pages);
  EXPECT_EQ(d.huge_pages, HugePages::kNone);
}

TEST(ApiRoutesTest, PatchMachineConfigCarriesOnlyTheGivenFields) {
  auto u = ActionOf<MachineConfigUpdate>("PATCH", "/machine-config", R"({"mem_size_mib": 512})");
  EXPECT_EQ(u.mem_size_mib, 512u);
  EXPECT_FALSE(u.vcpu_count.has_value());
  EXPECT_FALSE(u.smt.has_value());
  EXPECT_FALSE(u.track_dirty_pages.has_value());
  EXPECT_FALSE(u.huge_pages.has_value());

  auto all = ActionOf<MachineConfigUpdate>(
      "PATCH", "/machine-config",
      R"({"vcpu_count": 3, "smt": false, "track_dirty_pages": true, "huge_pages": "None"})");
  EXPECT_EQ(all.vcpu_count, 3u);
  EXPECT_EQ(all.smt, false);
  EXPECT_EQ(all.track_dirty_pages, true);
  EXPECT_EQ(all.huge_pages, HugePages::kNone);
  EXPECT_FALSE(all.mem_size_mib.has_value());

  // Combination rules need the merged config: SMT with 3 vCPUs is the controller's to refuse.
  auto smt = ActionOf<MachineConfigUpdate>("PATCH", "/machine-config", R"({"smt": true})");
  EXPECT_EQ(smt.smt, true);
}

TEST(ApiRoutesTest, PutBootSource) {
  auto b = ActionOf<BootSourceConfig>(
      "PUT", "/boot-source",
      R"({"kernel_image_path": "/k/vmlinux", "boot_args": "console=ttyS0", "initrd_path": "/k/initrd"})");
  EXPECT_EQ(b.kernel_image_path, "/k/vmlinux");
  EXPECT_EQ(b.boot_args, "console=ttyS0");
  EXPECT_EQ(b.initrd_path, "/k/initrd");

  auto minimal = ActionOf<BootSourceConfig>("PUT", "/boot-source", R"({"kernel_image_path": "k"})");
  EXPECT_FALSE(minimal.boot_args.has_value());
  EXPECT_FALSE(minimal.initrd_path.has_value());
}

TEST(ApiRoutesTest, PutDriveWithEveryField) {
  auto d = ActionOf<DriveConfig>("PUT", "/drives/rootfs", R"({
      "drive_id": "rootfs", "path_on_host": "/img/root.ext4", "is_root_device": true,
      "is_read_only": true, "partuuid": "0eaa91a0-01", "cache_type": "Writeback",
      "io_engine": "Async", "socket": null,
      "rate_limiter": {"bandwidth": {"size": 1000, "one_time_burst": 50, "refill_time": 100},
                       "ops": {"size": 10, "refill_time": 1000}}})");
  EXPECT_EQ(d.drive_id, "rootfs");
  EXPECT_EQ(d.path_on_host, "/img/root.ext4");
  EXPECT_TRUE(d.is_root_device);
  EXPECT_TRUE(d.is_read_only);
  EXPECT_EQ(d.partuuid, "0eaa91a0-01");
  EXPECT_EQ(d.cache_type, CacheType::kWriteback);
  EXPECT_EQ(d.io_engine, IoEngine::kAsync);
  ASSERT_TRUE(d.rate_limiter.has_value());
  EXPECT_EQ(d.rate_limiter->bandwidth, (TokenBucketConfig{1000, 50, 100}));
  EXPECT_EQ(d.rate_limiter->ops, (TokenBucketConfig{10, 0, 1000}));

  auto minimal = ActionOf<DriveConfig>(
      "PUT", "/drives/data_1",
      R"({"drive_id": "data_1", "path_on_host": "d", "is_root_device": false})");
  EXPECT_FALSE(minimal.is_read_only);
  EXPECT_EQ(minimal.cache_type, CacheType::kUnsafe);
  EXPECT_EQ(minimal.io_engine, IoEngine::kSync);
  EXPECT_FALSE(minimal.rate_limiter.has_value());
}

TEST(ApiRoutesTest, PatchDrive) {
  auto u = ActionOf<DriveUpdate>("PATCH", "/drives/scratch",
                                 R"({"drive_id": "scratch", "path_on_host": "/img/new.ext4",
          "rate_limiter": {"ops": {"size": 100, "refill_time": 10}}})");
  EXPECT_EQ(u.drive_id, "scratch");
  EXPECT_EQ(u.path_on_host, "/img/new.ext4");
  ASSERT_TRUE(u.rate_limiter.has_value());
  EXPECT_FALSE(u.rate_limiter->bandwidth.has_value());
  EXPECT_EQ(u.rate_limiter->ops, (TokenBucketConfig{100, 0, 10}));

  auto only_path = ActionOf<DriveUpdate>("PATCH", "/drives/scratch",
                                         R"({"drive_id": "scratch", "path_on_host": "p"})");
  EXPECT_FALSE(only_path.rate_limiter.has_value());
}

TEST(ApiRoutesTest, PutNetworkInterface) {
  auto n = ActionOf<NetworkInterfaceConfig>("PUT", "/network-interfaces/eth0", R"({
      "iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:AC:10:00:02", "mtu": 9000,
      "rx_rate_limiter": {"bandwidth": {"size": 5, "refill_time": 6}},
      "tx_rate_limiter": {"ops": {"size": 7, "refill_time": 8}}})");
  EXPECT_EQ(n.iface_id, "eth0");
  EXPECT_EQ(n.host_dev_name, "tap0");
  EXPECT_EQ(n.guest_mac, (std::array<uint8_t, 6>{0x06, 0x00, 0xac, 0x10, 0x00, 0x02}));
  EXPECT_EQ(n.mtu, 9000);
  ASSERT_TRUE(n.rx_rate_limiter && n.tx_rate_limiter);
  EXPECT_EQ(n.rx_rate_limiter->bandwidth, (TokenBucketConfig{5, 0, 6}));
  EXPECT_EQ(n.tx_rate_limiter->ops, (TokenBucketConfig{7, 0, 8}));

  auto minimal = ActionOf<NetworkInterfaceConfig>(
      "PUT", "/network-interfaces/eth1", R"({"iface_id": "eth1", "host_dev_name": "tap1"})");
  EXPECT_FALSE(minimal.guest_mac.has_value());
  EXPECT_FALSE(minimal.mtu.has_value());
}

TEST(ApiRoutesTest, PatchNetworkInterface) {
  auto u = ActionOf<NetworkInterfaceUpdate>(
      "PATCH", "/network-interfaces/eth0",
      R"({"iface_id": "eth0", "tx_rate_limiter": {"bandwidth": {"size": 1, "refill_time": 2}}})");
  EXPECT_EQ(u.iface_id, "eth0");
  EXPECT_FALSE(u.rx_rate_limiter.has_value());
  ASSERT_TRUE(u.tx_rate_limiter.has_value());
  EXPECT_EQ(u.tx_rate_limiter->bandwidth, (TokenBucketConfig{1, 0, 2}));
}

TEST(ApiRoutesTest, PutVsockEntropySerialLoggerMetrics) {
  auto v =
      ActionOf<VsockConfig>("PUT", "/vsock", R"({"guest_cid": 52, "uds_path": "/tmp/v.sock"})");
  EXPECT_EQ(v.guest_cid, 52u);
  EXPECT_EQ(v.uds_path, "/tmp/v.sock");

  auto e = ActionOf<EntropyConfig>(
      "PUT", "/entropy", R"({"rate_limiter": {"bandwidth": {"size": 4096, "refill_time": 100}}})");
  ASSERT_TRUE(e.rate_limiter.has_value());
  EXPECT_EQ(e.rate_limiter->bandwidth, (TokenBucketConfig{4096, 0, 100}));
  EXPECT_FALSE(ActionOf<EntropyConfig>("PUT", "/entropy", "{}").rate_limiter.has_value());

  EXPECT_EQ(
      ActionOf<SerialConfig>("PUT", "/serial", R"({"serial_out_path": "/tmp/c"})").serial_out_path,
      "/tmp/c");
  EXPECT_FALSE(ActionOf<SerialConfig>("PUT", "/serial", R"({"rate_limiter": null})")
                   .serial_out_path.has_value());

  auto l = ActionOf<LoggerConfigFile>(
      "PUT", "/logger",
      R"({"log_path": "/tmp/log", "level": "Debug", "show_level": true, "show_log_origin": true,
          "module": "api"})");
  EXPECT_EQ(l.log_path, "/tmp/log");
  EXPECT_EQ(l.level, LogLevel::kDebug);
  EXPECT_TRUE(l.show_level);
  EXPECT_TRUE(l.show_log_origin);
  EXPECT_EQ(l.module, "api");

  auto m = ActionOf<MetricsConfig>(
      "PUT", "/metrics", R"({"metrics_path": "/tmp/m", "emit_id": false, "properties": {}})");
  EXPECT_EQ(m.metrics_path, "/tmp/m");
}

TEST(ApiRoutesTest, ActionsAndVmState) {
  ActionOf<InstanceStart>("PUT", "/actions", R"({"action_type": "InstanceStart"})");
  ActionOf<SendCtrlAltDel>("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})");
  ActionOf<FlushMetrics>("PUT", "/actions", R"({"action_type": "FlushMetrics"})");
  ActionOf<PauseVm>("PATCH", "/vm", R"({"state": "Paused"})");
  ActionOf<ResumeVm>("PATCH", "/vm", R"({"state": "Resumed"})");
}

// --- Deprecated fields: accepted, and reported in Firecracker's words ---

TEST(ApiRoutesTest, DeprecatedVsockId) {
  ParsedRequest p =
      ParseOk("PUT", "/vsock", R"({"vsock_id": "v", "guest_cid": 3, "uds_path": "u"})");
  EXPECT_EQ(p.deprecation, "PUT /vsock: vsock_id field is deprecated.");
  ASSERT_TRUE(std::holds_alternative<VsockConfig>(p.action));
  EXPECT_EQ(std::get<VsockConfig>(p.action).guest_cid, 3u);

  // An explicit null is absent, as serde's Option reads it.
  EXPECT_FALSE(ParseOk("PUT", "/vsock", R"({"vsock_id": null, "guest_cid": 3, "uds_path": "u"})")
                   .deprecation.has_value());
}

TEST(ApiRoutesTest, DeprecatedMachineConfigFields) {
  ParsedRequest put = ParseOk("PUT", "/machine-config",
                              R"({"vcpu_count": 2, "mem_size_mib": 128, "cpu_template": "None"})");
  EXPECT_EQ(put.deprecation, "PUT /machine-config: cpu_template field is deprecated.");

  ParsedRequest ht = ParseOk("PUT", "/machine-config",
                             R"({"vcpu_count": 2, "mem_size_mib": 128, "ht_enabled": true})");
  EXPECT_EQ(ht.deprecation, "PUT /machine-config: ht_enabled field is deprecated.");
  ASSERT_TRUE(std::holds_alternative<MachineConfig>(ht.action));
  EXPECT_TRUE(std::get<MachineConfig>(ht.action).smt) << "ht_enabled is smt's old name";

  ParsedRequest both = ParseOk("PATCH", "/machine-config",
                               R"({"cpu_template": "None", "ht_enabled": false, "smt": false})");
  EXPECT_EQ(both.deprecation,
            "PATCH /machine-config: cpu_template field is deprecated. "
            "PATCH /machine-config: ht_enabled field is deprecated.");
  ASSERT_TRUE(std::holds_alternative<MachineConfigUpdate>(both.action));
  EXPECT_EQ(std::get<MachineConfigUpdate>(both.action).smt, false);

  // cpu_template alone is a change in Firecracker's eyes (not an empty PATCH); ember has no
  // template to change, so the update is empty but the request succeeds.
  ParsedRequest only_template = ParseOk("PATCH", "/machine-config", R"({"cpu_template": "None"})");
  EXPECT_EQ(only_template.deprecation, "PATCH /machine-config: cpu_template field is deprecated.");
}

TEST(ApiRoutesTest, DeprecatedAllowMmdsRequests) {
  ParsedRequest p =
      ParseOk("PUT", "/network-interfaces/eth0",
              R"({"iface_id": "eth0", "host_dev_name": "tap0", "allow_mmds_requests": true})");
  EXPECT_EQ(p.deprecation,
            "PUT /network-interfaces/{iface_id}: allow_mmds_requests field is deprecated.");
  EXPECT_TRUE(std::holds_alternative<NetworkInterfaceConfig>(p.action));
}

TEST(ApiRoutesTest, NoDeprecationWithoutDeprecatedFields) {
  EXPECT_FALSE(
      ParseOk("PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 128, "smt": true})")
          .deprecation.has_value());
  EXPECT_FALSE(ParseOk("GET", "/").deprecation.has_value());
}

// --- Refusals ---

struct ErrorCase {
  const char* name;
  const char* method;
  std::string path;
  std::string body;
  std::string expected;  // the whole message, or the key part of it when `exact` is false
  bool exact = false;
};

std::string Deep(int levels) {
  return R"({"vcpu_count": )" + std::string(levels, '[') + std::string(levels, ']') +
         R"(, "mem_size_mib": 1})";
}

constexpr const char* kDrive =
    R"({"drive_id": "rootfs", "path_on_host": "r", "is_root_device": true)";
constexpr const char* kNet = R"({"iface_id": "eth0", "host_dev_name": "tap0")";
constexpr const char* kMachine = R"({"vcpu_count": 2, "mem_size_mib": 128)";

std::string Drive(const std::string& extra) { return kDrive + extra + "}"; }
std::string Net(const std::string& extra) { return kNet + extra + "}"; }
std::string Machine(const std::string& extra) { return kMachine + extra + "}"; }

const ErrorCase kErrorCases[] = {
    // Unknown paths and wrong methods: Firecracker's wording.
    {"UnknownPath", "GET", "/foo", "", "Invalid request method and/or path: GET /foo.", true},
    {"UnknownMethod", "POST", "/", "", "Invalid request method and/or path: POST /.", true},
    {"LowercaseMethod", "get", "/", "", "Invalid request method and/or path: get /.", true},
    {"PutOnGetOnly", "PUT", "/version", "{}", "Invalid request method and/or path: PUT /version.",
     true},
    {"DeleteMachineConfig", "DELETE", "/machine-config", "",
     "Invalid request method and/or path: DELETE /machine-config.", true},
    {"GetVmWithoutConfig", "GET", "/vm", "", "Invalid request method and/or path: GET /vm.", true},
    {"PatchVmConfig", "PATCH", "/vm/config", "{}",
     "Invalid request method and/or path: PATCH /vm/config.", true},
    {"GetDrive", "GET", "/drives/rootfs", "",
     "Invalid request method and/or path: GET /drives/rootfs.", true},
    {"ExtraSegment", "PUT", "/drives/rootfs/extra", Drive(""),
     "Invalid request method and/or path: PUT /drives/rootfs/extra.", true},
    {"ExtraSegmentOnGet", "GET", "/version/x", "",
     "Invalid request method and/or path: GET /version/x.", true},
    {"QueryString", "GET", "/machine-config?x=1", "",
     "Invalid request method and/or path: GET /machine-config?x=1.", true},
    {"Fragment", "GET", "/version#a", "", "Invalid request method and/or path: GET /version#a.",
     true},
    {"EmptyPath", "GET", "", "", "Invalid request method and/or path: GET .", true},
    {"RelativePath", "GET", "machine-config", "",
     "Invalid request method and/or path: GET machine-config.", true},
    {"PathCase", "GET", "/Machine-Config", "",
     "Invalid request method and/or path: GET /Machine-Config.", true},
    {"TwoTrailingSlashes", "GET", "/machine-config//", "",
     "Invalid request method and/or path: GET /machine-config//.", true},
    {"UnknownSnapshotOp", "PUT", "/snapshot/delete", "{}",
     "Invalid request method and/or path: PUT /snapshot/delete.", true},

    // Firecracker routes ember does not implement yet.
    {"SnapshotCreate", "PUT", "/snapshot/create", R"({"snapshot_path": "s", "mem_file_path": "m"})",
     "PUT /snapshot/create is not supported by this version of ember", true},
    {"SnapshotLoad", "PUT", "/snapshot/load", "{}",
     "PUT /snapshot/load is not supported by this version of ember", true},
    {"MmdsGet", "GET", "/mmds", "", "GET /mmds is not supported by this version of ember", true},
    {"MmdsPut", "PUT", "/mmds", "{}", "PUT /mmds is not supported", false},
    {"MmdsPatch", "PATCH", "/mmds", "{}", "PATCH /mmds is not supported", false},
    {"MmdsConfig", "PUT", "/mmds/config", "{}", "PUT /mmds/config is not supported", false},
    {"BalloonPut", "PUT", "/balloon", "{}", "PUT /balloon is not supported", false},
    {"BalloonStats", "GET", "/balloon/statistics", "", "GET /balloon/statistics is not supported",
     false},
    {"BalloonHintingStop", "PATCH", "/balloon/hinting/stop", "",
     "PATCH /balloon/hinting/stop is not supported", false},
    {"Pmem", "PUT", "/pmem/p0", "{}", "PUT /pmem/{id} is not supported by this version of ember",
     true},
    {"CpuConfig", "PUT", "/cpu-config", "{}", "PUT /cpu-config is not supported", false},
    {"HotplugMemory", "GET", "/hotplug/memory", "", "GET /hotplug/memory is not supported", false},
    {"DeleteDrive", "DELETE", "/drives/rootfs", "",
     "DELETE /drives/{drive_id} is not supported by this version of ember", true},

    // Bodies where there must be none, and none where there must be one.
    {"GetWithBody", "GET", "/", "{}", "GET request cannot have a body.", true},
    {"GetMachineConfigWithBody", "GET", "/machine-config", R"({"vcpu_count": 1})",
     "GET request cannot have a body.", true},
    {"EmptyPut", "PUT", "/machine-config", "", "Empty PUT request.", true},
    {"EmptyPatch", "PATCH", "/machine-config", "", "Empty PATCH request.", true},
    {"EmptyActions", "PUT", "/actions", "", "Empty PUT request.", true},
    {"EmptyDrivePut", "PUT", "/drives/rootfs", "", "Empty PUT request.", true},

    // IDs in the path.
    {"MissingPathId", "PUT", "/drives", Drive(""), "drive_id in the path: the ID cannot be empty",
     true},
    {"MissingPathIdTrailingSlash", "PUT", "/network-interfaces/", Net(""),
     "iface_id in the path: the ID cannot be empty", true},
    {"EmptyPathIdSegment", "PATCH", "/drives//", R"({"drive_id": "a"})",
     "drive_id in the path: the ID cannot be empty", true},
    {"PathIdWithDash", "PUT", "/drives/root-fs", Drive(""),
     "drive_id in the path: \"root-fs\" is not a valid ID (1 to 64 characters, letters, digits "
     "and '_')",
     true},
    {"PathIdTooLong", "PUT", "/drives/" + std::string(65, 'a'), Drive(""), "is not a valid ID",
     false},
    {"PathIdWithDot", "PUT", "/network-interfaces/eth.0", Net(""),
     "iface_id in the path: \"eth.0\" is not a valid ID", false},
    {"PathIdPercentEncoded", "PATCH", "/drives/a%20b", R"({"drive_id": "a"})",
     "\"a%20b\" is not a valid ID", false},
    {"PathIdNonAscii", "PUT", "/drives/r\xC3\xA9", Drive(""), "is not a valid ID", false},

    // The path's ID and the body's must agree.
    {"DriveIdMismatch", "PUT", "/drives/other", Drive(""),
     "The id from the path [other] does not match the id from the body [rootfs]!", true},
    {"PatchDriveIdMismatch", "PATCH", "/drives/a", R"({"drive_id": "b"})",
     "The id from the path [a] does not match the id from the body [b]!", true},
    {"NetIdMismatch", "PUT", "/network-interfaces/eth1", Net(""),
     "The id from the path [eth1] does not match the id from the body [eth0]!", true},
    {"PatchNetIdMismatch", "PATCH", "/network-interfaces/eth1", R"({"iface_id": "eth0"})",
     "The id from the path [eth1] does not match the id from the body [eth0]!", true},
    {"BodyIdInvalid", "PUT", "/drives/rootfs",
     R"({"drive_id": "ro-ot", "path_on_host": "r", "is_root_device": true})",
     "drives[rootfs].drive_id: \"ro-ot\" is not a valid ID", false},
    {"BodyIdMissing", "PATCH", "/drives/rootfs", R"({"path_on_host": "r"})",
     "missing required field \"drive_id\" in drives[rootfs]", true},

    // Malformed JSON.
    {"Truncated", "PUT", "/machine-config", "{", "JSON syntax error at byte 1", false},
    {"TrailingGarbage", "PUT", "/machine-config", Machine("") + " x", "JSON syntax error at byte",
     false},
    {"NotJson", "PUT", "/vsock", "guest_cid=3", "JSON syntax error at byte 0", false},
    {"Whitespace", "PUT", "/vsock", "  ", "JSON syntax error at byte 2: The document is empty.",
     true},
    {"TopLevelArray", "PUT", "/machine-config", "[]",
     "machine-config: expected an object, got an array", true},
    {"TopLevelString", "PUT", "/actions", R"("InstanceStart")",
     "actions: expected an object, got \"InstanceStart\"", true},
    {"TopLevelNull", "PATCH", "/vm", "null", "vm: expected an object, got null", true},
    {"DuplicateKey", "PUT", "/machine-config", Machine(R"(, "smt": true, "smt": false)"),
     "duplicate field \"smt\" at the top level", true},
    {"DuplicateNestedKey", "PUT", "/entropy",
     R"({"rate_limiter": {"ops": {"size": 1, "size": 2, "refill_time": 1}}})",
     "duplicate field \"size\" in rate_limiter.ops", true},
    {"DeepNesting", "PUT", "/machine-config", Deep(100000), "nesting deeper than 128 levels",
     false},
    {"DeepTopLevel", "PUT", "/machine-config", std::string(50000, '[') + std::string(50000, ']'),
     "nesting deeper than 128 levels", false},
    {"InvalidUtf8", "PUT", "/boot-source", "{\"kernel_image_path\": \"\xC3\x28\"}",
     "Invalid encoding in string", false},
    {"NulInString", "PUT", "/boot-source", R"({"kernel_image_path": "a\u0000b"})",
     "boot-source.kernel_image_path: must not contain a NUL character", true},
    {"NumberTooBig", "PUT", "/machine-config", R"({"vcpu_count": 1e400, "mem_size_mib": 1})",
     "Number too big", false},
    {"IntegerBeyondU64", "PUT", "/machine-config",
     R"({"vcpu_count": 18446744073709551616, "mem_size_mib": 1})",
     "machine-config.vcpu_count: expected an integer from 1 to 32, got 18446744073709553000.0",
     true},
    {"MemBeyondLimit", "PATCH", "/machine-config", R"({"mem_size_mib": 99999999999})",
     "machine-config.mem_size_mib: expected an integer from 1 to 1046528, got 99999999999", true},
    {"GuestCidBeyondU32", "PUT", "/vsock", R"({"guest_cid": 4294967296, "uds_path": "u"})",
     "vsock.guest_cid: expected an integer from 3 to 4294967295", false},

    // Fields: unknown, missing, wrong type, out of range.
    {"UnknownField", "PUT", "/machine-config", Machine(R"(, "vcpus": 2)"),
     "unknown field \"vcpus\" in machine-config", true},
    {"MissingVcpuCount", "PUT", "/machine-config", R"({"mem_size_mib": 128})",
     "missing required field \"vcpu_count\" in machine-config", true},
    {"VcpuCountString", "PUT", "/machine-config", R"({"vcpu_count": "2", "mem_size_mib": 128})",
     "machine-config.vcpu_count: expected an integer from 1 to 32, got \"2\"", true},
    {"VcpuCountFloat", "PATCH", "/machine-config", R"({"vcpu_count": 2.0})",
     "machine-config.vcpu_count: expected an integer from 1 to 32, got 2.0", true},
    {"VcpuCountNegative", "PATCH", "/machine-config", R"({"vcpu_count": -1})", "got -1", false},
    {"SmtNotBool", "PUT", "/machine-config", Machine(R"(, "smt": 1)"),
     "machine-config.smt: expected true or false, got 1", true},
    {"SmtOddVcpus", "PUT", "/machine-config",
     R"({"vcpu_count": 3, "mem_size_mib": 128, "smt": true})",
     "machine-config.vcpu_count: must be 1 or even when smt is enabled, got 3", true},
    {"HtEnabledDisagrees", "PATCH", "/machine-config", R"({"smt": true, "ht_enabled": false})",
     "machine-config: smt and its deprecated alias ht_enabled disagree", true},
    {"HugePagesUnknown", "PATCH", "/machine-config", R"({"huge_pages": "1G"})",
     "machine-config.huge_pages: expected \"None\", \"2M\" or \"Transparent\", got \"1G\"", true},
    {"HugePagesTransparent", "PUT", "/machine-config", Machine(R"(, "huge_pages": "Transparent")"),
     "\"Transparent\" is not supported yet", false},
    {"CpuTemplateStatic", "PUT", "/machine-config", Machine(R"(, "cpu_template": "T2")"),
     "machine-config.cpu_template: \"T2\" is not supported", false},
    {"PatchMachineEmptyObject", "PATCH", "/machine-config", "{}",
     "Empty PATCH request: the body sets no machine-config field.", true},
    {"PatchMachineOnlyNulls", "PATCH", "/machine-config", R"({"vcpu_count": null, "smt": null})",
     "Empty PATCH request", false},
    {"PatchMachineUnknown", "PATCH", "/machine-config", R"({"memory": 1})",
     "unknown field \"memory\" in machine-config", true},
    {"DriveMissingRoot", "PUT", "/drives/rootfs", R"({"drive_id": "rootfs", "path_on_host": "r"})",
     "missing required field \"is_root_device\" in drives[rootfs]", true},
    {"DriveEmptyPath", "PUT", "/drives/rootfs",
     R"({"drive_id": "rootfs", "path_on_host": "", "is_root_device": true})",
     "drives[rootfs].path_on_host: must not be empty", true},
    {"DriveCacheType", "PUT", "/drives/rootfs", Drive(R"(, "cache_type": "None")"),
     "drives[rootfs].cache_type: expected \"Unsafe\" or \"Writeback\", got \"None\"", true},
    {"DriveIoEngine", "PUT", "/drives/rootfs", Drive(R"(, "io_engine": 1)"),
     "drives[rootfs].io_engine: expected a string, got 1", true},
    {"DriveSocket", "PUT", "/drives/rootfs", Drive(R"(, "socket": "/v.sock")"),
     "drives[rootfs].socket: vhost-user block devices are not supported", true},
    {"DriveRateLimiterBucket", "PUT", "/drives/rootfs",
     Drive(R"(, "rate_limiter": {"bandwidth": {"size": -1, "refill_time": 1}})"),
     "drives[rootfs].rate_limiter.bandwidth.size: expected an integer", false},
    {"DriveRateLimiterUnknown", "PATCH", "/drives/rootfs",
     R"({"drive_id": "rootfs", "rate_limiter": {"iops": {}}})",
     "unknown field \"iops\" in drives[rootfs].rate_limiter", true},
    {"PatchDriveRootFlag", "PATCH", "/drives/rootfs",
     R"({"drive_id": "rootfs", "is_root_device": true})",
     "unknown field \"is_root_device\" in drives[rootfs]", true},
    {"PatchDriveEmptyPath", "PATCH", "/drives/rootfs",
     R"({"drive_id": "rootfs", "path_on_host": ""})",
     "drives[rootfs].path_on_host: must not be empty", true},
    {"PatchNetHostDev", "PATCH", "/network-interfaces/eth0",
     R"({"iface_id": "eth0", "host_dev_name": "tap1"})",
     "unknown field \"host_dev_name\" in network-interfaces[eth0]", true},
    {"NetBadMac", "PUT", "/network-interfaces/eth0", Net(R"(, "guest_mac": "06:00:ac:10:00")"),
     "network-interfaces[eth0].guest_mac: \"06:00:ac:10:00\" is not a MAC address", false},
    {"NetMtuTooSmall", "PUT", "/network-interfaces/eth0", Net(R"(, "mtu": 67)"),
     "network-interfaces[eth0].mtu: expected an integer from 68 to 65535, got 67", true},
    {"NetLongTapName", "PUT", "/network-interfaces/eth0",
     R"({"iface_id": "eth0", "host_dev_name": "tap0123456789abcd"})",
     "longer than an interface name can be", false},
    {"NetMissingHostDev", "PUT", "/network-interfaces/eth0", R"({"iface_id": "eth0"})",
     "missing required field \"host_dev_name\" in network-interfaces[eth0]", true},
    {"AllowMmdsNotBool", "PUT", "/network-interfaces/eth0",
     Net(R"(, "allow_mmds_requests": "yes")"),
     "network-interfaces[eth0].allow_mmds_requests: expected true or false", false},
    {"VsockReservedCid", "PUT", "/vsock", R"({"guest_cid": 2, "uds_path": "u"})",
     "vsock.guest_cid: expected an integer from 3 to 4294967295, got 2", true},
    {"VsockMissingUds", "PUT", "/vsock", R"({"guest_cid": 3})",
     "missing required field \"uds_path\" in vsock", true},
    {"VsockIdWrongType", "PUT", "/vsock", R"({"guest_cid": 3, "uds_path": "u", "vsock_id": 1})",
     "vsock.vsock_id: expected a string, got 1", true},
    {"BootMissingKernel", "PUT", "/boot-source", R"({"boot_args": "x"})",
     "missing required field \"kernel_image_path\" in boot-source", true},
    {"BootKernelNull", "PUT", "/boot-source", R"({"kernel_image_path": null})",
     "boot-source.kernel_image_path: expected a string, got null", true},
    {"LoggerLevel", "PUT", "/logger", R"({"level": "Verbose"})",
     "logger.level: expected one of Error, Warning, Info, Debug, Trace, Off, got \"Verbose\"",
     true},
    {"LoggerUnknown", "PUT", "/logger", R"({"path": "/tmp/l"})", "unknown field \"path\" in logger",
     true},
    {"MetricsMissingPath", "PUT", "/metrics", "{}",
     "missing required field \"metrics_path\" in metrics", true},
    {"MetricsEmitId", "PUT", "/metrics", R"({"metrics_path": "m", "emit_id": true})",
     "metrics.emit_id is not supported yet", true},
    {"EntropyUnknown", "PUT", "/entropy", R"({"rate": {}})", "unknown field \"rate\" in entropy",
     true},
    {"SerialRateLimiter", "PUT", "/serial",
     R"({"serial_out_path": "c", "rate_limiter": {"size": 1, "refill_time": 1}})",
     "serial.rate_limiter is not supported yet", true},
    {"SerialUnknown", "PUT", "/serial", R"({"out": "c"})", "unknown field \"out\" in serial", true},
    {"SerialEmptyPath", "PUT", "/serial", R"({"serial_out_path": ""})",
     "serial.serial_out_path: must not be empty", true},
    {"ActionUnknown", "PUT", "/actions", R"({"action_type": "Reboot"})",
     "actions.action_type: expected \"InstanceStart\", \"SendCtrlAltDel\" or \"FlushMetrics\", "
     "got \"Reboot\"",
     true},
    {"ActionMissing", "PUT", "/actions", "{}", "missing required field \"action_type\" in actions",
     true},
    {"ActionWrongType", "PUT", "/actions", R"({"action_type": 1})",
     "actions.action_type: expected a string, got 1", true},
    {"ActionExtraField", "PUT", "/actions", R"({"action_type": "InstanceStart", "now": true})",
     "unknown field \"now\" in actions", true},
    {"VmStateUnknown", "PATCH", "/vm", R"({"state": "Running"})",
     "vm.state: expected \"Paused\" or \"Resumed\", got \"Running\"", true},
    {"VmStateMissing", "PATCH", "/vm", "{}", "missing required field \"state\" in vm", true},
};

// gtest prints a failing case as its request rather than as bytes.
void PrintTo(const ErrorCase& c, std::ostream* os) {
  *os << c.method << " " << c.path << " " << c.body.substr(0, 80);
}

class ApiRoutesErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ApiRoutesErrorTest, IsRefusedWithItsMessage) {
  const ErrorCase& c = GetParam();
  std::string message = ErrorOf(c.method, c.path, c.body);
  if (c.exact) {
    EXPECT_EQ(message, c.expected);
  } else {
    EXPECT_THAT(message, HasSubstr(c.expected));
  }
  EXPECT_EQ(message.find('\n'), std::string::npos) << "fault messages are one line";

  // The message travels as JSON, valid even when it quotes raw request bytes.
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(FaultMessageJson(message).c_str());
  ASSERT_FALSE(doc.HasParseError()) << FaultMessageJson(message);
  ASSERT_TRUE(doc.IsObject() && doc.HasMember("fault_message") && doc["fault_message"].IsString());
}

INSTANTIATE_TEST_SUITE_P(ApiRoutes, ApiRoutesErrorTest, ::testing::ValuesIn(kErrorCases),
                         [](const ::testing::TestParamInfo<ErrorCase>& info) {
                           return std::string(info.param.name);
                         });

TEST(ApiRoutesTest, ErrorBatteryIsBroadAndNamedUniquely) {
  std::set<std::string> names;
  for (const ErrorCase& c : kErrorCases) EXPECT_TRUE(names.insert(c.name).second) << c.name;
  EXPECT_GE(names.size(), 60u);
}

// --- The route table ---

TEST(ApiRoutesTest, RouteTableHasNoDuplicates) {
  std::set<std::pair<std::string_view, std::string_view>> seen;
  for (const ApiRoute& route : ApiRoutes()) {
    EXPECT_TRUE(seen.insert({route.method, route.path}).second)
        << route.method << " " << route.path;
  }
}

// --- Rendering answers ---

TEST(ApiRoutesTest, NoDataRendersAsNothing) { EXPECT_EQ(VmmDataToJson(NoData{}), ""); }

TEST(ApiRoutesTest, InstanceInfoJson) {
  EXPECT_EQ(VmmDataToJson(InstanceInfo{"vm1", InstanceState::kNotStarted, "0.1.0"}),
            R"({"id":"vm1","state":"Not started","vmm_version":"0.1.0","app_name":"ember"})");
  EXPECT_THAT(VmmDataToJson(InstanceInfo{"vm1", InstanceState::kRunning, "0.1.0"}),
              HasSubstr(R"("state":"Running")"));
  EXPECT_THAT(VmmDataToJson(InstanceInfo{"a\"b", InstanceState::kPaused, "0.1.0"}),
              HasSubstr(R"("id":"a\"b","state":"Paused")"));
}

TEST(ApiRoutesTest, VersionJson) {
  EXPECT_EQ(VmmDataToJson(VersionInfo{"0.1.0"}), R"({"firecracker_version":"0.1.0"})");
}

TEST(ApiRoutesTest, MachineConfigJsonHasFirecrackersShape) {
  EXPECT_EQ(VmmDataToJson(MachineConfig{}),
            R"({"vcpu_count":1,"mem_size_mib":128,"smt":false,"track_dirty_pages":false,)"
            R"("huge_pages":"None"})");
  MachineConfig m{4, 2048, true, true, HugePages::k2M};
  EXPECT_EQ(VmmDataToJson(m),
            R"({"vcpu_count":4,"mem_size_mib":2048,"smt":true,"track_dirty_pages":true,)"
            R"("huge_pages":"2M"})");
}

TEST(ApiRoutesTest, VmConfigJsonIsTheConfigFileFormat) {
  VmConfig config;
  config.boot_source = BootSourceConfig{"vmlinux", "console=ttyS0", std::nullopt};
  std::string json = VmmDataToJson(config);
  EXPECT_THAT(
      json,
      StartsWith(R"({"balloon":null,"drives":[],"boot-source":{"kernel_image_path":"vmlinux")"));
  EXPECT_THAT(json, HasSubstr(R"("machine-config":{"vcpu_count":1,)"));
}

TEST(ApiRoutesTest, FaultMessageJsonEscapes) {
  EXPECT_EQ(FaultMessageJson("plain"), R"({"fault_message":"plain"})");
  EXPECT_EQ(FaultMessageJson(R"(a "quoted" \ path)"),
            R"({"fault_message":"a \"quoted\" \\ path"})");
  EXPECT_EQ(FaultMessageJson("line\nbreak\ttab"), R"({"fault_message":"line\nbreak\ttab"})");
  EXPECT_EQ(FaultMessageJson(std::string_view("nul\0x", 5)), R"({"fault_message":"nul\u0000x"})");
  EXPECT_EQ(FaultMessageJson("\x01"), R"({"fault_message":"\u0001"})");
}

TEST(ApiRoutesTest, FaultMessageJsonKeepsUtf8AndReplacesBadBytes) {
  EXPECT_EQ(FaultMessageJson("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x94\xA5"),
            "{\"fault_message\":\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x94\xA5\"}");
  // A lone continuation byte, a truncated sequence, an overlong '/', a UTF-16 surrogate.
  EXPECT_EQ(FaultMessageJson("a\x80"
                             "b"),
            "{\"fault_message\":\"a\xEF\xBF\xBD"
            "b\"}");
  EXPECT_EQ(FaultMessageJson("x\xE2\x82"), "{\"fault_message\":\"x\xEF\xBF\xBD\xEF\xBF\xBD\"}");
  EXPECT_EQ(FaultMessageJson("\xC0\xAF"), "{\"fault_message\":\"\xEF\xBF\xBD\xEF\xBF\xBD\"}");
  EXPECT_EQ(FaultMessageJson("\xED\xA0\x80"),
            "{\"fault_message\":\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"}");
}

TEST(ApiRoutesTest, UnknownPathWithRawBytesStillRendersAsValidJson) {
  std::string message = ErrorOf("GET", "/\xFF\xFE");
  EXPECT_EQ(message, "Invalid request method and/or path: GET /\xFF\xFE.");
  EXPECT_EQ(FaultMessageJson(message),
            "{\"fault_message\":\"Invalid request method and/or path: GET "
            "/\xEF\xBF\xBD\xEF\xBF\xBD.\"}");
}

}  // namespace
}  // namespace ember

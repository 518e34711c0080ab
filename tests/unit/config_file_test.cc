#include "api/config_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "api/json_util.h"

namespace ember {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr const char* kMinimal = R"({"boot-source": {"kernel_image_path": "vmlinux"}})";

// A config with the given machine-config body.
std::string WithMachine(const std::string& machine) {
  return R"({"boot-source": {"kernel_image_path": "k"}, "machine-config": )" + machine + "}";
}

std::string ErrorOf(const std::string& json) {
  auto r = ParseConfigFile(json);
  EXPECT_FALSE(r.ok()) << "expected an error for " << json;
  if (r.ok()) return "";
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << "errors are one line";
  return r.error().message;
}

TEST(ConfigFileTest, MinimalConfigGetsFirecrackerDefaults) {
  auto r = ParseConfigFile(kMinimal);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->boot_source.has_value());
  EXPECT_EQ(r->boot_source->kernel_image_path, "vmlinux");
  EXPECT_FALSE(r->boot_source->boot_args.has_value());
  EXPECT_FALSE(r->boot_source->initrd_path.has_value());
  EXPECT_EQ(r->machine.vcpu_count, 1u);
  EXPECT_EQ(r->machine.mem_size_mib, 128u);
  EXPECT_FALSE(r->machine.smt);
  EXPECT_FALSE(r->machine.track_dirty_pages);
  EXPECT_EQ(r->machine.huge_pages, HugePages::kNone);
  EXPECT_FALSE(r->logger.has_value());
  EXPECT_FALSE(r->metrics.has_value());
}

TEST(ConfigFileTest, AllFields) {
  auto r = ParseConfigFile(R"({
    "boot-source": {"kernel_image_path": "/k/vmlinux", "boot_args": "console=ttyS0",
                    "initrd_path": "/k/initrd"},
    "machine-config": {"vcpu_count": 4, "mem_size_mib": 1024, "smt": true,
                       "track_dirty_pages": true, "huge_pages": "2M", "cpu_template": "None"},
    "logger": {"log_path": "/tmp/log.fifo", "level": "warning", "show_level": true,
               "show_log_origin": true, "module": "vmm"},
    "metrics": {"metrics_path": "/tmp/metrics.fifo"}
  })");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->boot_source->kernel_image_path, "/k/vmlinux");
  EXPECT_EQ(r->boot_source->boot_args, "console=ttyS0");
  EXPECT_EQ(r->boot_source->initrd_path, "/k/initrd");
  EXPECT_EQ(r->machine.vcpu_count, 4u);
  EXPECT_EQ(r->machine.mem_size_mib, 1024u);
  EXPECT_TRUE(r->machine.smt);
  EXPECT_TRUE(r->machine.track_dirty_pages);
  EXPECT_EQ(r->machine.huge_pages, HugePages::k2M);
  ASSERT_TRUE(r->logger.has_value());
  EXPECT_EQ(r->logger->log_path, "/tmp/log.fifo");
  EXPECT_EQ(r->logger->level, LogLevel::kWarning);
  EXPECT_TRUE(r->logger->show_level);
  EXPECT_TRUE(r->logger->show_log_origin);
  EXPECT_EQ(r->logger->module, "vmm");
  ASSERT_TRUE(r->metrics.has_value());
  EXPECT_EQ(r->metrics->metrics_path, "/tmp/metrics.fifo");
}

TEST(ConfigFileTest, EmptyBootArgsAreKeptAndNullsMeanAbsent) {
  auto r = ParseConfigFile(
      R"({"boot-source": {"kernel_image_path": "k", "boot_args": "", "initrd_path": null},
          "machine-config": null, "logger": null, "metrics": null})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->boot_source->boot_args, "");
  EXPECT_FALSE(r->boot_source->initrd_path.has_value());
  EXPECT_EQ(r->machine.vcpu_count, 1u);
  EXPECT_FALSE(r->logger.has_value());
}

TEST(ConfigFileTest, JsonSyntaxErrorsNameTheByteOffset) {
  EXPECT_THAT(ErrorOf(R"({"boot-source": {)"),
              StartsWith("JSON syntax error at byte 17: Missing a name"));
  EXPECT_THAT(ErrorOf(R"({"a": 1,})"), StartsWith("JSON syntax error at byte 8: "));
  EXPECT_THAT(ErrorOf(""), HasSubstr("JSON syntax error at byte 0: The document is empty."));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + " x"), StartsWith("JSON syntax error at byte"));
  EXPECT_THAT(ErrorOf("{\"a\": \"\xff\"}"), StartsWith("JSON syntax error at byte"));
  EXPECT_THAT(ErrorOf(R"({"a": NaN})"), StartsWith("JSON syntax error at byte"));
  EXPECT_THAT(ErrorOf("{/*c*/}"), StartsWith("JSON syntax error at byte"));
}

TEST(ConfigFileTest, TopLevelMustBeAnObject) {
  EXPECT_EQ(ErrorOf("[]"), "the configuration must be a JSON object, got an array");
  EXPECT_EQ(ErrorOf("42"), "the configuration must be a JSON object, got 42");
  EXPECT_EQ(ErrorOf("null"), "the configuration must be a JSON object, got null");
}

TEST(ConfigFileTest, BootSourceIsRequired) {
  EXPECT_EQ(ErrorOf("{}"), "missing required field \"boot-source\" at the top level");
  EXPECT_EQ(ErrorOf(R"({"boot-source": null})"), "boot-source: expected an object, got null");
  EXPECT_EQ(ErrorOf(R"({"boot-source": "vmlinux"})"),
            "boot-source: expected an object, got \"vmlinux\"");
  EXPECT_EQ(ErrorOf(R"({"boot-source": {}})"),
            "missing required field \"kernel_image_path\" in boot-source");
}

TEST(ConfigFileTest, BootSourceFieldTypes) {
  EXPECT_EQ(ErrorOf(R"({"boot-source": {"kernel_image_path": 5}})"),
            "boot-source.kernel_image_path: expected a string, got 5");
  EXPECT_THAT(ErrorOf(R"({"boot-source": {"kernel_image_path": null}})"),
              StartsWith("boot-source.kernel_image_path: expected a string"));
  EXPECT_EQ(ErrorOf(R"({"boot-source": {"kernel_image_path": ""}})"),
            "boot-source.kernel_image_path: must not be empty");
  EXPECT_EQ(ErrorOf(R"({"boot-source": {"kernel_image_path": "a\u0000b"}})"),
            "boot-source.kernel_image_path: must not contain a NUL character");
  EXPECT_EQ(ErrorOf(R"({"boot-source": {"kernel_image_path": "k", "boot_args": ["a"]}})"),
            "boot-source.boot_args: expected a string, got an array");
  EXPECT_EQ(ErrorOf(R"({"boot-source": {"kernel_image_path": "k", "initrd_path": true}})"),
            "boot-source.initrd_path: expected a string, got true");
  EXPECT_EQ(ErrorOf(R"({"boot-source": {"kernel_image_path": "k", "initrd": "i"}})"),
            "unknown field \"initrd\" in boot-source");
}

TEST(ConfigFileTest, LongValuesAreCutInMessages) {
  std::string msg =
      ErrorOf(R"({"boot-source": {"kernel_image_path": "k"}, "machine-config": {"vcpu_count": ")" +
              std::string(200, 'x') + R"(", "mem_size_mib": 1}})");
  EXPECT_THAT(msg, HasSubstr("got \"" + std::string(40, 'x') + "...\""));
  EXPECT_LT(msg.size(), 150u);
}

TEST(ConfigFileTest, UnknownKeysAreRejectedWithTheirPath) {
  EXPECT_EQ(ErrorOf(R"({"boot-source": {"kernel_image_path": "k"}, "boot_source": {}})"),
            "unknown field \"boot_source\" at the top level");
  EXPECT_EQ(ErrorOf(WithMachine(R"({"vcpus": 2, "vcpu_count": 1, "mem_size_mib": 128})")),
            "unknown field \"vcpus\" in machine-config");
  EXPECT_EQ(ErrorOf(R"({"boot-source": {"kernel_image_path": "k"}, "logger": {"path": "x"}})"),
            "unknown field \"path\" in logger");
  EXPECT_EQ(ErrorOf(R"({"boot-source": {"kernel_image_path": "k"}, "metrics": {"path": "x"}})"),
            "unknown field \"path\" in metrics");
}

TEST(ConfigFileTest, DuplicateKeysAreRejected) {
  EXPECT_EQ(ErrorOf(R"({"boot-source": {"kernel_image_path": "a", "kernel_image_path": "b"}})"),
            "duplicate field \"kernel_image_path\" in boot-source");
  EXPECT_EQ(ErrorOf(std::string("{") + R"("boot-source": {"kernel_image_path": "a"},)" +
                    R"("boot-source": {"kernel_image_path": "b"}})"),
            "duplicate field \"boot-source\" at the top level");
  EXPECT_EQ(ErrorOf(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 128, "smt": false,
                                   "smt": true})")),
            "duplicate field \"smt\" in machine-config");
}

TEST(ConfigFileTest, DeepNestingIsRejectedWithoutCrashing) {
  std::string deep = R"({"boot-source": {"kernel_image_path": "k"}, "cpu-config": )" +
                     std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_THAT(ErrorOf(deep), HasSubstr("nesting deeper than 128 levels"));
}

TEST(ConfigFileTest, MachineConfigRequiresVcpuCountAndMemSize) {
  EXPECT_EQ(ErrorOf(WithMachine(R"({"mem_size_mib": 128})")),
            "missing required field \"vcpu_count\" in machine-config");
  EXPECT_EQ(ErrorOf(WithMachine(R"({"vcpu_count": 2})")),
            "missing required field \"mem_size_mib\" in machine-config");
  EXPECT_EQ(ErrorOf(WithMachine("[]")), "machine-config: expected an object, got an array");
}

TEST(ConfigFileTest, VcpuCountRange) {
  EXPECT_EQ(ErrorOf(WithMachine(R"({"vcpu_count": 0, "mem_size_mib": 128})")),
            "machine-config.vcpu_count: expected an integer from 1 to 32, got 0");
  EXPECT_EQ(ErrorOf(WithMachine(R"({"vcpu_count": 33, "mem_size_mib": 128})")),
            "machine-config.vcpu_count: expected an integer from 1 to 32, got 33");
  EXPECT_EQ(ErrorOf(WithMachine(R"({"vcpu_count": -1, "mem_size_mib": 128})")),
            "machine-config.vcpu_count: expected an integer from 1 to 32, got -1");
  EXPECT_EQ(ErrorOf(WithMachine(R"({"vcpu_count": 2.0, "mem_size_mib": 128})")),
            "machine-config.vcpu_count: expected an integer from 1 to 32, got 2.0");
  EXPECT_EQ(ErrorOf(WithMachine(R"({"vcpu_count": "2", "mem_size_mib": 128})")),
            "machine-config.vcpu_count: expected an integer from 1 to 32, got \"2\"");
  EXPECT_THAT(ErrorOf(WithMachine(R"({"vcpu_count": null, "mem_size_mib": 128})")),
              HasSubstr("got null"));
  EXPECT_EQ(ParseConfigFile(WithMachine(R"({"vcpu_count": 32, "mem_size_mib": 128})"))
                ->machine.vcpu_count,
            32u);
}

TEST(ConfigFileTest, MemSizeRange) {
  EXPECT_EQ(ErrorOf(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 0})")),
            "machine-config.mem_size_mib: expected an integer from 1 to 1046528, got 0");
  EXPECT_THAT(ErrorOf(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 1046529})")),
              HasSubstr("machine-config.mem_size_mib: expected an integer from 1 to 1046528"));
  // Sizes whose byte count overflows 64 bits, and numbers beyond 64 bits.
  EXPECT_THAT(ErrorOf(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 17592186044416})")),
              HasSubstr("machine-config.mem_size_mib"));
  EXPECT_THAT(ErrorOf(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 18446744073709551616})")),
              HasSubstr("machine-config.mem_size_mib"));
  EXPECT_EQ(ParseConfigFile(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 1046528})"))
                ->machine.mem_size_mib,
            kMaxMemSizeMib);
}

TEST(ConfigFileTest, SmtNeedsOneOrAnEvenVcpuCount) {
  EXPECT_EQ(ErrorOf(WithMachine(R"({"vcpu_count": 3, "mem_size_mib": 128, "smt": true})")),
            "machine-config.vcpu_count: must be 1 or even when smt is enabled, got 3");
  EXPECT_TRUE(
      ParseConfigFile(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 128, "smt": true})")).ok());
  EXPECT_TRUE(ParseConfigFile(WithMachine(R"({"vcpu_count": 3, "mem_size_mib": 128})")).ok());
  EXPECT_EQ(ErrorOf(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 128, "smt": 1})")),
            "machine-config.smt: expected true or false, got 1");
}

TEST(ConfigFileTest, HtEnabledIsTheDeprecatedNameOfSmt) {
  auto r = ParseConfigFile(WithMachine(R"({"vcpu_count": 2, "mem_size_mib": 128,
                                           "ht_enabled": true})"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->machine.smt);
  EXPECT_TRUE(ParseConfigFile(WithMachine(R"({"vcpu_count": 2, "mem_size_mib": 128,
                                             "ht_enabled": true, "smt": true})"))
                  .ok());
  EXPECT_THAT(ErrorOf(WithMachine(R"({"vcpu_count": 2, "mem_size_mib": 128,
                                      "ht_enabled": true, "smt": false})")),
              HasSubstr("disagree"));
  EXPECT_EQ(ErrorOf(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 128, "ht_enabled": "y"})")),
            "machine-config.ht_enabled: expected true or false, got \"y\"");
}

TEST(ConfigFileTest, TrackDirtyPagesType) {
  EXPECT_EQ(ErrorOf(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 128,
                                    "track_dirty_pages": "yes"})")),
            "machine-config.track_dirty_pages: expected true or false, got \"yes\"");
}

TEST(ConfigFileTest, HugePages) {
  EXPECT_EQ(ParseConfigFile(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 128,
                                            "huge_pages": "None"})"))
                ->machine.huge_pages,
            HugePages::kNone);
  EXPECT_EQ(ErrorOf(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 129,
                                    "huge_pages": "2M"})")),
            "machine-config.mem_size_mib: must be a multiple of 2 with huge_pages \"2M\", got 129");
  EXPECT_THAT(ErrorOf(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 128,
                                      "huge_pages": "Transparent"})")),
              StartsWith("machine-config.huge_pages: \"Transparent\" is not supported yet"));
  EXPECT_EQ(ErrorOf(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 128,
                                    "huge_pages": "1G"})")),
            "machine-config.huge_pages: expected \"None\", \"2M\" or \"Transparent\", got \"1G\"");
  EXPECT_EQ(ErrorOf(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 128, "huge_pages": 2})")),
            "machine-config.huge_pages: expected a string, got 2");
}

TEST(ConfigFileTest, CpuTemplateOnlyNone) {
  EXPECT_TRUE(ParseConfigFile(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 128,
                                             "cpu_template": null})"))
                  .ok());
  EXPECT_THAT(ErrorOf(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 128,
                                      "cpu_template": "T2"})")),
              StartsWith("machine-config.cpu_template: \"T2\" is not supported"));
  EXPECT_EQ(ErrorOf(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 128,
                                    "cpu_template": "Zen"})")),
            "machine-config.cpu_template: expected \"None\", got \"Zen\"");
}

TEST(ConfigFileTest, DeviceSectionsAreNotSupportedYet) {
  const std::string boot = R"("boot-source": {"kernel_image_path": "k"})";
  EXPECT_EQ(ErrorOf("{" + boot + R"(, "pmem": [{}]})"), "pmem is not supported yet");
  for (const char* key : {"balloon", "mmds-config", "cpu-config", "memory-hotplug"}) {
    EXPECT_EQ(ErrorOf("{" + boot + ", \"" + key + "\": {}}"),
              std::string(key) + " is not supported yet");
  }
  EXPECT_EQ(ErrorOf("{" + boot + R"(, "drives": {}})"), "drives: expected an array, got an object");
  // Sections that configure nothing are accepted (GET /vm/config writes them this way).
  auto r = ParseConfigFile("{" + boot +
                           R"(, "drives": [], "network-interfaces": [], "pmem": null,
                              "vsock": null, "balloon": null, "entropy": null})");
  EXPECT_TRUE(r.ok()) << r.error().message;
}

TEST(ConfigFileTest, DrivesAreParsedWithTheRootDeviceFirst) {
  auto r = ParseConfigFile(R"({"boot-source": {"kernel_image_path": "k"}, "drives": [
      {"drive_id": "data", "path_on_host": "/d.img", "is_root_device": false},
      {"drive_id": "rootfs", "path_on_host": "/r.img", "is_root_device": true,
       "is_read_only": true, "partuuid": "1-2", "cache_type": "Writeback", "io_engine": "Async",
       "rate_limiter": {"bandwidth": {"size": 1000, "refill_time": 100, "one_time_burst": 5},
                        "ops": null}}]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->drives.size(), 2u);
  const DriveConfig& root = r->drives[0];
  EXPECT_EQ(root.drive_id, "rootfs");
  EXPECT_TRUE(root.is_root_device);
  EXPECT_TRUE(root.is_read_only);
  EXPECT_EQ(root.partuuid, "1-2");
  EXPECT_EQ(root.cache_type, CacheType::kWriteback);
  EXPECT_EQ(root.io_engine, IoEngine::kAsync);
  ASSERT_TRUE(root.rate_limiter.has_value());
  EXPECT_EQ(root.rate_limiter->bandwidth, (TokenBucketConfig{1000, 5, 100}));
  EXPECT_FALSE(root.rate_limiter->ops.has_value());
  const DriveConfig& data = r->drives[1];
  EXPECT_EQ(data.drive_id, "data");
  EXPECT_FALSE(data.is_read_only);
  EXPECT_EQ(data.cache_type, CacheType::kUnsafe);
  EXPECT_EQ(data.io_engine, IoEngine::kSync);
  EXPECT_FALSE(data.rate_limiter.has_value());
}

TEST(ConfigFileTest, DriveErrorsNameTheField) {
  auto drives = [](const std::string& body) {
    return ErrorOf(R"({"boot-source": {"kernel_image_path": "k"}, "drives": [)" + body + "]}");
  };
  EXPECT_THAT(drives(R"({"drive_id": "a-b", "path_on_host": "/x", "is_root_device": false})"),
              StartsWith("drives[0].drive_id: \"a-b\" is not a valid ID"));
  EXPECT_THAT(drives(R"({"drive_id": "a", "is_root_device": false})"),
              HasSubstr("missing required field \"path_on_host\" in drives[0]"));
  EXPECT_THAT(drives(R"({"drive_id": "a", "path_on_host": "/x"})"),
              HasSubstr("missing required field \"is_root_device\" in drives[0]"));
  EXPECT_THAT(drives(R"({"drive_id": "a", "path_on_host": "/x", "is_root_device": false,
                         "io_engine": "Fast"})"),
              HasSubstr("drives[0].io_engine"));
  EXPECT_THAT(drives(R"({"drive_id": "a", "path_on_host": "/x", "is_root_device": false,
                         "socket": "/vhost.sock"})"),
              HasSubstr("vhost-user"));
  EXPECT_THAT(drives(R"({"drive_id": "a", "path_on_host": "/x", "is_root_device": false},
                        {"drive_id": "b", "path_on_host": "/y", "is_root_device": false,
                         "colour": 1})"),
              HasSubstr("drives[1]"));
  EXPECT_THAT(drives(R"({"drive_id": "a", "path_on_host": "/x", "is_root_device": true},
                        {"drive_id": "b", "path_on_host": "/y", "is_root_device": true})"),
              HasSubstr("second root device"));
  EXPECT_THAT(ErrorOf(R"({"boot-source": {"kernel_image_path": "k"},
                          "entropy": {"rate_limiter": {"ops": {"size": 1}}}})"),
              HasSubstr("\"refill_time\" in entropy.rate_limiter.ops"));
}

TEST(ConfigFileTest, NetworkInterfaces) {
  auto r = ParseConfigFile(R"({"boot-source": {"kernel_image_path": "k"}, "network-interfaces": [
      {"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:AC:10:00:02",
       "mtu": 1500, "rx_rate_limiter": {"ops": {"size": 100, "refill_time": 1000}},
       "allow_mmds_requests": true},
      {"iface_id": "eth1", "host_dev_name": "tap1"}]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->network_interfaces.size(), 2u);
  const NetworkInterfaceConfig& n = r->network_interfaces[0];
  EXPECT_EQ(n.iface_id, "eth0");
  EXPECT_EQ(n.host_dev_name, "tap0");
  ASSERT_TRUE(n.guest_mac.has_value());
  EXPECT_EQ(*n.guest_mac, (std::array<uint8_t, 6>{0x06, 0x00, 0xac, 0x10, 0x00, 0x02}));
  EXPECT_EQ(n.mtu, 1500);
  ASSERT_TRUE(n.rx_rate_limiter.has_value());
  EXPECT_EQ(n.rx_rate_limiter->ops, (TokenBucketConfig{100, 0, 1000}));
  EXPECT_FALSE(n.tx_rate_limiter.has_value());
  EXPECT_FALSE(r->network_interfaces[1].guest_mac.has_value());

  auto nets = [](const std::string& body) {
    return ErrorOf(R"({"boot-source": {"kernel_image_path": "k"}, "network-interfaces": [)" +
                   body + "]}");
  };
  EXPECT_THAT(nets(R"({"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:ac"})"),
              StartsWith("network-interfaces[0].guest_mac: \"06:00:ac\" is not a MAC address"));
  EXPECT_THAT(nets(R"({"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "g6:00:ac:10:00:02"})"),
              HasSubstr("not a MAC address"));
  EXPECT_THAT(nets(R"({"iface_id": "eth0", "host_dev_name": "tap0", "mtu": 67})"),
              HasSubstr("network-interfaces[0].mtu"));
  EXPECT_THAT(nets(R"({"iface_id": "eth0", "host_dev_name": "a-very-long-tap-name0"})"),
              HasSubstr("interface name"));
  EXPECT_THAT(nets(R"({"iface_id": "eth0", "host_dev_name": "tap0"},
                      {"iface_id": "eth1", "host_dev_name": "tap0"})"),
              HasSubstr("network-interfaces[1].host_dev_name"));
  EXPECT_THAT(nets(R"({"iface_id": "eth0", "host_dev_name": "tap0"},
                      {"iface_id": "eth0", "host_dev_name": "tap1"})"),
              HasSubstr("used twice"));
  EXPECT_THAT(nets(R"({"host_dev_name": "tap0"})"), HasSubstr("iface_id"));
}

TEST(ConfigFileTest, Vsock) {
  auto r = ParseConfigFile(R"({"boot-source": {"kernel_image_path": "k"},
      "vsock": {"guest_cid": 3, "uds_path": "/run/v.sock", "vsock_id": "vsock0"}})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->vsock.has_value());
  EXPECT_EQ(r->vsock->guest_cid, 3u);
  EXPECT_EQ(r->vsock->uds_path, "/run/v.sock");
  EXPECT_THAT(ErrorOf(R"({"boot-source": {"kernel_image_path": "k"},
                          "vsock": {"guest_cid": 2, "uds_path": "/v"}})"),
              HasSubstr("vsock.guest_cid"));
  EXPECT_THAT(ErrorOf(R"({"boot-source": {"kernel_image_path": "k"}, "vsock": {"guest_cid": 3}})"),
              HasSubstr("uds_path"));
  VmConfig config = *r;
  auto again = ParseConfigFile(VmConfigToJson(config));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->vsock->guest_cid, 3u);
  EXPECT_EQ(again->vsock->uds_path, "/run/v.sock");
}

TEST(ConfigFileTest, RoundTripDevices) {
  VmConfig config = *ParseConfigFile(kMinimal);
  DriveConfig d;
  d.drive_id = "rootfs";
  d.path_on_host = "/images/root \"1\".ext4";
  d.is_root_device = true;
  d.is_read_only = true;
  d.partuuid = "abcd-01";
  d.cache_type = CacheType::kWriteback;
  d.rate_limiter = RateLimiterConfig{TokenBucketConfig{1 << 20, 0, 1000}, TokenBucketConfig{100, 10, 500}};
  config.drives.push_back(d);
  config.entropy = EntropyConfig{RateLimiterConfig{std::nullopt, TokenBucketConfig{4, 0, 10}}};
  NetworkInterfaceConfig net;
  net.iface_id = "eth0";
  net.host_dev_name = "tap0";
  net.guest_mac = std::array<uint8_t, 6>{0x06, 0, 0xac, 0x10, 0, 0x02};
  net.mtu = 9000;
  net.tx_rate_limiter = RateLimiterConfig{TokenBucketConfig{1000, 0, 100}, std::nullopt};
  config.network_interfaces.push_back(net);
  std::string json = VmConfigToJson(config);
  auto again = ParseConfigFile(json);
  ASSERT_TRUE(again.ok()) << again.error().message << "\n" << json;
  ASSERT_EQ(again->drives.size(), 1u);
  const DriveConfig& e = again->drives[0];
  EXPECT_EQ(e.drive_id, d.drive_id);
  EXPECT_EQ(e.path_on_host, d.path_on_host);
  EXPECT_EQ(e.is_root_device, d.is_root_device);
  EXPECT_EQ(e.is_read_only, d.is_read_only);
  EXPECT_EQ(e.partuuid, d.partuuid);
  EXPECT_EQ(e.cache_type, d.cache_type);
  EXPECT_EQ(e.io_engine, d.io_engine);
  EXPECT_EQ(e.rate_limiter, d.rate_limiter);
  ASSERT_EQ(again->network_interfaces.size(), 1u);
  EXPECT_EQ(again->network_interfaces[0].iface_id, "eth0");
  EXPECT_EQ(again->network_interfaces[0].host_dev_name, "tap0");
  EXPECT_EQ(again->network_interfaces[0].guest_mac, net.guest_mac);
  EXPECT_EQ(again->network_interfaces[0].mtu, net.mtu);
  EXPECT_EQ(again->network_interfaces[0].tx_rate_limiter, net.tx_rate_limiter);
  EXPECT_FALSE(again->network_interfaces[0].rx_rate_limiter.has_value());
  ASSERT_TRUE(again->entropy.has_value());
  EXPECT_EQ(again->entropy->rate_limiter, config.entropy->rate_limiter);
}

TEST(ConfigFileTest, LoggerFields) {
  const std::string boot = R"("boot-source": {"kernel_image_path": "k"})";
  auto r = ParseConfigFile("{" + boot + R"(, "logger": {}})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->logger.has_value());
  EXPECT_FALSE(r->logger->log_path.has_value());
  EXPECT_FALSE(r->logger->level.has_value());
  EXPECT_FALSE(r->logger->show_level);
  EXPECT_EQ(ErrorOf("{" + boot + R"(, "logger": {"level": "Loud"}})"),
            "logger.level: expected one of Error, Warning, Info, Debug, Trace, Off, got \"Loud\"");
  EXPECT_EQ(ErrorOf("{" + boot + R"(, "logger": {"level": 3}})"),
            "logger.level: expected a string, got 3");
  EXPECT_EQ(ErrorOf("{" + boot + R"(, "logger": {"show_level": "true"}})"),
            "logger.show_level: expected true or false, got \"true\"");
  EXPECT_EQ(ErrorOf("{" + boot + R"(, "logger": {"log_path": ""}})"),
            "logger.log_path: must not be empty");
  EXPECT_EQ(ErrorOf("{" + boot + R"(, "logger": []})"), "logger: expected an object, got an array");
}

TEST(ConfigFileTest, MetricsFields) {
  const std::string boot = R"("boot-source": {"kernel_image_path": "k"})";
  EXPECT_EQ(ErrorOf("{" + boot + R"(, "metrics": {}})"),
            "missing required field \"metrics_path\" in metrics");
  EXPECT_EQ(ErrorOf("{" + boot + R"(, "metrics": {"metrics_path": 1}})"),
            "metrics.metrics_path: expected a string, got 1");
  EXPECT_TRUE(ParseConfigFile("{" + boot + R"(, "metrics": {"metrics_path": "m", "emit_id": false,
                                                          "properties": {}}})")
                  .ok());
  EXPECT_EQ(ErrorOf("{" + boot + R"(, "metrics": {"metrics_path": "m", "emit_id": true}})"),
            "metrics.emit_id is not supported yet");
  EXPECT_EQ(
      ErrorOf("{" + boot + R"(, "metrics": {"metrics_path": "m", "properties": {"a": "b"}}})"),
      "metrics.properties is not supported yet");
}

void ExpectSameConfig(const VmConfig& a, const VmConfig& b) {
  ASSERT_EQ(a.boot_source.has_value(), b.boot_source.has_value());
  if (a.boot_source) {
    EXPECT_EQ(a.boot_source->kernel_image_path, b.boot_source->kernel_image_path);
    EXPECT_EQ(a.boot_source->boot_args, b.boot_source->boot_args);
    EXPECT_EQ(a.boot_source->initrd_path, b.boot_source->initrd_path);
  }
  EXPECT_EQ(a.machine.vcpu_count, b.machine.vcpu_count);
  EXPECT_EQ(a.machine.mem_size_mib, b.machine.mem_size_mib);
  EXPECT_EQ(a.machine.smt, b.machine.smt);
  EXPECT_EQ(a.machine.track_dirty_pages, b.machine.track_dirty_pages);
  EXPECT_EQ(a.machine.huge_pages, b.machine.huge_pages);
  ASSERT_EQ(a.logger.has_value(), b.logger.has_value());
  if (a.logger) {
    EXPECT_EQ(a.logger->log_path, b.logger->log_path);
    EXPECT_EQ(a.logger->level, b.logger->level);
    EXPECT_EQ(a.logger->show_level, b.logger->show_level);
    EXPECT_EQ(a.logger->show_log_origin, b.logger->show_log_origin);
    EXPECT_EQ(a.logger->module, b.logger->module);
  }
  ASSERT_EQ(a.metrics.has_value(), b.metrics.has_value());
  if (a.metrics) {
    EXPECT_EQ(a.metrics->metrics_path, b.metrics->metrics_path);
  }
}

TEST(ConfigFileTest, RoundTripMinimal) {
  VmConfig config = *ParseConfigFile(kMinimal);
  std::string json = VmConfigToJson(config);
  auto again = ParseConfigFile(json);
  ASSERT_TRUE(again.ok()) << again.error().message << "\n" << json;
  ExpectSameConfig(config, *again);
  EXPECT_THAT(json, HasSubstr(R"("machine-config":{"vcpu_count":1,"mem_size_mib":128,)"));
  EXPECT_THAT(json, HasSubstr(R"("drives":[])"));
  EXPECT_THAT(json, HasSubstr(R"("logger":null)"));
}

TEST(ConfigFileTest, RoundTripAllFields) {
  VmConfig config;
  config.boot_source = BootSourceConfig{"/k/vm\"linux", "console=ttyS0 quote=\"x\"", "/k/initrd"};
  config.machine = MachineConfig{6, 4096, true, true, HugePages::k2M};
  config.logger = LoggerConfigFile{"/tmp/log", LogLevel::kTrace, true, false, "devices"};
  config.metrics = MetricsConfig{"/tmp/metrics"};
  std::string json = VmConfigToJson(config);
  auto again = ParseConfigFile(json);
  ASSERT_TRUE(again.ok()) << again.error().message << "\n" << json;
  ExpectSameConfig(config, *again);
  EXPECT_THAT(json, HasSubstr(R"("level":"Trace")"));
  EXPECT_THAT(json, HasSubstr(R"("huge_pages":"2M")"));

  // Every level survives the trip.
  for (LogLevel level : {LogLevel::kOff, LogLevel::kError, LogLevel::kWarning, LogLevel::kInfo,
                         LogLevel::kDebug, LogLevel::kTrace}) {
    config.logger->level = level;
    EXPECT_EQ(ParseConfigFile(VmConfigToJson(config))->logger->level, level);
  }
}

TEST(ConfigFileTest, LoadConfigFileReadsAndNamesTheFile) {
  std::string path =
      testing::TempDir() + "/ember_config_test_" + std::to_string(getpid()) + ".json";
  {
    std::ofstream out(path);
    out << kMinimal;
  }
  auto r = LoadConfigFile(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->boot_source->kernel_image_path, "vmlinux");
  {
    std::ofstream out(path);
    out << "{}";
  }
  auto bad = LoadConfigFile(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message,
            path + ": missing required field \"boot-source\" at the top level");
  unlink(path.c_str());

  auto missing = LoadConfigFile("/nonexistent/vm.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message,
            "cannot read config file /nonexistent/vm.json: ENOENT (No such file or directory)");
  auto dir = LoadConfigFile("/");
  ASSERT_FALSE(dir.ok());
  EXPECT_THAT(dir.error().message, StartsWith("cannot read config file /: EISDIR"));
}

// The examples shipped in resources/examples/ parse.
TEST(ConfigFileTest, ShippedExamplesParse) {
  std::string root = __FILE__;
  root = root.substr(0, root.rfind("/tests/unit/"));
  for (const char* name : {"probe-config.json", "probe-smp4.json", "probe-full.json"}) {
    auto r = LoadConfigFile(root + "/resources/examples/" + name);
    EXPECT_TRUE(r.ok()) << name << ": " << r.error().message;
  }
  auto probe = LoadConfigFile(root + "/resources/examples/probe-config.json");
  ASSERT_TRUE(probe.ok());
  EXPECT_EQ(probe->boot_source->kernel_image_path, "build/guest/probe.elf");
  EXPECT_EQ(probe->boot_source->boot_args, "console=ttyS0 probe=boot");
  EXPECT_EQ(probe->machine.vcpu_count, 1u);
  EXPECT_EQ(probe->machine.mem_size_mib, 128u);
  EXPECT_EQ(LoadConfigFile(root + "/resources/examples/probe-smp4.json")->machine.vcpu_count, 4u);
}

// demo.json is what README.md and resources/demo.sh boot; probe-4vcpu-4g.json is the larger
// probe run. Both name the probe relative to the repo root.
TEST(ConfigFileTest, DemoAndLargeProbeExamplesParse) {
  std::string root = __FILE__;
  root = root.substr(0, root.rfind("/tests/unit/"));
  auto demo = LoadConfigFile(root + "/resources/examples/demo.json");
  ASSERT_TRUE(demo.ok()) << demo.error().message;
  ASSERT_TRUE(demo->boot_source.has_value());
  EXPECT_EQ(demo->boot_source->kernel_image_path, "build/guest/probe.elf");
  EXPECT_EQ(demo->boot_source->boot_args,
            "console=ttyS0 reboot=k panic=1 probe=boot,smp,irq,blk,rng probe.cpus=2 "
            "probe.mem_mib=128");
  EXPECT_EQ(demo->machine.vcpu_count, 2u);
  ASSERT_EQ(demo->drives.size(), 1u);
  EXPECT_EQ(demo->drives[0].path_on_host, "build/demo/disk.img");
  EXPECT_TRUE(demo->entropy.has_value());
  EXPECT_EQ(demo->machine.mem_size_mib, 128u);

  auto large = LoadConfigFile(root + "/resources/examples/probe-4vcpu-4g.json");
  ASSERT_TRUE(large.ok()) << large.error().message;
  ASSERT_TRUE(large->boot_source.has_value());
  EXPECT_EQ(large->boot_source->kernel_image_path, "build/guest/probe.elf");
  EXPECT_EQ(large->boot_source->boot_args,
            "console=ttyS0 reboot=k panic=1 probe=boot,smp probe.cpus=4 probe.mem_mib=4096");
  EXPECT_EQ(large->machine.vcpu_count, 4u);
  EXPECT_EQ(large->machine.mem_size_mib, 4096u);
}

TEST(JsonUtilTest, DescribeJsonValue) {
  auto doc = ParseJson(R"([1, -2, 2.5, "s", true, null, {}, []])");
  ASSERT_TRUE(doc.ok());
  const auto& a = *doc;
  EXPECT_EQ(DescribeJsonValue(a[0]), "1");
  EXPECT_EQ(DescribeJsonValue(a[1]), "-2");
  EXPECT_EQ(DescribeJsonValue(a[2]), "2.5");
  EXPECT_EQ(DescribeJsonValue(a[3]), "\"s\"");
  EXPECT_EQ(DescribeJsonValue(a[4]), "true");
  EXPECT_EQ(DescribeJsonValue(a[5]), "null");
  EXPECT_EQ(DescribeJsonValue(a[6]), "an object");
  EXPECT_EQ(DescribeJsonValue(a[7]), "an array");
}

TEST(JsonUtilTest, DuplicateKeysInsideArraysNameTheElement) {
  auto doc = ParseJson(R"({"drives": [{"a": 1}, {"a": 1, "a": 2}]})");
  ASSERT_TRUE(doc.ok());
  auto s = CheckNoDuplicateKeys(*doc);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "duplicate field \"a\" in drives[1]");
}

}  // namespace
}  // namespace ember

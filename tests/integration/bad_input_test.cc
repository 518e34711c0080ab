// Every bad-input case of the command line and the config file ends with the documented exit
// code (153 arguments, 152 configuration) and one clear line on stderr, before any VM exists.
#include <gtest/gtest.h>

#include "tests/integration/ember_runner.h"

namespace ember::testing {
namespace {

constexpr int kBadArgs = 153;
constexpr int kBadConfig = 152;

void ExpectOneLineError(const RunResult& r, int code, const std::string& needle) {
  ASSERT_TRUE(r.exit_code.has_value());
  EXPECT_EQ(*r.exit_code, code) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_EQ(CountLines(r.err, ""), 1) << "expected one line, got:\n" << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(CommandLineTest, UnknownFlag) {
  ExpectOneLineError(RunEmber({"--frobnicate"}), kBadArgs, "--frobnicate");
}

TEST(CommandLineTest, BadId) {
  ExpectOneLineError(RunEmber({"--id", "has space"}), kBadArgs, "--id");
  ExpectOneLineError(RunEmber({"--id", std::string(65, 'a')}), kBadArgs, "--id");
  ExpectOneLineError(RunEmber({"--id", ""}), kBadArgs, "--id");
}

TEST(CommandLineTest, BadLevel) {
  ExpectOneLineError(RunEmber({"--level", "Loud"}), kBadArgs, "--level");
}

TEST(CommandLineTest, MissingValue) {
  ExpectOneLineError(RunEmber({"--config-file"}), kBadArgs, "--config-file");
}

TEST(CommandLineTest, NoApiNeedsAConfigFile) {
  ExpectOneLineError(RunEmber({"--no-api"}), kBadArgs, "--no-api");
}

TEST(CommandLineTest, VersionAndHelp) {
  RunResult v = RunEmber({"--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_NE(v.out.find("ember v"), std::string::npos) << v.out;
  RunResult h = RunEmber({"--help"});
  EXPECT_EQ(h.exit_code, 0);
  for (const char* flag : {"--api-sock", "--config-file", "--no-api", "--id", "--boot-timer",
                           "--log-path", "--level", "--show-level", "--show-log-origin"})
    EXPECT_NE(h.out.find(flag), std::string::npos) << flag;
}

RunResult RunConfig(const std::string& json) {
  TempDir dir;
  std::string path = dir.Write("config.json", json);
  return RunEmber({"--no-api", "--config-file", path});
}

std::string ConfigWithKernel(const std::string& kernel, const std::string& machine =
                                                            "\"vcpu_count\": 1, \"mem_size_mib\": 128") {
  return "{\"boot-source\": {\"kernel_image_path\": \"" + kernel +
         "\"}, \"machine-config\": {" + machine + "}}";
}

TEST(ConfigFileTest, MissingFile) {
  ExpectOneLineError(RunEmber({"--no-api", "--config-file", "/nonexistent/config.json"}),
                     kBadConfig, "/nonexistent/config.json");
}

TEST(ConfigFileTest, NotJson) { ExpectOneLineError(RunConfig("{ not json"), kBadConfig, "JSON"); }

TEST(ConfigFileTest, MissingBootSource) {
  ExpectOneLineError(RunConfig("{\"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 128}}"),
                     kBadConfig, "boot-source");
}

TEST(ConfigFileTest, UnknownKeyIsNamed) {
  ExpectOneLineError(RunConfig("{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"bogus\": 1}"),
                     kBadConfig, "bogus");
  ExpectOneLineError(RunConfig(ConfigWithKernel("/k", "\"vcpu_count\": 1, \"mem_size_mib\": 128, "
                                                      "\"vcpus\": 2")),
                     kBadConfig, "vcpus");
}

TEST(ConfigFileTest, VcpuCountOutOfRange) {
  ExpectOneLineError(RunConfig(ConfigWithKernel("/k", "\"vcpu_count\": 0, \"mem_size_mib\": 128")),
                     kBadConfig, "vcpu_count");
  ExpectOneLineError(RunConfig(ConfigWithKernel("/k", "\"vcpu_count\": 33, \"mem_size_mib\": 128")),
                     kBadConfig, "vcpu_count");
}

TEST(ConfigFileTest, WrongType) {
  ExpectOneLineError(
      RunConfig(ConfigWithKernel("/k", "\"vcpu_count\": \"2\", \"mem_size_mib\": 128")),
      kBadConfig, "vcpu_count");
}

TEST(ConfigFileTest, MissingKernelFile) {
  ExpectOneLineError(RunConfig(ConfigWithKernel("/nonexistent/vmlinux")), kBadConfig,
                     "/nonexistent/vmlinux");
}

TEST(ConfigFileTest, GarbageKernel) {
  TempDir dir;
  std::string kernel = dir.Write("garbage", std::string(8192, 'x'));
  ExpectOneLineError(RunConfig(ConfigWithKernel(kernel)), kBadConfig, "kernel");
}

TEST(ConfigFileTest, CommandLineTooLong) {
  TempDir dir;
  std::string json = "{\"boot-source\": {\"kernel_image_path\": \"" + GuestImage("probe.elf") +
                     "\", \"boot_args\": \"" + std::string(3000, 'a') +
                     "\"}, \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 128}}";
  ExpectOneLineError(RunConfig(json), kBadConfig, "2048");
}

TEST(ConfigFileTest, InitrdMissing) {
  std::string json = "{\"boot-source\": {\"kernel_image_path\": \"" + GuestImage("probe.elf") +
                     "\", \"initrd_path\": \"/nonexistent/initrd\"}, \"machine-config\": "
                     "{\"vcpu_count\": 1, \"mem_size_mib\": 128}}";
  ExpectOneLineError(RunConfig(json), kBadConfig, "/nonexistent/initrd");
}

std::string ConfigWithDrives(const std::string& drives) {
  return "{\"boot-source\": {\"kernel_image_path\": \"" + GuestImage("probe.elf") +
         "\"}, \"drives\": [" + drives + "]}";
}

std::string Drive(const std::string& id, const std::string& path, bool root = false) {
  return "{\"drive_id\": \"" + id + "\", \"path_on_host\": \"" + path +
         "\", \"is_root_device\": " + (root ? "true" : "false") + "}";
}

TEST(ConfigFileTest, DriveImageMissing) {
  ExpectOneLineError(RunConfig(ConfigWithDrives(Drive("data", "/nonexistent/disk.img"))),
                     kBadConfig, "drive data: /nonexistent/disk.img");
}

TEST(ConfigFileTest, DriveImageIsADirectory) {
  TempDir dir;
  ExpectOneLineError(RunConfig(ConfigWithDrives(Drive("data", dir.path()))), kBadConfig,
                     "drive data: " + dir.path());
}

TEST(ConfigFileTest, DriveImageSizeNotWholeSectors) {
  TempDir dir;
  std::string image = dir.Write("odd.img", std::string(1000, '\0'));
  ExpectOneLineError(RunConfig(ConfigWithDrives(Drive("data", image))), kBadConfig,
                     "not a multiple of 512");
}

TEST(ConfigFileTest, DriveFieldsChecked) {
  TempDir dir;
  std::string image = dir.Write("disk.img", std::string(4096, '\0'));
  ExpectOneLineError(RunConfig(ConfigWithDrives(Drive("bad id", image))), kBadConfig,
                     "drives[0].drive_id");
  ExpectOneLineError(
      RunConfig(ConfigWithDrives(Drive("a", image, true) + ", " + Drive("b", image, true))),
      kBadConfig, "second root device");
  ExpectOneLineError(RunConfig(ConfigWithDrives(Drive("a", image) + ", " + Drive("a", image))),
                     kBadConfig, "used twice");
  ExpectOneLineError(
      RunConfig(ConfigWithDrives("{\"drive_id\": \"a\", \"path_on_host\": \"" + image +
                                 "\", \"is_root_device\": false, \"cache_type\": \"Fast\"}")),
      kBadConfig, "drives[0].cache_type");
  ExpectOneLineError(
      RunConfig(ConfigWithDrives("{\"drive_id\": \"a\", \"path_on_host\": \"" + image +
                                 "\", \"is_root_device\": false, \"rate_limiter\": "
                                 "{\"bandwidth\": {\"size\": -1, \"refill_time\": 100}}}")),
      kBadConfig, "drives[0].rate_limiter.bandwidth.size");
  ExpectOneLineError(RunConfig(ConfigWithDrives("{\"drive_id\": \"a\", \"path_on_host\": \"" +
                                                image + "\"}")),
                     kBadConfig, "is_root_device");
}

TEST(ConfigFileTest, TooManyVirtioDevices) {
  TempDir dir;
  std::string image = dir.Write("disk.img", std::string(4096, '\0'));
  std::string drives;
  for (int i = 0; i < 20; i++) {
    drives += (i ? ", " : "") + Drive("d" + std::to_string(i), image);
  }
  ExpectOneLineError(RunConfig(ConfigWithDrives(drives)), kBadConfig, "20 virtio devices");
}

}  // namespace
}  // namespace ember::testing

// The probe guest's virtio scenarios under ember: block devices (1, 2 and 8 drives, read-only,
// flush durability across a kill -9, rate limiting), the entropy device, and a guest that feeds
// its queues hostile descriptors. The host checks the images after the VM is gone.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "tests/integration/ember_runner.h"
#include "vmm/base/strings.h"

namespace ember::testing {
namespace {

constexpr uint64_t kSector = 512;

// The byte the probe writes at offset o of sectors 8..15 of writable block device d.
uint8_t PatternOut(uint64_t o, unsigned d) {
  return static_cast<uint8_t>((o >> 9) * 17 + (o & 511) * 5 + 0xa5 + d);
}

std::string MakeImage(const TempDir& dir, const std::string& name, uint64_t bytes) {
  return MakeProbeImage(dir, name, bytes);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Sectors 8..15 hold what the probe wrote as device d; everything else is untouched.
void ExpectWrittenByProbe(const std::string& path, unsigned d, uint64_t bytes) {
  std::string data = ReadFile(path);
  ASSERT_EQ(data.size(), bytes);
  uint64_t bad = 0, first_bad = 0;
  for (uint64_t o = 0; o < bytes; o++) {
    bool written = o >= 8 * kSector && o < 16 * kSector;
    uint8_t want = written ? PatternOut(o, d) : ProbeImageByte(o);
    if (static_cast<uint8_t>(data[o]) != want && bad++ == 0) first_bad = o;
  }
  EXPECT_EQ(bad, 0u) << path << ": first wrong byte at offset " << first_bad;
}

void ExpectUnchanged(const std::string& path, uint64_t bytes) {
  std::string data = ReadFile(path);
  ASSERT_EQ(data.size(), bytes);
  uint64_t bad = 0;
  for (uint64_t o = 0; o < bytes; o++) bad += static_cast<uint8_t>(data[o]) != ProbeImageByte(o);
  EXPECT_EQ(bad, 0u) << path;
}

struct DriveSpec {
  std::string id;
  std::string path;
  bool read_only = false;
  bool writeback = false;
  bool root = false;
  std::string partuuid;
  std::string rate_limiter;  // JSON object or empty
};

std::string DrivesJson(const std::vector<DriveSpec>& drives) {
  std::string json = ", \"drives\": [";
  for (size_t i = 0; i < drives.size(); i++) {
    const DriveSpec& d = drives[i];
    json += StrFormat("%s{\"drive_id\": \"%s\", \"path_on_host\": \"%s\", \"is_root_device\": %s, "
                      "\"is_read_only\": %s, \"cache_type\": \"%s\"",
                      i ? ", " : "", d.id.c_str(), d.path.c_str(), d.root ? "true" : "false",
                      d.read_only ? "true" : "false", d.writeback ? "Writeback" : "Unsafe");
    if (!d.partuuid.empty()) json += ", \"partuuid\": \"" + d.partuuid + "\"";
    if (!d.rate_limiter.empty()) json += ", \"rate_limiter\": " + d.rate_limiter;
    json += "}";
  }
  return json + "]";
}

void ExpectPassed(const RunResult& r, int count) {
  ASSERT_TRUE(r.exit_code.has_value()) << "timed out; stdout:\n" << r.out << "\nstderr:\n" << r.err;
  EXPECT_EQ(*r.exit_code, 0) << "stdout:\n" << r.out << "\nstderr:\n" << r.err;
  EXPECT_EQ(CountLines(r.out, "probe: done passed=" + std::to_string(count) + " failed=0"), 1)
      << r.out << r.err;
}

void BootWithDrives(unsigned count) {
  TempDir dir;
  constexpr uint64_t kBytes = 64 * 1024;
  std::vector<DriveSpec> drives;
  for (unsigned i = 0; i < count; i++) {
    DriveSpec d;
    d.id = "drive" + std::to_string(i);
    d.path = MakeImage(dir, d.id + ".img", kBytes);
    d.writeback = i % 2 == 0;  // both cache types: FLUSH offered on every other drive
    drives.push_back(d);
  }
  ProbeVm vm;
  vm.boot_args = "probe=blk";
  vm.extra_json = DrivesJson(drives);
  RunResult r = BootProbe(vm);
  ExpectPassed(r, 1);
  for (unsigned i = 0; i < count; i++) {
    EXPECT_EQ(CountLines(r.out, StrFormat("probe: blk %u capacity %llu", i,
                                          static_cast<unsigned long long>(kBytes / kSector))),
              1)
        << r.out;
    ExpectWrittenByProbe(drives[i].path, i, kBytes);
  }
}

TEST(VirtioTest, BlockOneDrive) {
  REQUIRE_KVM();
  BootWithDrives(1);
}

TEST(VirtioTest, BlockTwoDrives) {
  REQUIRE_KVM();
  BootWithDrives(2);
}

TEST(VirtioTest, BlockEightDrives) {
  REQUIRE_KVM();
  BootWithDrives(8);
}

TEST(VirtioTest, ReadOnlyDriveRefusesWrites) {
  REQUIRE_KVM();
  TempDir dir;
  constexpr uint64_t kBytes = 16 * 1024;
  DriveSpec rw{"rw", MakeImage(dir, "rw.img", kBytes)};
  DriveSpec ro{"ro", MakeImage(dir, "ro.img", kBytes), /*read_only=*/true};
  chmod(ro.path.c_str(), 0444);  // opened without write access, so this must not matter
  ProbeVm vm;
  vm.boot_args = "probe=blk,blk-ro";
  vm.extra_json = DrivesJson({rw, ro});
  RunResult r = BootProbe(vm);
  ExpectPassed(r, 2);
  ExpectWrittenByProbe(rw.path, 0, kBytes);
  ExpectUnchanged(ro.path, kBytes);
}

TEST(VirtioTest, EntropyDevice) {
  REQUIRE_KVM();
  ProbeVm vm;
  vm.boot_args = "probe=rng";
  vm.extra_json = ", \"entropy\": {}";
  ExpectPassed(BootProbe(vm), 1);
}

TEST(VirtioTest, EntropyWithRateLimiterAndBlockTogether) {
  REQUIRE_KVM();
  TempDir dir;
  DriveSpec d{"data", MakeImage(dir, "data.img", 16 * 1024)};
  ProbeVm vm;
  vm.boot_args = "probe=rng,blk";
  vm.extra_json = DrivesJson({d}) +
                  ", \"entropy\": {\"rate_limiter\": {\"bandwidth\": {\"size\": 4096, "
                  "\"refill_time\": 100}, \"ops\": {\"size\": 1, \"refill_time\": 50}}}";
  ExpectPassed(BootProbe(vm), 2);
}

TEST(VirtioTest, HostileQueuesAreCountedAndTheDeviceKeepsServing) {
  REQUIRE_KVM();
  TempDir dir;
  constexpr uint64_t kBytes = 16 * 1024;
  DriveSpec d{"data", MakeImage(dir, "data.img", kBytes)};
  ProbeVm vm;
  vm.boot_args = "probe=evil-queue,blk";
  vm.extra_json = DrivesJson({d});
  RunResult r = BootProbe(vm);
  ExpectPassed(r, 2);
  // Every hostile case was served or recovered by a reset (the probe prints one line each) ...
  EXPECT_GE(CountLines(r.out, "probe: evil-queue "), 10) << r.out;
  // ... and the device counted what it refused.
  size_t at = r.err.find("block data: ");
  ASSERT_NE(r.err.find("invalid requests or register accesses from the guest"), std::string::npos)
      << r.err;
  ASSERT_NE(at, std::string::npos) << r.err;
  ExpectWrittenByProbe(d.path, 0, kBytes);
}

TEST(VirtioTest, FlushedWritesSurviveKill9) {
  REQUIRE_KVM();
  TempDir dir;
  constexpr uint64_t kBytes = 16 * 1024;
  DriveSpec d{"data", MakeImage(dir, "data.img", kBytes)};
  d.writeback = true;
  ProbeVm vm;
  vm.boot_args = "probe=blk,idle";
  vm.extra_json = DrivesJson({d});
  std::string config = WriteProbeConfig(dir, vm);
  Subprocess p({EmberBinary(), "--no-api", "--config-file", config});
  // `blk` wrote, flushed and read back before `idle` starts; then the VMM dies without any
  // chance to clean up.
  ASSERT_TRUE(p.WaitForStdout("probe: idle", std::chrono::seconds(60))) << p.out() << p.err();
  ASSERT_NE(p.out().find("probe: blk ok"), std::string::npos) << p.out();
  p.Kill(SIGKILL);
  ASSERT_TRUE(p.WaitExit(std::chrono::seconds(30)).has_value());
  ExpectWrittenByProbe(d.path, 0, kBytes);
}

TEST(VirtioTest, RootDriveGoesOnTheCommandLine) {
  REQUIRE_KVM();
  TempDir dir;
  DriveSpec data{"data", MakeImage(dir, "data.img", 4096)};
  DriveSpec root{"rootfs", MakeImage(dir, "root.img", 4096)};
  root.root = true;
  root.read_only = true;
  ProbeVm vm;
  vm.boot_args = "probe=boot";
  vm.extra_json = DrivesJson({data, root});  // root listed second, attached first
  RunResult r = BootProbe(vm);
  ExpectPassed(r, 1);
  EXPECT_NE(r.out.find(" root=/dev/vda ro"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("virtio_mmio.device=4K@0xc0001000:5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("virtio_mmio.device=4K@0xc0002000:6"), std::string::npos) << r.out;

  root.partuuid = "0eaa91a0-01";
  root.read_only = false;
  vm.extra_json = DrivesJson({root});
  r = BootProbe(vm);
  ExpectPassed(r, 1);
  EXPECT_NE(r.out.find(" root=PARTUUID=0eaa91a0-01 rw"), std::string::npos) << r.out;
}

// Reads the monotonic time at which each of `markers` appears on the guest console.
std::vector<double> MarkerTimes(Subprocess& p, const std::vector<std::string>& markers,
                                std::chrono::seconds timeout) {
  std::vector<double> times;
  for (const std::string& m : markers) {
    if (!p.WaitForStdout(m, timeout)) return times;
    times.push_back(std::chrono::duration<double>(
                        std::chrono::steady_clock::now().time_since_epoch())
                        .count());
  }
  return times;
}

TEST(VirtioTest, ThrottledDriveFollowsItsLimit) {
  REQUIRE_KVM();
  TempDir dir;
  constexpr uint64_t kMiB = 1 << 20;
  constexpr uint64_t kTotalMiB = 32;
  constexpr uint64_t kRate = 8 * kMiB;  // bytes per second
  DriveSpec d{"data", dir.path() + "/bench.img"};
  int fd = open(d.path.c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, kTotalMiB * kMiB), 0);
  close(fd);
  // A full bucket of 8 MiB refilled at 8 MiB per second: after the first 8 MiB, 24 MiB take 3 s.
  d.rate_limiter = StrFormat("{\"bandwidth\": {\"size\": %llu, \"refill_time\": 1000}}",
                             static_cast<unsigned long long>(kRate));
  ProbeVm vm;
  vm.boot_args = StrFormat("probe=blk-bench probe.bench_mib=%llu probe.bench_req_kib=512 "
                           "probe.bench_depth=16",
                           static_cast<unsigned long long>(kTotalMiB));
  vm.extra_json = DrivesJson({d});
  std::string config = WriteProbeConfig(dir, vm);
  Subprocess p({EmberBinary(), "--no-api", "--config-file", config});
  std::vector<double> t =
      MarkerTimes(p, {"blk-bench read-start", "blk-bench read-done", "blk-bench write-start",
                      "blk-bench write-done"},
                  std::chrono::seconds(60));
  ASSERT_EQ(t.size(), 4u) << p.out() << p.err();
  ASSERT_TRUE(p.WaitExit(std::chrono::seconds(30)).has_value());
  // Reads start with a full bucket; writes start with an empty one (the reads drained it).
  double read_rate = (kTotalMiB * kMiB - kRate) / (t[1] - t[0]);
  double write_rate = kTotalMiB * kMiB / (t[3] - t[2]);
  std::printf("throttled at %.1f MiB/s: read %.2f MiB/s, write %.2f MiB/s\n",
              static_cast<double>(kRate) / kMiB, read_rate / kMiB, write_rate / kMiB);
  EXPECT_NEAR(read_rate / kRate, 1.0, 0.10);
  EXPECT_NEAR(write_rate / kRate, 1.0, 0.10);
}

}  // namespace
}  // namespace ember::testing

// Boots the probe guest through the real ember binary (--no-api --config-file) and checks what
// the guest reports on its console, the exit code, and the log.
#include <gtest/gtest.h>

#include "tests/integration/ember_runner.h"
#include "vmm/base/strings.h"

namespace ember::testing {
namespace {

void ExpectPassed(const RunResult& r, const std::string& scenarios, int count) {
  ASSERT_TRUE(r.exit_code.has_value()) << "timed out; stdout:\n" << r.out << "\nstderr:\n" << r.err;
  EXPECT_EQ(*r.exit_code, 0) << "stdout:\n" << r.out << "\nstderr:\n" << r.err;
  for (std::string_view s : Split(scenarios, ',')) {
    EXPECT_EQ(CountLines(r.out, "probe: " + std::string(s) + " ok"), 1) << r.out << r.err;
  }
  EXPECT_EQ(CountLines(r.out, "probe: done passed=" + std::to_string(count) + " failed=0"), 1)
      << r.out << r.err;
}

TEST(BootTest, PvhEntryBootsAndResetsThroughTheI8042) {
  REQUIRE_KVM();
  ProbeVm vm;
  vm.boot_args = "probe=boot probe.mem_mib=128";
  ExpectPassed(BootProbe(vm), "boot", 1);
}

TEST(BootTest, LinuxBootProtocolEntryBoots) {
  REQUIRE_KVM();
  ProbeVm vm;
  vm.kernel = "probe-linux64.elf";
  vm.boot_args = "probe=boot,irq probe.mem_mib=128";
  ExpectPassed(BootProbe(vm), "boot,irq", 2);
}

TEST(BootTest, BzImageBoots) {
  REQUIRE_KVM();
  ProbeVm vm;
  vm.kernel = "probe.bzImage";
  vm.boot_args = "probe=boot probe.mem_mib=128";
  ExpectPassed(BootProbe(vm), "boot", 1);
}

TEST(BootTest, CommandLineArrivesIntact) {
  REQUIRE_KVM();
  ProbeVm vm;
  vm.boot_args = "probe=boot probe.mem_mib=128 quoted=\\\"a b\\\" tail=xyz";
  RunResult r = BootProbe(vm);
  ExpectPassed(r, "boot", 1);
  EXPECT_NE(r.out.find("probe: cmdline console=ttyS0 reboot=k panic=1 probe=boot "
                       "probe.mem_mib=128 quoted=\"a b\" tail=xyz"),
            std::string::npos)
      << r.out;
}

TEST(BootTest, FourVcpusComeUpThroughInitSipi) {
  REQUIRE_KVM();
  ProbeVm vm;
  vm.vcpus = 4;
  vm.boot_args = "probe=boot,smp,irq probe.cpus=4 probe.mem_mib=128";
  ExpectPassed(BootProbe(vm), "boot,smp,irq", 3);
}

TEST(BootTest, FourGibSplitsAroundTheMmioGap) {
  REQUIRE_KVM();
  for (const char* kernel : {"probe.elf", "probe-linux64.elf"}) {
    ProbeVm vm;
    vm.kernel = kernel;
    vm.mem_mib = 4096;
    vm.vcpus = 4;
    vm.boot_args = "probe=boot,smp probe.cpus=4 probe.mem_mib=4096";
    SCOPED_TRACE(kernel);
    ExpectPassed(BootProbe(vm), "boot,smp", 2);
  }
}

TEST(BootTest, MachineConfigOptionsBoot) {
  REQUIRE_KVM();
  // SMT topology (2 threads of one core), dirty-page logging on every memory slot.
  ProbeVm vm;
  vm.vcpus = 2;
  vm.boot_args = "probe=boot,smp probe.cpus=2 probe.mem_mib=128";
  vm.machine_extra = ", \"smt\": true, \"track_dirty_pages\": true";
  ExpectPassed(BootProbe(vm), "boot,smp", 2);
}

// Reserves 2 MiB huge pages for one test (as root) and gives them back afterwards.
class HugePageReservation {
 public:
  explicit HugePageReservation(int pages) {
    saved_ = ReadInt("/proc/sys/vm/nr_hugepages");
    if (FreePages() < pages) WriteInt("/proc/sys/vm/nr_hugepages", saved_ + pages);
    ok_ = FreePages() >= pages;
  }
  ~HugePageReservation() { WriteInt("/proc/sys/vm/nr_hugepages", saved_); }
  bool ok() const { return ok_; }

 private:
  static int ReadInt(const char* path) {
    int v = 0;
    if (FILE* f = fopen(path, "r")) {
      if (fscanf(f, "%d", &v) != 1) v = 0;
      fclose(f);
    }
    return v;
  }
  static void WriteInt(const char* path, int v) {
    if (FILE* f = fopen(path, "w")) {
      fprintf(f, "%d\n", v);
      fclose(f);
    }
  }
  static int FreePages() {
    FILE* f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    int n = 0;
    while (fgets(line, sizeof(line), f)) sscanf(line, "HugePages_Free: %d", &n);
    fclose(f);
    return n;
  }
  int saved_ = 0;
  bool ok_ = false;
};

TEST(BootTest, HugePages2M) {
  REQUIRE_KVM();
  HugePageReservation pages(64);  // 128 MiB of guest RAM
  if (!pages.ok()) GTEST_SKIP() << "cannot reserve 64 free 2 MiB huge pages";
  ProbeVm vm;
  vm.boot_args = "probe=boot,irq probe.mem_mib=128";
  vm.machine_extra = ", \"huge_pages\": \"2M\"";
  ExpectPassed(BootProbe(vm), "boot,irq", 2);
}

TEST(BootTest, SerialInputReachesTheGuest) {
  REQUIRE_KVM();
  ProbeVm vm;
  vm.boot_args = "probe=serial-in";
  RunResult r = BootProbe(vm, {}, "hello from the host\n");
  ExpectPassed(r, "serial-in", 1);
  EXPECT_EQ(CountLines(r.out, "probe: serial-in got hello from the host"), 1) << r.out;
}

TEST(BootTest, BootTimerLogsGuestBootTime) {
  REQUIRE_KVM();
  ProbeVm vm;
  vm.boot_args = "probe=boot";
  RunResult r = BootProbe(vm, {"--boot-timer"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(CountLines(r.err, "Guest-boot-time = "), 1) << r.err;
  // Without the flag there is no boot-timer device: the write goes to nothing, counted, harmless.
  RunResult quiet = BootProbe(vm);
  ASSERT_EQ(quiet.exit_code, 0) << quiet.out << quiet.err;
  EXPECT_EQ(CountLines(quiet.err, "Guest-boot-time"), 0) << quiet.err;
}

TEST(BootTest, FailingScenarioStillEndsCleanly) {
  REQUIRE_KVM();
  ProbeVm vm;
  vm.boot_args = "probe=no-such-scenario";
  RunResult r = BootProbe(vm);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(CountLines(r.out, "probe: no-such-scenario FAIL"), 1) << r.out;
  EXPECT_EQ(CountLines(r.out, "probe: done passed=0 failed=1"), 1) << r.out;
}

TEST(BootTest, TripleFaultIsAVmmErrorWithRegisters) {
  REQUIRE_KVM();
  ProbeVm vm;
  vm.boot_args = "probe=triple-fault";
  RunResult r = BootProbe(vm);
  ASSERT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("triple fault"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("rip=0x"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace ember::testing

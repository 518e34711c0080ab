// The probe guest checked against a virtual machine monitor that is not ours: QEMU's microvm
// boots the same probe.elf (through its PVH note) and every scenario passes. QEMU uses KVM where
// /dev/kvm works and software emulation (TCG) elsewhere. microvm has no i8042, so the probe's
// final reset falls back to a triple fault, which -no-reboot turns into QEMU's exit.
#include <gtest/gtest.h>
#include <unistd.h>

#include "tests/integration/ember_runner.h"

namespace ember::testing {
namespace {

constexpr const char* kQemu = "/usr/bin/qemu-system-x86_64";

RunResult RunQemu(const std::string& append, int smp, const std::string& stdin_data = "") {
  bool kvm = KvmUsable();
  std::vector<std::string> argv = {kQemu, "-M", "microvm,acpi=off", "-accel", kvm ? "kvm" : "tcg",
                                   "-cpu", kvm ? "host,-arch-capabilities" : "max", "-m", "128",
                                   "-smp", std::to_string(smp), "-nodefaults", "-no-reboot",
                                   "-nographic", "-serial", "stdio", "-kernel",
                                   GuestImage("probe.elf"), "-append", append};
  Subprocess p(argv);
  if (!stdin_data.empty()) p.WriteStdin(stdin_data);
  RunResult r;
  r.exit_code = p.WaitExit(std::chrono::seconds(120));
  r.out = p.out();
  r.err = p.err();
  return r;
}

class QemuProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kQemu, X_OK) != 0) GTEST_SKIP() << kQemu << " is not installed";
  }
};

TEST_F(QemuProbeTest, BootSmpIrqPassUnderQemuMicrovm) {
  RunResult r = RunQemu("console=ttyS0 probe=boot,smp,irq probe.cpus=2 probe.mem_mib=128", 2);
  ASSERT_TRUE(r.exit_code.has_value()) << r.out << r.err;
  EXPECT_EQ(CountLines(r.out, "probe: boot ok"), 1) << r.out << r.err;
  EXPECT_EQ(CountLines(r.out, "probe: smp ok"), 1) << r.out;
  EXPECT_EQ(CountLines(r.out, "probe: irq ok"), 1) << r.out;
  EXPECT_EQ(CountLines(r.out, "probe: done passed=3 failed=0"), 1) << r.out;
}

TEST_F(QemuProbeTest, SerialInputUnderQemuMicrovm) {
  RunResult r = RunQemu("console=ttyS0 probe=serial-in", 1, "typed into qemu\n");
  ASSERT_TRUE(r.exit_code.has_value()) << r.out << r.err;
  EXPECT_EQ(CountLines(r.out, "probe: serial-in got typed into qemu"), 1) << r.out << r.err;
  EXPECT_EQ(CountLines(r.out, "probe: done passed=1 failed=0"), 1) << r.out;
}

}  // namespace
}  // namespace ember::testing

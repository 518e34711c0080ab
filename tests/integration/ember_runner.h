// Helpers for integration tests that run the real ember binary on the probe guest.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace ember::testing {

// True when this machine's /dev/kvm can create a VM. Tests that boot a guest skip otherwise
// (tests/integration/CMakeLists.txt then runs them inside the nested test host instead).
bool KvmUsable();

// First statement of a gtest that boots a guest.
#define REQUIRE_KVM()                                                                  \
  do {                                                                                 \
    if (!::ember::testing::KvmUsable())                                                \
      GTEST_SKIP() << "/dev/kvm cannot create a VM on this machine";                   \
  } while (0)

// Paths of the build outputs; EMBER_BIN / EMBER_GUEST_DIR override them (inside the nested test
// host the build tree lives elsewhere).
std::string EmberBinary();
std::string GuestImage(const std::string& name);  // "probe.elf", "probe-linux64.elf", ...

struct ProbeVm {
  std::string kernel = "probe.elf";
  std::string boot_args;  // appended after "console=ttyS0 reboot=k panic=1"
  uint32_t vcpus = 1;
  uint64_t mem_mib = 128;
  std::string machine_extra;  // extra machine-config fields, e.g. ", \"smt\": true"
  std::string extra_json;  // extra top-level keys, e.g. ", \"drives\": []"
};

// A config file for `vm` in `dir`, returns its path.
std::string WriteProbeConfig(const TempDir& dir, const ProbeVm& vm);

struct RunResult {
  std::optional<int> exit_code;  // nullopt: timed out (and was killed)
  std::string out;
  std::string err;
};

// Runs ember with `args` to completion (timeout generous: the guest is emulated on some hosts).
RunResult RunEmber(const std::vector<std::string>& args, const std::string& stdin_data = "",
                   std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Boots `vm` through --no-api --config-file and waits for it to end.
RunResult BootProbe(const ProbeVm& vm, const std::vector<std::string>& extra_args = {},
                    const std::string& stdin_data = "");

// The byte the probe's blk scenario expects at image offset o (resources/probe/README.md).
inline uint8_t ProbeImageByte(uint64_t o) {
  return static_cast<uint8_t>((o >> 9) * 31 + (o & 511) + 0x11);
}
// An image of `bytes` filled with ProbeImageByte, in dir; returns its path.
std::string MakeProbeImage(const TempDir& dir, const std::string& name, uint64_t bytes);

// Number of lines of `text` that contain `needle`.
int CountLines(const std::string& text, const std::string& needle);

}  // namespace ember::testing

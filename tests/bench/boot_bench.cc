// Boot benchmark: from exec of the monitor to the probe guest's "probe: done" line, and to
// ember's boot-timer log line, median of N runs, for ember and for QEMU microvm on the same probe
// in the same run; plus each monitor's resident memory outside guest RAM (from /proc/PID/smaps)
// while the guest idles.
//
//   boot_bench [--runs N] [--qemu PATH] [--accel kvm|tcg]
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/bench/bench_util.h"
#include "tests/integration/ember_runner.h"

namespace ember::testing {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kGuestMib = 128;


double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Sum of Rss over every mapping except guest RAM (any mapping at least as large as the guest's
// memory: ember maps it as one region, QEMU as one RAM block).
uint64_t NonGuestRssKib(pid_t pid) {
  std::ifstream smaps("/proc/" + std::to_string(pid) + "/smaps");
  std::string line;
  uint64_t total = 0;
  uint64_t mapping_size = 0;
  while (std::getline(smaps, line)) {
    std::string first = line.substr(0, line.find(' '));
    if (!first.empty() && first.back() != ':') {  // a mapping's header line: "start-end perms ..."
      unsigned long long start = 0, end = 0;
      if (sscanf(first.c_str(), "%llx-%llx", &start, &end) == 2) mapping_size = end - start;
      continue;
    }
    unsigned long long kib;
    if (sscanf(line.c_str(), "Rss: %llu kB", &kib) == 1 && mapping_size < (kGuestMib << 20))
      total += kib;
  }
  return total;
}

struct Sample {
  double to_done_ms = -1;
  double to_timer_ms = -1;
};

Sample RunOnce(const std::vector<std::string>& argv) {
  Sample s;
  auto start = Clock::now();
  Subprocess p(argv);
  bool timer_seen = false, done_seen = false;
  p.WaitFor(
      [&](const std::string& out, const std::string& err) {
        if (!timer_seen && err.find("Guest-boot-time") != std::string::npos) {
          timer_seen = true;
          s.to_timer_ms = Ms(Clock::now() - start);
        }
        if (!done_seen && out.find("probe: done") != std::string::npos) {
          done_seen = true;
          s.to_done_ms = Ms(Clock::now() - start);
        }
        return done_seen;
      },
      std::chrono::seconds(60));
  p.WaitExit(std::chrono::seconds(30));
  return s;
}

uint64_t IdleRss(const std::vector<std::string>& argv) {
  Subprocess p(argv);
  if (!p.WaitForStdout("probe: idle", std::chrono::seconds(60))) return 0;
  uint64_t kib = NonGuestRssKib(p.pid());
  p.Kill(SIGKILL);
  p.WaitExit(std::chrono::seconds(10));
  return kib;
}

}  // namespace
}  // namespace ember::testing

int main(int argc, char** argv) {
  using namespace ember::testing;
  int runs = 20;
  std::string qemu = "/usr/bin/qemu-system-x86_64";
  std::string accel = "kvm";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--qemu")) qemu = argv[i + 1];
    else if (!strcmp(argv[i], "--accel")) accel = argv[i + 1];
  }
  if (!KvmUsable()) {
    fprintf(stderr, "boot_bench: /dev/kvm cannot create a VM here; nothing to measure\n");
    return 2;
  }
  TempDir dir;
  auto config_for = [&](const std::string& scenario, const std::string& name) {
    ProbeVm vm;
    vm.boot_args = "probe=" + scenario;
    std::string path = WriteProbeConfig(dir, vm);
    std::string dst = dir.path() + "/" + name;
    rename(path.c_str(), dst.c_str());
    return dst;
  };
  std::string boot_config = config_for("boot", "boot.json");
  std::string idle_config = config_for("idle", "idle.json");
  auto ember_cmd = [&](const std::string& config) {
    return std::vector<std::string>{EmberBinary(), "--no-api", "--boot-timer", "--config-file",
                                    config};
  };
  auto qemu_cmd = [&](const std::string& scenario) {
    return std::vector<std::string>{qemu, "-M", "microvm,acpi=off", "-accel", accel, "-cpu",
                                    accel == "kvm" ? "host,-arch-capabilities" : "max", "-m",
                                    std::to_string(kGuestMib), "-nodefaults", "-no-reboot",
                                    "-nographic", "-serial", "stdio", "-kernel",
                                    GuestImage("probe.elf"), "-append",
                                    "console=ttyS0 reboot=k panic=1 probe=" + scenario};
  };
  bool have_qemu = access(qemu.c_str(), X_OK) == 0;

  std::vector<double> ember_done, ember_timer, qemu_done;
  for (int i = 0; i < runs; i++) {
    // Interleaved so that drift in the machine's load hits both monitors alike.
    Sample e = RunOnce(ember_cmd(boot_config));
    if (e.to_done_ms >= 0) ember_done.push_back(e.to_done_ms);
    if (e.to_timer_ms >= 0) ember_timer.push_back(e.to_timer_ms);
    if (have_qemu) {
      Sample q = RunOnce(qemu_cmd("boot"));
      if (q.to_done_ms >= 0) qemu_done.push_back(q.to_done_ms);
    }
  }
  uint64_t ember_rss = IdleRss(ember_cmd(idle_config));
  uint64_t qemu_rss = have_qemu ? IdleRss(qemu_cmd("idle")) : 0;

  printf("boot benchmark: %d runs, probe guest, 1 vCPU, %llu MiB\n", runs,
         static_cast<unsigned long long>(kGuestMib));
  printf("  ember  exec -> boot-timer line : median %8.2f ms (%zu samples)\n", Median(ember_timer),
         ember_timer.size());
  printf("  ember  exec -> 'probe: done'   : median %8.2f ms (%zu samples)\n", Median(ember_done),
         ember_done.size());
  if (have_qemu) {
    printf("  qemu   exec -> 'probe: done'   : median %8.2f ms (%zu samples, -accel %s)\n",
           Median(qemu_done), qemu_done.size(), accel.c_str());
    if (Median(ember_done) > 0)
      printf("  ratio  qemu / ember            : %8.1fx\n", Median(qemu_done) / Median(ember_done));
  }
  printf("  ember  non-guest RSS           : %8.2f MiB\n", ember_rss / 1024.0);
  if (have_qemu) printf("  qemu   non-guest RSS           : %8.2f MiB\n", qemu_rss / 1024.0);
  return ember_done.size() == static_cast<size_t>(runs) ? 0 : 1;
}

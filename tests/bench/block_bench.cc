// Block benchmark: the probe guest reads, then writes, a 256 MiB image sequentially in large
// requests (default 64 x 512 KiB in flight) without touching the payload, under ember and under
// QEMU microvm in the same run. For each phase: throughput (between the probe's phase markers on
// the console) and the monitor's CPU time per GiB moved (all its threads, from
// /proc/PID/task/*/schedstat), medians over the runs, and the ratios.
//
//   block_bench [--runs N] [--mib M] [--req-kib K] [--depth D] [--qemu PATH] [--accel kvm|tcg]
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "tests/bench/bench_util.h"
#include "tests/integration/ember_runner.h"
#include "vmm/base/strings.h"

namespace ember::testing {
namespace {

using Clock = std::chrono::steady_clock;



struct Phase {
  double seconds = 0;
  double cpu_seconds = 0;
};

struct Sample {
  bool ok = false;
  Phase read, write;
};

Sample RunOnce(const std::vector<std::string>& argv) {
  Sample s;
  Subprocess p(argv);
  const char* markers[] = {"blk-bench read-start", "blk-bench read-done", "blk-bench write-start",
                           "blk-bench write-done"};
  double t[4], cpu[4];
  for (int i = 0; i < 4; i++) {
    if (!p.WaitForStdout(markers[i], std::chrono::seconds(300))) {
      fprintf(stderr, "block_bench: no '%s' from %s\n%s\n%s\n", markers[i], argv[0].c_str(),
              p.out().c_str(), p.err().c_str());
      p.Kill(9);
      p.WaitExit(std::chrono::seconds(10));
      return s;
    }
    t[i] = std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
    cpu[i] = ProcessCpuSeconds(p.pid());
  }
  s.read = {t[1] - t[0], cpu[1] - cpu[0]};
  s.write = {t[3] - t[2], cpu[3] - cpu[2]};
  s.ok = p.WaitExit(std::chrono::seconds(60)).has_value() &&
         p.out().find("probe: done passed=1 failed=0") != std::string::npos;
  if (!s.ok) fprintf(stderr, "block_bench: %s failed:\n%s\n%s\n", argv[0].c_str(), p.out().c_str(), p.err().c_str());
  return s;
}

struct Figures {
  std::vector<double> read_mibs, write_mibs, read_cpu_per_gib, write_cpu_per_gib;
  void Add(const Sample& s, double mib) {
    read_mibs.push_back(mib / s.read.seconds);
    write_mibs.push_back(mib / s.write.seconds);
    read_cpu_per_gib.push_back(s.read.cpu_seconds / (mib / 1024));
    write_cpu_per_gib.push_back(s.write.cpu_seconds / (mib / 1024));
  }
};

}  // namespace
}  // namespace ember::testing

int main(int argc, char** argv) {
  using namespace ember::testing;
  int runs = 5;
  int mib = 256, req_kib = 512, depth = 64;
  std::string qemu = "/usr/bin/qemu-system-x86_64";
  std::string accel = "kvm";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--mib")) mib = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--req-kib")) req_kib = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--depth")) depth = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--qemu")) qemu = argv[i + 1];
    else if (!strcmp(argv[i], "--accel")) accel = argv[i + 1];
  }
  if (!KvmUsable()) {
    fprintf(stderr, "block_bench: /dev/kvm cannot create a VM here; nothing to measure\n");
    return 2;
  }
  TempDir dir;
  // The image lives in the page cache: written once here, so every read is a cache hit.
  std::string image = dir.path() + "/bench.img";
  {
    int fd = open(image.c_str(), O_CREAT | O_WRONLY, 0644);
    std::vector<char> chunk(1 << 20, 0x5a);
    for (int i = 0; i < mib; i++) {
      if (write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) return 2;
    }
    close(fd);
  }
  const std::string args = ember::StrFormat(
      "probe=blk-bench probe.bench_mib=%d probe.bench_req_kib=%d probe.bench_depth=%d", mib,
      req_kib, depth);
  ProbeVm vm;
  vm.boot_args = args;
  vm.mem_mib = 256;
  vm.extra_json = ", \"drives\": [{\"drive_id\": \"bench\", \"path_on_host\": \"" + image +
                  "\", \"is_root_device\": false, \"cache_type\": \"Writeback\"}]";
  std::string config = WriteProbeConfig(dir, vm);
  std::vector<std::string> ember_cmd = {EmberBinary(), "--no-api", "--config-file", config};
  std::vector<std::string> qemu_cmd = {
      qemu, "-M", "microvm,acpi=off", "-accel", accel, "-cpu",
      accel == "kvm" ? "host,-arch-capabilities" : "max", "-m", "256", "-nodefaults",
      "-no-reboot", "-nographic", "-serial", "stdio", "-global", "virtio-mmio.force-legacy=false",
      "-drive", "id=bench,file=" + image + ",format=raw,if=none,cache=writeback,aio=threads",
      "-device", "virtio-blk-device,drive=bench", "-kernel", GuestImage("probe.elf"), "-append",
      "console=ttyS0 reboot=k panic=1 " + args};
  bool have_qemu = access(qemu.c_str(), X_OK) == 0;

  Figures e, q;
  int failures = 0;
  for (int i = 0; i < runs; i++) {
    // Interleaved so that drift in the machine's load hits both monitors alike.
    Sample s = RunOnce(ember_cmd);
    if (s.ok) e.Add(s, mib); else failures++;
    if (have_qemu) {
      Sample t = RunOnce(qemu_cmd);
      if (t.ok) q.Add(t, mib);
    }
  }
  printf("block benchmark: %d runs, %d MiB sequential, %d KiB requests, %d in flight, image in "
         "the page cache\n", runs, mib, req_kib, depth);
  auto row = [&](const char* what, const std::vector<double>& ev, const std::vector<double>& qv,
                 const char* unit, bool higher_better) {
    printf("  %-22s ember %9.2f %s", what, Median(ev), unit);
    if (have_qemu && !qv.empty()) {
      double ratio = higher_better ? Median(ev) / Median(qv) : Median(qv) / Median(ev);
      printf("   qemu %9.2f %s   ember advantage %.2fx", Median(qv), unit, ratio);
    }
    printf("\n");
  };
  row("read throughput", e.read_mibs, q.read_mibs, "MiB/s", true);
  row("write throughput", e.write_mibs, q.write_mibs, "MiB/s", true);
  row("read CPU per GiB", e.read_cpu_per_gib, q.read_cpu_per_gib, "s", false);
  row("write CPU per GiB", e.write_cpu_per_gib, q.write_cpu_per_gib, "s", false);
  printf("  samples: ember %zu, qemu %zu (-accel %s)\n", e.read_mibs.size(), q.read_mibs.size(),
         accel.c_str());
  return failures == 0 ? 0 : 1;
}

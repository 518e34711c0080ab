// Jailer benchmark: what running ember through ember-jailer costs a platform that starts one per
// microVM. From exec to the API socket accepting (wall: the first connect() that succeeds; CPU:
// every thread of every process involved, read at that moment), median and p90 of N runs, for
//   - bare ember (`ember --api-sock`), the peer, interleaved run by run with
//   - ember-jailer -> ember (the jail directory, the copy of ember, mount namespace and pivot,
//     devices, privileges), the socket at <jail>/run/ember.socket,
//   - the same with --new-pid-ns and cgroups (v1 memory, cpu and pids, where mounted),
// and `ember-jailer --cleanup` of a finished jail. No KVM needed: ember serves its API before any
// VM exists. Root needed. Figures are printed, never asserted.
//
//   jailer_bench [--runs 30]
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/bench/bench_util.h"
#include "tests/integration/ember_runner.h"
#include "vmm/base/strings.h"

namespace ember::testing {
namespace {

uint64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(p / 100.0 * v.size() + 0.999999);
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

std::string JailerBinary() {
  const char* env = getenv("EMBER_JAILER_BIN");
  return env ? env : BuildPath("bin/ember-jailer");
}

pid_t Spawn(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int null_fd = open("/dev/null", O_RDWR);
    dup2(null_fd, 0);
    dup2(null_fd, 1);
    dup2(null_fd, 2);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

bool Accepting(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// Polls connect() every 20 us until the socket accepts, or 10 s.
bool WaitAccepting(const std::string& path) {
  const uint64_t deadline = MonoNs() + 10'000'000'000ull;
  while (MonoNs() < deadline) {
    if (Accepting(path)) return true;
    usleep(20);
  }
  return false;
}

pid_t ReadPid(const std::string& file) {
  std::ifstream in(file);
  pid_t pid = 0;
  in >> pid;
  return pid;
}

struct Sample {
  double wall_ms;
  double cpu_ms;
};

struct Series {
  explicit Series(std::string n) : name(std::move(n)) {}
  std::string name;
  std::vector<double> wall, cpu;
  int failures = 0;
  void Add(const std::optional<Sample>& s) {
    if (!s) {
      failures++;
      return;
    }
    wall.push_back(s->wall_ms);
    cpu.push_back(s->cpu_ms);
  }
};

void KillAndReap(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

std::optional<Sample> Bare(const std::string& dir) {
  const std::string sock = dir + "/bare.sock";
  unlink(sock.c_str());
  const uint64_t t0 = MonoNs();
  pid_t pid = Spawn({EmberBinary(), "--api-sock", sock, "--id", "bench"});
  bool ok = WaitAccepting(sock);
  Sample s = {(MonoNs() - t0) / 1e6, ProcessCpuSeconds(pid) * 1e3};
  KillAndReap(pid);
  unlink(sock.c_str());
  if (!ok) return std::nullopt;
  return s;
}

// A jailed ember: exec of the jailer to <jail>/run/ember.socket accepting. CPU: the process the
// jailer became (the jailer's own CPU included: exec keeps the task's clock), plus, with
// --new-pid-ns, the jailer process that forked ember and exited (its rusage).
std::optional<Sample> Jailed(const std::string& base, const std::string& id,
                             const std::vector<std::string>& extra, uid_t uid) {
  const std::string root = base + "/ember/" + id + "/root";
  std::vector<std::string> argv = {JailerBinary(),      "--id",        id,
                                   "--exec-file",       EmberBinary(), "--uid",
                                   std::to_string(uid), "--gid",       std::to_string(uid),
                                   "--chroot-base-dir", base};
  argv.insert(argv.end(), extra.begin(), extra.end());
  const uint64_t t0 = MonoNs();
  pid_t jailer = Spawn(argv);
  bool ok = WaitAccepting(root + "/run/ember.socket");
  const double wall = (MonoNs() - t0) / 1e6;
  pid_t ember = ReadPid(root + "/ember.pid");
  double cpu = ember > 0 ? ProcessCpuSeconds(ember) * 1e3 : 0;
  if (ember != jailer) {
    int status;
    rusage ru = {};
    if (wait4(jailer, &status, 0, &ru) == jailer) {
      cpu += (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
             (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    }
  }
  KillAndReap(ember > 0 ? ember : jailer);
  if (ember != jailer) KillAndReap(jailer);
  if (!ok) return std::nullopt;
  return Sample{wall, cpu};
}

std::optional<double> Cleanup(const std::string& base, const std::string& id,
                              const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {JailerBinary(), "--cleanup",         "--id", id, "--exec-file",
                                   EmberBinary(),  "--chroot-base-dir", base};
  argv.insert(argv.end(), extra.begin(), extra.end());
  const uint64_t t0 = MonoNs();
  pid_t pid = Spawn(argv);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  return (MonoNs() - t0) / 1e6;
}

std::string CgroupMountOf(const std::string& controller) {
  std::ifstream in("/proc/self/mounts");
  std::string dev, dir, type, options, rest;
  while (in >> dev >> dir >> type >> options && std::getline(in, rest)) {
    if (type != "cgroup") continue;
    for (std::string_view o : Split(options, ',')) {
      if (o == controller) return dir;
    }
  }
  return "";
}

void Print(const Series& s, const Series* peer) {
  printf("  %-44s wall %7.2f ms (p90 %7.2f) | CPU %7.2f ms (p90 %7.2f)", s.name.c_str(),
         Median(s.wall), Percentile(s.wall, 90), Median(s.cpu), Percentile(s.cpu, 90));
  if (peer) {
    printf(" | +%.2f ms wall, +%.2f ms CPU over bare", Median(s.wall) - Median(peer->wall),
           Median(s.cpu) - Median(peer->cpu));
  }
  if (s.failures) printf(" (%d FAILED)", s.failures);
  printf("\n");
}

int Main(int argc, char** argv) {
  int runs = 30;
  for (int i = 1; i < argc; i++) {
    if (std::string(argv[i]) == "--runs" && i + 1 < argc) runs = atoi(argv[++i]);
  }
  if (geteuid() != 0) {
    fprintf(stderr, "jailer_bench: needs root (the jailer does)\n");
    return 2;
  }
  // ember under --new-pid-ns is reparented to us when the jailer exits: reap it ourselves.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  TempDir dir;
  const std::string base = dir.path() + "/srv";
  mkdir(base.c_str(), 0755);
  const std::string parent = "ember-jailer-bench-" + std::to_string(getpid());
  std::vector<std::string> cgroups = {"--new-pid-ns", "--parent-cgroup", parent};
  std::string with = "jailer --new-pid-ns";
  std::vector<std::string> hierarchies;
  for (const auto& [controller, setting] :
       std::vector<std::pair<std::string, std::string>>{{"memory", "memory.limit_in_bytes=256M"},
                                                        {"cpu", "cpu.shares=512"},
                                                        {"pids", "pids.max=64"}}) {
    std::string mount = CgroupMountOf(controller);
    if (mount.empty()) continue;
    hierarchies.push_back(mount);
    cgroups.insert(cgroups.end(), {"--cgroup", setting});
    with += (hierarchies.size() == 1 ? " + cgroups " : ",") + controller;
  }

  Series bare("ember (bare), to accepting");
  Series jailed("jailer -> ember, to <jail>/run/ember.socket");
  Series full(with);
  Series cleanup("jailer --cleanup of a finished jail");
  const uid_t uid = 42424;
  for (int i = 0; i < runs; i++) {
    bare.Add(Bare(dir.path()));
    const std::string id = StrFormat("bench-%d", i);
    jailed.Add(Jailed(base, id, {}, uid));
    if (std::optional<double> ms = Cleanup(base, id, {})) {
      cleanup.Add(Sample{*ms, 0});
    } else {
      cleanup.failures++;
    }
    const std::string full_id = StrFormat("bench-full-%d", i);
    full.Add(Jailed(base, full_id, cgroups, uid));
    Cleanup(base, full_id, {"--parent-cgroup", parent});
  }
  for (const std::string& h : hierarchies) rmdir((h + "/" + parent).c_str());

  printf("jailer_bench: exec to API socket accepting, %d runs interleaved (median, p90)\n", runs);
  Print(bare, nullptr);
  Print(jailed, &bare);
  Print(full, &bare);
  printf("  %-44s wall %7.2f ms (p90 %7.2f)%s\n", cleanup.name.c_str(), Median(cleanup.wall),
         Percentile(cleanup.wall, 90), cleanup.failures ? " (FAILED)" : "");
  struct stat st;
  if (stat(EmberBinary().c_str(), &st) == 0) {
    printf("  (each jail copies ember, %.1f MiB, into %s)\n", st.st_size / 1048576.0, base.c_str());
  }
  return bare.failures || jailed.failures || full.failures || cleanup.failures ? 1 : 0;
}

}  // namespace
}  // namespace ember::testing

int main(int argc, char** argv) { return ember::testing::Main(argc, argv); }

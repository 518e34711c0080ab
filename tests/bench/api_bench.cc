// API benchmark (issue 5): what the REST API costs a monitor that is started for every microVM.
//
//   startup  exec of `ember --api-sock` to its socket accepting (wall: the first connect() that
//            succeeds; CPU and page faults: at the entry of its listen()), and to its first
//            GET / answered; peers in the same run, interleaved: a minimal C program that binds
//            and listens (static and dynamic) or answers GET /, and /bin/true from exec to exit
//   latency  GET / and PUT /machine-config on a pre-boot ember, each request on a fresh
//            connection (as curl sends them) and on one kept-alive connection, with the
//            server's CPU per request; the peer, a single-threaded C server answering the same
//            bytes, interleaved request by request; and the CPU an idle kept-alive connection
//            costs each server
//   boot     (KVM) InstanceStart to the probe's boot-timer write, configured over the API; the
//            peer is the same probe booted from --config-file in the same run
//   rate     (KVM) microVMs per second with N workers: exec, configure over the API, boot to
//            "probe: done", exit, with each phase's median; the peer is the same loop booting
//            from --config-file
//
// Timing figures are printed, never asserted. The exit status is 1 when a request, a boot or
// an exit failed, 2 when nothing could be measured.
//
//   api_bench [--parts startup,latency,boot,rate] [--kvm-parts-only] [--startup-runs 50]
//             [--requests 10000] [--boot-runs 10] [--workers 2] [--rate-seconds 20]
//             [--rate-vms 200] [--startup-peer "CMD ARGS"]... [--startup-http-peer "CMD ARGS"]...
//
// --kvm-parts-only drops the parts that need no VM (tests/bench/run-bench.sh runs them on the
// machine itself and only boot and rate in the nested test host). --startup-peer and
// --startup-http-peer add commands (e.g. variants of ember) to the startup part, measured like
// the C listener and the C server; the socket path is appended to their arguments.
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/bench/bench_util.h"
#include "tests/bench/process_start.h"
#include "tests/integration/ember_runner.h"
#include "tests/support/api_client.h"
#include "vmm/base/strings.h"

namespace ember::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kMachineConfigBody[] = R"({"vcpu_count": 1, "mem_size_mib": 128})";
constexpr char kInstanceStartBody[] = R"({"action_type": "InstanceStart"})";

double MsSince(uint64_t start_ns) { return (MonoNs() - start_ns) / 1e6; }

// Nearest-rank percentile, p in (0, 100].
double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(p / 100.0 * v.size() + 0.999999);
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

std::string BootSourceBody(const std::string& scenario) {
  return "{\"kernel_image_path\": \"" + GuestImage("probe.elf") +
         "\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 probe=" + scenario + "\"}";
}

// " (N FAILED)", or nothing.
std::string FailureNote(int failures) {
  return failures ? " (" + std::to_string(failures) + " FAILED)" : std::string();
}

// --- Part 1: exec to API socket accepting ---

struct StartupSample {
  double wall_ms = 0;
  double cpu_ms = 0;
  double faults = 0;
};

struct StartupSeries {
  explicit StartupSeries(std::string n) : name(std::move(n)) {}
  std::string name;
  std::vector<double> wall_ms, cpu_ms, faults;
  int failures = 0;
  void Add(const std::optional<StartupSample>& s) {
    if (!s) {
      failures++;
      return;
    }
    wall_ms.push_back(s->wall_ms);
    cpu_ms.push_back(s->cpu_ms);
    faults.push_back(s->faults);
  }
};

// From exec to the first connect() that succeeds or, with a `request`, to the complete reply to
// it on that connection. Without a request, the CPU time and faults are those at the entry of
// listen(), from a separate start of the same command held there (StopAtListen): read after the
// connect, they would include whatever the server does after listen() until the client notices.
// With a request, they are those when the reply is in.
std::optional<StartupSample> ExecTo(const std::vector<std::string>& argv, const TempDir& dir,
                                    const std::string& sock, const std::string& request) {
  StartupSample s;
  bool cpu_at_listen = false;
  if (request.empty()) {
    unlink(sock.c_str());
    Spawned child = Spawn(argv, /*stop_at_listen=*/true);
    if (child.pid < 0) return std::nullopt;
    if (child.listen_notify_fd >= 0) {
      std::optional<AtListen> at = StopAtListen(child, seconds(10));
      if (!at) {
        KillAndReap(child.pid);
        return std::nullopt;
      }
      s.cpu_ms = at->cpu_ms;
      s.faults = at->faults;
      cpu_at_listen = true;
    } else {
      static bool noted = false;
      if (!noted) printf("  (no seccomp user notification here: CPU read after the connect)\n");
      noted = true;
    }
    KillAndReap(child.pid);
    unlink(sock.c_str());
  }
  unlink(sock.c_str());
  SocketWatch watch(dir.path());
  Spawned child = Spawn(argv);
  if (child.pid < 0) return std::nullopt;
  int fd = watch.WaitAccepting(sock, child.pid, seconds(10));
  bool ok = fd >= 0;
  if (ok && !request.empty()) {
    ok = send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
         static_cast<ssize_t>(request.size());
    std::optional<ApiReply> reply = ok ? ApiClient::ReadReply(fd, seconds(10)) : std::nullopt;
    ok = reply && reply->status == 200;
  }
  s.wall_ms = (MonoNs() - child.exec_ns) / 1e6;
  if (!cpu_at_listen) {
    s.cpu_ms = ChildCpuMs(child);
    s.faults = MinorFaults(child.pid);
  }
  KillAndReap(child.pid);
  unlink(sock.c_str());
  if (fd >= 0) close(fd);
  if (!ok) return std::nullopt;
  return s;
}

// From exec to exit; the CPU time is read from the zombie before it is reaped.
std::optional<StartupSample> ExecToExit(const std::vector<std::string>& argv) {
  Spawned child = Spawn(argv);
  if (child.pid < 0) return std::nullopt;
  siginfo_t info = {};
  if (waitid(P_PID, child.pid, &info, WEXITED | WNOWAIT) != 0) return std::nullopt;
  StartupSample s;
  s.wall_ms = (MonoNs() - child.exec_ns) / 1e6;
  s.cpu_ms = ChildCpuMs(child);
  s.faults = MinorFaults(child.pid);
  waitpid(child.pid, nullptr, 0);
  if (info.si_code != CLD_EXITED || info.si_status != 0) return std::nullopt;
  return s;
}

void PrintStartup(const StartupSeries& s) {
  printf("  %-36s wall median %6.3f ms  p90 %6.3f ms | CPU median %6.3f ms  p90 %6.3f ms |"
         " %3.0f faults%s\n",
         s.name.c_str(), Median(s.wall_ms), Percentile(s.wall_ms, 90), Median(s.cpu_ms),
         Percentile(s.cpu_ms, 90), Median(s.faults), FailureNote(s.failures).c_str());
}

std::vector<std::string> SplitWords(const std::string& s) {
  std::vector<std::string> words;
  size_t at = 0;
  while ((at = s.find_first_not_of(' ', at)) != std::string::npos) {
    size_t end = s.find(' ', at);
    words.push_back(s.substr(at, end == std::string::npos ? end : end - at));
    at = end;
  }
  return words;
}

// Further command lines to measure beside ember (for breakdowns: variants of ember, other
// servers); each takes the socket path as its last argument. `listeners` are measured to
// accepting, `http_servers` to accepting and to GET / answered.
struct ExtraPeers {
  std::vector<std::string> listeners;
  std::vector<std::string> http_servers;
};

bool RunStartup(int runs, const ExtraPeers& extra_peers) {
  TempDir dir;
  const std::string sock = dir.path() + "/api.sock";
  const std::string peer_static = BuildPath("bin/api_bench_peer_static");
  const std::string peer_dynamic = BuildPath("bin/api_bench_peer");
  const std::string get = FormatRequest("GET", "/", "");
  struct Subject {
    StartupSeries series;
    std::vector<std::string> argv;
    std::string request;  // empty: until accepting
  };
  std::vector<Subject> subjects = {
      {StartupSeries("ember, to accepting"), {EmberBinary(), "--api-sock", sock, "--id", "x"}, ""},
      {StartupSeries("C listener static, to accepting"), {peer_static, "listen", sock}, ""},
      {StartupSeries("C listener dynamic, to accepting"), {peer_dynamic, "listen", sock}, ""},
      {StartupSeries("ember, to GET / answered"), {EmberBinary(), "--api-sock", sock, "--id", "x"},
       get},
      {StartupSeries("C server static, to GET / answered"), {peer_static, "serve", sock}, get},
  };
  for (const std::string& cmd : extra_peers.listeners) {
    std::vector<std::string> argv = SplitWords(cmd);
    argv.push_back(sock);
    subjects.push_back({StartupSeries(cmd + ", to accepting"), argv, ""});
  }
  for (const std::string& cmd : extra_peers.http_servers) {
    std::vector<std::string> argv = SplitWords(cmd);
    argv.push_back(sock);
    subjects.push_back({StartupSeries(cmd + ", to accepting"), argv, ""});
    subjects.push_back({StartupSeries(cmd + ", to GET / answered"), argv, get});
  }
  StartupSeries truth("/bin/true, to exit");
  const bool have_true = access("/bin/true", X_OK) == 0;
  for (int i = 0; i < runs; i++) {
    // Interleaved, so that the shared machine's load drifts over all of them alike.
    for (Subject& s : subjects) s.series.Add(ExecTo(s.argv, dir, sock, s.request));
    if (have_true) truth.Add(ExecToExit({"/bin/true"}));
  }
  printf("exec to API socket accepting: %d runs each, interleaved; wall: to the first connect() "
         "that succeeds (or the reply); CPU and minor faults of all the process's threads: at the "
         "entry of its listen() (a separate start, held there by a seccomp notification), or when "
         "the reply is in\n",
         runs);
  int failures = truth.failures;
  for (const Subject& s : subjects) {
    PrintStartup(s.series);
    failures += s.series.failures;
  }
  if (have_true) PrintStartup(truth);
  const StartupSeries& ember = subjects[0].series;
  const StartupSeries& floor = subjects[1].series;
  if (Median(floor.cpu_ms) > 0) {
    printf("  ember / static C listener, to accepting: wall %.2fx, CPU %.2fx (%+.3f ms); target: "
           "ember under 2 CPU ms\n",
           Median(ember.wall_ms) / Median(floor.wall_ms), Median(ember.cpu_ms) / Median(floor.cpu_ms),
           Median(ember.cpu_ms) - Median(floor.cpu_ms));
  }
  return failures == 0;
}

// --- Part 2: request latency ---

// A server under test: its process, its socket, and, on the kept-alive path, one connection
// that is re-opened (untimed) whenever the server closes it.
class Server {
 public:
  Server(const std::string& name, const std::vector<std::string>& argv, const TempDir& dir,
         const std::string& sock)
      : name_(name), client_(sock) {
    SocketWatch watch(dir.path());
    child_ = Spawn(argv);
    if (child_.pid > 0) {
      int fd = watch.WaitAccepting(sock, child_.pid, seconds(10));
      ready_ = fd >= 0;
      if (fd >= 0) close(fd);
    }
  }
  ~Server() {
    if (conn_ >= 0) close(conn_);
    KillAndReap(child_.pid);
  }

  bool ready() const { return ready_; }
  const std::string& name() const { return name_; }
  double CpuMs() const { return ChildCpuMs(child_); }
  pid_t pid() const { return child_.pid; }
  int reconnects() const { return reconnects_; }

  // Opens a connection, asks one request on it and leaves it open; returns its fd (-1: failed).
  // Closes the kept-alive connection first: the peer serves one connection at a time.
  int OpenIdleConnection(const std::string& request) {
    if (conn_ >= 0) close(conn_);
    conn_ = -1;
    int fd = client_.Connect();
    if (fd < 0) return -1;
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(request.size()) ||
        !ApiClient::ReadReply(fd, seconds(10))) {
      close(fd);
      return -1;
    }
    return fd;
  }
  int max_requests_per_connection() const { return max_per_conn_; }

  // Microseconds for one request on a fresh connection, connect to the last byte of the reply;
  // nullopt when it failed or the status was not `expect`.
  std::optional<double> Fresh(const std::string& request, int expect) {
    const uint64_t t0 = MonoNs();
    std::optional<ApiReply> reply = client_.Raw(request, seconds(10));
    const double us = (MonoNs() - t0) / 1e3;
    if (!reply || reply->status != expect) return std::nullopt;
    return us;
  }

  // Microseconds for one request on the kept-alive connection, send to the last byte of the
  // reply.
  std::optional<double> KeptAlive(const std::string& request, int expect) {
    if (conn_ < 0) {
      conn_ = client_.Connect();
      if (conn_ < 0) return std::nullopt;
      if (on_conn_ > 0) reconnects_++;
      on_conn_ = 0;
    }
    const uint64_t t0 = MonoNs();
    bool sent = send(conn_, request.data(), request.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(request.size());
    std::optional<ApiReply> reply =
        sent ? ApiClient::ReadReply(conn_, seconds(10)) : std::nullopt;
    const double us = (MonoNs() - t0) / 1e3;
    on_conn_++;
    max_per_conn_ = std::max(max_per_conn_, on_conn_);
    if (!reply || reply->headers.find("connection: close") != std::string::npos) {
      close(conn_);
      conn_ = -1;
    }
    if (!reply || reply->status != expect) return std::nullopt;
    return us;
  }

 private:
  std::string name_;
  ApiClient client_;
  Spawned child_;
  bool ready_ = false;
  int conn_ = -1;
  int on_conn_ = 0;
  int reconnects_ = 0;
  int max_per_conn_ = 0;
};

struct LatencySeries {
  std::vector<double> us;
  int failures = 0;
  void Add(std::optional<double> v) {
    if (v) us.push_back(*v);
    else failures++;
  }
};

bool RunLatency(int requests) {
  TempDir dir;
  const std::string ember_sock = dir.path() + "/ember.sock";
  const std::string peer_sock = dir.path() + "/peer.sock";
  Server ember("ember", {EmberBinary(), "--api-sock", ember_sock, "--id", "x"}, dir, ember_sock);
  Server peer("C server", {BuildPath("bin/api_bench_peer_static"), "serve", peer_sock}, dir,
              peer_sock);
  if (!ember.ready() || !peer.ready()) {
    printf("request latency: a server did not start (ember %d, peer %d)\n", ember.ready(),
           peer.ready());
    return false;
  }
  struct Case {
    const char* name;
    std::string request;
    int expect;
    bool keep_alive;
  };
  const std::vector<Case> cases = {
      {"GET /                 fresh connection", FormatRequest("GET", "/", ""), 200, false},
      {"PUT /machine-config   fresh connection",
       FormatRequest("PUT", "/machine-config", kMachineConfigBody), 204, false},
      {"GET /                 kept-alive connection", FormatRequest("GET", "/", ""), 200, true},
      {"PUT /machine-config   kept-alive connection",
       FormatRequest("PUT", "/machine-config", kMachineConfigBody), 204, true},
  };
  printf("request latency: %d requests per case, ember and the peer interleaved request by "
         "request (client: tests/support/api_client, curl's wire format)\n",
         requests);
  bool ok = true;
  auto print = [](const Server& server, const LatencySeries& l, double cpu_ms, int n) {
    printf("    %-9s p50 %7.1f us  p90 %7.1f us  p99 %7.1f us  max %8.1f us | CPU %5.1f us/request"
           "%s\n",
           server.name().c_str(), Percentile(l.us, 50), Percentile(l.us, 90),
           Percentile(l.us, 99), Percentile(l.us, 100), cpu_ms * 1e3 / n,
           FailureNote(l.failures).c_str());
  };
  for (const Case& c : cases) {
    LatencySeries e, p;
    const double ember_cpu = ember.CpuMs(), peer_cpu = peer.CpuMs();
    for (int i = 0; i < requests; i++) {
      e.Add(c.keep_alive ? ember.KeptAlive(c.request, c.expect) : ember.Fresh(c.request, c.expect));
      p.Add(c.keep_alive ? peer.KeptAlive(c.request, c.expect) : peer.Fresh(c.request, c.expect));
    }
    printf("  %s\n", c.name);
    print(ember, e, ember.CpuMs() - ember_cpu, requests);
    print(peer, p, peer.CpuMs() - peer_cpu, requests);
    ok = ok && e.failures == 0 && p.failures == 0;
  }
  // A client that keeps its connection open between requests (an SDK's HTTP client does): what
  // the server spends while nothing is asked. Measured over a fixed interval, the quantity itself.
  constexpr auto kIdle = seconds(2);  // past ember's 1 s keep-alive wait: its whole cost
  const int ember_fd = ember.OpenIdleConnection(cases[0].request);
  const int peer_fd = peer.OpenIdleConnection(cases[0].request);
  // Both servers sampled over the same window, side by side.
  double peer_idle_s = 0;
  std::thread peer_sampler([&] { peer_idle_s = ProcessCpuSecondsOver(peer.pid(), kIdle); });
  const double ember_idle_s = ProcessCpuSecondsOver(ember.pid(), kIdle);
  peer_sampler.join();
  if (ember_fd >= 0) close(ember_fd);
  if (peer_fd >= 0) close(peer_fd);
  ok = ok && ember_fd >= 0 && peer_fd >= 0;
  printf("  one kept-alive connection left idle for %lld s: CPU ember %.3f ms/s, %s %.3f ms/s\n",
         static_cast<long long>(kIdle.count()), ember_idle_s * 1e3 / kIdle.count(),
         peer.name().c_str(), peer_idle_s * 1e3 / kIdle.count());
  printf("  ember kept connections alive for at most %d requests (%d reconnects, untimed)\n",
         ember.max_requests_per_connection(), ember.reconnects());
  printf("  (target: ember p99 under 1 ms)\n");
  return ok;
}

// --- Part 3: InstanceStart to the boot-timer write ---

// ember's own figure from its log line "Guest-boot-time = N us ...", in ms.
std::optional<double> ReportedBootTimeMs(const std::string& log) {
  size_t at = log.find("Guest-boot-time = ");
  if (at == std::string::npos) return std::nullopt;
  return strtoull(log.c_str() + at + 18, nullptr, 10) / 1e3;
}

bool HasBootTimerLine(const std::string&, const std::string& err) {
  return err.find("Guest-boot-time") != std::string::npos;
}

struct BootSeries {
  std::vector<double> reply_ms, timer_ms, reported_ms, done_ms, exec_to_timer_ms;
  int failures = 0;
};

// One boot configured over the API; figures from the moment InstanceStart is sent.
bool BootOverApi(const TempDir& dir, int run, BootSeries* out) {
  const std::string sock = dir.path() + "/boot" + std::to_string(run) + ".sock";
  SocketWatch watch(dir.path());
  const uint64_t exec_ns = MonoNs();
  Subprocess p({EmberBinary(), "--api-sock", sock, "--id", "boot", "--boot-timer"});
  int probe_fd = watch.WaitAccepting(sock, p.pid(), seconds(30));
  if (probe_fd < 0) return false;
  close(probe_fd);
  ApiClient client(sock);
  auto put = [&](const std::string& path, const std::string& body) {
    std::optional<ApiReply> r = client.Put(path, body);
    return r && r->status == 204;
  };
  if (!put("/boot-source", BootSourceBody("boot")) || !put("/machine-config", kMachineConfigBody))
    return false;

  int fd = client.Connect();
  if (fd < 0) return false;
  const std::string request = FormatRequest("PUT", "/actions", kInstanceStartBody);
  const uint64_t start_ns = MonoNs();
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return false;
  }
  // The reply comes once the VM is built, before its vCPU runs; read on its own thread so that
  // the boot-timer line is stamped when it arrives, not after the reply.
  std::optional<ApiReply> reply;
  double reply_ms = -1;
  std::thread reader([&] {
    reply = ApiClient::ReadReply(fd, seconds(60));
    reply_ms = MsSince(start_ns);
  });
  const bool timer_seen = p.WaitFor(HasBootTimerLine, seconds(60));
  const double timer_ms = MsSince(start_ns);
  const double exec_to_timer_ms = (MonoNs() - exec_ns) / 1e6;
  const bool done = p.WaitForStdout("probe: done", seconds(60));
  const double done_ms = MsSince(start_ns);
  reader.join();
  close(fd);
  std::optional<int> code = WaitExitPrompt(p, seconds(30));
  std::optional<double> reported = ReportedBootTimeMs(p.err());
  if (!reply || reply->status != 204 || !timer_seen || !done || !reported || code != 0) {
    fprintf(stderr, "api_bench: boot over the API failed (reply %d, exit %d):\n%s\n",
            reply ? reply->status : 0, code.value_or(-1), p.err().c_str());
    return false;
  }
  out->reply_ms.push_back(reply_ms);
  out->timer_ms.push_back(timer_ms);
  out->reported_ms.push_back(*reported);
  out->done_ms.push_back(done_ms);
  out->exec_to_timer_ms.push_back(exec_to_timer_ms);
  return true;
}

// The peer: the same probe from --config-file, figures from just before fork+exec.
bool BootFromFile(const std::string& config, BootSeries* out) {
  const uint64_t exec_ns = MonoNs();
  Subprocess p({EmberBinary(), "--no-api", "--boot-timer", "--config-file", config});
  const bool timer_seen = p.WaitFor(HasBootTimerLine, seconds(60));
  const double timer_ms = MsSince(exec_ns);
  const bool done = p.WaitForStdout("probe: done", seconds(60));
  const double done_ms = MsSince(exec_ns);
  std::optional<int> code = WaitExitPrompt(p, seconds(30));
  std::optional<double> reported = ReportedBootTimeMs(p.err());
  if (!timer_seen || !done || !reported || code != 0) {
    fprintf(stderr, "api_bench: boot from the config file failed (exit %d):\n%s\n",
            code.value_or(-1), p.err().c_str());
    return false;
  }
  out->timer_ms.push_back(timer_ms);
  out->reported_ms.push_back(*reported);
  out->done_ms.push_back(done_ms);
  return true;
}

bool RunBoot(int runs) {
  TempDir dir;
  ProbeVm vm;
  vm.boot_args = "probe=boot";
  const std::string config = WriteProbeConfig(dir, vm);
  BootSeries api, file;
  for (int i = 0; i < runs; i++) {
    if (!BootOverApi(dir, i, &api)) api.failures++;
    if (!BootFromFile(config, &file)) file.failures++;
  }
  printf("InstanceStart to the boot-timer write: %d runs each, probe=boot, 1 vCPU, 128 MiB, "
         "interleaved\n",
         runs);
  printf("  over the API, from sending InstanceStart:\n");
  printf("    InstanceStart reply (VM built)  median %8.2f ms\n", Median(api.reply_ms));
  printf("    boot-timer line seen            median %8.2f ms\n", Median(api.timer_ms));
  printf("    ember's boot-timer figure       median %8.2f ms (origin: the VMM thread taking "
         "InstanceStart)\n",
         Median(api.reported_ms));
  printf("    'probe: done' seen              median %8.2f ms\n", Median(api.done_ms));
  printf("    exec to boot-timer line         median %8.2f ms (socket wait, 2 PUTs included)\n",
         Median(api.exec_to_timer_ms));
  printf("  peer, --no-api --config-file, from just before fork+exec:\n");
  printf("    boot-timer line seen            median %8.2f ms\n", Median(file.timer_ms));
  printf("    ember's boot-timer figure       median %8.2f ms (origin: ember's main())\n",
         Median(file.reported_ms));
  printf("    'probe: done' seen              median %8.2f ms\n", Median(file.done_ms));
  if (api.failures || file.failures)
    printf("  FAILED boots: %d over the API, %d from the file\n", api.failures, file.failures);
  return api.failures == 0 && file.failures == 0;
}

// --- Part 4: creation rate ---

// One microVM's life: where its time went, phase by phase (ms), and the monitor's CPU time up to
// "probe: done" (ms); nullopt when it failed.
struct Life {
  std::vector<double> phase_ms;
  double cpu_ms = 0;
};
using LifeFn = std::function<std::optional<Life>(const TempDir&, const std::string&)>;

// Reports why a microVM's life failed, once per run: a rate run repeats the same failure.
std::optional<Life> LifeFailed(const std::string& step, Subprocess& p) {
  static std::atomic<bool> reported{false};
  if (!reported.exchange(true)) {
    p.Kill(SIGTERM);
    p.WaitExit(seconds(5));  // collects what it wrote
    fprintf(stderr, "api_bench: a microVM failed at %s; its stderr:\n%s\nstdout:\n%s\n",
            step.c_str(), p.err().c_str(), p.out().c_str());
  }
  return std::nullopt;
}

// Marks the end of a phase: appends the time since the previous mark.
class PhaseClock {
 public:
  explicit PhaseClock(Life* life) : life_(life), last_(MonoNs()) {}
  void Mark() {
    const uint64_t now = MonoNs();
    life_->phase_ms.push_back((now - last_) / 1e6);
    last_ = now;
  }

 private:
  Life* life_;
  uint64_t last_;
};

const std::vector<std::string> kApiPhases = {
    "exec to accepting", "PUT /boot-source", "PUT /machine-config",
    "InstanceStart (VM built)", "to 'probe: done'", "to exit"};

// One microVM's whole life over the API: exec, wait for the socket, boot-source,
// machine-config, InstanceStart, "probe: done", exit 0.
std::optional<Life> LifeOverApi(const TempDir& dir, const std::string& id) {
  Life life;
  PhaseClock clock(&life);
  const std::string sock = dir.path() + "/" + id + ".sock";
  SocketWatch watch(dir.path());
  Subprocess p({EmberBinary(), "--api-sock", sock, "--id", id});
  int fd = watch.WaitAccepting(sock, p.pid(), seconds(30));
  if (fd < 0) return LifeFailed("waiting for the API socket", p);
  close(fd);
  clock.Mark();
  ApiClient client(sock);
  for (const auto& [path, body] : std::vector<std::pair<std::string, std::string>>{
           {"/boot-source", BootSourceBody("boot")},
           {"/machine-config", kMachineConfigBody},
           {"/actions", kInstanceStartBody}}) {
    std::optional<ApiReply> r = client.Put(path, body);
    if (!r || r->status != 204)
      return LifeFailed("PUT " + path + " (" + (r ? std::to_string(r->status) + " " + r->body
                                                   : std::string("no reply")) + ")",
                        p);
    clock.Mark();
  }
  if (!p.WaitForStdout("probe: done", seconds(60))) return LifeFailed("'probe: done'", p);
  life.cpu_ms = ProcessCpuSeconds(p.pid()) * 1e3;
  clock.Mark();
  std::optional<int> code = WaitExitPrompt(p, seconds(30));
  if (code != 0) return LifeFailed("exit (" + std::to_string(code.value_or(-1)) + ")", p);
  clock.Mark();
  return life;
}

const std::vector<std::string> kFilePhases = {"exec to 'probe: done'", "to exit"};

std::optional<Life> LifeFromFile(const std::string& config) {
  Life life;
  PhaseClock clock(&life);
  Subprocess p({EmberBinary(), "--no-api", "--config-file", config});
  if (!p.WaitForStdout("probe: done", seconds(60))) return LifeFailed("'probe: done'", p);
  life.cpu_ms = ProcessCpuSeconds(p.pid()) * 1e3;
  clock.Mark();
  std::optional<int> code = WaitExitPrompt(p, seconds(30));
  if (code != 0) return LifeFailed("exit (" + std::to_string(code.value_or(-1)) + ")", p);
  clock.Mark();
  return life;
}

struct RateResult {
  int completed = 0;
  int failed = 0;
  double seconds = 0;
  std::vector<double> per_vm_ms;
  std::vector<double> cpu_ms;
  std::vector<std::vector<double>> phase_ms;  // [phase][microVM]
};

// `workers` threads run `life` back to back until `max_vms` have started or `max_seconds` have
// passed; the rate is completed lives over the time to the last one's end.
RateResult MeasureRate(int workers, int max_vms, double max_seconds, const LifeFn& life) {
  std::atomic<int> started{0};
  std::mutex mu;
  RateResult result;
  const uint64_t t0 = MonoNs();
  uint64_t last_end = t0;
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; w++) {
    threads.emplace_back([&, w] {
      TempDir dir;
      for (;;) {
        const int n = started++;
        if (n >= max_vms || (MonoNs() - t0) / 1e9 >= max_seconds) return;
        const uint64_t begin = MonoNs();
        const std::string id = StrFormat("w%d-%d", w, n);  // --id: alphanumerics and '-'
        const std::optional<Life> l = life(dir, id);
        const uint64_t end = MonoNs();
        std::lock_guard<std::mutex> lock(mu);
        if (!l) {
          result.failed++;
          continue;
        }
        result.completed++;
        result.per_vm_ms.push_back((end - begin) / 1e6);
        result.cpu_ms.push_back(l->cpu_ms);
        result.phase_ms.resize(std::max(result.phase_ms.size(), l->phase_ms.size()));
        for (size_t i = 0; i < l->phase_ms.size(); i++) result.phase_ms[i].push_back(l->phase_ms[i]);
        last_end = std::max(last_end, end);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  result.seconds = (last_end - t0) / 1e9;
  return result;
}

void PrintRate(const char* name, const RateResult& r, const std::vector<std::string>& phases) {
  printf("  %-32s %6.1f microVMs/s (%d in %.2f s%s)\n", name,
         r.seconds > 0 ? r.completed / r.seconds : 0, r.completed, r.seconds,
         FailureNote(r.failed).c_str());
  printf("    per microVM: median %.2f ms, p90 %.2f ms; ember CPU to 'probe: done' median %.2f ms\n",
         Median(r.per_vm_ms), Percentile(r.per_vm_ms, 90), Median(r.cpu_ms));
  printf("    phase medians:");
  for (size_t i = 0; i < r.phase_ms.size() && i < phases.size(); i++)
    printf("%s %s %.2f ms", i ? ";" : "", phases[i].c_str(), Median(r.phase_ms[i]));
  printf("\n");
}

bool RunRate(int workers, int max_vms, double max_seconds) {
  TempDir dir;
  ProbeVm vm;
  vm.boot_args = "probe=boot";
  const std::string config = WriteProbeConfig(dir, vm);
  RateResult api = MeasureRate(workers, max_vms, max_seconds, LifeOverApi);
  RateResult file = MeasureRate(workers, max_vms, max_seconds,
                                [&](const TempDir&, const std::string&) {
                                  return LifeFromFile(config);
                                });
  printf("creation rate: %d workers, up to %d microVMs or %.0f s per run, probe=boot, 1 vCPU, "
         "128 MiB; this machine has %ld CPUs online\n",
         workers, max_vms, max_seconds, sysconf(_SC_NPROCESSORS_ONLN));
  PrintRate("exec, API config, boot, exit", api, kApiPhases);
  PrintRate("peer: exec, --config-file, boot", file, kFilePhases);
  printf("  (target: at least 100 microVMs/s over the API on a 2-core machine)\n");
  return api.failed == 0 && file.failed == 0;
}

bool HasPart(const std::string& parts, const std::string& name) {
  return ("," + parts + ",").find("," + name + ",") != std::string::npos;
}

}  // namespace
}  // namespace ember::testing

int main(int argc, char** argv) {
  using namespace ember::testing;
  std::string parts = "startup,latency,boot,rate";
  bool kvm_parts_only = false;
  int startup_runs = 50, requests = 10000, boot_runs = 10, workers = 2, rate_vms = 200;
  double rate_seconds = 20;
  ExtraPeers startup_peers;
  for (int i = 1; i < argc; i++) {
    const std::string flag = argv[i];
    if (flag == "--kvm-parts-only") {
      kvm_parts_only = true;
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "api_bench: %s needs a value\n", flag.c_str());
      return 2;
    }
    const char* value = argv[++i];
    if (flag == "--parts") parts = value;
    else if (flag == "--startup-runs") startup_runs = atoi(value);
    else if (flag == "--requests") requests = atoi(value);
    else if (flag == "--boot-runs") boot_runs = atoi(value);
    else if (flag == "--workers") workers = atoi(value);
    else if (flag == "--rate-vms") rate_vms = atoi(value);
    else if (flag == "--rate-seconds") rate_seconds = atof(value);
    else if (flag == "--startup-peer") startup_peers.listeners.push_back(value);
    else if (flag == "--startup-http-peer") startup_peers.http_servers.push_back(value);
    else {
      fprintf(stderr, "api_bench: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  bool ok = true;
  bool ran = false;
  if (!kvm_parts_only && HasPart(parts, "startup")) {
    ok = RunStartup(startup_runs, startup_peers) && ok;
    ran = true;
  }
  if (!kvm_parts_only && HasPart(parts, "latency")) {
    ok = RunLatency(requests) && ok;
    ran = true;
  }
  const bool want_kvm = HasPart(parts, "boot") || HasPart(parts, "rate");
  if (want_kvm && !KvmUsable()) {
    printf("boot, rate: /dev/kvm cannot create a VM here; not measured (tests/bench/run-bench.sh "
           "runs them in the nested test host)\n");
  } else {
    if (HasPart(parts, "boot")) {
      ok = RunBoot(boot_runs) && ok;
      ran = true;
    }
    if (HasPart(parts, "rate")) {
      ok = RunRate(workers, rate_vms, rate_seconds) && ok;
      ran = true;
    }
  }
  if (!ran) return 2;
  return ok ? 0 : 1;
}

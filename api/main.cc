// ember's entry point, as the ordered list of what a start does: parse the command line, set up
// the logger and metrics, open the API socket (unless --no-api), configure and boot (from
// --config-file at once, or over the API at InstanceStart), then run the VM's event loop with
// the API on it. Exit codes follow Firecracker's FcExitCode: 0 the guest ended, 1 a VMM error,
// 152 bad configuration, 153 bad arguments.
#include <malloc.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "api/api_dispatch.h"
#include "api/api_server.h"
#include "api/cli.h"
#include "api/config_file.h"
#include "api/seccomp_json.h"
#include "api/vmm_channel.h"
#include "seccomp-profiles/builtin_filters.h"
#include "vmm/base/clock.h"
#include "vmm/base/log.h"
#include "vmm/base/metrics.h"
#include "vmm/controller.h"
#include "vmm/seccomp/seccomp.h"
#include "vmm/vmm.h"

namespace ember {
namespace {

constexpr int kExitGeneric = 1;
constexpr int kExitBadConfiguration = 152;
constexpr int kExitArgParsing = 153;

// The API channel at exit: kept for the server threads still holding it, reachable from here so
// that leak checkers do not report it.
VmmChannel* g_channel_kept_for_exit = nullptr;

struct ProcessStart {
  uint64_t wall_us;
  uint64_t cpu_us;
};

// What a run owns besides the controller: the API's two halves. Whatever ends the process ends
// the API first: queued and later requests get an error instead of waiting for a VMM thread
// that is gone, and the socket file is removed.
struct Api {
  std::unique_ptr<VmmChannel> channel;
  std::unique_ptr<ApiServer> server;

  void Stop() {
    if (channel) channel->Close();
    // Not Stop(): an idle keep-alive client would hold the exit for the read timeout. The
    // channel stays alive with the server's threads until the process ends.
    if (server) {
      ApiServer::Abandon(std::move(server));
      g_channel_kept_for_exit = channel.release();
    }
  }
};

int Fail(Api& api, int code, const char* what, const std::string& message) {
  api.Stop();
  if (code == kExitBadConfiguration || code == kExitArgParsing || !LogEnabled(LogLevel::kError)) {
    fprintf(stderr, "ember: %s: %s\n", what, message.c_str());
  } else {
    LOG_ERROR("%s: %s", what, message.c_str());
  }
  return code;
}

Status SetUpLogger(const CliOptions& cli) {
  LoggerConfig log;
  log.instance_id = cli.id;
  log.show_level = cli.show_level;
  log.show_origin = cli.show_log_origin;
  if (cli.level) log.level = *cli.level;
  ConfigureLogger(log);
  if (!cli.log_path.empty()) {
    LoggerUpdate update;
    update.log_path = cli.log_path;
    update.level = log.level;
    TRY_STATUS(UpdateLogger(update));
  }
  return Ok();
}

// Seccomp: the SIGSYS handler writes where the logger writes.
void SyncSeccompViolationLog() {
  const LoggerConfig log = CurrentLoggerConfig();
  SetSeccompViolationLog(log.fd, log.instance_id);
}

// Seccomp (firecracker-facts §6): the built-in filters (compiled at build time), or
// --seccomp-filter's JSON compiled now; each thread installs its own later
// (vmm/seccomp/seccomp.h).
Status SetUpSeccomp(const CliOptions& cli) {
  if (cli.no_seccomp) return Ok();
  if (cli.seccomp_filter.empty()) {
    TRY_STATUS(EnableSeccompFilters(BuiltInSeccompFilters()));
  } else {
    SeccompProfiles profiles = TRY(LoadSeccompProfilesFile(cli.seccomp_filter));
    TRY_STATUS(EnableSeccompFilters(TRY(CompileSeccompProfiles(profiles))));
  }
  SyncSeccompViolationLog();
  return Ok();
}

// The config file's logger section, as Firecracker's PUT /logger; flags given on the command
// line win where both set a field.
Status ApplyFileLogger(const CliOptions& cli, const LoggerConfigFile& file) {
  LoggerUpdate update;
  update.level = cli.level ? cli.level : file.level;
  update.show_level = cli.show_level || file.show_level;
  update.show_log_origin = cli.show_log_origin || file.show_log_origin;
  if (cli.log_path.empty()) update.log_path = file.log_path;
  TRY_STATUS(UpdateLogger(update));
  SyncSeccompViolationLog();
  return Ok();
}

Status ApplyApiLogger(const LoggerConfigFile& body) {
  LoggerUpdate update;
  update.level = body.level;
  update.show_level = body.show_level;
  update.show_log_origin = body.show_log_origin;
  update.log_path = body.log_path;
  TRY_STATUS(UpdateLogger(update));
  SyncSeccompViolationLog();
  return Ok();
}

// api_server.process_startup_time_*: from the launcher's start time (the jailer passes it) or
// this process's, to the API being ready (or the boot starting, without one).
void RecordStartupTime(const CliOptions& cli, const ProcessStart& start) {
  const uint64_t wall = MonotonicUs() - cli.start_time_us.value_or(start.wall_us);
  const uint64_t cpu =
      ProcessCpuUs() - cli.start_time_cpu_us.value_or(0) + cli.parent_cpu_time_us.value_or(0);
  SetProcessStartupTimes(wall, cpu);
}

Status StartApi(const CliOptions& cli, Api* api) {
  api->channel = TRY(VmmChannel::Create());
  ApiServerOptions options;
  options.socket_path = cli.api_sock;
  options.max_payload_bytes = cli.http_api_max_payload_size;
  VmmChannel* channel = api->channel.get();
  api->server = TRY(ApiServer::Bind(
      options, [channel](const HttpRequest& request) { return DispatchApiRequest(request, *channel); }));
  api->server->Start();
  return Ok();
}

void ServeApi(Api& api, Controller& controller) {
  api.channel->Serve([&](const VmmAction& action) { return controller.Handle(action); });
}

// Before boot, over the API: serve requests until an InstanceStart succeeds.
Status ServeUntilInstanceStart(Api& api, Controller& controller) {
  EventLoop loop = TRY(EventLoop::Create());
  TRY_STATUS(loop.Add(api.channel->fd(), EPOLLIN, [&](uint32_t) {
    ServeApi(api, controller);
    if (controller.state() != InstanceState::kNotStarted) loop.Stop();
  }));
  return loop.Run();
}

// After boot: the VM's event loop serves the devices, the API and the metrics timer.
int RunVm(Api& api, Controller& controller) {
  Vmm& vmm = *controller.vmm();
  EventLoop& loop = vmm.event_loop();
  if (api.channel) {
    if (Status s = loop.Add(api.channel->fd(), EPOLLIN, [&](uint32_t) { ServeApi(api, controller); });
        !s.ok()) {
      LOG_ERROR("cannot serve the API after boot: %s", s.error().message.c_str());
    }
  }
  std::optional<MetricsTimer> timer;
  if (auto t = MetricsTimer::Create(&metrics_system()); t.ok()) {
    timer = std::move(*t);
    (void)loop.Add(timer->fd(), EPOLLIN, [&](uint32_t) { timer->OnTimer(); });
  } else {
    LOG_WARN("no periodic metrics: %s", t.error().message.c_str());
  }
  vmm.Start();
  // Seccomp: the vmm filter goes on once the VM is built and its vCPUs run, before the loop.
  if (Status s = ApplySeccompFilter(SeccompRole::kVmm, "vmm"); !s.ok()) {
    LOG_ERROR("%s", s.error().message.c_str());
    vmm.RequestExit(VmExit{VmExitKind::kError, "no seccomp filter on the VMM thread"});
  }
  if (Status s = loop.Run(); !s.ok()) {
    LOG_ERROR("event loop failed: %s", s.error().message.c_str());
    vmm.RequestExit(VmExit{VmExitKind::kError, "event loop failed"});
  }
  const int code = vmm.Finish();
  api.Stop();
  // Firecracker writes a last line on exit.
  if (metrics_system().configured()) (void)FlushMetricsNow();
  return code;
}

int Main(int argc, char** argv) {
  const ProcessStart start{MonotonicUs(), ProcessCpuUs()};

  auto cli = ParseCommandLine(argc, argv);
  if (!cli.ok()) {
    fprintf(stderr, "%s\n", cli.error().message.c_str());
    return kExitArgParsing;
  }
  if (cli->help) {
    fputs(UsageText().c_str(), stdout);
    return 0;
  }
  if (cli->version) {
    printf("ember v%s\n", kEmberVersion);
    return 0;
  }
  Api api;
  if (Status s = SetUpLogger(*cli); !s.ok()) return Fail(api, kExitArgParsing, "--log-path", s.error().message);
  if (!cli->metrics_path.empty()) {
    if (Status s = ConfigureMetrics(cli->metrics_path); !s.ok())
      return Fail(api, kExitArgParsing, "--metrics-path", s.error().message);
  }

  if (Status s = SetUpSeccomp(*cli); !s.ok())
    return Fail(api, kExitGeneric, "invalid seccomp filters", s.error().message);

  VmmOptions options;
  options.boot_timer = cli->boot_timer;
  if (!cli->config_file.empty()) {
    // Config-file mode boots now: the boot timer counts from the process start. Over the API
    // it counts from InstanceStart (the controller sets it), as Firecracker's device does.
    options.boot_start_us = start.wall_us;
    options.boot_start_cpu_us = start.cpu_us;
  }
  ControllerHooks hooks;
  hooks.configure_logger = ApplyApiLogger;
  hooks.configure_metrics = [](const MetricsConfig& m) { return ConfigureMetrics(m.metrics_path); };
  hooks.flush_metrics = [] { return FlushMetricsNow(); };
  hooks.vmm_built = [](Vmm& vmm) {
    vmm.RegisterMetricsSources();
    // Firecracker writes a line at InstanceStart.
    if (metrics_system().configured()) (void)FlushMetricsNow();
  };
  Controller controller(cli->id, kEmberVersion, options, hooks);

  // The API socket comes up before anything is built: clients poll for it (go-sdk), and GET /
  // and GET /machine-config must work at once.
  if (!cli->no_api) {
    if (Status s = StartApi(*cli, &api); !s.ok())
      return Fail(api, kExitGeneric, "cannot serve the API", s.error().message);
    LOG_DEBUG("API socket %s accepting after %llu us", cli->api_sock.c_str(),
              static_cast<unsigned long long>(MonotonicUs() - start.wall_us));
  }
  RecordStartupTime(*cli, start);

  if (!cli->config_file.empty()) {
    auto config = LoadConfigFile(cli->config_file);
    if (!config.ok())
      return Fail(api, kExitBadConfiguration, "invalid configuration", config.error().message);
    if (config->logger) {
      if (Status s = ApplyFileLogger(*cli, *config->logger); !s.ok())
        return Fail(api, kExitBadConfiguration, "invalid configuration: logger", s.error().message);
    }
    if (config->metrics) {
      if (Status s = ConfigureMetrics(config->metrics->metrics_path); !s.ok())
        return Fail(api, kExitBadConfiguration, "invalid configuration: metrics", s.error().message);
    }
    int build_exit = kExitGeneric;
    if (Status s = controller.StartFromConfig(*config, &build_exit); !s.ok()) {
      return Fail(api, build_exit,
                  build_exit == kExitBadConfiguration ? "invalid configuration"
                                                      : "building the microVM failed",
                  s.error().message);
    }
  } else if (Status s = ServeUntilInstanceStart(api, controller); !s.ok()) {
    return Fail(api, kExitGeneric, "API event loop failed", s.error().message);
  }
  return RunVm(api, controller);
}

}  // namespace
}  // namespace ember

int main(int argc, char** argv) {
  // Hostile API input must not leave the monitor bigger. glibc raises its mmap threshold to the
  // largest block freed so far, after which such blocks stay in the heap; a fixed threshold
  // (above RapidJSON's 64 KiB pool chunk, which every body allocates) sends them back to the
  // kernel. One arena keeps the API threads' freed memory where malloc_trim reaches it.
  mallopt(M_MMAP_THRESHOLD, 256 << 10);
  mallopt(M_ARENA_MAX, 1);
  return ember::Main(argc, argv);
}

// ember's entry point: parse the command line and the config file at the edge, then hand plain
// config structs to the VMM. Exit codes follow Firecracker's FcExitCode: 0 the guest ended,
// 1 a VMM error, 152 bad configuration, 153 bad arguments.
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "api/cli.h"
#include "api/config_file.h"
#include "vmm/base/clock.h"
#include "vmm/base/log.h"
#include "vmm/vmm.h"

namespace {

constexpr int kExitGeneric = 1;
constexpr int kExitBadConfiguration = 152;
constexpr int kExitArgParsing = 153;

}  // namespace

int main(int argc, char** argv) {
  using namespace ember;
  const uint64_t start_us = MonotonicUs();
  const uint64_t start_cpu_us = ProcessCpuUs();

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

  LoggerConfig log;
  log.instance_id = cli->id;
  log.show_level = cli->show_level;
  log.show_origin = cli->show_log_origin;
  if (cli->level) log.level = *cli->level;
  if (!cli->log_path.empty()) {
    // Non-blocking as Firecracker: a full FIFO drops log lines instead of stalling the VMM.
    int fd = open(cli->log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC,
                  0600);
    if (fd < 0) {
      fprintf(stderr, "ember: cannot open --log-path %s: %s\n", cli->log_path.c_str(),
              ErrnoName(errno).c_str());
      return kExitArgParsing;
    }
    log.fd = fd;
  }
  ConfigureLogger(log);

  if (cli->config_file.empty()) {
    fprintf(stderr,
            "ember: --config-file is required: the REST API (--api-sock) is not implemented in "
            "this version\n");
    return kExitArgParsing;
  }
  auto config = LoadConfigFile(cli->config_file);
  if (!config.ok()) {
    fprintf(stderr, "ember: invalid configuration: %s\n", config.error().message.c_str());
    return kExitBadConfiguration;
  }

  if (config->metrics) {
    // Parsed so that the file is checked, but the metrics system comes with the API issue.
    fprintf(stderr, "ember: invalid configuration: metrics is not supported yet\n");
    return kExitBadConfiguration;
  }
  if (config->logger) {
    // The file's logger section, as Firecracker's PUT /logger; flags given on the command line
    // win where both set a field.
    const LoggerConfigFile& file_log = *config->logger;
    if (!cli->level && file_log.level) log.level = *file_log.level;
    log.show_level = log.show_level || file_log.show_level;
    log.show_origin = log.show_origin || file_log.show_log_origin;
    if (cli->log_path.empty() && file_log.log_path) {
      int fd = open(file_log.log_path->c_str(),
                    O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0600);
      if (fd < 0) {
        fprintf(stderr, "ember: invalid configuration: logger.log_path %s: %s\n",
                file_log.log_path->c_str(), ErrnoName(errno).c_str());
        return kExitBadConfiguration;
      }
      log.fd = fd;
    }
    ConfigureLogger(log);
  }

  VmmOptions options;
  options.boot_timer = cli->boot_timer;
  options.boot_start_us = start_us;
  options.boot_start_cpu_us = start_cpu_us;
  int build_exit = kExitGeneric;
  auto vmm = Vmm::Build(*config, options, &build_exit);
  if (!vmm.ok()) {
    if (build_exit == kExitBadConfiguration)
      fprintf(stderr, "ember: invalid configuration: %s\n", vmm.error().message.c_str());
    else
      LOG_ERROR("building the microVM failed: %s", vmm.error().message.c_str());
    if (build_exit != kExitBadConfiguration && !LogEnabled(LogLevel::kError))
      fprintf(stderr, "ember: building the microVM failed: %s\n", vmm.error().message.c_str());
    return build_exit;
  }
  return (*vmm)->Run();
}

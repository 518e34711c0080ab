// Metrics in Firecracker's format (firecracker-facts §7, docs/metrics.md): one JSON object per
// line, written to `metrics_path` (a FIFO or a file, opened non-blocking) every 60 s and on
// FlushMetrics. The line starts with "utc_timestamp_ms" and holds every group of
// metrics_groups.h, devices absent or not; counts are the increase since the previous line,
// gauges their current value.
//
// Counters are incremented lock-free from any thread through metrics(). Devices and vCPUs keep
// their own counters; the VMM registers a source per device (Vmm::RegisterMetricsSources) that
// reads them when a line is written, so nothing below vmm/ depends on this file.
//
// A line the destination cannot take (a full FIFO) is counted in logger.missed_metrics_count,
// and its counts are carried into the next line that gets through; nothing ever blocks. A line
// the pipe takes only part of is finished before the next one is written, so a reader never
// sees two lines run together.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "vmm/base/metrics_groups.h"
#include "vmm/base/result.h"
#include "vmm/base/unique_fd.h"

namespace ember {

// The process's own counters and gauges.
struct MetricsStore {
  ApiServerMetrics api_server;
  DeprecatedApiMetrics deprecated_api;
  GetApiRequestMetrics get_api_requests;
  LatencyMetrics latencies_us;
  LoggerMetrics logger;
  MmdsMetrics mmds;
  PatchApiRequestMetrics patch_api_requests;
  PutApiRequestMetrics put_api_requests;
  SeccompMetrics seccomp;
  VmmMetrics vmm;
  SignalMetrics signals;
  InterruptMetrics interrupts;
};

// The process-wide store.
MetricsStore& metrics();

// The API requests Firecracker counts, each in its group's <name>_count (and <name>_fails when
// it failed; GET requests have no _fails).
enum class ApiRequest {
  kGetInstanceInfo,
  kGetMachineConfig,
  kGetMmds,
  kGetVersion,
  kPutActions,
  kPutBootSource,
  kPutCpuConfig,
  kPutDrive,
  kPutEntropy,
  kPutLogger,
  kPutMachineConfig,
  kPutMetrics,
  kPutMmds,
  kPutNetwork,
  kPutSerial,
  kPutVsock,
  kPatchDrive,
  kPatchMachineConfig,
  kPatchMmds,
  kPatchNetwork,
};
void CountApiRequest(ApiRequest request, bool failed, MetricsStore& store = metrics());

// api_server.process_startup_time_us / _cpu_us: from the process start (or the launcher's
// --start-time-us) to the API being ready, in wall-clock and CPU time.
void SetProcessStartupTimes(uint64_t wall_us, uint64_t cpu_us);

// Writes metrics lines: where to, which sources feed the device groups, and the values each
// count had at the previous line. One per process (metrics_system()); tests make their own.
class MetricsSystem {
 public:
  explicit MetricsSystem(MetricsStore* store) : store_(store) {}

  // Opens the destination (OpenNonBlockingSink). Once only, as Firecracker: a second call fails
  // with "Reinitialization of metrics not allowed.".
  Status Configure(const std::string& path);
  bool configured() const;
  // Writes one line now. Fails when not configured or when the line could not be written (it is
  // then counted as missed and its counts go into the next line).
  Status Flush();

  // Registers a source for a device group: `read` returns the device's cumulative counts as one
  // of the *Metrics structs of metrics_groups.h and is called, from the flushing thread, each
  // time a line is written, until RemoveSources(owner). Several sources of one group are summed.
  template <typename Read>
  void AddSource(const void* owner, Read read) {
    using Group = std::invoke_result_t<Read&>;
    AddSourceFields(owner, Group::kName, "",
                    [read = std::move(read)](const FieldVisitor& visit) mutable {
                      read().ForEachField(visit);
                    });
  }
  // The same for one of several devices: its counts also get a group of their own,
  // "<group>_<instance>" ("block_rootfs", "net_eth0").
  template <typename Read>
  void AddSource(const void* owner, std::string instance, Read read) {
    using Group = std::invoke_result_t<Read&>;
    static_assert(Group::kPerInstance, "this group has no per-device groups");
    AddSourceFields(owner, Group::kName, std::move(instance),
                    [read = std::move(read)](const FieldVisitor& visit) mutable {
                      read().ForEachField(visit);
                    });
  }
  // After this returns no source of `owner` runs or will run (the owner may be destroyed).
  void RemoveSources(const void* owner);

 private:
  using FieldVisitor = std::function<void(const char* name, uint64_t cumulative)>;
  struct Source {
    uint64_t id;
    const void* owner;
    std::string group;
    std::string instance;
    std::function<void(const FieldVisitor&)> read;
  };
  class Line;

  void AddSourceFields(const void* owner, const char* group, std::string instance,
                       std::function<void(const FieldVisitor&)> read);
  std::string Serialize(std::map<std::string, uint64_t>* seen);
  template <typename Group>
  void WriteStoreGroup(Line& line, const Group& group, std::map<std::string, uint64_t>* seen);
  template <typename Group>
  void WriteSourceGroup(Line& line, std::map<std::string, uint64_t>* seen);
  // Writes what is left of a line the destination took only part of. False while some remains.
  bool FinishPendingLine();

  MetricsStore* const store_;
  mutable std::mutex mu_;
  UniqueFd fd_;
  std::string pending_;  // the unwritten tail of the last line
  std::vector<Source> sources_;
  uint64_t next_source_id_ = 1;
  // Each count's cumulative value at the last line written, by "<group>.<field>" or
  // "#<source id>.<field>".
  std::map<std::string, uint64_t> previous_;
};

// The process-wide system and its shortcuts.
MetricsSystem& metrics_system();
Status ConfigureMetrics(const std::string& path);
// (Not FlushMetrics: that is the VmmAction of the same name.)
Status FlushMetricsNow();
void UnregisterMetricsSources(const void* owner);

// Firecracker's WRITE_METRICS_PERIOD_MS.
inline constexpr uint64_t kMetricsFlushPeriodMs = 60000;

// The periodic flush: a timerfd for the VMM's event loop. When it is readable, call OnTimer().
class MetricsTimer {
 public:
  static Result<MetricsTimer> Create(MetricsSystem* system,
                                     uint64_t period_ms = kMetricsFlushPeriodMs);
  int fd() const { return fd_.get(); }
  // Consumes the expirations and writes a line if metrics are configured; a failure is counted
  // (by Flush) and logged.
  void OnTimer();

 private:
  MetricsTimer(UniqueFd fd, MetricsSystem* system) : fd_(std::move(fd)), system_(system) {}
  UniqueFd fd_;
  MetricsSystem* system_;
};

}  // namespace ember

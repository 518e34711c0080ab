#include "vmm/base/metrics.h"

#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "vmm/base/log.h"
#include "vmm/base/strings.h"

namespace ember {
namespace {

constinit MetricsStore g_store;

const char kConfigureError[] = "Cannot initialize the metrics system due to bad user input: ";

uint64_t RealtimeMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000u + static_cast<uint64_t>(ts.tv_nsec) / 1000000u;
}

// A JSON string body: drive and interface ids come from the API user and may hold anything.
void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(ch);
    } else if (c < 0x20) {
      *out += StrFormat("\\u%04x", c);
    } else {
      out->push_back(ch);
    }
  }
  out->push_back('"');
}

}  // namespace

// One metrics line being built: {"utc_timestamp_ms":N,"group":{"field":N,...},...}\n
class MetricsSystem::Line {
 public:
  explicit Line(uint64_t timestamp_ms) {
    text_ = "{\"utc_timestamp_ms\":" + std::to_string(timestamp_ms);
  }
  void BeginGroup(std::string_view name) {
    text_ += ',';
    AppendJsonString(&text_, name);
    text_ += ":{";
    first_field_ = true;
  }
  void Field(const char* name, uint64_t value) {
    if (!first_field_) text_ += ',';
    first_field_ = false;
    AppendJsonString(&text_, name);
    text_ += ':';
    text_ += std::to_string(value);
  }
  void EndGroup() { text_ += '}'; }
  std::string Finish() && {
    text_ += "}\n";
    return std::move(text_);
  }

 private:
  std::string text_;
  bool first_field_ = true;
};

namespace {

// The increase of a count since the last line written; `seen` collects the values to remember
// once this line is written. A count that went back (a device restored from a snapshot starts
// again from its saved counters) is reported from zero.
uint64_t Delta(const std::map<std::string, uint64_t>& previous,
               std::map<std::string, uint64_t>* seen, std::string key, uint64_t cumulative) {
  auto it = previous.find(key);
  const uint64_t before = it == previous.end() ? 0 : it->second;
  (*seen)[std::move(key)] = cumulative;
  return cumulative >= before ? cumulative - before : cumulative;
}

// A source's counts are remembered under "#<source id>.<field>".
std::string SourceKeyPrefix(uint64_t id) {
  std::string prefix = "#";
  prefix += std::to_string(id);
  prefix += '.';
  return prefix;
}

}  // namespace

MetricsStore& metrics() { return g_store; }

void CountApiRequest(ApiRequest request, bool failed, MetricsStore& store) {
  auto count = [failed](Counter& total, Counter& fails) {
    total.Inc();
    if (failed) fails.Inc();
  };
  GetApiRequestMetrics& get = store.get_api_requests;
  PutApiRequestMetrics& put = store.put_api_requests;
  PatchApiRequestMetrics& patch = store.patch_api_requests;
  switch (request) {
    case ApiRequest::kGetInstanceInfo: return get.instance_info_count.Inc();
    case ApiRequest::kGetMachineConfig: return get.machine_cfg_count.Inc();
    case ApiRequest::kGetMmds: return get.mmds_count.Inc();
    case ApiRequest::kGetVersion: return get.vmm_version_count.Inc();
    case ApiRequest::kPutActions: return count(put.actions_count, put.actions_fails);
    case ApiRequest::kPutBootSource: return count(put.boot_source_count, put.boot_source_fails);
    case ApiRequest::kPutCpuConfig: return count(put.cpu_cfg_count, put.cpu_cfg_fails);
    case ApiRequest::kPutDrive: return count(put.drive_count, put.drive_fails);
    case ApiRequest::kPutEntropy: return count(put.entropy_count, put.entropy_fails);
    case ApiRequest::kPutLogger: return count(put.logger_count, put.logger_fails);
    case ApiRequest::kPutMachineConfig: return count(put.machine_cfg_count, put.machine_cfg_fails);
    case ApiRequest::kPutMetrics: return count(put.metrics_count, put.metrics_fails);
    case ApiRequest::kPutMmds: return count(put.mmds_count, put.mmds_fails);
    case ApiRequest::kPutNetwork: return count(put.network_count, put.network_fails);
    case ApiRequest::kPutSerial: return count(put.serial_count, put.serial_fails);
    case ApiRequest::kPutVsock: return count(put.vsock_count, put.vsock_fails);
    case ApiRequest::kPatchDrive: return count(patch.drive_count, patch.drive_fails);
    case ApiRequest::kPatchMachineConfig:
      return count(patch.machine_cfg_count, patch.machine_cfg_fails);
    case ApiRequest::kPatchMmds: return count(patch.mmds_count, patch.mmds_fails);
    case ApiRequest::kPatchNetwork: return count(patch.network_count, patch.network_fails);
  }
}

void SetProcessStartupTimes(uint64_t wall_us, uint64_t cpu_us) {
  metrics().api_server.process_startup_time_us.Set(wall_us);
  metrics().api_server.process_startup_time_cpu_us.Set(cpu_us);
}

Status MetricsSystem::Configure(const std::string& path) {
  std::lock_guard lock(mu_);
  if (fd_.valid())
    return Error{std::string(kConfigureError) + "Reinitialization of metrics not allowed."};
  auto fd = OpenNonBlockingSink(path);
  if (!fd.ok()) return Error{kConfigureError + fd.error().message, fd.error().err};
  fd_ = std::move(*fd);
  return Ok();
}

bool MetricsSystem::configured() const {
  std::lock_guard lock(mu_);
  return fd_.valid();
}

Status MetricsSystem::Flush() {
  std::lock_guard lock(mu_);
  if (!fd_.valid()) return Error{"metrics are not configured (PUT /metrics or --metrics-path)"};
  LoggerMetrics& logger = store_->logger;
  if (!FinishPendingLine()) {
    logger.missed_metrics_count.Inc();
    return Error{"Failed to write metrics: the destination has not taken the previous line yet",
                 EAGAIN};
  }
  std::map<std::string, uint64_t> seen;
  const std::string text = Serialize(&seen);
  ssize_t n;
  do {
    n = write(fd_.get(), text.data(), text.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    const int err = errno;
    logger.missed_metrics_count.Inc();
    if (err != EAGAIN && err != EWOULDBLOCK) logger.metrics_fails.Inc();
    return Error::Errno(StrFormat("Failed to write metrics: write(metrics_path, %zu bytes)",
                                  text.size()),
                        err);
  }
  // A pipe may take part of a line longer than PIPE_BUF; the rest goes first next time.
  pending_ = text.substr(static_cast<size_t>(n));
  for (auto& [key, value] : seen) previous_[key] = value;
  return Ok();
}

bool MetricsSystem::FinishPendingLine() {
  while (!pending_.empty()) {
    ssize_t n = write(fd_.get(), pending_.data(), pending_.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    pending_.erase(0, static_cast<size_t>(n));
  }
  return true;
}

template <typename Group>
void MetricsSystem::WriteStoreGroup(Line& line, const Group& group,
                                    std::map<std::string, uint64_t>* seen) {
  line.BeginGroup(Group::kName);
  group.ForEachField([&](const char* name, const auto& metric) {
    if constexpr (std::is_same_v<std::decay_t<decltype(metric)>, Counter>) {
      line.Field(name, Delta(previous_, seen, std::string(Group::kName) + "." + name,
                             metric.count()));
    } else {
      line.Field(name, metric.value());
    }
  });
  line.EndGroup();
}

// The group's per-device groups (if any), then the group itself: the sum over its sources, or
// zeros when it has none (Firecracker emits every group, device present or not).
template <typename Group>
void MetricsSystem::WriteSourceGroup(Line& line, std::map<std::string, uint64_t>* seen) {
  std::vector<std::pair<const char*, uint64_t>> total;
  Group{}.ForEachField([&](const char* name, uint64_t) { total.emplace_back(name, 0); });
  for (Source& source : sources_) {
    if (source.group != Group::kName) continue;
    const std::string key_prefix = SourceKeyPrefix(source.id);
    std::vector<uint64_t> deltas;
    source.read([&](const char* name, uint64_t cumulative) {
      deltas.push_back(Delta(previous_, seen, key_prefix + name, cumulative));
    });
    // The same struct's ForEachField produced both lists: same fields, same order.
    const bool own_group = !source.instance.empty();
    if (own_group) {
      std::string name = Group::kName;
      name += '_';
      name += source.instance;
      line.BeginGroup(name);
    }
    for (size_t i = 0; i < total.size() && i < deltas.size(); i++) {
      total[i].second += deltas[i];
      if (own_group) line.Field(total[i].first, deltas[i]);
    }
    if (own_group) line.EndGroup();
  }
  line.BeginGroup(Group::kName);
  for (const auto& [name, value] : total) line.Field(name, value);
  line.EndGroup();
}

// Firecracker's order (FirecrackerMetrics' fields; per-device groups before their aggregate).
std::string MetricsSystem::Serialize(std::map<std::string, uint64_t>* seen) {
  Line line(RealtimeMs());
  WriteStoreGroup(line, store_->api_server, seen);
  WriteSourceGroup<BlockDeviceMetrics>(line, seen);
  WriteStoreGroup(line, store_->deprecated_api, seen);
  WriteStoreGroup(line, store_->get_api_requests, seen);
  WriteSourceGroup<I8042Metrics>(line, seen);
  WriteSourceGroup<UartMetrics>(line, seen);
  WriteStoreGroup(line, store_->latencies_us, seen);
  WriteStoreGroup(line, store_->logger, seen);
  WriteStoreGroup(line, store_->mmds, seen);
  WriteSourceGroup<NetDeviceMetrics>(line, seen);
  WriteStoreGroup(line, store_->patch_api_requests, seen);
  WriteStoreGroup(line, store_->put_api_requests, seen);
  WriteStoreGroup(line, store_->seccomp, seen);
  WriteSourceGroup<VcpuMetrics>(line, seen);
  WriteStoreGroup(line, store_->vmm, seen);
  WriteStoreGroup(line, store_->signals, seen);
  WriteSourceGroup<VsockDeviceMetrics>(line, seen);
  WriteSourceGroup<EntropyDeviceMetrics>(line, seen);
  WriteStoreGroup(line, store_->interrupts, seen);
  return std::move(line).Finish();
}

void MetricsSystem::AddSourceFields(const void* owner, const char* group, std::string instance,
                                    std::function<void(const FieldVisitor&)> read) {
  std::lock_guard lock(mu_);
  sources_.push_back(
      Source{next_source_id_++, owner, group, std::move(instance), std::move(read)});
}

void MetricsSystem::RemoveSources(const void* owner) {
  std::lock_guard lock(mu_);
  std::erase_if(sources_, [&](const Source& s) {
    if (s.owner != owner) return false;
    const std::string key_prefix = SourceKeyPrefix(s.id);
    std::erase_if(previous_, [&](const auto& kv) { return kv.first.starts_with(key_prefix); });
    return true;
  });
}

MetricsSystem& metrics_system() {
  static MetricsSystem system(&metrics());
  return system;
}

Status ConfigureMetrics(const std::string& path) { return metrics_system().Configure(path); }
Status FlushMetricsNow() { return metrics_system().Flush(); }
void UnregisterMetricsSources(const void* owner) { metrics_system().RemoveSources(owner); }

Result<MetricsTimer> MetricsTimer::Create(MetricsSystem* system, uint64_t period_ms) {
  UniqueFd fd(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!fd.valid()) return Error::Errno("timerfd_create(CLOCK_MONOTONIC) for metrics");
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(period_ms / 1000);
  spec.it_value.tv_nsec = static_cast<long>(period_ms % 1000) * 1000000L;
  spec.it_interval = spec.it_value;
  if (timerfd_settime(fd.get(), 0, &spec, nullptr) != 0)
    return Error::Errno(StrFormat("timerfd_settime(%llu ms) for metrics",
                                  static_cast<unsigned long long>(period_ms)));
  return MetricsTimer(std::move(fd), system);
}

void MetricsTimer::OnTimer() {
  uint64_t expirations;
  if (read(fd_.get(), &expirations, sizeof(expirations)) < 0) return;  // EAGAIN: not yet
  if (!system_->configured()) return;
  if (Status s = system_->Flush(); !s.ok()) LOG_ERROR("%s", s.error().message.c_str());
}

}  // namespace ember

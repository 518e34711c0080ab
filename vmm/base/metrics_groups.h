// The groups of a metrics line and their fields, with Firecracker's names and order
// (src/vmm/src/logger/metrics.rs, the devices' metrics.rs; firecracker-facts §7). Units are in
// the names: _bytes, _ms, _us, otherwise a count.
//
// Two kinds of group:
//  - the process's own (API requests, logger, latencies...): Counter and Gauge fields in the
//    process-wide MetricsStore (metrics.h), incremented lock-free from any thread;
//  - the devices' and vCPUs' (block, net, vsock, entropy, uart, i8042, vcpu): plain cumulative
//    values a registered source reads from the device when a line is written. The devices keep
//    their own counters and know nothing of metrics.
// Either way a count is reported as its increase since the previous line.
//
// Fields marked "ember" are not Firecracker's; fields nothing in ember measures yet stay 0 so
// the line has Firecracker's shape for the tools that read it.
#pragma once

#include <atomic>
#include <cstdint>

namespace ember {

// A count of events (Firecracker's SharedIncMetric): relaxed atomic adds, no lock.
class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t count() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value reported as it stands (Firecracker's SharedStoreMetric).
class Gauge {
 public:
  void Set(uint64_t value) { value_.store(value, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// ---- The process's groups ----------------------------------------------------------------------

struct ApiServerMetrics {
  static constexpr const char* kName = "api_server";
  Gauge process_startup_time_us;
  Gauge process_startup_time_cpu_us;
  Counter sync_response_fails;
  Counter sync_vmm_send_timeout_count;
  template <typename F>
  void ForEachField(F&& f) const {
    f("process_startup_time_us", process_startup_time_us);
    f("process_startup_time_cpu_us", process_startup_time_cpu_us);
    f("sync_response_fails", sync_response_fails);
    f("sync_vmm_send_timeout_count", sync_vmm_send_timeout_count);
  }
};

struct DeprecatedApiMetrics {
  static constexpr const char* kName = "deprecated_api";
  Counter deprecated_http_api_calls;
  Counter deprecated_cmd_line_api_calls;
  template <typename F>
  void ForEachField(F&& f) const {
    f("deprecated_http_api_calls", deprecated_http_api_calls);
    f("deprecated_cmd_line_api_calls", deprecated_cmd_line_api_calls);
  }
};

struct GetApiRequestMetrics {
  static constexpr const char* kName = "get_api_requests";
  Counter instance_info_count;
  Counter machine_cfg_count;
  Counter mmds_count;
  Counter vmm_version_count;
  Counter hotplug_memory_count;
  template <typename F>
  void ForEachField(F&& f) const {
    f("instance_info_count", instance_info_count);
    f("machine_cfg_count", machine_cfg_count);
    f("mmds_count", mmds_count);
    f("vmm_version_count", vmm_version_count);
    f("hotplug_memory_count", hotplug_memory_count);
  }
};

struct PutApiRequestMetrics {
  static constexpr const char* kName = "put_api_requests";
  Counter actions_count, actions_fails;
  Counter boot_source_count, boot_source_fails;
  Counter drive_count, drive_fails;
  Counter logger_count, logger_fails;
  Counter machine_cfg_count, machine_cfg_fails;
  Counter cpu_cfg_count, cpu_cfg_fails;
  Counter metrics_count, metrics_fails;
  Counter network_count, network_fails;
  Counter mmds_count, mmds_fails;
  Counter vsock_count, vsock_fails;
  Counter pmem_count, pmem_fails;
  Counter serial_count, serial_fails;
  Counter hotplug_memory_count, hotplug_memory_fails;
  Counter entropy_count, entropy_fails;  // ember: Firecracker counts no PUT /entropy
  template <typename F>
  void ForEachField(F&& f) const {
    f("actions_count", actions_count);
    f("actions_fails", actions_fails);
    f("boot_source_count", boot_source_count);
    f("boot_source_fails", boot_source_fails);
    f("drive_count", drive_count);
    f("drive_fails", drive_fails);
    f("logger_count", logger_count);
    f("logger_fails", logger_fails);
    f("machine_cfg_count", machine_cfg_count);
    f("machine_cfg_fails", machine_cfg_fails);
    f("cpu_cfg_count", cpu_cfg_count);
    f("cpu_cfg_fails", cpu_cfg_fails);
    f("metrics_count", metrics_count);
    f("metrics_fails", metrics_fails);
    f("network_count", network_count);
    f("network_fails", network_fails);
    f("mmds_count", mmds_count);
    f("mmds_fails", mmds_fails);
    f("vsock_count", vsock_count);
    f("vsock_fails", vsock_fails);
    f("pmem_count", pmem_count);
    f("pmem_fails", pmem_fails);
    f("serial_count", serial_count);
    f("serial_fails", serial_fails);
    f("hotplug_memory_count", hotplug_memory_count);
    f("hotplug_memory_fails", hotplug_memory_fails);
    f("entropy_count", entropy_count);
    f("entropy_fails", entropy_fails);
  }
};

struct PatchApiRequestMetrics {
  static constexpr const char* kName = "patch_api_requests";
  Counter drive_count, drive_fails;
  Counter network_count, network_fails;
  Counter machine_cfg_count, machine_cfg_fails;
  Counter mmds_count, mmds_fails;
  Counter hotplug_memory_count, hotplug_memory_fails;
  Counter pmem_count, pmem_fails;
  template <typename F>
  void ForEachField(F&& f) const {
    f("drive_count", drive_count);
    f("drive_fails", drive_fails);
    f("network_count", network_count);
    f("network_fails", network_fails);
    f("machine_cfg_count", machine_cfg_count);
    f("machine_cfg_fails", machine_cfg_fails);
    f("mmds_count", mmds_count);
    f("mmds_fails", mmds_fails);
    f("hotplug_memory_count", hotplug_memory_count);
    f("hotplug_memory_fails", hotplug_memory_fails);
    f("pmem_count", pmem_count);
    f("pmem_fails", pmem_fails);
  }
};

// How long the last of each operation took (Firecracker's PerformanceMetrics): the whole
// request, and the VMM's part of it (vmm_*).
struct LatencyMetrics {
  static constexpr const char* kName = "latencies_us";
  Gauge full_create_snapshot, diff_create_snapshot, load_snapshot, pause_vm, resume_vm;
  Gauge vmm_full_create_snapshot, vmm_diff_create_snapshot, vmm_load_snapshot, vmm_pause_vm,
      vmm_resume_vm;
  template <typename F>
  void ForEachField(F&& f) const {
    f("full_create_snapshot", full_create_snapshot);
    f("diff_create_snapshot", diff_create_snapshot);
    f("load_snapshot", load_snapshot);
    f("pause_vm", pause_vm);
    f("resume_vm", resume_vm);
    f("vmm_full_create_snapshot", vmm_full_create_snapshot);
    f("vmm_diff_create_snapshot", vmm_diff_create_snapshot);
    f("vmm_load_snapshot", vmm_load_snapshot);
    f("vmm_pause_vm", vmm_pause_vm);
    f("vmm_resume_vm", vmm_resume_vm);
  }
};

// Lines the logger and the metrics writer could not deliver. missed_* count every lost line;
// *_fails count those lost to an error other than a full destination (EAGAIN).
struct LoggerMetrics {
  static constexpr const char* kName = "logger";
  Counter missed_metrics_count;
  Counter metrics_fails;
  Counter missed_log_count;
  Counter log_fails;
  Counter rate_limited_log_count;
  template <typename F>
  void ForEachField(F&& f) const {
    f("missed_metrics_count", missed_metrics_count);
    f("metrics_fails", metrics_fails);
    f("missed_log_count", missed_log_count);
    f("log_fails", log_fails);
    f("rate_limited_log_count", rate_limited_log_count);
  }
};

struct MmdsMetrics {
  static constexpr const char* kName = "mmds";
  Counter rx_accepted, rx_accepted_err, rx_accepted_unusual, rx_bad_eth, rx_invalid_token,
      rx_no_token, rx_count, tx_bytes, tx_count, tx_errors, tx_frames, connections_created,
      connections_destroyed;
  template <typename F>
  void ForEachField(F&& f) const {
    f("rx_accepted", rx_accepted);
    f("rx_accepted_err", rx_accepted_err);
    f("rx_accepted_unusual", rx_accepted_unusual);
    f("rx_bad_eth", rx_bad_eth);
    f("rx_invalid_token", rx_invalid_token);
    f("rx_no_token", rx_no_token);
    f("rx_count", rx_count);
    f("tx_bytes", tx_bytes);
    f("tx_count", tx_count);
    f("tx_errors", tx_errors);
    f("tx_frames", tx_frames);
    f("connections_created", connections_created);
    f("connections_destroyed", connections_destroyed);
  }
};

struct SeccompMetrics {
  static constexpr const char* kName = "seccomp";
  Gauge num_faults;
  template <typename F>
  void ForEachField(F&& f) const {
    f("num_faults", num_faults);
  }
};

struct VmmMetrics {
  static constexpr const char* kName = "vmm";
  Counter device_events;
  Gauge panic_count;
  template <typename F>
  void ForEachField(F&& f) const {
    f("device_events", device_events);
    f("panic_count", panic_count);
  }
};

// Fatal signals are gauges in Firecracker: the handler stores 1 and writes a last line.
struct SignalMetrics {
  static constexpr const char* kName = "signals";
  Gauge sigbus, sigsegv, sigxfsz, sigxcpu;
  Counter sigpipe;
  Gauge sighup, sigill;
  template <typename F>
  void ForEachField(F&& f) const {
    f("sigbus", sigbus);
    f("sigsegv", sigsegv);
    f("sigxfsz", sigxfsz);
    f("sigxcpu", sigxcpu);
    f("sigpipe", sigpipe);
    f("sighup", sighup);
    f("sigill", sigill);
  }
};

struct InterruptMetrics {
  static constexpr const char* kName = "interrupts";
  Counter triggers;
  Counter config_updates;
  template <typename F>
  void ForEachField(F&& f) const {
    f("triggers", triggers);
    f("config_updates", config_updates);
  }
};

// ---- The devices' and vCPUs' groups (cumulative values a source reads) -------------------------
// kPerInstance: each device also gets its own group, "block_<drive_id>", "net_<iface_id>",
// beside the aggregate "block", "net".

struct BlockDeviceMetrics {
  static constexpr const char* kName = "block";
  static constexpr bool kPerInstance = true;
  uint64_t activate_fails = 0, cfg_fails = 0, no_avail_buffer = 0, event_fails = 0,
           execute_fails = 0, invalid_reqs_count = 0, flush_count = 0, queue_event_count = 0,
           rate_limiter_event_count = 0, update_count = 0, update_fails = 0, read_bytes = 0,
           write_bytes = 0, read_count = 0, write_count = 0, rate_limiter_throttled_events = 0,
           io_engine_throttled_events = 0, remaining_reqs_count = 0;
  uint64_t guest_errors = 0;  // ember: malformed requests and register accesses from the guest
  template <typename F>
  void ForEachField(F&& f) const {
    f("activate_fails", activate_fails);
    f("cfg_fails", cfg_fails);
    f("no_avail_buffer", no_avail_buffer);
    f("event_fails", event_fails);
    f("execute_fails", execute_fails);
    f("invalid_reqs_count", invalid_reqs_count);
    f("flush_count", flush_count);
    f("queue_event_count", queue_event_count);
    f("rate_limiter_event_count", rate_limiter_event_count);
    f("update_count", update_count);
    f("update_fails", update_fails);
    f("read_bytes", read_bytes);
    f("write_bytes", write_bytes);
    f("read_count", read_count);
    f("write_count", write_count);
    f("rate_limiter_throttled_events", rate_limiter_throttled_events);
    f("io_engine_throttled_events", io_engine_throttled_events);
    f("remaining_reqs_count", remaining_reqs_count);
    f("guest_errors", guest_errors);
  }
};

struct NetDeviceMetrics {
  static constexpr const char* kName = "net";
  static constexpr bool kPerInstance = true;
  uint64_t activate_fails = 0, cfg_fails = 0, no_rx_avail_buffer = 0, no_tx_avail_buffer = 0,
           event_fails = 0, rx_queue_event_count = 0, rx_event_rate_limiter_count = 0,
           rx_rate_limiter_throttled = 0, rx_tap_event_count = 0, rx_bytes_count = 0,
           rx_packets_count = 0, rx_fails = 0, rx_count = 0, tap_read_fails = 0,
           tap_write_fails = 0, tx_bytes_count = 0, tx_malformed_frames = 0, tx_fails = 0,
           tx_count = 0, tx_packets_count = 0, tx_queue_event_count = 0,
           tx_rate_limiter_event_count = 0, tx_rate_limiter_throttled = 0, tx_spoofed_mac_count = 0,
           tx_remaining_reqs_count = 0;
  uint64_t guest_errors = 0;  // ember: malformed chains and register accesses from the guest
  template <typename F>
  void ForEachField(F&& f) const {
    f("activate_fails", activate_fails);
    f("cfg_fails", cfg_fails);
    f("no_rx_avail_buffer", no_rx_avail_buffer);
    f("no_tx_avail_buffer", no_tx_avail_buffer);
    f("event_fails", event_fails);
    f("rx_queue_event_count", rx_queue_event_count);
    f("rx_event_rate_limiter_count", rx_event_rate_limiter_count);
    f("rx_rate_limiter_throttled", rx_rate_limiter_throttled);
    f("rx_tap_event_count", rx_tap_event_count);
    f("rx_bytes_count", rx_bytes_count);
    f("rx_packets_count", rx_packets_count);
    f("rx_fails", rx_fails);
    f("rx_count", rx_count);
    f("tap_read_fails", tap_read_fails);
    f("tap_write_fails", tap_write_fails);
    f("tx_bytes_count", tx_bytes_count);
    f("tx_malformed_frames", tx_malformed_frames);
    f("tx_fails", tx_fails);
    f("tx_count", tx_count);
    f("tx_packets_count", tx_packets_count);
    f("tx_queue_event_count", tx_queue_event_count);
    f("tx_rate_limiter_event_count", tx_rate_limiter_event_count);
    f("tx_rate_limiter_throttled", tx_rate_limiter_throttled);
    f("tx_spoofed_mac_count", tx_spoofed_mac_count);
    f("tx_remaining_reqs_count", tx_remaining_reqs_count);
    f("guest_errors", guest_errors);
  }
};

struct VsockDeviceMetrics {
  static constexpr const char* kName = "vsock";
  static constexpr bool kPerInstance = false;
  uint64_t activate_fails = 0, cfg_fails = 0, rx_queue_event_fails = 0, tx_queue_event_fails = 0,
           ev_queue_event_fails = 0, muxer_event_fails = 0, conn_event_fails = 0,
           rx_queue_event_count = 0, tx_queue_event_count = 0, rx_bytes_count = 0,
           tx_bytes_count = 0, rx_packets_count = 0, tx_packets_count = 0, conns_added = 0,
           conns_killed = 0, conns_removed = 0, killq_resync = 0, tx_flush_fails = 0,
           tx_write_fails = 0, rx_read_fails = 0;
  uint64_t guest_errors = 0;  // ember: malformed packets and register accesses from the guest
  template <typename F>
  void ForEachField(F&& f) const {
    f("activate_fails", activate_fails);
    f("cfg_fails", cfg_fails);
    f("rx_queue_event_fails", rx_queue_event_fails);
    f("tx_queue_event_fails", tx_queue_event_fails);
    f("ev_queue_event_fails", ev_queue_event_fails);
    f("muxer_event_fails", muxer_event_fails);
    f("conn_event_fails", conn_event_fails);
    f("rx_queue_event_count", rx_queue_event_count);
    f("tx_queue_event_count", tx_queue_event_count);
    f("rx_bytes_count", rx_bytes_count);
    f("tx_bytes_count", tx_bytes_count);
    f("rx_packets_count", rx_packets_count);
    f("tx_packets_count", tx_packets_count);
    f("conns_added", conns_added);
    f("conns_killed", conns_killed);
    f("conns_removed", conns_removed);
    f("killq_resync", killq_resync);
    f("tx_flush_fails", tx_flush_fails);
    f("tx_write_fails", tx_write_fails);
    f("rx_read_fails", rx_read_fails);
    f("guest_errors", guest_errors);
  }
};

struct EntropyDeviceMetrics {
  static constexpr const char* kName = "entropy";
  static constexpr bool kPerInstance = false;
  uint64_t activate_fails = 0, entropy_event_fails = 0, entropy_event_count = 0, entropy_bytes = 0,
           host_rng_fails = 0, entropy_rate_limiter_throttled = 0, rate_limiter_event_count = 0;
  uint64_t guest_errors = 0;  // ember: malformed requests and register accesses from the guest
  template <typename F>
  void ForEachField(F&& f) const {
    f("activate_fails", activate_fails);
    f("entropy_event_fails", entropy_event_fails);
    f("entropy_event_count", entropy_event_count);
    f("entropy_bytes", entropy_bytes);
    f("host_rng_fails", host_rng_fails);
    f("entropy_rate_limiter_throttled", entropy_rate_limiter_throttled);
    f("rate_limiter_event_count", rate_limiter_event_count);
    f("guest_errors", guest_errors);
  }
};

// The serial console (Firecracker's SerialDeviceMetrics, group "uart").
struct UartMetrics {
  static constexpr const char* kName = "uart";
  static constexpr bool kPerInstance = false;
  uint64_t error_count = 0, flush_count = 0, missed_read_count = 0, missed_write_count = 0,
           read_count = 0, write_count = 0, rate_limiter_dropped_bytes = 0;
  template <typename F>
  void ForEachField(F&& f) const {
    f("error_count", error_count);
    f("flush_count", flush_count);
    f("missed_read_count", missed_read_count);
    f("missed_write_count", missed_write_count);
    f("read_count", read_count);
    f("write_count", write_count);
    f("rate_limiter_dropped_bytes", rate_limiter_dropped_bytes);
  }
};

struct I8042Metrics {
  static constexpr const char* kName = "i8042";
  static constexpr bool kPerInstance = false;
  uint64_t error_count = 0, missed_read_count = 0, missed_write_count = 0, read_count = 0,
           reset_count = 0, write_count = 0;
  template <typename F>
  void ForEachField(F&& f) const {
    f("error_count", error_count);
    f("missed_read_count", missed_read_count);
    f("missed_write_count", missed_write_count);
    f("read_count", read_count);
    f("reset_count", reset_count);
    f("write_count", write_count);
  }
};

// All vCPUs together (Firecracker's VcpuMetrics, without the latency aggregates).
struct VcpuMetrics {
  static constexpr const char* kName = "vcpu";
  static constexpr bool kPerInstance = false;
  uint64_t exit_io_in = 0, exit_io_out = 0, exit_mmio_read = 0, exit_mmio_write = 0, failures = 0,
           kvmclock_ctrl_fails = 0;
  template <typename F>
  void ForEachField(F&& f) const {
    f("exit_io_in", exit_io_in);
    f("exit_io_out", exit_io_out);
    f("exit_mmio_read", exit_mmio_read);
    f("exit_mmio_write", exit_mmio_write);
    f("failures", failures);
    f("kvmclock_ctrl_fails", kvmclock_ctrl_fails);
  }
};

}  // namespace ember

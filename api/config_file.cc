#include "api/config_file.h"

#include <fcntl.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include "api/json_util.h"
#include "api/rate_limiter_json.h"
#include "vmm/base/strings.h"
#include "vmm/base/unique_fd.h"

namespace ember {
namespace {

// A config file is a few KiB; the cap only stops a wrong path (a disk image, /dev/zero) from
// being read into memory.
constexpr size_t kMaxConfigFileBytes = 16u << 20;

// Firecracker's VmmConfig keys (resources.rs), handled now or later.
constexpr std::string_view kArraySectionsNotYet[] = {"pmem"};
constexpr std::string_view kObjectSectionsNotYet[] = {"balloon", "mmds-config", "cpu-config",
                                                      "memory-hotplug"};

// Firecracker's resource IDs (validate_id): non-empty, at most 64 ASCII alphanumerics or '_'.
constexpr size_t kMaxIdLength = 64;

// Firecracker's deprecated static CPU templates (vmm_config/machine_config.rs).
constexpr std::string_view kStaticCpuTemplates[] = {"C3", "T2", "T2S", "T2CL", "T2A", "V1N1"};

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kOff:
      return "Off";
    case LogLevel::kError:
      return "Error";
    case LogLevel::kWarning:
      return "Warning";
    case LogLevel::kInfo:
      return "Info";
    case LogLevel::kDebug:
      return "Debug";
    case LogLevel::kTrace:
      return "Trace";
  }
  return "Info";
}

// Null and an empty array configure nothing, so they are accepted: launchers and GET /vm/config
// write "drives": [] and "vsock": null for a VM without those devices.
Status RejectSectionsNotYetSupported(const JsonFields& top) {
  for (std::string_view key : kArraySectionsNotYet) {
    const rapidjson::Value* v = top.Find(key);
    if (!v) continue;
    if (!v->IsArray()) return top.WrongType(key, "an array");
    if (!v->Empty()) return Error{std::string(key) + " is not supported yet"};
  }
  for (std::string_view key : kObjectSectionsNotYet) {
    if (top.Find(key)) return Error{std::string(key) + " is not supported yet"};
  }
  return Ok();
}

Result<HugePages> ParseHugePages(const JsonFields& f) {
  std::optional<std::string> s = TRY(f.OptionalString("huge_pages", JsonFields::Empty::kAllowed));
  if (!s || *s == "None") return HugePages::kNone;
  if (*s == "2M") return HugePages::k2M;
  if (*s == "Transparent")
    return Error{f.FieldPath("huge_pages") +
                 ": \"Transparent\" is not supported yet (use \"None\" or \"2M\")"};
  return Error{f.FieldPath("huge_pages") + ": expected \"None\", \"2M\" or \"Transparent\", got " +
               DescribeJsonValue(*f.Find("huge_pages"))};
}

// cpu_template is deprecated in Firecracker; only "None" (no template) means anything to ember.
Status CheckCpuTemplate(const JsonFields& f) {
  std::optional<std::string> s = TRY(f.OptionalString("cpu_template", JsonFields::Empty::kAllowed));
  if (!s || *s == "None") return Ok();
  for (std::string_view t : kStaticCpuTemplates) {
    if (*s == t)
      return Error{f.FieldPath("cpu_template") + ": \"" + *s +
                   "\" is not supported (CPU templates are deprecated; only \"None\" is accepted)"};
  }
  return Error{f.FieldPath("cpu_template") + ": expected \"None\", got " +
               DescribeJsonValue(*f.Find("cpu_template"))};
}

// ht_enabled is smt's pre-1.0 name, still sent by old launchers (firecracker-clients §5).
Result<std::optional<bool>> ParseSmt(const JsonFields& f) {
  std::optional<bool> smt = TRY(f.OptionalBool("smt"));
  std::optional<bool> ht_enabled = TRY(f.OptionalBool("ht_enabled"));
  if (smt && ht_enabled && *smt != *ht_enabled)
    return Error{f.path() + ": smt and its deprecated alias ht_enabled disagree"};
  return smt ? smt : ht_enabled;
}

Status CheckId(const std::string& id, const std::string& path) {
  bool ok = !id.empty() && id.size() <= kMaxIdLength;
  for (char c : id) ok = ok && (isalnum(static_cast<unsigned char>(c)) || c == '_');
  if (!ok) {
    return Error{path + ": \"" + id +
                 "\" is not a valid ID (1 to 64 characters, letters, digits and '_')"};
  }
  return Ok();
}

Result<std::optional<RateLimiterConfig>> ParseOptionalRateLimiter(const JsonFields& f,
                                                                  std::string_view key) {
  const rapidjson::Value* v = f.Find(key);
  if (!v) return std::optional<RateLimiterConfig>();
  return std::optional<RateLimiterConfig>(TRY(ParseRateLimiter(*v, f.FieldPath(key))));
}

std::optional<std::array<uint8_t, 6>> ParseMac(const std::string& text) {
  std::array<uint8_t, 6> mac;
  if (text.size() != 17) return std::nullopt;
  for (size_t i = 0; i < 6; i++) {
    if (i > 0 && text[3 * i - 1] != ':') return std::nullopt;
    unsigned byte = 0;
    for (size_t j = 0; j < 2; j++) {
      char c = text[3 * i + j];
      int v = isdigit(static_cast<unsigned char>(c)) ? c - '0'
              : (c >= 'a' && c <= 'f')               ? c - 'a' + 10
              : (c >= 'A' && c <= 'F')               ? c - 'A' + 10
                                                     : -1;
      if (v < 0) return std::nullopt;
      byte = byte * 16 + static_cast<unsigned>(v);
    }
    mac[i] = static_cast<uint8_t>(byte);
  }
  return mac;
}

}  // namespace

// --- One body at a time (shared with the REST API) ---

Result<BootSourceConfig> ParseBootSource(const rapidjson::Value& value, const std::string& path) {
  JsonFields f =
      TRY(JsonFields::Open(value, path, {"kernel_image_path", "boot_args", "initrd_path"}));
  BootSourceConfig boot;
  boot.kernel_image_path = TRY(f.String("kernel_image_path"));
  // An empty command line is a legitimate choice, unlike an empty path.
  boot.boot_args = TRY(f.OptionalString("boot_args", JsonFields::Empty::kAllowed));
  boot.initrd_path = TRY(f.OptionalString("initrd_path"));
  return boot;
}

// vcpu_count and mem_size_mib are required, as in PUT /machine-config.
Result<MachineConfig> ParseMachineConfig(const rapidjson::Value& value, const std::string& path) {
  JsonFields f = TRY(JsonFields::Open(value, path,
                                      {"vcpu_count", "mem_size_mib", "smt", "ht_enabled",
                                       "track_dirty_pages", "huge_pages", "cpu_template"}));
  MachineConfig machine;
  machine.vcpu_count = static_cast<uint32_t>(TRY(f.Uint("vcpu_count", 1, kMaxVcpus)));
  machine.mem_size_mib = TRY(f.Uint("mem_size_mib", 1, kMaxMemSizeMib));
  machine.smt = TRY(ParseSmt(f)).value_or(false);
  machine.track_dirty_pages = TRY(f.OptionalBool("track_dirty_pages")).value_or(false);
  machine.huge_pages = TRY(ParseHugePages(f));
  TRY_STATUS(CheckCpuTemplate(f));

  // Firecracker: with SMT the vCPUs pair up as sibling threads (machine_config.rs).
  if (machine.smt && machine.vcpu_count > 1 && machine.vcpu_count % 2 != 0)
    return Error{StrFormat("%s: must be 1 or even when smt is enabled, got %u",
                           f.FieldPath("vcpu_count").c_str(), machine.vcpu_count)};
  if (machine.huge_pages == HugePages::k2M && machine.mem_size_mib % 2 != 0)
    return Error{StrFormat("%s: must be a multiple of 2 with huge_pages \"2M\", got %llu",
                           f.FieldPath("mem_size_mib").c_str(),
                           static_cast<unsigned long long>(machine.mem_size_mib))};
  return machine;
}

// The rules that combine fields (SMT needs an even vCPU count, 2M pages an even size) apply
// to the merged configuration, which only the controller has.
Result<MachineConfigUpdate> ParseMachineConfigUpdate(const rapidjson::Value& value,
                                                     const std::string& path) {
  JsonFields f = TRY(JsonFields::Open(value, path,
                                      {"vcpu_count", "mem_size_mib", "smt", "ht_enabled",
                                       "track_dirty_pages", "huge_pages", "cpu_template"}));
  MachineConfigUpdate update;
  if (f.Find("vcpu_count"))
    update.vcpu_count = static_cast<uint32_t>(TRY(f.Uint("vcpu_count", 1, kMaxVcpus)));
  if (f.Find("mem_size_mib")) update.mem_size_mib = TRY(f.Uint("mem_size_mib", 1, kMaxMemSizeMib));
  update.smt = TRY(ParseSmt(f));
  update.track_dirty_pages = TRY(f.OptionalBool("track_dirty_pages"));
  if (f.Find("huge_pages")) update.huge_pages = TRY(ParseHugePages(f));
  TRY_STATUS(CheckCpuTemplate(f));
  return update;
}

Result<DriveConfig> ParseDrive(const rapidjson::Value& value, const std::string& path) {
  JsonFields f = TRY(JsonFields::Open(
      value, path,
      {"drive_id", "path_on_host", "is_root_device", "is_read_only", "partuuid", "cache_type",
       "rate_limiter", "io_engine", "socket"}));
  DriveConfig drive;
  drive.drive_id = TRY(f.String("drive_id"));
  TRY_STATUS(CheckId(drive.drive_id, f.FieldPath("drive_id")));
  if (f.Find("socket")) {
    return Error{f.FieldPath("socket") + ": vhost-user block devices are not supported"};
  }
  drive.path_on_host = TRY(f.String("path_on_host"));
  std::optional<bool> root = TRY(f.OptionalBool("is_root_device"));
  if (!root) return f.Missing("is_root_device");
  drive.is_root_device = *root;
  drive.is_read_only = TRY(f.OptionalBool("is_read_only")).value_or(false);
  drive.partuuid = TRY(f.OptionalString("partuuid"));
  std::optional<std::string> cache = TRY(f.OptionalString("cache_type"));
  if (!cache || *cache == "Unsafe") {
    drive.cache_type = CacheType::kUnsafe;
  } else if (*cache == "Writeback") {
    drive.cache_type = CacheType::kWriteback;
  } else {
    return Error{f.FieldPath("cache_type") + ": expected \"Unsafe\" or \"Writeback\", got " +
                 DescribeJsonValue(*f.Find("cache_type"))};
  }
  std::optional<std::string> engine = TRY(f.OptionalString("io_engine"));
  if (!engine || *engine == "Sync") {
    drive.io_engine = IoEngine::kSync;
  } else if (*engine == "Async") {
    drive.io_engine = IoEngine::kAsync;
  } else {
    return Error{f.FieldPath("io_engine") + ": expected \"Sync\" or \"Async\", got " +
                 DescribeJsonValue(*f.Find("io_engine"))};
  }
  drive.rate_limiter = TRY(ParseOptionalRateLimiter(f, "rate_limiter"));
  return drive;
}

Result<DriveUpdate> ParseDriveUpdate(const rapidjson::Value& value, const std::string& path) {
  JsonFields f = TRY(JsonFields::Open(value, path, {"drive_id", "path_on_host", "rate_limiter"}));
  DriveUpdate update;
  update.drive_id = TRY(f.String("drive_id"));
  TRY_STATUS(CheckId(update.drive_id, f.FieldPath("drive_id")));
  update.path_on_host = TRY(f.OptionalString("path_on_host"));
  update.rate_limiter = TRY(ParseOptionalRateLimiter(f, "rate_limiter"));
  return update;
}

Result<NetworkInterfaceConfig> ParseNetworkInterface(const rapidjson::Value& value,
                                                     const std::string& path) {
  JsonFields f = TRY(JsonFields::Open(value, path,
                                      {"iface_id", "host_dev_name", "guest_mac", "mtu",
                                       "rx_rate_limiter", "tx_rate_limiter",
                                       "allow_mmds_requests"}));
  NetworkInterfaceConfig net;
  net.iface_id = TRY(f.String("iface_id"));
  TRY_STATUS(CheckId(net.iface_id, f.FieldPath("iface_id")));
  net.host_dev_name = TRY(f.String("host_dev_name"));
  if (net.host_dev_name.size() >= 16) {
    return Error{f.FieldPath("host_dev_name") + ": \"" + net.host_dev_name +
                 "\" is longer than an interface name can be (15 characters)"};
  }
  if (std::optional<std::string> mac = TRY(f.OptionalString("guest_mac"))) {
    net.guest_mac = ParseMac(*mac);
    if (!net.guest_mac) {
      return Error{f.FieldPath("guest_mac") + ": \"" + *mac +
                   "\" is not a MAC address (expected six hex pairs such as 06:00:ac:10:00:02)"};
    }
  }
  if (f.Find("mtu")) net.mtu = static_cast<uint16_t>(TRY(f.Uint("mtu", 68, 65535)));
  net.rx_rate_limiter = TRY(ParseOptionalRateLimiter(f, "rx_rate_limiter"));
  net.tx_rate_limiter = TRY(ParseOptionalRateLimiter(f, "tx_rate_limiter"));
  // allow_mmds_requests: pre-1.0 MMDS switch (firecracker-clients §5); MMDS is configured with
  // mmds-config now, so the old field is accepted and has no effect.
  if (f.Find("allow_mmds_requests")) (void)TRY(f.OptionalBool("allow_mmds_requests"));
  return net;
}

Result<NetworkInterfaceUpdate> ParseNetworkInterfaceUpdate(const rapidjson::Value& value,
                                                           const std::string& path) {
  JsonFields f =
      TRY(JsonFields::Open(value, path, {"iface_id", "rx_rate_limiter", "tx_rate_limiter"}));
  NetworkInterfaceUpdate update;
  update.iface_id = TRY(f.String("iface_id"));
  TRY_STATUS(CheckId(update.iface_id, f.FieldPath("iface_id")));
  update.rx_rate_limiter = TRY(ParseOptionalRateLimiter(f, "rx_rate_limiter"));
  update.tx_rate_limiter = TRY(ParseOptionalRateLimiter(f, "tx_rate_limiter"));
  return update;
}

// guest_cid: 3 and up (0-2 are reserved) and 32 bits, as AF_VSOCK addresses are.
Result<VsockConfig> ParseVsock(const rapidjson::Value& value, const std::string& path) {
  JsonFields f = TRY(JsonFields::Open(value, path, {"guest_cid", "uds_path", "vsock_id"}));
  VsockConfig vsock;
  vsock.guest_cid = TRY(f.Uint("guest_cid", 3, UINT32_MAX));
  vsock.uds_path = TRY(f.String("uds_path"));
  // vsock_id: deprecated and meaningless since Firecracker 1.0 (firecracker-clients §5); read
  // so that a wrong type is still reported, then ignored.
  (void)TRY(f.OptionalString("vsock_id", JsonFields::Empty::kAllowed));
  return vsock;
}

Result<EntropyConfig> ParseEntropy(const rapidjson::Value& value, const std::string& path) {
  JsonFields f = TRY(JsonFields::Open(value, path, {"rate_limiter"}));
  EntropyConfig entropy;
  entropy.rate_limiter = TRY(ParseOptionalRateLimiter(f, "rate_limiter"));
  return entropy;
}

Result<LoggerConfigFile> ParseLogger(const rapidjson::Value& value, const std::string& path) {
  JsonFields f = TRY(JsonFields::Open(
      value, path, {"log_path", "level", "show_level", "show_log_origin", "module"}));
  LoggerConfigFile logger;
  logger.log_path = TRY(f.OptionalString("log_path"));
  std::optional<std::string> level = TRY(f.OptionalString("level", JsonFields::Empty::kAllowed));
  if (level) {
    logger.level = ParseLogLevel(*level);
    if (!logger.level)
      return Error{f.FieldPath("level") +
                   ": expected one of Error, Warning, Info, Debug, Trace, Off, got " +
                   DescribeJsonValue(*f.Find("level"))};
  }
  logger.show_level = TRY(f.OptionalBool("show_level")).value_or(false);
  logger.show_log_origin = TRY(f.OptionalBool("show_log_origin")).value_or(false);
  logger.module = TRY(f.OptionalString("module"));
  return logger;
}

Result<MetricsConfig> ParseMetrics(const rapidjson::Value& value, const std::string& path) {
  JsonFields f = TRY(JsonFields::Open(value, path, {"metrics_path", "emit_id", "properties"}));
  MetricsConfig metrics;
  metrics.metrics_path = TRY(f.String("metrics_path"));
  // Newer Firecracker fields: their defaults (false, {}) are accepted, anything else is not.
  if (TRY(f.OptionalBool("emit_id")).value_or(false))
    return Error{f.FieldPath("emit_id") + " is not supported yet"};
  if (const rapidjson::Value* p = f.Find("properties")) {
    if (!p->IsObject()) return f.WrongType("properties", "an object");
    if (p->MemberCount() != 0) return Error{f.FieldPath("properties") + " is not supported yet"};
  }
  return metrics;
}

namespace {

// --- The file's sections ---

// An absent or null section is nullopt; a present one is parsed with the body's parser.
template <typename T>
Result<std::optional<T>> ParseOptionalSection(const JsonFields& top, std::string_view key,
                                              Result<T> (*parse)(const rapidjson::Value&,
                                                                 const std::string&)) {
  const rapidjson::Value* v = top.Find(key);
  if (!v) return std::optional<T>();
  return std::optional<T>(TRY(parse(*v, std::string(key))));
}

Result<BootSourceConfig> ParseBootSourceSection(const JsonFields& top) {
  const rapidjson::Value* v = top.Raw("boot-source");
  if (!v) return top.Missing("boot-source");
  return ParseBootSource(*v, "boot-source");
}

// Absent: Firecracker's defaults (1 vCPU, 128 MiB).
Result<MachineConfig> ParseMachineConfigSection(const JsonFields& top) {
  const rapidjson::Value* v = top.Find("machine-config");
  if (!v) return MachineConfig{};
  return ParseMachineConfig(*v, "machine-config");
}

// Firecracker keeps the root device first (it becomes /dev/vda) and the others in order.
Result<std::vector<DriveConfig>> ParseDrives(const JsonFields& top) {
  std::vector<DriveConfig> drives;
  const rapidjson::Value* v = top.Find("drives");
  if (!v) return drives;
  if (!v->IsArray()) return top.WrongType("drives", "an array");
  bool have_root = false;
  for (rapidjson::SizeType i = 0; i < v->Size(); i++) {
    std::string path = StrFormat("drives[%u]", i);
    DriveConfig drive = TRY(ParseDrive((*v)[i], path));
    for (const DriveConfig& other : drives) {
      if (other.drive_id == drive.drive_id) {
        return Error{path + ".drive_id: \"" + drive.drive_id + "\" is used twice"};
      }
    }
    if (drive.is_root_device) {
      if (have_root) return Error{path + ": a second root device (only one drive can be root)"};
      have_root = true;
      drives.insert(drives.begin(), std::move(drive));
    } else {
      drives.push_back(std::move(drive));
    }
  }
  return drives;
}

Result<std::vector<NetworkInterfaceConfig>> ParseNetworkInterfaces(const JsonFields& top) {
  std::vector<NetworkInterfaceConfig> nets;
  const rapidjson::Value* v = top.Find("network-interfaces");
  if (!v) return nets;
  if (!v->IsArray()) return top.WrongType("network-interfaces", "an array");
  for (rapidjson::SizeType i = 0; i < v->Size(); i++) {
    std::string path = StrFormat("network-interfaces[%u]", i);
    NetworkInterfaceConfig net = TRY(ParseNetworkInterface((*v)[i], path));
    for (const NetworkInterfaceConfig& other : nets) {
      if (other.iface_id == net.iface_id) {
        return Error{path + ".iface_id: \"" + net.iface_id + "\" is used twice"};
      }
      if (other.host_dev_name == net.host_dev_name) {
        return Error{path + ".host_dev_name: \"" + net.host_dev_name + "\" is used twice"};
      }
      if (net.guest_mac && other.guest_mac == net.guest_mac) {
        return Error{path + ".guest_mac: the same MAC address is used twice"};
      }
    }
    nets.push_back(std::move(net));
  }
  return nets;
}


// --- Serialisation ---

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void WriteKey(JsonWriter& w, const char* key) { w.Key(key); }

void WriteString(JsonWriter& w, const std::string& s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void WriteOptionalString(JsonWriter& w, const char* key, const std::optional<std::string>& s) {
  WriteKey(w, key);
  if (s)
    WriteString(w, *s);
  else
    w.Null();
}

void WriteBootSource(JsonWriter& w, const std::optional<BootSourceConfig>& boot) {
  WriteKey(w, "boot-source");
  if (!boot) {
    w.Null();
    return;
  }
  w.StartObject();
  WriteKey(w, "kernel_image_path");
  WriteString(w, boot->kernel_image_path);
  WriteOptionalString(w, "initrd_path", boot->initrd_path);
  WriteOptionalString(w, "boot_args", boot->boot_args);
  w.EndObject();
}

void WriteMachineConfigObject(JsonWriter& w, const MachineConfig& m) {
  w.StartObject();
  WriteKey(w, "vcpu_count");
  w.Uint(m.vcpu_count);
  WriteKey(w, "mem_size_mib");
  w.Uint64(m.mem_size_mib);
  WriteKey(w, "smt");
  w.Bool(m.smt);
  WriteKey(w, "track_dirty_pages");
  w.Bool(m.track_dirty_pages);
  WriteKey(w, "huge_pages");
  w.String(m.huge_pages == HugePages::k2M ? "2M" : "None");
  w.EndObject();
}

void WriteMachineConfig(JsonWriter& w, const MachineConfig& m) {
  WriteKey(w, "machine-config");
  WriteMachineConfigObject(w, m);
}

void WriteLogger(JsonWriter& w, const std::optional<LoggerConfigFile>& logger) {
  WriteKey(w, "logger");
  if (!logger) {
    w.Null();
    return;
  }
  w.StartObject();
  WriteOptionalString(w, "log_path", logger->log_path);
  WriteKey(w, "level");
  if (logger->level)
    w.String(LogLevelName(*logger->level));
  else
    w.Null();
  WriteKey(w, "show_level");
  w.Bool(logger->show_level);
  WriteKey(w, "show_log_origin");
  w.Bool(logger->show_log_origin);
  WriteOptionalString(w, "module", logger->module);
  w.EndObject();
}

void WriteMetrics(JsonWriter& w, const std::optional<MetricsConfig>& metrics) {
  WriteKey(w, "metrics");
  if (!metrics) {
    w.Null();
    return;
  }
  w.StartObject();
  WriteKey(w, "metrics_path");
  WriteString(w, metrics->metrics_path);
  w.EndObject();
}

void WriteRateLimiter(JsonWriter& w, const char* key, const std::optional<RateLimiterConfig>& rl) {
  WriteKey(w, key);
  if (!rl) {
    w.Null();
    return;
  }
  rapidjson::Document doc;
  RateLimiterToJson(*rl, &doc, doc.GetAllocator());
  doc.Accept(w);
}

void WriteDrives(JsonWriter& w, const std::vector<DriveConfig>& drives) {
  WriteKey(w, "drives");
  w.StartArray();
  for (const DriveConfig& d : drives) {
    w.StartObject();
    WriteKey(w, "drive_id");
    WriteString(w, d.drive_id);
    WriteKey(w, "partuuid");
    if (d.partuuid)
      WriteString(w, *d.partuuid);
    else
      w.Null();
    WriteKey(w, "is_root_device");
    w.Bool(d.is_root_device);
    WriteKey(w, "cache_type");
    w.String(d.cache_type == CacheType::kWriteback ? "Writeback" : "Unsafe");
    WriteKey(w, "is_read_only");
    w.Bool(d.is_read_only);
    WriteKey(w, "path_on_host");
    WriteString(w, d.path_on_host);
    WriteRateLimiter(w, "rate_limiter", d.rate_limiter);
    WriteKey(w, "io_engine");
    w.String(d.io_engine == IoEngine::kAsync ? "Async" : "Sync");
    WriteKey(w, "socket");
    w.Null();
    w.EndObject();
  }
  w.EndArray();
}

void WriteNetworkInterfaces(JsonWriter& w, const std::vector<NetworkInterfaceConfig>& nets) {
  WriteKey(w, "network-interfaces");
  w.StartArray();
  for (const NetworkInterfaceConfig& n : nets) {
    w.StartObject();
    WriteKey(w, "iface_id");
    WriteString(w, n.iface_id);
    WriteKey(w, "host_dev_name");
    WriteString(w, n.host_dev_name);
    WriteKey(w, "guest_mac");
    if (n.guest_mac) {
      const auto& m = *n.guest_mac;
      WriteString(w, StrFormat("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]));
    } else {
      w.Null();
    }
    WriteKey(w, "mtu");
    if (n.mtu)
      w.Uint(*n.mtu);
    else
      w.Null();
    WriteRateLimiter(w, "rx_rate_limiter", n.rx_rate_limiter);
    WriteRateLimiter(w, "tx_rate_limiter", n.tx_rate_limiter);
    w.EndObject();
  }
  w.EndArray();
}

void WriteVsock(JsonWriter& w, const std::optional<VsockConfig>& vsock) {
  WriteKey(w, "vsock");
  if (!vsock) {
    w.Null();
    return;
  }
  w.StartObject();
  WriteKey(w, "guest_cid");
  w.Uint64(vsock->guest_cid);
  WriteKey(w, "uds_path");
  WriteString(w, vsock->uds_path);
  w.EndObject();
}

void WriteEntropy(JsonWriter& w, const std::optional<EntropyConfig>& entropy) {
  WriteKey(w, "entropy");
  if (!entropy) {
    w.Null();
    return;
  }
  w.StartObject();
  WriteRateLimiter(w, "rate_limiter", entropy->rate_limiter);
  w.EndObject();
}

void WriteEmptyArray(JsonWriter& w, const char* key) {
  WriteKey(w, key);
  w.StartArray();
  w.EndArray();
}

void WriteNull(JsonWriter& w, const char* key) {
  WriteKey(w, key);
  w.Null();
}

}  // namespace


Result<VmConfig> ParseConfigFile(std::string_view json) {
  rapidjson::Document doc = TRY(ParseJson(json));
  TRY_STATUS(CheckNoDuplicateKeys(doc));
  JsonFields top = TRY(JsonFields::Open(
      doc, "",
      {"boot-source", "machine-config", "logger", "metrics", "drives", "network-interfaces", "pmem",
       "vsock", "entropy", "balloon", "mmds-config", "cpu-config", "memory-hotplug"}));
  TRY_STATUS(RejectSectionsNotYetSupported(top));
  VmConfig config;
  config.boot_source = TRY(ParseBootSourceSection(top));
  config.machine = TRY(ParseMachineConfigSection(top));
  config.logger = TRY(ParseOptionalSection(top, "logger", ParseLogger));
  config.metrics = TRY(ParseOptionalSection(top, "metrics", ParseMetrics));
  config.drives = TRY(ParseDrives(top));
  config.entropy = TRY(ParseOptionalSection(top, "entropy", ParseEntropy));
  config.network_interfaces = TRY(ParseNetworkInterfaces(top));
  config.vsock = TRY(ParseOptionalSection(top, "vsock", ParseVsock));
  return config;
}

Result<VmConfig> LoadConfigFile(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Error::Errno("cannot read config file " + path);
  // Read to EOF rather than fstat: the file may be a pipe (--config-file /dev/fd/N).
  std::string text;
  char buffer[16384];
  for (;;) {
    ssize_t n = read(fd.get(), buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Errno("cannot read config file " + path);
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxConfigFileBytes)
      return Error{StrFormat("cannot read config file %s: larger than %zu MiB", path.c_str(),
                             kMaxConfigFileBytes >> 20)};
  }
  auto config = ParseConfigFile(text);
  if (!config.ok()) return config.error().Wrap(path);
  return config;
}

std::string MachineConfigToJson(const MachineConfig& machine) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  WriteMachineConfigObject(w, machine);
  return {buffer.GetString(), buffer.GetSize()};
}

std::string VmConfigToJson(const VmConfig& config) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  // Firecracker's VmmConfig field order, so GET /vm/config reads the same.
  w.StartObject();
  WriteNull(w, "balloon");
  WriteDrives(w, config.drives);
  WriteBootSource(w, config.boot_source);
  WriteNull(w, "cpu-config");
  WriteLogger(w, config.logger);
  WriteMachineConfig(w, config.machine);
  WriteMetrics(w, config.metrics);
  WriteNull(w, "mmds-config");
  WriteNetworkInterfaces(w, config.network_interfaces);
  WriteVsock(w, config.vsock);
  WriteEntropy(w, config.entropy);
  WriteEmptyArray(w, "pmem");
  WriteNull(w, "memory-hotplug");
  w.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

}  // namespace ember

#include "api/routes.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <initializer_list>
#include <variant>
#include <vector>

#include "api/config_file.h"
#include "api/json_util.h"
#include "vmm/base/strings.h"

namespace ember {

struct RouteRequest {
  const ApiRoute& route;
  std::string_view id;           // the path's {...} segment, checked; empty if the route has none
  const rapidjson::Value* body;  // nullptr for GET
  std::string body_name;         // "machine-config", "drives[rootfs]"
};

namespace {

// Firecracker's checked_id allows alphanumerics and '_'; the length cap is ember's, the same as
// for IDs in the config file, so an ID the API accepts can be written back to a file.
constexpr size_t kMaxIdLength = 64;

ParsedRequest Action(VmmAction action) { return ParsedRequest{std::move(action), std::nullopt}; }

// Firecracker's notice for each deprecated field present and not null (request/vsock.rs):
// "PUT /vsock: vsock_id field is deprecated."
ParsedRequest WithDeprecatedFields(const RouteRequest& r, VmmAction action,
                                   std::initializer_list<std::string_view> fields) {
  ParsedRequest parsed = Action(std::move(action));
  for (std::string_view field : fields) {
    auto it = r.body->FindMember(rapidjson::Value(
        rapidjson::StringRef(field.data(), static_cast<rapidjson::SizeType>(field.size()))));
    if (it == r.body->MemberEnd() || it->value.IsNull()) continue;
    std::string notice =
        StrFormat("%.*s %.*s: %.*s field is deprecated.", static_cast<int>(r.route.method.size()),
                  r.route.method.data(), static_cast<int>(r.route.path.size()), r.route.path.data(),
                  static_cast<int>(field.size()), field.data());
    parsed.deprecation = parsed.deprecation ? *parsed.deprecation + " " + notice : notice;
  }
  return parsed;
}

// Firecracker (request/net.rs): the body must describe the resource the path names.
Status CheckIdsMatch(const RouteRequest& r, const std::string& body_id) {
  if (body_id == r.id) return Ok();
  return Error{"The id from the path [" + std::string(r.id) +
               "] does not match the id from the body [" + body_id + "]!"};
}

bool HasNonNullMember(const rapidjson::Value& object) {
  for (const auto& member : object.GetObject()) {
    if (!member.value.IsNull()) return true;
  }
  return false;
}

// --- One parser per route ---

// A route without a body whose action has no arguments (GET /version, ...).
template <typename A>
Result<ParsedRequest> Plain(const RouteRequest&) {
  return Action(A{});
}

// A body parsed by one of the config file's object parsers and used as it is.
template <auto Parse>
Result<ParsedRequest> Body(const RouteRequest& r) {
  return Action(TRY(Parse(*r.body, r.body_name)));
}

Result<ParsedRequest> PutMachineConfig(const RouteRequest& r) {
  MachineConfig machine = TRY(ParseMachineConfig(*r.body, r.body_name));
  return WithDeprecatedFields(r, machine, {"cpu_template", "ht_enabled"});
}

// Firecracker refuses an update that changes nothing (MachineConfigUpdate::is_empty).
Result<ParsedRequest> PatchMachineConfig(const RouteRequest& r) {
  MachineConfigUpdate update = TRY(ParseMachineConfigUpdate(*r.body, r.body_name));
  if (!HasNonNullMember(*r.body))
    return Error{"Empty PATCH request: the body sets no machine-config field."};
  return WithDeprecatedFields(r, update, {"cpu_template", "ht_enabled"});
}

Result<ParsedRequest> PutDrive(const RouteRequest& r) {
  DriveConfig drive = TRY(ParseDrive(*r.body, r.body_name));
  TRY_STATUS(CheckIdsMatch(r, drive.drive_id));
  return Action(std::move(drive));
}

Result<ParsedRequest> PatchDrive(const RouteRequest& r) {
  DriveUpdate update = TRY(ParseDriveUpdate(*r.body, r.body_name));
  TRY_STATUS(CheckIdsMatch(r, update.drive_id));
  return Action(std::move(update));
}

Result<ParsedRequest> PutNetworkInterface(const RouteRequest& r) {
  NetworkInterfaceConfig net = TRY(ParseNetworkInterface(*r.body, r.body_name));
  TRY_STATUS(CheckIdsMatch(r, net.iface_id));
  return WithDeprecatedFields(r, std::move(net), {"allow_mmds_requests"});
}

Result<ParsedRequest> PatchNetworkInterface(const RouteRequest& r) {
  NetworkInterfaceUpdate update = TRY(ParseNetworkInterfaceUpdate(*r.body, r.body_name));
  TRY_STATUS(CheckIdsMatch(r, update.iface_id));
  return Action(std::move(update));
}

Result<ParsedRequest> PutVsock(const RouteRequest& r) {
  VsockConfig vsock = TRY(ParseVsock(*r.body, r.body_name));
  return WithDeprecatedFields(r, vsock, {"vsock_id"});
}

// Serial is not part of the config file (Firecracker's VmmConfig skips it), so its body is
// parsed here. Its rate_limiter (a TokenBucket) is newer than ember.
Result<ParsedRequest> PutSerial(const RouteRequest& r) {
  JsonFields f = TRY(JsonFields::Open(*r.body, r.body_name, {"serial_out_path", "rate_limiter"}));
  SerialConfig serial;
  serial.serial_out_path = TRY(f.OptionalString("serial_out_path"));
  if (f.Find("rate_limiter")) return Error{f.FieldPath("rate_limiter") + " is not supported yet"};
  return Action(std::move(serial));
}

Result<ParsedRequest> PutActions(const RouteRequest& r) {
  JsonFields f = TRY(JsonFields::Open(*r.body, r.body_name, {"action_type"}));
  std::string type = TRY(f.String("action_type"));
  if (type == "InstanceStart") return Action(InstanceStart{});
  if (type == "SendCtrlAltDel") return Action(SendCtrlAltDel{});
  if (type == "FlushMetrics") return Action(FlushMetrics{});
  return Error{f.FieldPath("action_type") +
               ": expected \"InstanceStart\", \"SendCtrlAltDel\" or \"FlushMetrics\", got " +
               DescribeJsonValue(*f.Find("action_type"))};
}

Result<ParsedRequest> PatchVm(const RouteRequest& r) {
  JsonFields f = TRY(JsonFields::Open(*r.body, r.body_name, {"state"}));
  std::string state = TRY(f.String("state"));
  if (state == "Paused") return Action(PauseVm{});
  if (state == "Resumed") return Action(ResumeVm{});
  return Error{f.FieldPath("state") + ": expected \"Paused\" or \"Resumed\", got " +
               DescribeJsonValue(*f.Find("state"))};
}

// Firecracker's routes (parsed_request.rs, swagger/firecracker.yaml), in its order. A nullptr
// parser marks a route ember does not implement yet.
constexpr ApiRoute kRoutes[] = {
    {"GET", "/", Plain<GetInstanceInfo>},
    {"GET", "/version", Plain<GetVersion>},
    {"GET", "/machine-config", Plain<GetMachineConfig>},
    {"PUT", "/machine-config", PutMachineConfig},
    {"PATCH", "/machine-config", PatchMachineConfig},
    {"GET", "/vm/config", Plain<GetVmConfig>},
    {"PATCH", "/vm", PatchVm},
    {"PUT", "/actions", PutActions},
    {"PUT", "/boot-source", Body<ParseBootSource>},
    {"PUT", "/drives/{drive_id}", PutDrive},
    {"PATCH", "/drives/{drive_id}", PatchDrive},
    {"PUT", "/network-interfaces/{iface_id}", PutNetworkInterface},
    {"PATCH", "/network-interfaces/{iface_id}", PatchNetworkInterface},
    {"PUT", "/vsock", PutVsock},
    {"PUT", "/entropy", Body<ParseEntropy>},
    {"PUT", "/serial", PutSerial},
    {"PUT", "/logger", Body<ParseLogger>},
    {"PUT", "/metrics", Body<ParseMetrics>},
    // Not yet: hot-unplug (PCI only in Firecracker), pmem, balloon, MMDS, snapshots, memory
    // hotplug and custom CPU templates.
    {"DELETE", "/drives/{drive_id}", nullptr},
    {"DELETE", "/network-interfaces/{iface_id}", nullptr},
    {"PUT", "/pmem/{id}", nullptr},
    {"PATCH", "/pmem/{id}", nullptr},
    {"DELETE", "/pmem/{id}", nullptr},
    {"PUT", "/cpu-config", nullptr},
    {"GET", "/balloon", nullptr},
    {"PUT", "/balloon", nullptr},
    {"PATCH", "/balloon", nullptr},
    {"GET", "/balloon/statistics", nullptr},
    {"PATCH", "/balloon/statistics", nullptr},
    {"PATCH", "/balloon/hinting/start", nullptr},
    {"GET", "/balloon/hinting/status", nullptr},
    {"PATCH", "/balloon/hinting/stop", nullptr},
    {"GET", "/mmds", nullptr},
    {"PUT", "/mmds", nullptr},
    {"PATCH", "/mmds", nullptr},
    {"PUT", "/mmds/config", nullptr},
    {"PUT", "/snapshot/create", nullptr},
    {"PUT", "/snapshot/load", nullptr},
    {"GET", "/hotplug/memory", nullptr},
    {"PUT", "/hotplug/memory", nullptr},
    {"PATCH", "/hotplug/memory", nullptr},
};

// --- Matching a path to a route ---

// Firecracker trims every leading '/' and ignores one trailing '/' (trim_start_matches,
// split_terminator): "//machine-config/" is "/machine-config". "/" has no segments.
std::vector<std::string_view> SplitPath(std::string_view path) {
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);
  std::vector<std::string_view> segments;
  if (path.empty()) return segments;
  for (size_t start = 0;;) {
    size_t end = path.find('/', start);
    segments.push_back(path.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return segments;
    start = end + 1;
  }
}

bool IsParameter(std::string_view segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

struct RouteMatch {
  const ApiRoute* route = nullptr;
  std::string_view id;       // the segment in place of the template's parameter
  std::string_view id_name;  // the parameter's name: "drive_id"
};

// A template's last segment may be a parameter: "/drives/{drive_id}". A path that stops before
// it matches with an empty ID, which is then refused as such (Firecracker: "The ID cannot be
// empty.") rather than as an unknown path.
bool MatchTemplate(const std::vector<std::string_view>& path, RouteMatch* match) {
  std::vector<std::string_view> pattern = SplitPath(match->route->path);
  bool ends_in_parameter = !pattern.empty() && IsParameter(pattern.back());
  if (path.size() != pattern.size() && !(ends_in_parameter && path.size() + 1 == pattern.size()))
    return false;
  for (size_t i = 0; i < pattern.size(); i++) {
    std::string_view segment = i < path.size() ? path[i] : std::string_view();
    if (IsParameter(pattern[i])) {
      match->id = segment;
      match->id_name = pattern[i].substr(1, pattern[i].size() - 2);
    } else if (segment != pattern[i]) {
      return false;
    }
  }
  return true;
}

Result<RouteMatch> FindRoute(std::string_view method, std::string_view path) {
  Error invalid{StrFormat("Invalid request method and/or path: %.*s %.*s.",
                          static_cast<int>(method.size()), method.data(),
                          static_cast<int>(path.size()), path.data())};
  // micro_http hands Firecracker the query string as part of the path, where it matches
  // nothing; ember refuses it the same way.
  if (path.empty() || path.front() != '/' || path.find_first_of("?#") != std::string_view::npos)
    return invalid;
  std::vector<std::string_view> segments = SplitPath(path);
  for (const ApiRoute& route : kRoutes) {
    RouteMatch match{&route, {}, {}};
    if (route.method == method && MatchTemplate(segments, &match)) return match;
  }
  return invalid;
}

Status CheckSupported(const ApiRoute& route) {
  if (route.supported()) return Ok();
  return Error{StrFormat("%.*s %.*s is not supported by this version of ember",
                         static_cast<int>(route.method.size()), route.method.data(),
                         static_cast<int>(route.path.size()), route.path.data())};
}

// Firecracker's method_to_error: GETs carry no body, PUTs and PATCHes must.
Status CheckBodyPresence(std::string_view method, std::string_view body) {
  bool takes_body = method == "PUT" || method == "PATCH";
  if (takes_body && body.empty())
    return Error{StrFormat("Empty %.*s request.", static_cast<int>(method.size()), method.data())};
  if (!takes_body && !body.empty())
    return Error{StrFormat("%.*s request cannot have a body.", static_cast<int>(method.size()),
                           method.data())};
  return Ok();
}

Status CheckPathId(const RouteMatch& match) {
  if (match.id_name.empty()) return Ok();
  std::string where = std::string(match.id_name) + " in the path";
  if (match.id.empty()) return Error{where + ": the ID cannot be empty"};
  bool ok = match.id.size() <= kMaxIdLength;
  for (char c : match.id) ok = ok && (isalnum(static_cast<unsigned char>(c)) || c == '_');
  if (!ok)
    return Error{where + ": \"" + std::string(match.id) +
                 "\" is not a valid ID (1 to 64 characters, letters, digits and '_')"};
  return Ok();
}

// The body's name in errors: the path without its leading '/', with the ID in brackets as the
// config file numbers its drives: "machine-config", "drives[rootfs]".
std::string BodyName(const RouteMatch& match) {
  std::string name;
  for (std::string_view segment : SplitPath(match.route->path)) {
    if (IsParameter(segment)) {
      name.append("[").append(match.id).append("]");
    } else {
      if (!name.empty()) name += '/';
      name += segment;
    }
  }
  return name;
}

// --- Rendering answers ---

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void WriteString(JsonWriter& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// The length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629: no overlong forms,
// no surrogates, nothing above U+10FFFF), or 0 if there is none.
size_t Utf8SequenceLength(std::string_view s) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  size_t length = lead >= 0xC2 && lead <= 0xDF   ? 2
                  : lead >= 0xE0 && lead <= 0xEF ? 3
                  : lead >= 0xF0 && lead <= 0xF4 ? 4
                                                 : 0;
  if (length == 0 || s.size() < length) return 0;
  unsigned char low = lead == 0xE0 ? 0xA0 : lead == 0xF0 ? 0x90 : 0x80;
  unsigned char high = lead == 0xED ? 0x9F : lead == 0xF4 ? 0x8F : 0xBF;
  if (byte(1) < low || byte(1) > high) return 0;
  for (size_t i = 2; i < length; i++) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return length;
}

// A fault message can quote raw request bytes (the path) or a string cut mid-character; the
// answer must still be valid JSON, so each bad byte becomes U+FFFD.
std::string ValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  while (!s.empty()) {
    size_t n = Utf8SequenceLength(s);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      n = 1;
    } else {
      out.append(s.substr(0, n));
    }
    s.remove_prefix(n);
  }
  return out;
}

const char* InstanceStateName(InstanceState state) {
  switch (state) {
    case InstanceState::kNotStarted:
      return "Not started";
    case InstanceState::kRunning:
      return "Running";
    case InstanceState::kPaused:
      return "Paused";
  }
  return "Not started";
}

// Firecracker's InstanceInfo, in its field order; app_name names the monitor that answers.
std::string InstanceInfoToJson(const InstanceInfo& info) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("id");
  WriteString(w, info.id);
  w.Key("state");
  w.String(InstanceStateName(info.state));
  w.Key("vmm_version");
  WriteString(w, info.vmm_version);
  w.Key("app_name");
  w.String("ember");
  w.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

std::string VersionInfoToJson(const VersionInfo& version) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("firecracker_version");
  WriteString(w, version.firecracker_version);
  w.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

}  // namespace

std::span<const ApiRoute> ApiRoutes() { return kRoutes; }

Result<ParsedRequest> ParseApiRequest(std::string_view method, std::string_view path,
                                      std::string_view body) {
  RouteMatch match = TRY(FindRoute(method, path));
  TRY_STATUS(CheckSupported(*match.route));
  TRY_STATUS(CheckBodyPresence(method, body));
  TRY_STATUS(CheckPathId(match));
  rapidjson::Document doc;
  if (!body.empty()) {
    doc = TRY(ParseJson(body));
    TRY_STATUS(CheckNoDuplicateKeys(doc));
  }
  RouteRequest request{*match.route, match.id, body.empty() ? nullptr : &doc, BodyName(match)};
  return match.route->parse(request);
}

std::string VmmDataToJson(const VmmData& data) {
  struct Render {
    std::string operator()(const NoData&) const { return ""; }
    std::string operator()(const InstanceInfo& info) const { return InstanceInfoToJson(info); }
    std::string operator()(const VersionInfo& v) const { return VersionInfoToJson(v); }
    std::string operator()(const MachineConfig& m) const { return MachineConfigToJson(m); }
    std::string operator()(const VmConfig& config) const { return VmConfigToJson(config); }
  };
  return std::visit(Render{}, data);
}

std::string FaultMessageJson(std::string_view message) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("fault_message");
  WriteString(w, ValidUtf8(message));
  w.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

}  // namespace ember

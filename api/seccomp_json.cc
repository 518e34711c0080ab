#include "api/seccomp_json.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <limits>

#include "api/json_util.h"
#include "vmm/base/strings.h"
#include "vmm/base/unique_fd.h"

namespace ember {
namespace {

// Far above any real profile (Firecracker's three filters are ~25 KiB of JSON).
constexpr size_t kMaxSeccompFileBytes = 1u << 20;
// Syscall arguments are numbered 0 to 5 (seccomp_data.args).
constexpr uint64_t kMaxArgIndex = 5;

std::string_view Name(const rapidjson::Value& v) { return {v.GetString(), v.GetStringLength()}; }

Result<SeccompRole> ParseRole(std::string_view name) {
  for (SeccompRole role : kSeccompRoles) {
    if (name == SeccompRoleName(role)) return role;
  }
  return Error{StrFormat("unknown thread category \"%.*s\" (expected vmm, api or vcpu)",
                         static_cast<int>(name.size()), name.data())};
}

// "allow" | "trap" | ... | {"errno": N} | {"trace": N} (serde's externally tagged enum).
Result<SeccompAction> ParseAction(const JsonFields& f, std::string_view key) {
  using Kind = SeccompAction::Kind;
  constexpr std::string_view kExpected =
      "\"allow\", \"trap\", \"log\", \"kill_thread\", \"kill_process\", {\"errno\": N} or "
      "{\"trace\": N}";
  const rapidjson::Value* v = f.Raw(key);
  if (!v) return f.Missing(key);
  if (v->IsString()) {
    static constexpr struct {
      std::string_view name;
      Kind kind;
    } kUnit[] = {{"allow", Kind::kAllow},
                 {"trap", Kind::kTrap},
                 {"log", Kind::kLog},
                 {"kill_thread", Kind::kKillThread},
                 {"kill_process", Kind::kKillProcess}};
    for (const auto& u : kUnit) {
      if (Name(*v) == u.name) return SeccompAction{u.kind, 0};
    }
    return f.WrongType(key, kExpected);
  }
  if (v->IsObject() && v->MemberCount() == 1) {
    const std::string path = f.FieldPath(key);
    JsonFields action = TRY(JsonFields::Open(*v, path, {"errno", "trace"}));
    const bool is_errno = action.Raw("errno") != nullptr;
    const char* field = is_errno ? "errno" : "trace";
    uint64_t value = TRY(action.Uint(field, 0, std::numeric_limits<uint16_t>::max()));
    return SeccompAction{is_errno ? Kind::kErrno : Kind::kTrace, static_cast<uint16_t>(value)};
  }
  return f.WrongType(key, kExpected);
}

// "eq" | "ne" | "lt" | "le" | "gt" | "ge" | {"masked_eq": MASK}.
Status ParseOp(const JsonFields& f, SeccompCondition* c) {
  constexpr std::string_view kExpected =
      "\"eq\", \"ne\", \"lt\", \"le\", \"gt\", \"ge\" or {\"masked_eq\": MASK}";
  const rapidjson::Value* v = f.Raw("op");
  if (!v) return f.Missing("op");
  if (v->IsString()) {
    static constexpr struct {
      std::string_view name;
      SeccompOp op;
    } kOps[] = {{"eq", SeccompOp::kEq}, {"ne", SeccompOp::kNe}, {"lt", SeccompOp::kLt},
                {"le", SeccompOp::kLe}, {"gt", SeccompOp::kGt}, {"ge", SeccompOp::kGe}};
    for (const auto& o : kOps) {
      if (Name(*v) == o.name) {
        c->op = o.op;
        return Ok();
      }
    }
    if (Name(*v) == "masked_eq")
      return Error{f.FieldPath("op") + ": masked_eq takes its mask: {\"masked_eq\": MASK}"};
    return f.WrongType("op", kExpected);
  }
  if (v->IsObject()) {
    JsonFields op = TRY(JsonFields::Open(*v, f.FieldPath("op"), {"masked_eq"}));
    c->op = SeccompOp::kMaskedEq;
    c->mask = TRY(op.Uint("masked_eq", 0, std::numeric_limits<uint64_t>::max()));
    return Ok();
  }
  return f.WrongType("op", kExpected);
}

Status CheckComment(const JsonFields& f) {
  (void)TRY(f.OptionalString("comment", JsonFields::Empty::kAllowed));
  return Ok();
}

Result<SeccompCondition> ParseCondition(const rapidjson::Value& value, const std::string& path) {
  JsonFields f = TRY(JsonFields::Open(value, path, {"index", "type", "op", "val", "comment"}));
  SeccompCondition c;
  c.index = static_cast<uint8_t>(TRY(f.Uint("index", 0, kMaxArgIndex)));
  std::string type = TRY(f.String("type"));
  if (type == "dword") {
    c.width = SeccompArgWidth::kDword;
  } else if (type == "qword") {
    c.width = SeccompArgWidth::kQword;
  } else {
    return f.WrongType("type", "\"dword\" or \"qword\"");
  }
  TRY_STATUS(ParseOp(f, &c));
  const uint64_t max = c.width == SeccompArgWidth::kDword ? std::numeric_limits<uint32_t>::max()
                                                          : std::numeric_limits<uint64_t>::max();
  // A dword value over 32 bits could never match the argument's low half.
  c.value = TRY(f.Uint("val", 0, max));
  if (c.op == SeccompOp::kMaskedEq && c.mask > max)
    return Error{StrFormat("%s: a dword mask must fit in 32 bits, got %llu",
                           f.FieldPath("op.masked_eq").c_str(),
                           static_cast<unsigned long long>(c.mask))};
  TRY_STATUS(CheckComment(f));
  return c;
}

Result<SeccompRule> ParseRule(const rapidjson::Value& value, const std::string& path) {
  JsonFields f = TRY(JsonFields::Open(value, path, {"syscall", "args", "comment"}));
  SeccompRule rule;
  rule.syscall = TRY(f.String("syscall"));
  TRY_STATUS(CheckComment(f));
  const rapidjson::Value* args = f.Find("args");
  if (!args) return rule;
  if (!args->IsArray()) return f.WrongType("args", "an array of conditions");
  // An empty list is a rule without conditions, as in Firecracker.
  for (rapidjson::SizeType i = 0; i < args->Size(); ++i) {
    rule.args.push_back(
        TRY(ParseCondition((*args)[i], StrFormat("%s[%u]", f.FieldPath("args").c_str(), i))));
  }
  return rule;
}

Result<SeccompFilterConfig> ParseFilter(const rapidjson::Value& value, const std::string& path) {
  JsonFields f = TRY(
      JsonFields::Open(value, path, {"default_action", "filter_action", "filter", "comment"}));
  SeccompFilterConfig filter;
  filter.default_action = TRY(ParseAction(f, "default_action"));
  filter.filter_action = TRY(ParseAction(f, "filter_action"));
  TRY_STATUS(CheckComment(f));
  const rapidjson::Value* rules = f.Raw("filter");
  if (!rules) return f.Missing("filter");
  if (!rules->IsArray()) return f.WrongType("filter", "an array of rules");
  for (rapidjson::SizeType i = 0; i < rules->Size(); ++i) {
    filter.rules.push_back(
        TRY(ParseRule((*rules)[i], StrFormat("%s[%u]", f.FieldPath("filter").c_str(), i))));
  }
  return filter;
}

Result<SeccompProfiles> RequireAllRoles(std::map<SeccompRole, SeccompFilterConfig> filters) {
  SeccompProfiles profiles;
  for (SeccompRole role : kSeccompRoles) {
    auto it = filters.find(role);
    if (it == filters.end())
      return Error{StrFormat("missing thread category \"%s\" (a profile needs vmm, api and vcpu)",
                             SeccompRoleName(role))};
    profiles[role] = std::move(it->second);
  }
  return profiles;
}

}  // namespace

Result<std::map<SeccompRole, SeccompFilterConfig>> ParseSeccompJson(std::string_view json) {
  rapidjson::Document doc = TRY(ParseJson(json));
  TRY_STATUS(CheckNoDuplicateKeys(doc));
  if (!doc.IsObject())
    return Error{"a seccomp profile must be a JSON object of thread categories, got " +
                 DescribeJsonValue(doc)};
  std::map<SeccompRole, SeccompFilterConfig> filters;
  for (const auto& member : doc.GetObject()) {
    SeccompRole role = TRY(ParseRole(Name(member.name)));
    filters[role] = TRY(ParseFilter(member.value, SeccompRoleName(role)));
  }
  return filters;
}

Result<SeccompProfiles> ParseSeccompProfiles(std::string_view json) {
  return RequireAllRoles(TRY(ParseSeccompJson(json)));
}

Result<std::map<SeccompRole, SeccompFilterConfig>> LoadSeccompJsonFile(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Error::Errno("cannot read seccomp filter file " + path);
  std::string text;
  char buffer[16384];
  for (;;) {
    ssize_t n = read(fd.get(), buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Errno("cannot read seccomp filter file " + path);
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxSeccompFileBytes)
      return Error{StrFormat("seccomp filter file %s is larger than %zu KiB", path.c_str(),
                             kMaxSeccompFileBytes >> 10)};
  }
  auto filters = ParseSeccompJson(text);
  if (!filters.ok()) return filters.error().Wrap(path);
  return filters;
}

Result<SeccompProfiles> LoadSeccompProfilesFile(const std::string& path) {
  auto profiles = RequireAllRoles(TRY(LoadSeccompJsonFile(path)));
  if (!profiles.ok()) return profiles.error().Wrap(path);
  return profiles;
}

Result<SeccompProfiles> LoadSeccompProfileFiles(const std::vector<std::string>& paths) {
  std::map<SeccompRole, SeccompFilterConfig> merged;
  for (const std::string& path : paths) {
    for (auto& [role, filter] : TRY(LoadSeccompJsonFile(path))) {
      if (merged.count(role))
        return Error{StrFormat("%s: thread category \"%s\" is defined twice", path.c_str(),
                               SeccompRoleName(role))};
      merged[role] = std::move(filter);
    }
  }
  return RequireAllRoles(std::move(merged));
}

Status AppendSeccompProfileFile(const std::string& path, SeccompProfiles* profiles) {
  for (auto& [role, extra] : TRY(LoadSeccompJsonFile(path))) {
    SeccompFilterConfig& base = (*profiles)[role];
    if (extra.default_action != base.default_action || extra.filter_action != base.filter_action)
      return Error{StrFormat("%s: the \"%s\" filter's actions differ from those it extends",
                             path.c_str(), SeccompRoleName(role))};
    base.rules.insert(base.rules.end(), extra.rules.begin(), extra.rules.end());
  }
  return Ok();
}

}  // namespace ember

#include "api/json_util.h"

#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <unordered_set>

#include "vmm/base/strings.h"

namespace ember {
namespace {

// serde_json's recursion limit; deeper documents are rejected rather than walked.
constexpr int kMaxJsonDepth = 128;
// Long strings are cut in error messages so one line stays readable.
constexpr size_t kMaxDescribedChars = 40;

std::string_view MemberName(const rapidjson::Value& name) {
  return {name.GetString(), name.GetStringLength()};
}

// "in machine-config" / "at the top level", for messages about a whole object.
std::string Where(const std::string& path) {
  return path.empty() ? "at the top level" : "in " + path;
}

// RFC 3629 well-formedness (no overlong forms, no surrogates, nothing above U+10FFFF).
bool IsUtf8(const char* p, size_t n) {
  auto b = [&](size_t i) { return static_cast<unsigned char>(p[i]); };
  for (size_t i = 0; i < n;) {
    unsigned char lead = b(i);
    size_t len = lead < 0x80 ? 1 : lead >= 0xC2 && lead <= 0xDF ? 2 : lead >= 0xE0 && lead <= 0xEF ? 3
                 : lead >= 0xF0 && lead <= 0xF4 ? 4 : 0;
    if (len == 0 || i + len > n) return false;
    if (len > 1) {
      unsigned char low = lead == 0xE0 ? 0xA0 : lead == 0xF0 ? 0x90 : 0x80;
      unsigned char high = lead == 0xED ? 0x9F : lead == 0xF4 ? 0x8F : 0xBF;
      if (b(i + 1) < low || b(i + 1) > high) return false;
      for (size_t k = 2; k < len; k++)
        if (b(i + k) < 0x80 || b(i + k) > 0xBF) return false;
    }
    i += len;
  }
  return true;
}

// RapidJSON decodes an unpaired low-surrogate escape ("\uDC00") into bytes that are not UTF-8.
Status CheckUtf8(const rapidjson::Value& s, const std::string& path) {
  if (IsUtf8(s.GetString(), s.GetStringLength())) return Ok();
  return Error{StrFormat("invalid Unicode (an unpaired surrogate escape) %s", Where(path).c_str())};
}

Status CheckNoDuplicateKeysAt(const rapidjson::Value& value, const std::string& path, int depth) {
  if (depth > kMaxJsonDepth)
    return Error{
        StrFormat("JSON nesting deeper than %d levels %s", kMaxJsonDepth, Where(path).c_str())};
  if (value.IsArray()) {
    for (rapidjson::SizeType i = 0; i < value.Size(); ++i) {
      TRY_STATUS(CheckNoDuplicateKeysAt(value[i], StrFormat("%s[%u]", path.c_str(), i), depth + 1));
    }
  } else if (value.IsString()) {
    TRY_STATUS(CheckUtf8(value, path));
  } else if (value.IsObject()) {
    std::unordered_set<std::string_view> seen;
    for (const auto& member : value.GetObject()) {
      TRY_STATUS(CheckUtf8(member.name, path));
      std::string_view name = MemberName(member.name);
      if (!seen.insert(name).second)
        return Error{StrFormat("duplicate field \"%.*s\" %s", static_cast<int>(name.size()),
                               name.data(), Where(path).c_str())};
      TRY_STATUS(CheckNoDuplicateKeysAt(member.value, JsonFieldPath(path, name), depth + 1));
    }
  }
  return Ok();
}

}  // namespace

Result<rapidjson::Document> ParseJson(std::string_view text) {
  // RapidJSON stops at a NUL as if the text ended there, so "{...}\0garbage" would pass.
  if (size_t nul = text.find('\0'); nul != std::string_view::npos)
    return Error{StrFormat("JSON syntax error at byte %zu: a NUL byte", nul)};
  rapidjson::Document doc;
  // Iterative: a deeply nested file cannot exhaust the stack while parsing.
  doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(text.data(),
                                                                                    text.size());
  if (doc.HasParseError())
    return Error{StrFormat("JSON syntax error at byte %zu: %s", doc.GetErrorOffset(),
                           rapidjson::GetParseError_En(doc.GetParseError()))};
  return doc;
}

Status CheckNoDuplicateKeys(const rapidjson::Value& value) {
  return CheckNoDuplicateKeysAt(value, "", 0);
}

std::string DescribeJsonValue(const rapidjson::Value& value) {
  if (value.IsObject()) return "an object";
  if (value.IsArray()) return "an array";
  // Cut a long string itself (not its JSON form) so the rendering keeps its closing quote.
  const bool cut = value.IsString() && value.GetStringLength() > kMaxDescribedChars;
  rapidjson::Value shown;
  if (cut) shown.SetString(rapidjson::StringRef(value.GetString(), kMaxDescribedChars));
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  (cut ? shown : value).Accept(writer);
  std::string text(buffer.GetString(), buffer.GetSize());
  if (cut) text.insert(text.size() - 1, "...");
  return text;
}

std::string JsonFieldPath(std::string_view parent, std::string_view key) {
  std::string path(parent);
  if (!path.empty()) path += '.';
  path += key;
  return path;
}

Result<JsonFields> JsonFields::Open(const rapidjson::Value& value, std::string path,
                                    std::initializer_list<std::string_view> known) {
  if (!value.IsObject()) {
    if (path.empty())
      return Error{"the configuration must be a JSON object, got " + DescribeJsonValue(value)};
    return Error{path + ": expected an object, got " + DescribeJsonValue(value)};
  }
  for (const auto& member : value.GetObject()) {
    std::string_view name = MemberName(member.name);
    bool is_known = false;
    for (std::string_view k : known) is_known |= (k == name);
    if (!is_known)
      return Error{StrFormat("unknown field \"%.*s\" %s", static_cast<int>(name.size()),
                             name.data(), Where(path).c_str())};
  }
  return JsonFields(value, std::move(path));
}

const rapidjson::Value* JsonFields::Raw(std::string_view key) const {
  auto it = object_->FindMember(rapidjson::Value(
      rapidjson::StringRef(key.data(), static_cast<rapidjson::SizeType>(key.size()))));
  return it == object_->MemberEnd() ? nullptr : &it->value;
}

const rapidjson::Value* JsonFields::Find(std::string_view key) const {
  const rapidjson::Value* v = Raw(key);
  return v && !v->IsNull() ? v : nullptr;
}

Error JsonFields::Missing(std::string_view key) const {
  return Error{StrFormat("missing required field \"%.*s\" %s", static_cast<int>(key.size()),
                         key.data(), Where(path_).c_str())};
}

Error JsonFields::WrongType(std::string_view key, std::string_view expected) const {
  const rapidjson::Value* v = Raw(key);
  std::string got = v ? DescribeJsonValue(*v) : "nothing";
  return Error{StrFormat("%s: expected %.*s, got %s", FieldPath(key).c_str(),
                         static_cast<int>(expected.size()), expected.data(), got.c_str())};
}

Result<std::string> JsonFields::CheckedString(std::string_view key, const rapidjson::Value& v,
                                              Empty empty) const {
  if (!v.IsString()) return WrongType(key, "a string");
  std::string s(v.GetString(), v.GetStringLength());
  // Strings become paths and C strings further down; an embedded NUL would silently cut them.
  if (s.find('\0') != std::string::npos)
    return Error{FieldPath(key) + ": must not contain a NUL character"};
  if (s.empty() && empty == Empty::kRejected) return Error{FieldPath(key) + ": must not be empty"};
  return s;
}

Result<std::optional<std::string>> JsonFields::OptionalString(std::string_view key,
                                                              Empty empty) const {
  const rapidjson::Value* v = Find(key);
  if (!v) return std::optional<std::string>();
  std::string s = TRY(CheckedString(key, *v, empty));
  return std::optional<std::string>(std::move(s));
}

Result<std::string> JsonFields::String(std::string_view key, Empty empty) const {
  const rapidjson::Value* v = Raw(key);
  if (!v) return Missing(key);
  return CheckedString(key, *v, empty);  // an explicit null is a wrong type here
}

Result<std::optional<bool>> JsonFields::OptionalBool(std::string_view key) const {
  const rapidjson::Value* v = Find(key);
  if (!v) return std::optional<bool>();
  if (!v->IsBool()) return WrongType(key, "true or false");
  return std::optional<bool>(v->GetBool());
}

Result<uint64_t> JsonFields::Uint(std::string_view key, uint64_t min, uint64_t max) const {
  if (!Raw(key)) return Missing(key);
  const rapidjson::Value& v = *Raw(key);
  if (!v.IsUint64() || v.GetUint64() < min || v.GetUint64() > max)
    return Error{StrFormat("%s: expected an integer from %llu to %llu, got %s",
                           FieldPath(key).c_str(), static_cast<unsigned long long>(min),
                           static_cast<unsigned long long>(max), DescribeJsonValue(v).c_str())};
  return v.GetUint64();
}

}  // namespace ember

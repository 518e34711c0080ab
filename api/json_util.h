// Checked reading of JSON for the config file (and, later, the REST API bodies). RapidJSON's
// typed getters only assert() the type, so a wrong-typed field would be undefined behaviour in a
// release build: everything here checks the type first and names the field's path in the error
// ("machine-config.vcpu_count: expected an integer from 1 to 32, got 0").
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "vmm/base/result.h"

namespace ember {

// Parses a whole JSON text (trailing content is an error; UTF-8 is validated). A syntax error
// reads "JSON syntax error at byte 17: Missing a comma or '}' after an object member."
Result<rapidjson::Document> ParseJson(std::string_view text);

// RapidJSON keeps the last of two equal keys silently; Firecracker's serde rejects them. Walks
// the whole tree: `duplicate field "smt" in machine-config`.
Status CheckNoDuplicateKeys(const rapidjson::Value& value);

// A short rendering of a value for "got ..." in errors: `"abc"`, `2.5`, `null`, `an object`.
std::string DescribeJsonValue(const rapidjson::Value& value);

// "machine-config" + "vcpu_count" -> "machine-config.vcpu_count"; an empty parent is the top level.
std::string JsonFieldPath(std::string_view parent, std::string_view key);

// The fields of one JSON object, with every key checked against the names the caller knows.
// Optional getters treat an explicit null as absent, as serde does for Option<T>.
class JsonFields {
 public:
  // Fails unless `value` is an object whose keys are all in `known`. `path` names the object in
  // errors ("" for the top level). `value` must outlive the JsonFields.
  static Result<JsonFields> Open(const rapidjson::Value& value, std::string path,
                                 std::initializer_list<std::string_view> known);

  const std::string& path() const { return path_; }
  std::string FieldPath(std::string_view key) const { return JsonFieldPath(path_, key); }

  // The field's value including an explicit null, or nullptr when absent.
  const rapidjson::Value* Raw(std::string_view key) const;
  // The field's value, or nullptr when absent or null.
  const rapidjson::Value* Find(std::string_view key) const;

  Error Missing(std::string_view key) const;
  Error WrongType(std::string_view key, std::string_view expected) const;

  enum class Empty { kAllowed, kRejected };
  Result<std::string> String(std::string_view key, Empty empty = Empty::kRejected) const;
  Result<std::optional<std::string>> OptionalString(std::string_view key,
                                                    Empty empty = Empty::kRejected) const;
  Result<std::optional<bool>> OptionalBool(std::string_view key) const;
  // A required unsigned integer within [min, max]; 2.0, -1 and "2" are all rejected.
  Result<uint64_t> Uint(std::string_view key, uint64_t min, uint64_t max) const;

 private:
  JsonFields(const rapidjson::Value& object, std::string path)
      : object_(&object), path_(std::move(path)) {}
  Result<std::string> CheckedString(std::string_view key, const rapidjson::Value& value,
                                    Empty empty) const;

  const rapidjson::Value* object_;
  std::string path_;
};

}  // namespace ember

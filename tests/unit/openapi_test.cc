// api/openapi.yaml against api/routes.cc: every operation the document lists is routed, every
// route is documented, the document's `x-ember-unsupported` marks match the routes ember does
// not implement, and each supported body-taking operation's `x-ember-example-body` is accepted.
// No YAML library is available, so a small line reader takes the `paths:` section, which the
// document writes in one fixed shape (2-space path keys, 4-space methods, 6-space fields).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "api/routes.h"

namespace ember {
namespace {

using ::testing::HasSubstr;

struct Operation {
  std::string method;  // upper case, as in ApiRoute
  std::string path;    // template: /drives/{drive_id}
  bool unsupported = false;
  std::string example_body;
};

std::string ToUpper(std::string s) {
  for (char& c : s) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  return s;
}

size_t Indent(const std::string& line) { return line.find_first_not_of(' '); }

// A YAML single-quoted scalar: '' stands for one quote.
std::string Unquote(std::string value) {
  if (value.size() < 2 || value.front() != '\'' || value.back() != '\'') return value;
  value = value.substr(1, value.size() - 2);
  std::string out;
  for (size_t i = 0; i < value.size(); i++) {
    out += value[i];
    if (value[i] == '\'' && i + 1 < value.size() && value[i + 1] == '\'') i++;
  }
  return out;
}

std::vector<Operation> ReadOperations(const std::string& file) {
  std::ifstream in(file);
  EXPECT_TRUE(in.good()) << "cannot open " << file;
  std::vector<Operation> ops;
  std::string line, path;
  bool in_paths = false;
  static const std::string kMethods[] = {"get",  "put",  "patch",  "delete",
                                         "post", "head", "options"};
  while (std::getline(in, line)) {
    size_t indent = Indent(line);
    if (indent == std::string::npos || line[indent] == '#') continue;  // blank or comment
    if (indent == 0) {
      in_paths = line == "paths:";
      continue;
    }
    if (!in_paths) continue;
    std::string text = line.substr(indent);
    if (indent == 2 && text.front() == '/' && text.back() == ':') {
      path = text.substr(0, text.size() - 1);
    } else if (indent == 4 && text.back() == ':') {
      std::string key = text.substr(0, text.size() - 1);
      for (const std::string& m : kMethods) {
        if (key == m) ops.push_back(Operation{ToUpper(key), path, false, ""});
      }
    } else if (indent == 6 && !ops.empty()) {
      if (text == "x-ember-unsupported: true") ops.back().unsupported = true;
      const std::string example = "x-ember-example-body: ";
      if (text.rfind(example, 0) == 0)
        ops.back().example_body = Unquote(text.substr(example.size()));
    }
  }
  return ops;
}

std::vector<Operation> DocumentOperations() {
  static const std::vector<Operation> ops =
      ReadOperations(std::string(EMBER_SOURCE_DIR) + "/api/openapi.yaml");
  return ops;
}

// The template with its parameter filled in: from the example body's field of the same name
// (so the path and body IDs agree), else a valid placeholder.
std::string ConcretePath(const Operation& op) {
  size_t open = op.path.find('{');
  if (open == std::string::npos) return op.path;
  size_t close = op.path.find('}', open);
  std::string name = op.path.substr(open + 1, close - open - 1);
  std::string id = "id0";
  rapidjson::Document body;
  body.Parse(op.example_body.c_str());
  if (!body.HasParseError() && body.IsObject() && body.HasMember(name.c_str()) &&
      body[name.c_str()].IsString())
    id = body[name.c_str()].GetString();
  return op.path.substr(0, open) + id + op.path.substr(close + 1);
}

std::string BodyFor(const Operation& op) {
  if (!op.example_body.empty()) return op.example_body;
  return op.method == "PUT" || op.method == "PATCH" ? "{}" : "";
}

TEST(OpenApiTest, TheReaderFindsTheDocumentsOperations) {
  std::vector<Operation> ops = DocumentOperations();
  EXPECT_GE(ops.size(), 40u);
  int unsupported = 0, with_examples = 0;
  for (const Operation& op : ops) {
    unsupported += op.unsupported;
    with_examples += !op.example_body.empty();
  }
  EXPECT_GT(unsupported, 0);
  EXPECT_GT(with_examples, 0);
}

TEST(OpenApiTest, EveryDocumentedOperationIsRouted) {
  for (const Operation& op : DocumentOperations()) {
    SCOPED_TRACE(op.method + " " + op.path);
    auto r = ParseApiRequest(op.method, ConcretePath(op), BodyFor(op));
    if (op.unsupported) {
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.error().message,
                op.method + " " + op.path + " is not supported by this version of ember");
    } else {
      // The document's example is a body ember accepts.
      EXPECT_TRUE(r.ok()) << r.error().message;
    }
    if (!r.ok()) {
      EXPECT_THAT(r.error().message, ::testing::Not(HasSubstr("Invalid request method")));
    }
  }
}

TEST(OpenApiTest, EverySupportedBodyTakingOperationHasAnExample) {
  for (const Operation& op : DocumentOperations()) {
    if (op.unsupported || op.method == "GET" || op.method == "DELETE") continue;
    EXPECT_FALSE(op.example_body.empty()) << op.method << " " << op.path;
  }
}

TEST(OpenApiTest, EveryRouteIsDocumentedAndMarkedHonestly) {
  std::map<std::pair<std::string, std::string>, bool> documented;  // -> unsupported
  for (const Operation& op : DocumentOperations()) {
    EXPECT_TRUE(documented.emplace(std::pair(op.method, op.path), op.unsupported).second)
        << "listed twice: " << op.method << " " << op.path;
  }
  for (const ApiRoute& route : ApiRoutes()) {
    auto key = std::pair(std::string(route.method), std::string(route.path));
    SCOPED_TRACE(key.first + " " + key.second);
    auto it = documented.find(key);
    ASSERT_NE(it, documented.end()) << "route missing from api/openapi.yaml";
    EXPECT_EQ(it->second, !route.supported()) << "x-ember-unsupported disagrees with the route";
  }
  EXPECT_EQ(documented.size(), ApiRoutes().size());
}

}  // namespace
}  // namespace ember

// The REST API's routes (firecracker-facts §1.1-1.2): an HTTP request (method, path, body)
// becomes a plain VmmAction, its body parsed under the config file's rules (config_file.h), and
// an answer becomes a JSON body. No I/O here: the server (api_server.h) moves the bytes and the
// controller applies the action. api/openapi.yaml describes the same routes for clients.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "vmm/base/result.h"
#include "vmm/config/vmm_action.h"

namespace ember {

struct ParsedRequest {
  VmmAction action;
  // Set when the request used a field Firecracker deprecated but still accepts (`vsock_id` in
  // PUT /vsock, `cpu_template`, ...): the answer then carries `Deprecation: true` and the
  // request still succeeds. Firecracker's wording: "PUT /vsock: vsock_id field is deprecated."
  std::optional<std::string> deprecation;
};

// What a route's parser is given: the path's ID (for /drives/{drive_id} and the like, already
// checked), the body (nullptr for GET) and the name the body goes by in errors.
struct RouteRequest;

// One (method, path template) pair of Firecracker's API. The table of these is what
// ParseApiRequest dispatches on, so it is also the list of what ember answers.
struct ApiRoute {
  std::string_view method;  // "GET", "PUT", "PATCH" or "DELETE"
  std::string_view path;    // a template: "/drives/{drive_id}"
  // nullptr: a route Firecracker has and ember does not implement yet; it answers 400 saying so.
  Result<ParsedRequest> (*parse)(const RouteRequest&);

  bool supported() const { return parse != nullptr; }
};

// Every route, implemented or not, in dispatch order.
std::span<const ApiRoute> ApiRoutes();

// Errors carry the fault_message to answer with 400, in Firecracker's words where it has them:
// "Invalid request method and/or path: PUT /version.", "GET request cannot have a body.",
// "Empty PUT request.", "The id from the path [a] does not match the id from the body [b]!";
// body errors name the field: "machine-config.vcpu_count: expected an integer from 1 to 32, got 0".
// As in Firecracker, leading slashes and one trailing slash are ignored and a query string
// makes a path unknown (micro_http does not split it off).
Result<ParsedRequest> ParseApiRequest(std::string_view method, std::string_view path,
                                      std::string_view body);

// The 200 body for a GET's answer: InstanceInfo, VersionInfo, MachineConfig (GET
// /machine-config) or VmConfig (GET /vm/config). "" for NoData, which is answered with 204.
std::string VmmDataToJson(const VmmData& data);

// {"fault_message": "..."}, escaped as JSON.
std::string FaultMessageJson(std::string_view message);

}  // namespace ember

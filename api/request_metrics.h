// Counting API requests in Firecracker's get_/put_/patch_api_requests groups (metrics.h): which
// counter a parsed request belongs to. Firecracker counts in its request parsers
// (src/firecracker/src/api_server/request/*.rs); ember counts once the request has an action.
#pragma once

#include <optional>

#include "vmm/base/metrics.h"
#include "vmm/config/vmm_action.h"

namespace ember {

// The counter of the request that produced `action`; nullopt for the requests Firecracker does
// not count (GET /vm/config, PATCH /vm).
std::optional<ApiRequest> ApiRequestOf(const VmmAction& action);

// Counts the request in <name>_count, in <name>_fails when it failed, and in
// deprecated_api.deprecated_http_api_calls when it used a deprecated field or route.
void CountApiRequest(const VmmAction& action, bool failed, bool deprecated = false,
                     MetricsStore& store = metrics());

}  // namespace ember

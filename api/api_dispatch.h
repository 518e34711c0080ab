// One API request end to end, on the API thread: parse it (routes.h), run it on the VMM thread
// (vmm_channel.h), render the answer, and count it in the metrics.
#pragma once

#include "api/api_server.h"
#include "api/vmm_channel.h"

namespace ember {

HttpResponse DispatchApiRequest(const HttpRequest& request, VmmChannel& channel);

}  // namespace ember

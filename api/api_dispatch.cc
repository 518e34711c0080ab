#include "api/api_dispatch.h"

#include "api/request_metrics.h"
#include "api/routes.h"
#include "vmm/base/log.h"

namespace ember {

HttpResponse DispatchApiRequest(const HttpRequest& request, VmmChannel& channel) {
  LOG_DEBUG("API request: %s %s (%zu bytes)", request.method.c_str(), request.path.c_str(),
            request.body.size());
  auto parsed = ParseApiRequest(request.method, request.path, request.body);
  if (!parsed.ok()) {
    LOG_INFO("API request %s %s refused: %s", request.method.c_str(), request.path.c_str(),
             parsed.error().message.c_str());
    return HttpResponse{400, FaultMessageJson(parsed.error().message), false};
  }
  HttpResponse response;
  response.deprecated = parsed->deprecation.has_value();
  if (parsed->deprecation) LOG_WARN("deprecated API use: %s", parsed->deprecation->c_str());
  Result<VmmData> answer = channel.Call(parsed->action);
  CountApiRequest(parsed->action, !answer.ok(), response.deprecated);
  if (!answer.ok()) {
    LOG_INFO("API request %s %s failed: %s", request.method.c_str(), request.path.c_str(),
             answer.error().message.c_str());
    response.status = 400;
    response.body = FaultMessageJson(answer.error().message);
    return response;
  }
  response.body = VmmDataToJson(*answer);
  response.status = response.body.empty() ? 204 : 200;
  return response;
}

}  // namespace ember

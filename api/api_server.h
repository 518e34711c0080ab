// ApiServer: HTTP/1.1 on a Unix stream socket (Firecracker's --api-sock), served by cpp-httplib
// on its own thread. It only moves bytes: every request goes to the handler, which parses it and
// forwards it to the VMM thread (api_dispatch.h).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "vmm/base/result.h"

namespace ember {

struct HttpRequest {
  std::string method;
  std::string path;
  std::string body;
};

struct HttpResponse {
  int status = 204;
  std::string body;  // JSON, or empty for 204
  bool deprecated = false;  // adds "Deprecation: true" (firecracker-facts §1.1)
};

struct ApiServerOptions {
  std::string socket_path = "/run/ember.socket";
  size_t max_payload_bytes = 51200;  // Firecracker's HTTP_MAX_PAYLOAD_SIZE
  // Connections are served by threads started on demand, up to this many at once: none exist
  // before the first request (an idle monitor pays nothing at exec), and a slow or idle client
  // holds one thread, not the API.
  size_t max_threads = 16;
};

class ApiServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  // Binds and listens: a path that is already a live socket is refused ("in use"); a stale
  // socket left by a dead process is replaced; any other file is refused and left alone.
  static Result<std::unique_ptr<ApiServer>> Bind(const ApiServerOptions& options,
                                                 Handler handler);
  ~ApiServer();

  // Serves on a new thread (named "api") until Stop().
  void Start();
  // Stops accepting, waits for the connections being served, removes the socket file.
  void Stop();
  // For the process's exit: stops accepting and removes the socket file without waiting for
  // connections (an idle keep-alive client would hold Stop() for the read timeout). The server
  // object and its threads are left to the process's end.
  static void Abandon(std::unique_ptr<ApiServer> server);

 private:
  class Impl;
  explicit ApiServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ember

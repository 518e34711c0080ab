#include "api/api_server.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <vector>

// The full single-header cpp-httplib (third_party/, fetched at setup) when present, else
// Debian's split header with libcpp-httplib.so; CMake decides. Neither TLS nor compression.
// httplib includes <iostream> but never uses the standard streams; with <iostream> skipped, no
// std::ios_base::Init runs at every exec (0.17 ms of CPU measured, tests/bench/api_bench.cc).
#include <istream>
#include <ostream>
#define _GLIBCXX_IOSTREAM 1
#include <httplib.h>

#include "vmm/base/log.h"
#include "vmm/base/strings.h"
#include "vmm/base/unique_fd.h"
#include "vmm/seccomp/seccomp.h"

namespace ember {
namespace {

// A TaskQueue whose threads start when there is work and no idle thread, up to a cap. httplib's
// own ThreadPool starts all of its threads at listen time (8 by default), which an API that
// mostly idles, in a process started thousands of times a second, should not pay for.
class OnDemandPool : public httplib::TaskQueue {
 public:
  explicit OnDemandPool(size_t max_threads) : max_threads_(max_threads) {}
  ~OnDemandPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(fn));
    if (idle_ == 0 && running_ < max_threads_) {
      running_++;
      std::thread([this] { Work(); }).detach();
    } else {
      ready_.notify_one();
    }
  }

  void shutdown() override {
    std::unique_lock<std::mutex> lock(mu_);
    stopping_ = true;
    ready_.notify_all();
    ended_.wait(lock, [this] { return running_ == 0; });
  }

 private:
  // A worker idle this long ends: its stack and its malloc cache go with it, so a burst of
  // clients (or of hostile input) does not leave the monitor bigger.
  static constexpr auto kIdleLifetime = std::chrono::milliseconds(500);

  void Work() {
    SetThreadLogName("api");
    pthread_setname_np(pthread_self(), "api");
    // Seccomp: a worker inherits the api filter from the listen thread that starts it.
    if (Status s = EnsureSeccompFilter(SeccompRole::kApi, "api"); !s.ok()) {
      LOG_ERROR("%s", s.error().message.c_str());
      _exit(1);
    }
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      idle_++;
      ready_.wait_for(lock, kIdleLifetime, [this] { return stopping_ || !jobs_.empty(); });
      idle_--;
      if (jobs_.empty()) break;  // stopping, or idle for kIdleLifetime
      std::function<void()> job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
    running_--;
    ended_.notify_all();
    lock.unlock();
    // What the burst allocated (a hostile one: 10k headers, a 1 MiB header line) goes back to
    // the kernel rather than staying in the arena; once per idle worker, not per request.
    // Not under ASan: its allocator owns the heap, and glibc's malloc_trim would set up glibc's
    // unused arena for this thread, which then trips glibc's arena check at thread exit.
#ifndef __SANITIZE_ADDRESS__
    malloc_trim(0);
#endif
  }

  const size_t max_threads_;
  std::mutex mu_;
  std::condition_variable ready_;
  std::condition_variable ended_;
  std::deque<std::function<void()>> jobs_;
  size_t running_ = 0;
  size_t idle_ = 0;
  bool stopping_ = false;
};

std::string JsonEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += StrFormat("\\u%04x", u);
    } else {
      out += c;
    }
  }
  return out;
}

Result<UniqueFd> BindUnixSocket(const std::string& path) {
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path))
    return Error{StrFormat("API socket path \"%s\" is empty or too long (at most %zu bytes)",
                           path.c_str(), sizeof(addr.sun_path) - 1)};
  memcpy(addr.sun_path, path.c_str(), path.size());

  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return Error{StrFormat("API socket path %s exists and is not a socket", path.c_str())};
    UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!probe.valid()) return Error::Errno("socket(AF_UNIX)");
    if (connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0)
      return Error{StrFormat("API socket %s is in use by another process", path.c_str())};
    if (errno != ECONNREFUSED)
      return Error::Errno(StrFormat("checking the existing API socket %s", path.c_str()));
    // A socket nobody listens on: left by a process that died. Replace it.
    if (unlink(path.c_str()) != 0)
      return Error::Errno(StrFormat("removing the stale API socket %s", path.c_str()));
  }
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Error::Errno("socket(AF_UNIX)");
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    return Error::Errno(StrFormat("bind(%s)", path.c_str()));
  if (listen(fd.get(), SOMAXCONN) != 0) {
    Error e = Error::Errno(StrFormat("listen(%s)", path.c_str()));
    unlink(path.c_str());
    return e;
  }
  return fd;
}

}  // namespace

class ApiServer::Impl : public httplib::Server {
 public:
  // The longest path the API has: "/network-interfaces/" and a 64-character ID.
  static constexpr size_t kMaxTargetBytes = 128;

  Impl(const ApiServerOptions& options, ApiServer::Handler handler)
      : options_(options), handler_(std::move(handler)) {
    const size_t max_threads = options.max_threads;
    new_task_queue = [max_threads] { return new OnDemandPool(max_threads); };
    set_payload_max_length(options.max_payload_bytes);
    // httplib waits for a kept-alive connection's next request by polling it every 11 ms, which
    // measured 7.6-11.6 ms of CPU per second per idle connection (tests/bench/api_bench.cc);
    // its default 5 s wait is cut to 1 s. A client's burst of configuration requests still
    // shares one connection; an idle client reconnects, as HTTP/1.1 clients do.
    set_keep_alive_timeout(1);
    auto serve = [this](const httplib::Request& req, httplib::Response& res) { Serve(req, res); };
    for (const char* pattern : {".*"}) {
      Get(pattern, serve);
      Put(pattern, serve);
      Patch(pattern, serve);
      Post(pattern, serve);
      Delete(pattern, serve);
      Options(pattern, serve);
    }
    // Before any body is read (httplib 0.11.4 reads a chunked body, or one without
    // Content-Length, with no size limit, and none for a GET).
    set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      return RefuseUnsupportedFraming(req, res);
    });
    // Everything httplib itself refuses (a malformed request line, a body over the limit,
    // headers too long) still gets Firecracker's JSON error body, and always status 400.
    set_error_handler(HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
      if (res.body.empty()) {
        std::string reason = httplib::detail::status_message(res.status);
        if (res.status == 413) reason = "Payload Too Large: the request body exceeds the limit";
        res.set_content("{\"fault_message\": \"" + JsonEscape(reason) + "\"}",
                        "application/json");
      }
      res.status = 400;
      return httplib::Server::HandlerResponse::Handled;
    }));
  }

  void Adopt(UniqueFd fd) { svr_sock_ = fd.release(); }

  // httplib's stop() acts only once its loop has set is_running_, so a Stop() right after
  // Start() would leave the thread in accept(); shutting the socket down wakes it either way.
  void StopListening() {
    socket_t s = svr_sock_.exchange(INVALID_SOCKET);
    if (s != INVALID_SOCKET) {
      ::shutdown(s, SHUT_RDWR);
      ::close(s);
    }
  }

  httplib::Server::HandlerResponse RefuseUnsupportedFraming(const httplib::Request& req,
                                                            httplib::Response& res) {
    // micro_http has no Range support; httplib would cut every answer, faults included, to the
    // requested bytes. The request is httplib's own non-const object.
    const_cast<httplib::Request&>(req).ranges.clear();
    const bool takes_body = req.method == "PUT" || req.method == "PATCH" ||
                            req.method == "POST" || req.method == "DELETE";
    std::string refusal;
    if (req.target.size() > kMaxTargetBytes) {
      // httplib matches handler patterns with std::regex, which recurses once per character:
      // an 8 KiB path left 2.5 MiB of a worker's stack resident.
      refusal = "Invalid request method and/or path: the path is longer than " +
                std::to_string(kMaxTargetBytes) + " bytes.";
    } else if (req.has_header("Transfer-Encoding")) {
      refusal = "Transfer-Encoding is not supported: send the body with a Content-Length.";
    } else if (!takes_body && req.get_header_value<uint64_t>("Content-Length") > 0) {
      refusal = req.method + " request cannot have a body.";
    } else if (!takes_body || !req.has_header("Content-Length")) {
      // Nothing to read: served here, without the regex dispatch. A PUT without a
      // Content-Length has no body ("Empty PUT request.").
      Serve(req, res);
      return httplib::Server::HandlerResponse::Handled;
    } else {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    res.status = 400;
    res.set_header("Connection", "close");  // the body, if any, was not read
    res.set_content("{\"fault_message\": \"" + JsonEscape(refusal) + "\"}", "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }

  void Serve(const httplib::Request& req, httplib::Response& res) {
    HttpRequest request;
    // httplib answers HEAD with the GET handler; Firecracker's API has no HEAD.
    request.method = req.method;
    request.path = req.target;
    request.body = req.body;
    // httplib reads no body for a GET; Firecracker refuses a GET that has one.
    if (request.body.empty() && req.method == "GET" &&
        ((req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0") ||
         req.has_header("Transfer-Encoding"))) {
      request.body = "(unread)";
      res.set_header("Connection", "close");
    }
    HttpResponse response = handler_(request);
    res.status = response.status;
    if (response.deprecated) res.set_header("Deprecation", "true");
    if (!response.body.empty()) res.set_content(response.body, "application/json");
  }

  void Run() {
    SetThreadLogName("api");
    pthread_setname_np(pthread_self(), "api");
    // Seccomp: the api filter goes on before the first request (firecracker-facts §6). An API
    // that cannot be confined is not served.
    if (Status s = ApplySeccompFilter(SeccompRole::kApi, "api"); !s.ok()) {
      LOG_ERROR("%s; the API is not served", s.error().message.c_str());
      unlink(options_.socket_path.c_str());
      _exit(1);
    }
    if (!listen_after_bind()) LOG_WARN("the API server stopped accepting connections");
  }

  const ApiServerOptions options_;
  ApiServer::Handler handler_;
  std::thread thread_;
  bool socket_removed_ = false;
};

ApiServer::ApiServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<ApiServer>> ApiServer::Bind(const ApiServerOptions& options,
                                                   Handler handler) {
  UniqueFd fd = TRY(BindUnixSocket(options.socket_path));
  auto impl = std::make_unique<Impl>(options, std::move(handler));
  impl->Adopt(std::move(fd));
  return std::unique_ptr<ApiServer>(new ApiServer(std::move(impl)));
}

void ApiServer::Start() {
  Impl* impl = impl_.get();
  impl->thread_ = std::thread([impl] { impl->Run(); });
}

void ApiServer::Stop() {
  impl_->StopListening();
  if (impl_->thread_.joinable()) impl_->thread_.join();
  if (!impl_->socket_removed_) {
    unlink(impl_->options_.socket_path.c_str());
    impl_->socket_removed_ = true;
  }
}

ApiServer::~ApiServer() { Stop(); }

void ApiServer::Abandon(std::unique_ptr<ApiServer> server) {
  // Reachable from a global, so leak checkers see it as intentionally kept, which it is.
  static ApiServer* abandoned = nullptr;
  abandoned = server.release();
  Impl* impl = abandoned->impl_.get();
  impl->StopListening();
  unlink(impl->options_.socket_path.c_str());
  impl->socket_removed_ = true;
  if (impl->thread_.joinable()) impl->thread_.detach();
}

}  // namespace ember

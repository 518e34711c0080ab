// A battery of malformed and hostile requests against ember's API socket (issue 5): truncated
// HTTP, garbage request lines, unknown methods, bad JSON, wrong types for every field of every
// body, huge numbers, deep nesting, oversized bodies, invalid UTF-8, header floods, a client that
// sends one byte per second, 500 connections at once, bad IDs, requests at the wrong time of the
// VM's life, and requests after the VM has gone. Each must be answered with 400 and a
// {"fault_message": ...} body, or (for garbage below HTTP) with 400 or a closed connection:
// never a 2xx, never a hang, never a crash; afterwards a valid request still works, nothing the
// battery sent changed the configuration, and the monitor's resident memory, compared at rest
// after a warm-up that starts every API thread, grew by at most 1 MiB.
//
// The client is written here against the raw socket (not cpp-httplib, which the server uses), so
// it can send what no well-behaved client would.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "tests/integration/ember_runner.h"
#include "tests/support/api_client.h"
#include "vmm/base/strings.h"

namespace ember::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The server's own limits this battery runs into (api_server.h, cpp-httplib 0.11.4).
constexpr size_t kMaxPayloadBytes = 51200;  // Firecracker's HTTP_MAX_PAYLOAD_SIZE
// httplib gives up on a silent client after its read timeout (5 s); an answer (or a close) must
// come well within this even on the emulated test host.
constexpr milliseconds kAnswerTimeout = seconds(30);
constexpr size_t kConcurrentConnections = 500;
constexpr long kMaxRssGrowthKib = 1024;
// ASan keeps freed memory in quarantine (256 MiB by default) and grows its own metadata, so a
// sanitizer build's RSS says nothing about ember's; there the battery checks the answers and
// memory safety, and the RSS bound is the release build's.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kRssIsEmbers = false;
#else
constexpr bool kRssIsEmbers = true;
#endif

// --- The monitor under test ---

// An ember process serving its API on a socket in a fresh directory.
class BatteryVm {
 public:
  explicit BatteryVm(std::vector<std::string> extra_args = {})
      : sock_(dir_.path() + "/api.sock") {
    std::vector<std::string> argv = {EmberBinary(), "--api-sock", sock_, "--id", "battery"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    proc_ = std::make_unique<Subprocess>(argv);
    ready_ = ApiClient(sock_).WaitUntilAccepting(seconds(10));
  }

  bool ready() const { return ready_; }
  const TempDir& dir() const { return dir_; }
  const std::string& sock() const { return sock_; }
  Subprocess& proc() { return *proc_; }

  std::optional<ApiReply> Call(const std::string& method, const std::string& path,
                               const std::string& body = "") {
    return ApiClient(sock_).Request(method, path, body, kAnswerTimeout);
  }

  int TicksSeen() const { return CountLines(proc_->out(), "probe: tick "); }

 private:
  TempDir dir_;
  std::string sock_;
  std::unique_ptr<Subprocess> proc_;
  bool ready_ = false;
};

// ember logs every refused request at Info level on stdout, and the probe prints its ticks there:
// the pipe must be read while the battery runs or the monitor would block writing to it.
class OutputPump {
 public:
  explicit OutputPump(Subprocess& proc)
      : thread_([this, &proc] {
          proc.WaitFor([this](const std::string&, const std::string&) { return stop_.load(); },
                       std::chrono::hours(1));
        }) {}
  ~OutputPump() {
    stop_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The resident memory of `pid` in KiB (-1 if unreadable). smaps_rollup counts the pages mapped
// now; VmRSS in /proc/<pid>/status is the same figure on Linux 6.2 and later, but before that
// (the test host runs 6.1) each thread's share reaches it only every 64 page faults.
long RssKib(pid_t pid) {
  for (const auto& [file, key] : {std::pair{"smaps_rollup", "Rss:"}, {"status", "VmRSS:"}}) {
    std::ifstream in(StrFormat("/proc/%d/%s", pid, file));
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(key, 0) == 0) return std::stol(line.substr(strlen(key)));
    }
  }
  return -1;
}

// The threads of `pid` named "api": the listener and the pool's workers (api_server.cc).
int ApiThreads(pid_t pid) {
  int n = 0;
  std::error_code gone;  // the process has ended: no threads
  for (const auto& task :
       std::filesystem::directory_iterator(StrFormat("/proc/%d/task", pid), gone)) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name) && name == "api") n++;
  }
  return n;
}

// RSS is compared at rest: a pool whose workers end when idle has given their stacks and malloc
// caches back by then; one that keeps them is measured with them (the wait just ends). /proc
// has nothing to wait on, so it is read every 50 ms until the deadline.
bool WaitForApiAtRest(pid_t pid) {
  constexpr auto kMaxWait = seconds(5);
  const auto deadline = Clock::now() + kMaxWait;
  while (ApiThreads(pid) > 1) {  // the listener stays
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return true;
}

// --- One exchange on the raw socket ---

// Reads one HTTP response incrementally; interim 1xx responses (100 Continue) are skipped.
class ResponseParser {
 public:
  explicit ResponseParser(bool head_request) : head_request_(head_request) {}

  // True once a final response is complete (or the bytes are not HTTP at all).
  bool Feed(const char* data, size_t n) {
    buf_.append(data, n);
    for (;;) {
      size_t end = buf_.find("\r\n\r\n");
      if (end == std::string::npos) return false;
      if (buf_.compare(0, 7, "HTTP/1.") != 0 || buf_.size() < 12) {
        not_http_ = true;
        return true;
      }
      int status = atoi(buf_.c_str() + 9);
      if (status >= 100 && status < 200) {
        buf_.erase(0, end + 4);
        continue;
      }
      std::string head = buf_.substr(0, end);
      std::string lower = head;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      size_t length = 0;
      if (size_t cl = lower.find("\r\ncontent-length:"); cl != std::string::npos)
        length = strtoul(lower.c_str() + cl + 17, nullptr, 10);
      if (head_request_ || status == 204) length = 0;
      if (buf_.size() < end + 4 + length) return false;
      status_ = status;
      head_ = head;
      body_ = buf_.substr(end + 4, length);
      return true;
    }
  }

  bool not_http() const { return not_http_; }
  int status() const { return status_; }
  const std::string& head() const { return head_; }
  const std::string& body() const { return body_; }

 private:
  const bool head_request_;
  std::string buf_;
  bool not_http_ = false;
  int status_ = 0;
  std::string head_;
  std::string body_;
};

struct Outcome {
  enum class Kind { kReply, kClosed, kTimedOut, kNoConnection, kHungUp };
  Kind kind = Kind::kNoConnection;
  int status = 0;
  std::string head;
  std::string body;
  milliseconds took{0};
};

const char* KindName(Outcome::Kind kind) {
  switch (kind) {
    case Outcome::Kind::kReply: return "a reply";
    case Outcome::Kind::kClosed: return "closed without a reply";
    case Outcome::Kind::kTimedOut: return "no reply and no close within the timeout";
    case Outcome::Kind::kNoConnection: return "could not connect";
    case Outcome::Kind::kHungUp: return "the client hung up";
  }
  return "?";
}

// Sends everything, giving up at the deadline (a server that stops reading must not hang the
// test). Errors are ignored: a server may answer and close before reading a whole body.
void SendAll(int fd, const std::string& bytes, Clock::time_point deadline) {
  size_t done = 0;
  while (done < bytes.size() && Clock::now() < deadline) {
    pollfd p = {fd, POLLOUT, 0};
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 1))) <= 0) continue;
    ssize_t n = send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

Outcome Receive(int fd, bool head_request, Clock::time_point deadline) {
  Outcome o;
  ResponseParser parser(head_request);
  char chunk[65536];
  for (;;) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      o.kind = Outcome::Kind::kTimedOut;
      return o;
    }
    pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;  // the deadline check above ends it
    ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // EOF or a reset: the server closed the connection
      o.kind = Outcome::Kind::kClosed;
      return o;
    }
    if (parser.Feed(chunk, static_cast<size_t>(n))) {
      o.kind = Outcome::Kind::kReply;
      o.status = parser.not_http() ? -1 : parser.status();
      o.head = parser.head();
      o.body = parser.body();
      return o;
    }
  }
}

// --- Cases ---

enum class Expect {
  kFault,    // 400 with {"fault_message": "..."}, containing `fault` if set
  kRefused,  // garbage below HTTP: 400 (with a fault body), or the connection closed
  kHangUp,   // the client leaves mid-request: only the server's survival is checked
};

enum class Send {
  kAll,              // send, then wait for the answer
  kAllThenHalfClose, // send, shut down the writing half, then wait
  kAllThenHangUp,    // send, then close at once
};

struct Case {
  std::string name;
  std::string bytes;
  Expect expect = Expect::kFault;
  std::string fault = "";  // a substring of the fault message
  Send send = Send::kAll;
  bool head_request = false;     // the answer has no body
  bool waits_for_server = false; // answered only at the server's read timeout: run in parallel
};

Outcome Exchange(const std::string& sock, const Case& c) {
  Outcome o;
  const auto start = Clock::now();
  const auto deadline = start + kAnswerTimeout;
  int fd = ApiClient(sock).Connect();
  if (fd < 0) return o;
  SendAll(fd, c.bytes, deadline);
  if (c.send == Send::kAllThenHangUp) {
    close(fd);
    o.kind = Outcome::Kind::kHungUp;
    return o;
  }
  if (c.send == Send::kAllThenHalfClose) shutdown(fd, SHUT_WR);
  o = Receive(fd, c.head_request, deadline);
  close(fd);
  o.took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  return o;
}

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
                          : (c >= 0xF0 && c <= 0xF4)   ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; k++) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    if (n == 3) {
      unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F)) return false;
    }
    if (n == 4) {
      unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F)) return false;
    }
    i += n;
  }
  return true;
}

// The message of a body shaped exactly {"fault_message": "<JSON string>"}, unescaped; nullopt
// for anything else (a raw control character or an invalid escape included).
std::optional<std::string> FaultMessage(const std::string& body) {
  if (!IsValidUtf8(body)) return std::nullopt;
  std::string_view rest = body;
  constexpr std::string_view kKey = "{\"fault_message\":";
  if (rest.substr(0, kKey.size()) != kKey) return std::nullopt;
  rest.remove_prefix(kKey.size());
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (rest.empty() || rest.front() != '"') return std::nullopt;
  rest.remove_prefix(1);
  std::string message;
  for (;;) {
    if (rest.empty()) return std::nullopt;
    char c = rest.front();
    rest.remove_prefix(1);
    if (c == '"') break;
    if (static_cast<unsigned char>(c) < 0x20) return std::nullopt;
    if (c != '\\') {
      message += c;
      continue;
    }
    if (rest.empty()) return std::nullopt;
    char e = rest.front();
    rest.remove_prefix(1);
    switch (e) {
      case '"': case '\\': case '/': message += e; break;
      case 'b': message += '\b'; break;
      case 'f': message += '\f'; break;
      case 'n': message += '\n'; break;
      case 'r': message += '\r'; break;
      case 't': message += '\t'; break;
      case 'u':
        if (rest.size() < 4) return std::nullopt;
        message += "\\u" + std::string(rest.substr(0, 4));  // kept as written
        rest.remove_prefix(4);
        break;
      default: return std::nullopt;
    }
  }
  if (rest != "}") return std::nullopt;
  return message;
}

// "" when the outcome is what the case allows, else why not.
std::string Judge(const Case& c, const Outcome& o) {
  using Kind = Outcome::Kind;
  if (o.kind == Kind::kNoConnection || o.kind == Kind::kTimedOut) return KindName(o.kind);
  if (c.expect == Expect::kHangUp) return "";
  if (o.kind == Kind::kClosed) return c.expect == Expect::kRefused ? "" : KindName(o.kind);
  if (o.kind != Kind::kReply) return KindName(o.kind);
  if (o.status != 400) return StrFormat("status %d: %s", o.status, o.body.substr(0, 300).c_str());
  if (c.head_request) return "";
  std::optional<std::string> message = FaultMessage(o.body);
  if (!message) return "400 without a {\"fault_message\": ...} body: " + o.body.substr(0, 300);
  if (!c.fault.empty() && message->find(c.fault) == std::string::npos)
    return "fault_message lacks \"" + c.fault + "\": " + message->substr(0, 300);
  return "";
}

std::string Http(const std::string& method, const std::string& path, const std::string& body) {
  return FormatRequest(method, path, body);
}

// A request with extra header lines (each ending in CRLF) and the body with its Content-Length.
std::string HttpWithHeaders(const std::string& method, const std::string& path,
                            const std::string& headers, const std::string& body) {
  return method + " " + path + " HTTP/1.1\r\nHost: localhost\r\n" + headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

Case Fault(std::string name, std::string bytes, std::string fault = "") {
  return Case{std::move(name), std::move(bytes), Expect::kFault, std::move(fault)};
}

Case Refused(std::string name, std::string bytes) {
  return Case{std::move(name), std::move(bytes), Expect::kRefused, ""};
}

// The same, answered only when the server's read timeout ends its wait.
Case Slow(Case c) {
  c.waits_for_server = true;
  return c;
}

// Deterministic noise: the same battery every run.
std::string Noise(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  for (char& c : s) {
    seed = seed * 1664525u + 1013904223u;
    c = static_cast<char>(seed >> 24);
  }
  return s;
}

// Noise that stays on one line.
std::string LineNoise(size_t n, uint32_t seed) {
  std::string s = Noise(n, seed);
  for (char& c : s) {
    if (c == '\r' || c == '\n') c = 'x';
  }
  return s;
}

// --- The generators ---

enum class Phase { kBeforeBoot, kRunning };

// What the cases need from the machine: files that exist, for requests that must be refused
// for their timing and nothing else.
struct Fixture {
  std::string kernel;  // the probe
  std::string image;   // a 4 KiB drive image
  std::string dir;     // a scratch directory
};

// Truncated HTTP, garbage request lines, silence, hang-ups.
std::vector<Case> TransportCases() {
  std::vector<Case> v;
  const std::string kHeaders = "\r\nHost: localhost\r\n\r\n";
  for (const auto& [name, line] : std::vector<std::pair<std::string, std::string>>{
           {"empty request line", ""},
           {"one word", "HELLO"},
           {"method only", "GET"},
           {"HTTP/0.9 style (no version)", "GET /"},
           {"four words", "GET / HTTP/1.1 extra"},
           {"HTTP/2.0", "GET / HTTP/2.0"},
           {"HTTP/1.2", "GET / HTTP/1.2"},
           {"HTTP/0.9", "GET / HTTP/0.9"},
           {"lower-case version", "GET / http/1.1"},
           {"version with suffix", "GET / HTTP/1.1x"},
           {"version without minor", "GET / HTTP/1"},
           {"tabs for spaces", "GET\t/\tHTTP/1.1"},
           {"NUL in the target", std::string("GET /\0 HTTP/1.1", 15)},
           {"NUL first", std::string("\0GET / HTTP/1.1", 15)},
           {"control characters", "\x01\x02\x03\x04 \x05 \x06"},
           {"stray CR before CRLF", "GET / HTTP/1.1\r"},
           {"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM"},
           {"binary noise", Noise(4096, 1)},
           {"noise with spaces", Noise(300, 2) + " " + Noise(300, 3) + " " + Noise(30, 4)},
           {"TLS ClientHello",
            std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11) + Noise(64, 5)},
           {"request line of 9000 bytes", "GET /" + std::string(9000, 'a') + " HTTP/1.1"},
           {"request line of 1 MiB", "GET /" + std::string(1 << 20, 'a') + " HTTP/1.1"},
           {"response instead of request", "HTTP/1.1 200 OK"},
       }) {
    v.push_back(Refused("request line: " + name, line + kHeaders));
  }
  v.push_back(Refused("LF line ends only", "GET / HTTP/1.1\nHost: localhost\n\n"));
  v.push_back(Refused("CRLF only", "\r\n\r\n\r\n\r\n"));
  v.push_back(Fault("absolute URI", Http("GET", "http://localhost/", ""),
                    "Invalid request method and/or path"));
  v.push_back(Fault("asterisk target", Http("OPTIONS", "*", ""),
                    "Invalid request method and/or path"));
  v.push_back(Fault("CONNECT to an authority", "CONNECT localhost:80 HTTP/1.1" + kHeaders));

  // Truncated: the server waits for the rest until its read timeout, then answers or closes.
  v.push_back(Slow(Refused("request line only", "GET / HTTP/1.1\r\n")));
  v.push_back(Slow(Refused("request line without its CRLF", "GET / HTTP/1.1")));
  v.push_back(Slow(Refused("header cut mid-name", "PUT /machine-config HTTP/1.1\r\nContent-Le")));
  v.push_back(Slow(Refused("header cut mid-value",
                           "PUT /machine-config HTTP/1.1\r\nContent-Length: 4")));
  v.push_back(Slow(Refused("headers without the blank line",
                           "GET / HTTP/1.1\r\nHost: localhost\r\n")));
  v.push_back(Slow(Refused("body shorter than Content-Length",
                           "PUT /machine-config HTTP/1.1\r\nContent-Length: 40\r\n\r\n"
                           "{\"vcpu_count\": 2")));
  v.push_back(Slow(Refused("chunked body without its last chunk",
                           "PUT /machine-config HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "2\r\n{}\r\n")));
  v.push_back(Slow(Refused("silence", "")));
  v.push_back(Slow(Refused("a single byte", "G")));
  v.push_back(Slow(Refused("noise without a line end", Noise(1000, 6))));
  v.push_back(Slow(Refused("TLS ClientHello without a line end",
                           std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11))));
  // The client leaves: nothing to read, but the server must let go of the connection.
  for (const auto& [name, bytes] : std::vector<std::pair<std::string, std::string>>{
           {"hang-up at once", ""},
           {"hang-up after one byte", "P"},
           {"hang-up after the request line", "PUT /machine-config HTTP/1.1\r\n"},
           {"hang-up mid-header", "PUT /machine-config HTTP/1.1\r\nContent-Len"},
           {"hang-up mid-body",
            "PUT /machine-config HTTP/1.1\r\nContent-Length: 40\r\n\r\n{\"vcpu_count\": 2"},
           {"hang-up mid-chunk",
            "PUT /machine-config HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n{\"a"},
       }) {
    Case c{"truncated: " + name, bytes, Expect::kHangUp};
    c.send = Send::kAllThenHangUp;
    v.push_back(c);
  }
  return v;
}

// Methods the API does not have, and methods a path does not have.
std::vector<Case> MethodAndPathCases() {
  std::vector<Case> v;
  const std::vector<std::string> kSomePaths = {"/", "/machine-config", "/actions", "/drives/d1"};
  for (const std::string method :
       {"POST", "OPTIONS", "TRACE", "CONNECT", "PRI", "BREW", "PROPFIND", "MKCOL", "FOO", "get",
        "Put", "PATCHX", "G\x01T", "DELETE"}) {
    for (const std::string& path : kSomePaths) {
      std::string body = method == "DELETE" || method == "TRACE" ? "" : "{}";
      v.push_back(Fault("method " + method + " " + path, Http(method, path, body)));
    }
  }
  for (const std::string& path : kSomePaths) {
    Case c = Refused("method HEAD " + path, Http("HEAD", path, ""));
    c.head_request = true;
    v.push_back(c);
  }

  // Each path the API knows, with the methods it does not take there.
  struct Route {
    std::string path;
    std::vector<std::string> methods;
  };
  const std::vector<Route> kRoutes = {
      {"/", {"GET"}},
      {"/version", {"GET"}},
      {"/machine-config", {"GET", "PUT", "PATCH"}},
      {"/vm/config", {"GET"}},
      {"/vm", {"PATCH"}},
      {"/actions", {"PUT"}},
      {"/boot-source", {"PUT"}},
      {"/drives/d1", {"PUT", "PATCH", "DELETE"}},
      {"/network-interfaces/n1", {"PUT", "PATCH", "DELETE"}},
      {"/vsock", {"PUT"}},
      {"/entropy", {"PUT"}},
      {"/serial", {"PUT"}},
      {"/logger", {"PUT"}},
      {"/metrics", {"PUT"}},
  };
  for (const Route& route : kRoutes) {
    for (const std::string method : {"GET", "PUT", "PATCH", "DELETE"}) {
      if (std::find(route.methods.begin(), route.methods.end(), method) != route.methods.end())
        continue;
      std::string body = method == "PUT" || method == "PATCH" ? "{}" : "";
      v.push_back(Fault("wrong method " + method + " " + route.path,
                        Http(method, route.path, body), "Invalid request method and/or path"));
    }
  }

  for (const std::string path :
       {"/nonexistent", "/machine-config/extra", "/drives/d1/extra", "/vm/config/x", "/vm/x",
        "/MACHINE-CONFIG", "/machine_config", "/ver", "/versions", "/./version", "/../version",
        "/%2e%2e/version", "/machine%2Dconfig", "/machine-config?x=1", "/?", "/version?",
        "/actions;x", "/%00", "/%ff", "/ver%00sion", "//drives//d1", "/drives/d1//",
        "/network-interfaces", "/balloon/unknown"}) {
    for (const std::string method : {"GET", "PUT", "PATCH"}) {
      std::string body = method == "GET" ? "" : "{}";
      v.push_back(Fault("unknown path " + method + " " + path, Http(method, path, body)));
    }
  }

  // Firecracker's routes ember does not implement yet.
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"DELETE", "/drives/d1"}, {"DELETE", "/network-interfaces/n1"}, {"PUT", "/pmem/p1"},
           {"PATCH", "/pmem/p1"}, {"DELETE", "/pmem/p1"}, {"PUT", "/cpu-config"},
           {"GET", "/balloon"}, {"PUT", "/balloon"}, {"PATCH", "/balloon"},
           {"GET", "/balloon/statistics"}, {"PATCH", "/balloon/statistics"},
           {"PATCH", "/balloon/hinting/start"}, {"GET", "/balloon/hinting/status"},
           {"PATCH", "/balloon/hinting/stop"}, {"GET", "/mmds"}, {"PUT", "/mmds"},
           {"PATCH", "/mmds"}, {"PUT", "/mmds/config"}, {"PUT", "/snapshot/create"},
           {"PUT", "/snapshot/load"}, {"GET", "/hotplug/memory"}, {"PUT", "/hotplug/memory"},
           {"PATCH", "/hotplug/memory"}}) {
    std::string body = method == "PUT" || method == "PATCH" ? "{\"x\": 1}" : "";
    v.push_back(Fault("not implemented " + method + " " + path, Http(method, path, body),
                      "not supported"));
  }
  return v;
}

// A body on GET, and PUT/PATCH without one.
std::vector<Case> BodyPresenceCases() {
  std::vector<Case> v;
  for (const auto& [path, body] : std::vector<std::pair<std::string, std::string>>{
           {"/", "{}"},
           {"/version", "x"},
           {"/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 256}"},
           {"/vm/config", "{}"},
           {"/", std::string(1000, ' ')},
       }) {
    v.push_back(Fault("body on GET " + path, Http("GET", path, body),
                      "GET request cannot have a body."));
  }
  v.push_back(Fault("chunked body on GET /",
                    "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"));
  v.push_back(Fault("body over the limit on GET /",
                    Http("GET", "/", std::string(kMaxPayloadBytes + 1, ' '))));

  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"PUT", "/machine-config"}, {"PATCH", "/machine-config"}, {"PATCH", "/vm"},
           {"PUT", "/actions"}, {"PUT", "/boot-source"}, {"PUT", "/drives/d1"},
           {"PATCH", "/drives/d1"}, {"PUT", "/network-interfaces/n1"},
           {"PATCH", "/network-interfaces/n1"}, {"PUT", "/vsock"}, {"PUT", "/entropy"},
           {"PUT", "/serial"}, {"PUT", "/logger"}, {"PUT", "/metrics"}}) {
    v.push_back(Fault("empty " + method + " " + path, Http(method, path, ""),
                      "Empty " + method + " request."));
  }
  // No Content-Length at all: no body, as far as HTTP/1.1 is concerned (RFC 9112 §6.3).
  v.push_back(Slow(Refused("PUT without Content-Length or body",
                           "PUT /machine-config HTTP/1.1\r\nHost: localhost\r\n\r\n")));
  return v;
}

// Bodies that are not JSON, or not a JSON object.
std::vector<Case> JsonSyntaxCases() {
  std::vector<Case> v;
  const std::vector<std::string> kNotJson = {
      "{", "}", "[", "]", "{\"a\"}", "{\"a\":}", "{\"a\" 1}", "{,}", "{\"a\":1,}", "[1,]",
      "{'a':1}", "{a:1}", "{\"a\":1}}", "{\"a\":1} x", "{} {}", "/* c */ {}", "{} // c", "NaN",
      "Infinity", "-Infinity", "nul", "tru", "01", "1.", ".5", "-", "1e", "+1", "0x10",
      "\"abc", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\uD800\"}",
      "{\"a\":\"\\uD800\\u0041\"}", "{\"a\":\"\t\"}",
      "{\"a\":\"\x01\"}", "{\"a\":\"\n\"}", std::string("\0", 1),
      std::string("\xFF\xFE{\0}\0", 6), " ", "\n\t \r", "{\"a\":1",
      "[[[]]", "{\"a\":[1,2}", "\"\\\"", "{\"a\":-}", "{\"a\":1.e5}", "{\"\":}", "{\"a\"::1}",
      "{:1}", "{\"a\":1;\"b\":2}", "[}", "{]", "{\"a\":True}", "{\"a\":NULL}",
      "{\"a\":undefined}", "{\"a\":'x'}", "{\"a\":1e999}", "{\"a\":-1e999}", "{\"a\":01}",
      "{\"a\":1}\x1a", "{\xff}", "\xc0\xaf",
  };
  const std::vector<std::pair<std::string, std::string>> kTargets = {
      {"PUT", "/machine-config"}, {"PATCH", "/vm"}, {"PUT", "/actions"}, {"PUT", "/drives/d1"}};
  for (size_t i = 0; i < kNotJson.size(); i++) {
    for (const auto& [method, path] : kTargets) {
      v.push_back(Fault(StrFormat("not JSON #%zu %s %s", i, method.c_str(), path.c_str()),
                        Http(method, path, kNotJson[i]), "JSON syntax error"));
    }
  }
  // Valid JSON to RapidJSON's reading, but not a JSON text (RFC 8259: nothing may follow the
  // value; a string is Unicode, which a lone surrogate is not). Each would configure something
  // if accepted, and GET /vm/config would then hand back invalid UTF-8.
  v.push_back(Fault("a NUL byte and garbage after a valid body",
                    Http("PUT", "/machine-config",
                         "{\"vcpu_count\": 5, \"mem_size_mib\": 555}" + std::string(1, '\0') +
                             "garbage")));
  v.push_back(Fault("a NUL byte after a valid body",
                    Http("PATCH", "/machine-config",
                         "{\"mem_size_mib\": 555}" + std::string(1, '\0'))));
  for (const std::string escape : {"\\uDC00", "\\uDFFF", "\\uDC00\\uD800"}) {
    v.push_back(Fault("lone surrogate " + escape + " in a path",
                      Http("PUT", "/vsock",
                           "{\"guest_cid\": 3, \"uds_path\": \"/tmp/v" + escape + ".sock\"}")));
    v.push_back(Fault("lone surrogate " + escape + " in a key",
                      Http("PATCH", "/vm", "{\"state" + escape + "\": \"Paused\"}")));
  }
  for (const std::string escape : {"\\uD800x", "\\uDBFF\\uDBFF", "\\uD800\\u0041"}) {
    v.push_back(Fault("broken surrogate pair " + escape,
                      Http("PUT", "/vsock",
                           "{\"guest_cid\": 3, \"uds_path\": \"/tmp/v" + escape + ".sock\"}"),
                      "JSON syntax error"));
  }

  for (const std::string body : {"null", "true", "0", "-1", "1.5", "\"s\"", "[]", "[{}]", "\"\""}) {
    for (const auto& [method, path] : kTargets) {
      v.push_back(Fault("JSON but not an object " + body + " " + method + " " + path,
                        Http(method, path, body), "expected an object"));
    }
  }
  return v;
}

// --- Every field of every body, with values of the wrong type ---

enum class FieldKind { kString, kUint, kBool, kObject, kEnum, kRefusedIfSet };

// One field of a request body: a valid value to build the others from, or children for objects.
struct Field {
  std::string key;
  FieldKind kind;
  std::string valid;  // JSON text; unused when children are given
  bool required = false;
  std::vector<Field> children = {};
  std::vector<std::string> bad_values = {};  // values of the right type that are still wrong
};

std::string Render(const std::vector<Field>& fields, const std::vector<std::string>& at,
                   const std::string& replacement) {
  std::string out = "{";
  for (const Field& f : fields) {
    if (out.size() > 1) out += ", ";
    out += "\"" + f.key + "\": ";
    const bool here = !at.empty() && at.front() == f.key;
    if (here && at.size() == 1) {
      out += replacement;
    } else if (!f.children.empty()) {
      std::vector<std::string> rest = here ? std::vector<std::string>(at.begin() + 1, at.end())
                                           : std::vector<std::string>{};
      out += Render(f.children, rest, replacement);
    } else {
      out += f.valid;
    }
  }
  return out + "}";
}

std::vector<std::string> WrongTypedValues(const Field& f) {
  std::vector<std::string> values;
  switch (f.kind) {
    case FieldKind::kString:
    case FieldKind::kEnum:
      values = {"1", "-1", "2.5", "true", "false", "[]", "[\"a\"]", "{}", "{\"a\": \"b\"}"};
      break;
    case FieldKind::kUint:
      values = {"\"1\"", "\"\"", "true", "false", "1.5", "-1", "[]", "[1]", "{}", "1e3"};
      break;
    case FieldKind::kBool:
      values = {"\"true\"", "\"false\"", "1", "0", "[]", "{}", "\"yes\""};
      break;
    case FieldKind::kObject:
      values = {"\"x\"", "1", "true", "[]", "[{}]"};
      break;
    case FieldKind::kRefusedIfSet:
      values = {"1", "\"x\"", "{}", "true"};
      break;
  }
  if (f.kind == FieldKind::kString || f.kind == FieldKind::kEnum) {
    // Strings become paths and C strings: an embedded NUL must not cut them short.
    values.push_back("\"a\\u0000b\"");
  }
  // An explicit null is "absent" for an optional field (serde's Option), so only a required
  // field is wrong with it.
  if (f.required) values.push_back("null");
  values.insert(values.end(), f.bad_values.begin(), f.bad_values.end());
  return values;
}

std::vector<Field> TokenBucket() {
  return {{"size", FieldKind::kUint, "1000"},
          {"one_time_burst", FieldKind::kUint, "10"},
          {"refill_time", FieldKind::kUint, "100"}};
}

Field RateLimiter(const std::string& key) {
  return {key, FieldKind::kObject, "", false,
          {{"bandwidth", FieldKind::kObject, "", false, TokenBucket()},
           {"ops", FieldKind::kObject, "", false, TokenBucket()}}};
}

// A request body route: its fields, each valid on its own, and the name errors give the body.
struct BodyRoute {
  std::string method;
  std::string path;
  std::string body_name;
  std::vector<Field> fields;
};

std::vector<BodyRoute> BodyRoutes() {
  const std::vector<std::string> kBadEnums = {"\"bogus\"", "\"\"", "\"NONE\""};
  std::vector<Field> machine = {
      {"vcpu_count", FieldKind::kUint, "1", true, {}, {"0", "33", "4294967297"}},
      {"mem_size_mib", FieldKind::kUint, "128", true, {}, {"0", "1046529"}},
      {"smt", FieldKind::kBool, "false"},
      {"ht_enabled", FieldKind::kBool, "false"},
      {"track_dirty_pages", FieldKind::kBool, "false"},
      {"huge_pages", FieldKind::kEnum, "\"None\"", false, {}, {"\"bogus\"", "\"Transparent\"", "\"2m\""}},
      {"cpu_template", FieldKind::kEnum, "\"None\"", false, {}, {"\"C3\"", "\"T2\"", "\"bogus\""}},
  };
  std::vector<Field> machine_patch = machine;
  for (Field& f : machine_patch) f.required = false;
  return {
      {"PUT", "/boot-source", "boot-source",
       {{"kernel_image_path", FieldKind::kString, "\"/k\"", true, {}, {"\"\""}},
        {"boot_args", FieldKind::kString, "\"console=ttyS0\""},
        {"initrd_path", FieldKind::kString, "\"/i\"", false, {}, {"\"\""}}}},
      {"PUT", "/machine-config", "machine-config", machine},
      {"PATCH", "/machine-config", "machine-config", machine_patch},
      {"PUT", "/drives/d1", "drives[d1]",
       {{"drive_id", FieldKind::kString, "\"d1\"", true},
        {"path_on_host", FieldKind::kString, "\"/x.img\"", true, {}, {"\"\""}},
        {"is_root_device", FieldKind::kBool, "false", true},
        {"is_read_only", FieldKind::kBool, "true"},
        {"partuuid", FieldKind::kString, "\"abc\"", false, {}, {"\"\""}},
        {"cache_type", FieldKind::kEnum, "\"Unsafe\"", false, {}, kBadEnums},
        {"io_engine", FieldKind::kEnum, "\"Sync\"", false, {}, kBadEnums},
        RateLimiter("rate_limiter")}},
      {"PATCH", "/drives/d1", "drives[d1]",
       {{"drive_id", FieldKind::kString, "\"d1\"", true},
        {"path_on_host", FieldKind::kString, "\"/x.img\"", false, {}, {"\"\""}},
        RateLimiter("rate_limiter")}},
      {"PUT", "/network-interfaces/n1", "network-interfaces[n1]",
       {{"iface_id", FieldKind::kString, "\"n1\"", true},
        {"host_dev_name", FieldKind::kString, "\"tap0\"", true, {},
         {"\"\"", "\"sixteen_chars_xx\""}},
        {"guest_mac", FieldKind::kString, "\"06:00:ac:10:00:02\"", false, {},
         {"\"\"", "\"06:00:ac:10:00\"", "\"zz:00:ac:10:00:02\"", "\"06-00-ac-10-00-02\"",
          "\"06:00:ac:10:00:02:03\""}},
        {"mtu", FieldKind::kUint, "1500", false, {}, {"0", "67", "65536"}},
        RateLimiter("rx_rate_limiter"),
        RateLimiter("tx_rate_limiter"),
        {"allow_mmds_requests", FieldKind::kBool, "false"}}},
      {"PATCH", "/network-interfaces/n1", "network-interfaces[n1]",
       {{"iface_id", FieldKind::kString, "\"n1\"", true},
        RateLimiter("rx_rate_limiter"),
        RateLimiter("tx_rate_limiter")}},
      {"PUT", "/vsock", "vsock",
       {{"guest_cid", FieldKind::kUint, "3", true, {}, {"0", "2", "4294967296"}},
        {"uds_path", FieldKind::kString, "\"/v.sock\"", true, {}, {"\"\""}},
        {"vsock_id", FieldKind::kString, "\"v\""}}},
      {"PUT", "/entropy", "entropy", {RateLimiter("rate_limiter")}},
      {"PUT", "/serial", "serial",
       {{"serial_out_path", FieldKind::kString, "\"/s\"", false, {}, {"\"\""}},
        {"rate_limiter", FieldKind::kRefusedIfSet, "null"}}},
      {"PUT", "/logger", "logger",
       {{"log_path", FieldKind::kString, "\"/l\"", false, {}, {"\"\""}},
        {"level", FieldKind::kEnum, "\"Info\"", false, {}, {"\"Loud\"", "\"\"", "\"Infoo\""}},
        {"show_level", FieldKind::kBool, "true"},
        {"show_log_origin", FieldKind::kBool, "false"},
        {"module", FieldKind::kString, "\"m\""}}},
      {"PUT", "/metrics", "metrics",
       {{"metrics_path", FieldKind::kString, "\"/m\"", true, {}, {"\"\""}},
        {"emit_id", FieldKind::kBool, "false", false, {}, {"true"}},
        {"properties", FieldKind::kObject, "{}", false, {}, {"{\"a\": 1}"}}}},
      {"PUT", "/actions", "actions",
       {{"action_type", FieldKind::kEnum, "\"FlushMetrics\"", true, {},
         {"\"bogus\"", "\"\"", "\"instancestart\"", "\"InstanceStart \""}}}},
      {"PATCH", "/vm", "vm",
       {{"state", FieldKind::kEnum, "\"Paused\"", true, {},
         {"\"bogus\"", "\"\"", "\"paused\"", "\"Running\""}}}},
  };
}

void AddFieldCases(const BodyRoute& route, const std::vector<Field>& fields,
                   std::vector<std::string> at, const std::string& where,
                   std::vector<Case>* out) {
  for (const Field& f : fields) {
    std::vector<std::string> path = at;
    path.push_back(f.key);
    const std::string field_path = where + "." + f.key;
    for (const std::string& value : WrongTypedValues(f)) {
      // A missing required field is named by its key alone ("missing required field").
      const std::string fault = value == "null" ? f.key : field_path;
      const std::string body = Render(route.fields, path, value);
      out->push_back(Fault(route.method + " " + route.path + " " + field_path + " = " + value,
                           Http(route.method, route.path, body), fault));
    }
    if (!f.children.empty()) AddFieldCases(route, f.children, path, field_path, out);
  }
}

std::vector<Case> FieldCases() {
  std::vector<Case> v;
  for (const BodyRoute& route : BodyRoutes()) {
    AddFieldCases(route, route.fields, {}, route.body_name, &v);
    // Keys the body does not have, and a key given twice.
    const std::string base = Render(route.fields, {}, "");
    v.push_back(Fault(route.method + " " + route.path + " unknown field",
                      Http(route.method, route.path,
                           base.substr(0, base.size() - 1) + ", \"no_such_field\": 1}"),
                      "unknown field"));
    v.push_back(Fault(route.method + " " + route.path + " a nested object's field at the top",
                      Http(route.method, route.path,
                           base.substr(0, base.size() - 1) + ", \"bandwidth\": {}}"),
                      "unknown field"));
    const Field& first = route.fields.front();
    const std::string first_value = first.children.empty() ? first.valid : "{}";
    v.push_back(Fault(route.method + " " + route.path + " duplicate key",
                      Http(route.method, route.path,
                           base.substr(0, base.size() - 1) + ", \"" + first.key +
                               "\": " + first_value + "}"),
                      "duplicate field"));
    v.push_back(Fault(route.method + " " + route.path + " missing every field",
                      Http(route.method, route.path, "{}")));
  }
  // {} configures nothing on routes where every field is optional: PATCH /machine-config
  // refuses it; PUT /entropy, /logger and /serial accept it, so they are not in this list.
  std::vector<Case> checked;
  for (Case& c : v) {
    const bool accepts_empty = c.name == "PUT /entropy missing every field" ||
                               c.name == "PUT /logger missing every field" ||
                               c.name == "PUT /serial missing every field";
    if (!accepts_empty) checked.push_back(std::move(c));
  }
  return checked;
}

// Numbers beyond what any field takes: above u64, negative, fractional, beyond double.
std::vector<Case> NumberCases() {
  std::vector<Case> v;
  const std::vector<std::string> kNumbers = {
      "18446744073709551616", "18446744073709551615", "99999999999999999999999999999999",
      "-1", "-9223372036854775808", "-9223372036854775809", "1.0", "1e308", "1E2", "0.5",
      "1e-7", "-0.0", "123456789012345678901234567890e10"};
  struct Target {
    std::string method, path, body_prefix, body_suffix, field;
  };
  const std::vector<Target> kTargets = {
      {"PUT", "/machine-config", "{\"vcpu_count\": ", ", \"mem_size_mib\": 128}",
       "machine-config.vcpu_count"},
      {"PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": ", "}",
       "machine-config.mem_size_mib"},
      {"PATCH", "/machine-config", "{\"vcpu_count\": ", "}", "machine-config.vcpu_count"},
      {"PATCH", "/machine-config", "{\"mem_size_mib\": ", "}", "machine-config.mem_size_mib"},
      {"PUT", "/network-interfaces/n1", "{\"iface_id\": \"n1\", \"host_dev_name\": \"t\", \"mtu\": ",
       "}", "network-interfaces[n1].mtu"},
      {"PUT", "/vsock", "{\"uds_path\": \"/v\", \"guest_cid\": ", "}", "vsock.guest_cid"},
      {"PATCH", "/drives/d1", "{\"drive_id\": \"d1\", \"rate_limiter\": {\"ops\": {\"size\": ",
       ", \"refill_time\": 1}}}", "drives[d1].rate_limiter.ops.size"},
      {"PUT", "/entropy", "{\"rate_limiter\": {\"bandwidth\": {\"size\": 1, \"refill_time\": ",
       "}}}", "entropy.rate_limiter.bandwidth.refill_time"},
      {"PATCH", "/network-interfaces/n1",
       "{\"iface_id\": \"n1\", \"tx_rate_limiter\": {\"bandwidth\": {\"size\": 1, "
       "\"refill_time\": 1, \"one_time_burst\": ",
       "}}}", "network-interfaces[n1].tx_rate_limiter.bandwidth.one_time_burst"},
  };
  for (const Target& t : kTargets) {
    for (const std::string& n : kNumbers) {
      // 1e308 and the like parse as doubles; 1e999 does not parse at all (JSON cases).
      v.push_back(Fault("number " + n + " in " + t.field,
                        Http(t.method, t.path, t.body_prefix + n + t.body_suffix)));
    }
  }
  return v;
}

// Nesting far past any body's depth (ember stops at 128 levels, as serde_json does), within
// the payload limit and past it.
std::vector<Case> NestingCases() {
  std::vector<Case> v;
  const size_t kWithinLimit = kMaxPayloadBytes / 2 - 100;  // "[" and "]" per level
  v.push_back(Fault("arrays nested 25k deep", Http("PUT", "/machine-config",
                                                   std::string(kWithinLimit, '[') +
                                                       std::string(kWithinLimit, ']')),
                    "nesting deeper than"));
  v.push_back(Fault("arrays nested 25k deep in a field",
                    Http("PUT", "/machine-config",
                         "{\"vcpu_count\": " + std::string(kWithinLimit - 20, '[') +
                             std::string(kWithinLimit - 20, ']') + "}"),
                    "nesting deeper than"));
  std::string objects;
  const size_t kObjectLevels = kMaxPayloadBytes / 7;  // {"a": and }
  for (size_t i = 0; i < kObjectLevels; i++) objects += "{\"a\": ";
  objects += "1" + std::string(kObjectLevels, '}');
  v.push_back(Fault("objects nested 7k deep", Http("PATCH", "/vm", objects),
                    "nesting deeper than"));
  v.push_back(Fault("arrays opened 50k deep and never closed",
                    Http("PUT", "/actions", std::string(kMaxPayloadBytes - 10, '[')),
                    "JSON syntax error"));
  v.push_back(Fault("200 levels", Http("PUT", "/machine-config",
                                       std::string(200, '[') + std::string(200, ']')),
                    "nesting deeper than"));
  // 100k levels is 200 KB: over the payload limit, refused before any parsing.
  v.push_back(Fault("arrays nested 100k deep",
                    Http("PUT", "/machine-config",
                         std::string(100000, '[') + std::string(100000, ']')),
                    "Payload Too Large"));
  return v;
}

// Sizes: at, over and far over the payload limit; lengths that lie.
std::vector<Case> SizeCases() {
  std::vector<Case> v;
  const std::string kTenMiB(10 << 20, 'x');
  v.push_back(Fault("body one byte over the limit",
                    Http("PUT", "/machine-config", std::string(kMaxPayloadBytes + 1, ' ')),
                    "Payload Too Large"));
  v.push_back(Fault("body exactly at the limit (not JSON)",
                    Http("PUT", "/machine-config", std::string(kMaxPayloadBytes, ' ')),
                    "JSON syntax error"));
  v.push_back(Fault("10 MiB body", Http("PUT", "/machine-config", kTenMiB), "Payload Too Large"));
  v.push_back(Fault("10 MiB body on PATCH /vm", Http("PATCH", "/vm", kTenMiB),
                    "Payload Too Large"));
  v.push_back(Slow(Fault("Content-Length claims 10 MiB, 10 bytes sent",
                         "PUT /machine-config HTTP/1.1\r\nContent-Length: 10485760\r\n\r\n"
                         "{\"a\": 1}  ",
                         "Payload Too Large")));
  Case claim = Case{"Content-Length claims 10 MiB, then hang-up",
                    "PUT /machine-config HTTP/1.1\r\nContent-Length: 10485760\r\n\r\n{\"a\": 1}",
                    Expect::kHangUp};
  claim.send = Send::kAllThenHangUp;
  v.push_back(claim);
  for (const std::string length :
       {"18446744073709551615", "18446744073709551616", "99999999999999999999999", "-1"}) {
    v.push_back(Slow(Refused("Content-Length: " + length,
                             "PUT /machine-config HTTP/1.1\r\nContent-Length: " + length +
                                 "\r\n\r\n{}")));
  }
  for (const std::string length : {"abc", "0x10", "", " ", "2 2", "2.0"}) {
    v.push_back(Fault("Content-Length: \"" + length + "\"",
                      "PUT /machine-config HTTP/1.1\r\nContent-Length: " + length +
                          "\r\n\r\n{}"));
  }
  // A chunked body is a body too: the limit holds for it (and for one without any length).
  // The padded JSON is a valid machine-config: accepting it would change the configuration.
  const std::string padded = std::string(4 * kMaxPayloadBytes, ' ') +
                             "{\"vcpu_count\": 3, \"mem_size_mib\": 333}";
  v.push_back(Fault("chunked body over the limit",
                    "PUT /machine-config HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
                        StrFormat("%zx\r\n", padded.size()) + padded + "\r\n0\r\n\r\n"));
  std::string chunked_10mib = "PUT /machine-config HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (size_t i = 0; i < 160; i++) chunked_10mib += "10000\r\n" + std::string(0x10000, 'x') + "\r\n";
  v.push_back(Fault("chunked 10 MiB body", chunked_10mib + "0\r\n\r\n"));
  Case unbounded{"no Content-Length, body over the limit, then half-close",
                 "PUT /machine-config HTTP/1.1\r\nHost: localhost\r\n\r\n" + padded,
                 Expect::kRefused};
  unbounded.send = Send::kAllThenHalfClose;
  v.push_back(unbounded);
  v.push_back(Fault("chunk size not hex",
                    "PUT /machine-config HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "zz\r\n{}\r\n0\r\n\r\n"));
  v.push_back(Fault("chunk size overflowing",
                    "PUT /machine-config HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "ffffffffffffffffffffffff\r\n{}\r\n0\r\n\r\n"));
  return v;
}

// Invalid UTF-8 in bodies (inside strings, keys and outside strings) and in paths.
std::vector<Case> Utf8Cases() {
  std::vector<Case> v;
  const std::vector<std::pair<std::string, std::string>> kBad = {
      {"lone continuation", "\x80"},
      {"0xFF", "\xff"},
      {"overlong slash", "\xc0\xaf"},
      {"overlong NUL", "\xc0\x80"},
      {"surrogate", "\xed\xa0\x80"},
      {"truncated euro sign", "\xe2\x82"},
      {"above U+10FFFF", "\xf4\x90\x80\x80"},
      {"5-byte form", "\xf8\x88\x80\x80\x80"},
      {"lead byte at the end", "\xc3"},
  };
  for (const auto& [name, bytes] : kBad) {
    v.push_back(Fault("UTF-8 " + name + " in a string value",
                      Http("PUT", "/boot-source", "{\"kernel_image_path\": \"/k" + bytes + "\"}"),
                      "JSON syntax error"));
    v.push_back(Fault("UTF-8 " + name + " in a key",
                      Http("PUT", "/machine-config",
                           "{\"vcpu_count" + bytes + "\": 1, \"mem_size_mib\": 128}"),
                      "JSON syntax error"));
    v.push_back(Fault("UTF-8 " + name + " in an action",
                      Http("PUT", "/actions", "{\"action_type\": \"Flush" + bytes + "\"}"),
                      "JSON syntax error"));
    v.push_back(Fault("UTF-8 " + name + " in a drive ID",
                      Http("PUT", "/drives/d1",
                           "{\"drive_id\": \"d1" + bytes +
                               "\", \"path_on_host\": \"/x\", \"is_root_device\": false}"),
                      "JSON syntax error"));
    v.push_back(Fault("UTF-8 " + name + " outside a string",
                      Http("PATCH", "/vm", "{\"state\": \"Paused\"" + bytes + "}"),
                      "JSON syntax error"));
    // In the path the fault message quotes it; the answer must still be valid UTF-8 (Judge
    // checks every body).
    v.push_back(Fault("UTF-8 " + name + " in a path", Http("GET", "/" + bytes, ""),
                      "Invalid request method and/or path"));
    v.push_back(Fault("UTF-8 " + name + " in a drive ID in the path",
                      Http("PUT", "/drives/d" + bytes, "{}"), "is not a valid ID"));
    v.push_back(Fault("UTF-8 " + name + " after a known path",
                      Http("PATCH", "/machine-config" + bytes, "{}"),
                      "Invalid request method and/or path"));
  }
  return v;
}

// Header floods and malformed headers, each on a request that is invalid in itself, so the only
// right answer is 400 whatever the server makes of the headers.
std::vector<Case> HeaderCases() {
  std::vector<Case> v;
  const std::string kBadBody = "{\"vcpu_count\": \"two\"}";
  auto many = [](size_t n, const std::string& prefix) {
    std::string h;
    for (size_t i = 0; i < n; i++) h += prefix + std::to_string(i) + ": value\r\n";
    return h;
  };
  v.push_back(Fault("5000 headers on a bad body",
                    HttpWithHeaders("PUT", "/machine-config", many(5000, "X-Flood-"), kBadBody),
                    "machine-config.vcpu_count"));
  v.push_back(Fault("10000 headers on an unknown path",
                    "GET /nonexistent HTTP/1.1\r\n" + many(10000, "X-") + "\r\n",
                    "Invalid request method and/or path"));
  std::string same;
  for (int i = 0; i < 5000; i++) same += "Accept: application/json\r\n";
  v.push_back(Fault("5000 copies of one header", HttpWithHeaders("PATCH", "/vm", same, "{}"),
                    "state"));
  std::string lengths;
  for (int i = 0; i < 1000; i++) lengths += "Content-Length: " + std::to_string(kBadBody.size()) + "\r\n";
  v.push_back(Fault("1000 Content-Length headers",
                    "PUT /machine-config HTTP/1.1\r\n" + lengths + "\r\n" + kBadBody));
  // One header past httplib's line limit (8192), and far past it.
  v.push_back(Refused("one 9000-byte header",
                      "GET / HTTP/1.1\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n"));
  v.push_back(Refused("one 1 MiB header",
                      "GET / HTTP/1.1\r\nX-Big: " + std::string(1 << 20, 'a') + "\r\n\r\n"));
  v.push_back(Refused("one 9000-byte header name",
                      "GET / HTTP/1.1\r\n" + std::string(9000, 'N') + ": v\r\n\r\n"));
  v.push_back(Refused("a 9000-byte Host", "GET / HTTP/1.1\r\nHost: " + std::string(9000, 'h') +
                                              "\r\n\r\n"));
  v.push_back(Slow(Refused("1 MiB header without a line end",
                           "GET / HTTP/1.1\r\nX-Big: " + std::string(1 << 20, 'a'))));
  for (const auto& [name, header] : std::vector<std::pair<std::string, std::string>>{
           {"no colon", "NoColonHere\r\n"},
           {"empty name", ": v\r\n"},
           {"space in the name", "Bad Name: v\r\n"},
           {"space before the colon", "X-A : v\r\n"},
           {"NUL in a value", std::string("X-A: a\0b\r\n", 10)},
           {"CR in a value", "X-A: a\rb\r\n"},
           {"bare LF inside", "X-A: 1\nX-B: 2\r\n"},
           {"obsolete line folding", "X-A: 1\r\n folded\r\n"},
           {"invalid UTF-8 in a value", "X-A: \xff\xfe\r\n"},
           {"binary name", LineNoise(20, 7) + ": v\r\n"},
           {"Content-Type garbage", "Content-Type: \x01\x02\r\n"},
           {"multipart without a boundary", "Content-Type: multipart/form-data\r\n"},
           {"multipart with a boundary", "Content-Type: multipart/form-data; boundary=xx\r\n"},
           {"form-urlencoded", "Content-Type: application/x-www-form-urlencoded\r\n"},
           {"gzip encoding", "Content-Encoding: gzip\r\n"},
           {"brotli encoding", "Content-Encoding: br\r\n"},
           {"Expect: 100-continue", "Expect: 100-continue\r\n"},
           {"unknown Expect", "Expect: 200-ok\r\n"},
           {"Range garbage", "Range: garbage\r\n"},
           {"Range of bytes", "Range: bytes=0-3\r\n"},
           {"Connection: close", "Connection: close\r\n"},
           {"Connection: upgrade to h2c", "Connection: Upgrade\r\nUpgrade: h2c\r\n"},
           {"Transfer-Encoding gzip", "Transfer-Encoding: gzip\r\n"},
       }) {
    v.push_back(Fault("header " + name,
                      HttpWithHeaders("PUT", "/machine-config", header, kBadBody)));
  }
  v.push_back(Fault("Transfer-Encoding and Content-Length both",
                    "PUT /machine-config HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                    "Content-Length: 100\r\n\r\n" +
                        StrFormat("%zx\r\n", kBadBody.size()) + kBadBody + "\r\n0\r\n\r\n"));
  v.push_back(Fault("two Content-Lengths that disagree",
                    "PUT /machine-config HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}"));
  return v;
}

// IDs that are too long, contain what an ID may not, or disagree between path and body.
std::vector<Case> IdCases() {
  std::vector<Case> v;
  struct Resource {
    std::string prefix, id_key, extra_put, method;
  };
  const std::vector<Resource> kResources = {
      {"/drives/", "drive_id", ", \"path_on_host\": \"/x\", \"is_root_device\": false", "PUT"},
      {"/drives/", "drive_id", "", "PATCH"},
      {"/network-interfaces/", "iface_id", ", \"host_dev_name\": \"tap0\"", "PUT"},
      {"/network-interfaces/", "iface_id", "", "PATCH"},
  };
  const std::string kLong(65, 'a');
  for (const Resource& r : kResources) {
    auto body = [&](const std::string& id) {
      return "{\"" + r.id_key + "\": \"" + id + "\"" + r.extra_put + "}";
    };
    const std::string what = r.method + " " + r.prefix;
    v.push_back(Fault(what + " 65-character ID", Http(r.method, r.prefix + kLong, body(kLong)),
                      "is not a valid ID"));
    v.push_back(Fault(what + " 1000-character ID",
                      Http(r.method, r.prefix + std::string(1000, 'b'),
                           body(std::string(1000, 'b')))));
    v.push_back(Fault(what + " 65-character ID in the body only",
                      Http(r.method, r.prefix + "a", body(kLong)), "is not a valid ID"));
    for (const std::string id : {"a-b", "a.b", "a%20b", "%00", "\xc3\xa4", "a;b", "a:b", "a*",
                                  "a'b", "a\"b", "..", ".", "-", "a%2Fb", "a,b", "a+b", "a~b",
                                  "a\\b", "a$b", "a@b", "a!b", "a(b)", "a[0]", "a{b}", "a|b"}) {
      v.push_back(Fault(what + "bad ID " + id + " in the path",
                        Http(r.method, r.prefix + id, body("a")), "is not a valid ID"));
    }
    for (const std::string id : {"a-b", "a b", "a.b", "\xc3\xa4", "a\\u0000", " a", "a\\n",
                                  "../a", "a/b", ""}) {
      std::string fault = id.empty() ? "must not be empty"
                          : id == "a\\u0000" ? "NUL"
                                             : "is not a valid ID";
      v.push_back(Fault(what + "bad ID \"" + id + "\" in the body", Http(r.method, r.prefix + "a",
                                                                         body(id)),
                        fault));
    }
    v.push_back(Fault(what + " ID missing from the path", Http(r.method, r.prefix, body("a")),
                      "the ID cannot be empty"));
    v.push_back(Fault(what + " extra path segment", Http(r.method, r.prefix + "a/b", body("a")),
                      "Invalid request method and/or path"));
    for (const auto& [path_id, body_id] : std::vector<std::pair<std::string, std::string>>{
             {"a", "b"}, {"a", "A"}, {"abc", "ab"}, {std::string(64, 'x'), std::string(64, 'y')},
             {"a_", "a"}}) {
      v.push_back(Fault(what + " path ID " + path_id.substr(0, 8) + " vs body ID " +
                            body_id.substr(0, 8),
                        Http(r.method, r.prefix + path_id, body(body_id)),
                        "does not match the id from the body"));
    }
  }
  return v;
}

// Requests that are well formed but come at the wrong time of the VM's life.
std::vector<Case> TimingCases(Phase phase, const Fixture& fx) {
  std::vector<Case> v;
  if (phase == Phase::kBeforeBoot) {
    const std::string kBefore = "not supported before starting the microVM";
    v.push_back(Fault("before boot: pause", Http("PATCH", "/vm", "{\"state\": \"Paused\"}"),
                      kBefore));
    v.push_back(Fault("before boot: resume", Http("PATCH", "/vm", "{\"state\": \"Resumed\"}"),
                      kBefore));
    v.push_back(Fault("before boot: Ctrl-Alt-Del",
                      Http("PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}"), kBefore));
    v.push_back(Fault("before boot: FlushMetrics",
                      Http("PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}"), kBefore));
    v.push_back(Fault("before boot: PATCH a drive",
                      Http("PATCH", "/drives/d1",
                           "{\"drive_id\": \"d1\", \"path_on_host\": \"" + fx.image + "\"}"),
                      kBefore));
    v.push_back(Fault("before boot: PATCH a network interface",
                      Http("PATCH", "/network-interfaces/n1",
                           "{\"iface_id\": \"n1\", \"rx_rate_limiter\": {\"ops\": "
                           "{\"size\": 1, \"refill_time\": 1}}}"),
                      kBefore));
    v.push_back(Fault("before boot: InstanceStart without a kernel",
                      Http("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"),
                      "without kernel configuration"));
    // Configuration that names files which do not exist is refused when it arrives.
    v.push_back(Fault("before boot: a kernel that does not exist",
                      Http("PUT", "/boot-source", "{\"kernel_image_path\": \"/nonexistent\"}"),
                      "/nonexistent"));
    v.push_back(Fault("before boot: a kernel that is a directory",
                      Http("PUT", "/boot-source",
                           "{\"kernel_image_path\": \"" + fx.dir + "\"}")));
    v.push_back(Fault("before boot: a drive that does not exist",
                      Http("PUT", "/drives/d1",
                           "{\"drive_id\": \"d1\", \"path_on_host\": \"/nonexistent.img\", "
                           "\"is_root_device\": false}"),
                      "/nonexistent.img"));
    return v;
  }
  const std::string kAfter = "not supported after starting the microVM";
  for (const auto& [method, path, body] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"PUT", "/boot-source", "{\"kernel_image_path\": \"" + fx.kernel + "\"}"},
           {"PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 256}"},
           {"PATCH", "/machine-config", "{\"mem_size_mib\": 256}"},
           {"PUT", "/drives/late",
            "{\"drive_id\": \"late\", \"path_on_host\": \"" + fx.image +
                "\", \"is_root_device\": false}"},
           {"PUT", "/network-interfaces/n1", "{\"iface_id\": \"n1\", \"host_dev_name\": \"tap0\"}"},
           {"PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"" + fx.dir + "/v.sock\"}"},
           {"PUT", "/entropy", "{}"},
           {"PUT", "/serial", "{\"serial_out_path\": \"" + fx.dir + "/serial.out\"}"},
           {"PUT", "/logger", "{\"level\": \"Debug\"}"},
           {"PUT", "/metrics", "{\"metrics_path\": \"" + fx.dir + "/metrics.json\"}"},
           {"PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"},
       }) {
    v.push_back(Fault("after boot: " + method + " " + path, Http(method, path, body), kAfter));
  }
  v.push_back(Fault("after boot: PATCH a drive that does not exist",
                    Http("PATCH", "/drives/d1", "{\"drive_id\": \"d1\", \"path_on_host\": \"" +
                                                   fx.image + "\"}"),
                    "no drive"));
  v.push_back(Fault("after boot: PATCH an interface that does not exist",
                    Http("PATCH", "/network-interfaces/n1", "{\"iface_id\": \"n1\"}"),
                    "no network interface"));
  return v;
}

std::vector<Case> Battery(Phase phase, const Fixture& fx) {
  std::vector<Case> all;
  for (std::vector<Case> group :
       {TransportCases(), MethodAndPathCases(), BodyPresenceCases(), JsonSyntaxCases(),
        FieldCases(), NumberCases(), NestingCases(), SizeCases(), Utf8Cases(), HeaderCases(),
        IdCases(), TimingCases(phase, fx)}) {
    for (Case& c : group) all.push_back(std::move(c));
  }
  return all;
}

// --- Running it ---

// A client that sends its request one byte per second: it holds a server thread the whole
// time, and the API must go on answering everyone else. When told to finish it sends the rest
// at once; the request is refused (its body is not a machine-config).
class SlowClient {
 public:
  explicit SlowClient(const std::string& sock) : fd_(ApiClient(sock).Connect()) {
    thread_ = std::thread([this] { Run(); });
  }
  ~SlowClient() { Finish(); }

  int bytes_sent() const { return sent_.load(); }

  // Waits until `n` bytes have gone out.
  bool WaitForBytes(int n, milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return progress_.wait_for(lock, timeout, [&] { return sent_.load() >= n; });
  }

  // Sends the rest and returns the answer.
  Outcome Finish() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      finish_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
    return outcome_;
  }

 private:
  void Run() {
    if (fd_ < 0) return;
    const std::string kTrickle = "PUT /machine-config HTTP/1.1\r\nX-Slow: ";
    size_t i = 0;
    std::unique_lock<std::mutex> lock(mu_);
    // One byte a second: the pace is the point of this client, not a wait for a condition.
    while (!finish_) {
      char byte = i < kTrickle.size() ? kTrickle[i] : 'a';
      i++;
      lock.unlock();
      if (send(fd_, &byte, 1, MSG_NOSIGNAL) != 1) {
        lock.lock();
        break;
      }
      lock.lock();
      sent_++;
      progress_.notify_all();
      wake_.wait_for(lock, seconds(1), [this] { return finish_; });
    }
    lock.unlock();
    const std::string rest = std::string(i < kTrickle.size() ? kTrickle.substr(i) : "") +
                             "\r\nContent-Length: 2\r\n\r\n{}";
    SendAll(fd_, rest, Clock::now() + kAnswerTimeout);
    outcome_ = Receive(fd_, false, Clock::now() + kAnswerTimeout);
    close(fd_);
  }

  int fd_;
  std::atomic<int> sent_{0};
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable progress_;
  bool finish_ = false;
  Outcome outcome_;
  std::thread thread_;
};

struct BatteryReport {
  size_t cases = 0;
  std::vector<std::string> failures;
};

// Runs every case: the quick ones one after the other, those that wait for the server's read
// timeout side by side (a few at a time, well under the server's 16 threads).
BatteryReport RunCases(const std::string& sock, const std::vector<Case>& cases) {
  BatteryReport report;
  report.cases = cases.size();
  std::vector<const Case*> quick, slow;
  for (const Case& c : cases) (c.waits_for_server ? slow : quick).push_back(&c);

  std::mutex mu;
  auto record = [&](const Case& c, const Outcome& o) {
    std::string why = Judge(c, o);
    if (why.empty()) return;
    std::lock_guard<std::mutex> lock(mu);
    report.failures.push_back(c.name + ": " + why);
  };

  std::atomic<size_t> next{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 6; w++) {
    workers.emplace_back([&] {
      for (size_t i; (i = next++) < slow.size();) record(*slow[i], Exchange(sock, *slow[i]));
    });
  }
  for (const Case* c : quick) record(*c, Exchange(sock, *c));
  for (std::thread& t : workers) t.join();
  return report;
}

// 500 connections at once, each with one request: valid ones must be answered 200, the others
// with 400 or a close; all within the timeout.
std::vector<std::string> RunConcurrentConnections(const std::string& sock) {
  std::vector<std::string> failures;
  struct Conn {
    int fd = -1;
    bool valid = false;
    bool done = false;
    std::unique_ptr<ResponseParser> parser;
  };
  const std::vector<std::pair<std::string, bool>> kRequests = {
      {Http("GET", "/", ""), true},
      {Http("PUT", "/machine-config", "{\"vcpu_count\": \"x\"}"), false},
      {"BREW / HTTP/1.1\r\n\r\n", false},
      {"GET /version HTTP/1.1\r\nConnection: close\r\n\r\n", true},
      {Http("PATCH", "/vm", "{\"state\": \"Sleeping\"}"), false},
  };
  std::vector<Conn> conns(kConcurrentConnections);
  const auto deadline = Clock::now() + seconds(120);
  for (size_t i = 0; i < conns.size(); i++) {
    conns[i].fd = ApiClient(sock).Connect();
    if (conns[i].fd < 0) {
      failures.push_back(StrFormat("connection %zu: connect failed: %s", i, strerror(errno)));
      conns[i].done = true;
      continue;
    }
    const auto& [bytes, valid] = kRequests[i % kRequests.size()];
    conns[i].valid = valid;
    conns[i].parser = std::make_unique<ResponseParser>(false);
    SendAll(conns[i].fd, bytes, deadline);
  }
  char chunk[65536];
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<size_t> which;
    for (size_t i = 0; i < conns.size(); i++) {
      if (conns[i].done) continue;
      fds.push_back({conns[i].fd, POLLIN, 0});
      which.push_back(i);
    }
    if (fds.empty()) break;
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      failures.push_back(StrFormat("%zu of %zu connections neither answered nor closed",
                                   fds.size(), conns.size()));
      break;
    }
    if (poll(fds.data(), fds.size(), static_cast<int>(left.count())) <= 0) continue;
    for (size_t k = 0; k < fds.size(); k++) {
      if (fds[k].revents == 0) continue;
      Conn& c = conns[which[k]];
      ssize_t n = recv(c.fd, chunk, sizeof(chunk), 0);
      if (n < 0 && errno == EINTR) continue;
      bool complete = n > 0 && c.parser->Feed(chunk, static_cast<size_t>(n));
      if (n > 0 && !complete) continue;
      c.done = true;
      close(c.fd);
      if (!complete) {
        if (c.valid) failures.push_back(StrFormat("connection %zu (valid): closed without a reply", which[k]));
      } else if (c.valid && c.parser->status() != 200) {
        failures.push_back(StrFormat("connection %zu (valid): status %d", which[k], c.parser->status()));
      } else if (!c.valid && c.parser->status() != 400) {
        failures.push_back(StrFormat("connection %zu (invalid): status %d", which[k], c.parser->status()));
      }
    }
  }
  for (Conn& c : conns) {
    if (!c.done && c.fd >= 0) close(c.fd);
  }
  return failures;
}

// 500 connections in this process and as many in the monitor's.
void RaiseFdLimit() {
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  const rlim_t want = 4 * kConcurrentConnections;
  if (limit.rlim_cur >= want) return;
  limit.rlim_cur = std::min<rlim_t>(want, limit.rlim_max);
  setrlimit(RLIMIT_NOFILE, &limit);
}

struct BatteryResult {
  size_t cases = 0;
  double seconds = 0;
  std::vector<std::string> failures;
};

// The whole battery against `vm`: the table of cases while a slow client trickles, then 500
// connections at once, then the slow client's end.
BatteryResult RunBattery(BatteryVm& vm, Phase phase, const Fixture& fx) {
  BatteryResult result;
  const auto start = Clock::now();
  std::vector<Case> cases = Battery(phase, fx);

  SlowClient slow(vm.sock());
  BatteryReport report = RunCases(vm.sock(), cases);
  result.cases = report.cases;
  result.failures = std::move(report.failures);

  // The slow client has been connected all along (for a few seconds at least); with it still
  // there, the API answers others at once.
  if (!slow.WaitForBytes(3, seconds(30)))
    result.failures.push_back("the slow client could not send 3 bytes");
  for (const char* path : {"/", "/version", "/machine-config"}) {
    std::optional<ApiReply> r = vm.Call("GET", path);
    if (!r || r->status != 200)
      result.failures.push_back(StrFormat("GET %s while a client trickles: no 200", path));
  }

  std::vector<std::string> concurrent = RunConcurrentConnections(vm.sock());
  result.failures.insert(result.failures.end(), concurrent.begin(), concurrent.end());
  result.cases += kConcurrentConnections;

  const int trickled = slow.bytes_sent();
  Case slow_case{StrFormat("slow client (%d bytes at one a second)", trickled), "",
                 Expect::kFault, "missing required field"};
  if (std::string why = Judge(slow_case, slow.Finish()); !why.empty())
    result.failures.push_back(slow_case.name + ": " + why);
  result.cases += 1;

  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

void ReportFailures(const BatteryResult& result) {
  EXPECT_TRUE(result.failures.empty())
      << result.failures.size() << " of " << result.cases << " cases went wrong";
  size_t shown = 0;
  for (const std::string& f : result.failures) {
    if (shown++ == 60) {
      ADD_FAILURE() << "... and " << result.failures.size() - 60 << " more";
      break;
    }
    ADD_FAILURE() << f;
  }
}

// The API's steady state: its pool has started every thread it may (api_server.h: up to 16),
// as any burst of clients makes it do. Each held connection keeps one thread waiting for the
// rest of its headers, so the next connection needs a new thread.
void WarmUp(BatteryVm& vm) {
  constexpr int kPoolThreads = 16;
  std::vector<int> held;
  for (int i = 0; i < kPoolThreads; i++) {
    int fd = ApiClient(vm.sock()).Connect();
    ASSERT_GE(fd, 0);
    SendAll(fd, "GET / HTTP/1.1\r\n", Clock::now() + kAnswerTimeout);
    held.push_back(fd);
  }
  for (int fd : held) {
    SendAll(fd, "\r\n", Clock::now() + kAnswerTimeout);
    Outcome o = Receive(fd, false, Clock::now() + kAnswerTimeout);
    EXPECT_EQ(o.status, 200) << KindName(o.kind);
    close(fd);
  }
}

Fixture MakeFixture(const BatteryVm& vm) {
  return Fixture{GuestImage("probe.elf"), MakeProbeImage(vm.dir(), "d.img", 4096),
                 vm.dir().path()};
}

// --- The tests ---

TEST(ApiBadInputTest, BatteryBeforeBoot) {
  RaiseFdLimit();
  BatteryVm vm;
  ASSERT_TRUE(vm.ready()) << vm.proc().err();
  const Fixture fx = MakeFixture(vm);

  std::optional<ApiReply> warm = vm.Call("GET", "/");
  ASSERT_TRUE(warm && warm->status == 200) << vm.proc().err();
  const long rss_at_start = RssKib(vm.proc().pid());
  ASSERT_NO_FATAL_FAILURE(WarmUp(vm));
  std::optional<ApiReply> config_before = vm.Call("GET", "/vm/config");
  ASSERT_TRUE(config_before && config_before->status == 200);
  const bool rested_before = WaitForApiAtRest(vm.proc().pid());
  const long rss_before = RssKib(vm.proc().pid());

  BatteryResult result;
  {
    OutputPump pump(vm.proc());
    result = RunBattery(vm, Phase::kBeforeBoot, fx);
  }
  ReportFailures(result);
  const bool rested_after = WaitForApiAtRest(vm.proc().pid());
  const long rss_after = RssKib(vm.proc().pid());

  std::optional<ApiReply> info = vm.Call("GET", "/");
  ASSERT_TRUE(info) << vm.proc().err();
  EXPECT_EQ(info->status, 200);
  EXPECT_NE(info->body.find("\"state\":\"Not started\""), std::string::npos) << info->body;
  // A refused request changes nothing.
  std::optional<ApiReply> config_after = vm.Call("GET", "/vm/config");
  ASSERT_TRUE(config_after);
  EXPECT_EQ(config_after->body, config_before->body);
  EXPECT_EQ(config_after->body.find("333"), std::string::npos)
      << "a machine-config over the payload limit was applied";

  printf("[ battery  ] before boot: %zu cases in %.1f s; ember RSS %ld KiB after one request, "
         "%ld KiB after the warm-up, %ld KiB after the battery (%+ld KiB; API workers %s)\n",
         result.cases, result.seconds, rss_at_start, rss_before, rss_after,
         rss_after - rss_before, rested_before && rested_after ? "ended when idle" : "kept");
  EXPECT_GE(result.cases, 200u);
  if (kRssIsEmbers) EXPECT_LE(rss_after - rss_before, kMaxRssGrowthKib);
}

// Nesting of 100k levels and more, parsed for real: a monitor whose payload limit lets them in.
TEST(ApiBadInputTest, DeepNestingPastARaisedPayloadLimit) {
  BatteryVm vm({"--http-api-max-payload-size", std::to_string(8 << 20)});
  ASSERT_TRUE(vm.ready()) << vm.proc().err();
  std::string objects;
  for (int i = 0; i < 100000; i++) objects += "{\"a\":";
  objects += "1" + std::string(100000, '}');
  const std::vector<Case> cases = {
      Fault("arrays nested 100k deep",
            Http("PUT", "/machine-config", std::string(100000, '[') + std::string(100000, ']')),
            "nesting deeper than"),
      Fault("arrays nested 1M deep",
            Http("PUT", "/machine-config", std::string(1000000, '[') + std::string(1000000, ']')),
            "nesting deeper than"),
      Fault("objects nested 100k deep", Http("PATCH", "/vm", objects), "nesting deeper than"),
      Fault("arrays opened 4M deep, never closed",
            Http("PUT", "/actions", std::string(4000000, '[')), "JSON syntax error"),
      Fault("arrays nested 100k deep in a field",
            Http("PATCH", "/machine-config",
                 "{\"vcpu_count\": " + std::string(100000, '[') + std::string(100000, ']') + "}"),
            "nesting deeper than"),
  };
  OutputPump pump(vm.proc());
  BatteryReport report = RunCases(vm.sock(), cases);
  for (const std::string& f : report.failures) ADD_FAILURE() << f;
  std::optional<ApiReply> info = vm.Call("GET", "/");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->status, 200);
}

TEST(ApiBadInputTest, BatteryWhileProbeRuns) {
  REQUIRE_KVM();
  RaiseFdLimit();
  BatteryVm vm;
  ASSERT_TRUE(vm.ready()) << vm.proc().err();
  const Fixture fx = MakeFixture(vm);
  std::optional<ApiReply> r =
      vm.Call("PUT", "/boot-source",
              "{\"kernel_image_path\": \"" + fx.kernel +
                  "\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 probe=ticks\"}");
  ASSERT_TRUE(r && r->status == 204) << (r ? r->body : vm.proc().err());
  r = vm.Call("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
  ASSERT_TRUE(r && r->status == 204) << (r ? r->body : vm.proc().err());
  ASSERT_TRUE(vm.proc().WaitForStdout("probe: tick 2\n", seconds(60)))
      << vm.proc().out() << vm.proc().err();

  std::optional<ApiReply> warm = vm.Call("GET", "/");
  ASSERT_TRUE(warm && warm->status == 200) << vm.proc().err();
  const long rss_at_start = RssKib(vm.proc().pid());
  ASSERT_NO_FATAL_FAILURE(WarmUp(vm));
  std::optional<ApiReply> config_before = vm.Call("GET", "/vm/config");
  ASSERT_TRUE(config_before && config_before->status == 200);
  BatteryResult result;
  long rss_before = 0, rss_after = 0;
  bool rested = true;
  {
    // The guest prints its ticks all along: the pump runs through the waits too.
    OutputPump pump(vm.proc());
    rested = WaitForApiAtRest(vm.proc().pid());
    rss_before = RssKib(vm.proc().pid());
    result = RunBattery(vm, Phase::kRunning, fx);
    rested = WaitForApiAtRest(vm.proc().pid()) && rested;
    rss_after = RssKib(vm.proc().pid());
  }
  ReportFailures(result);

  // The guest kept running through it all.
  const int ticks = vm.TicksSeen();
  EXPECT_TRUE(vm.proc().WaitForStdout(StrFormat("probe: tick %d\n", ticks + 1), seconds(30)))
      << vm.proc().out();
  std::optional<ApiReply> info = vm.Call("GET", "/");
  ASSERT_TRUE(info) << vm.proc().err();
  EXPECT_NE(info->body.find("\"state\":\"Running\""), std::string::npos) << info->body;
  std::optional<ApiReply> config_after = vm.Call("GET", "/vm/config");
  ASSERT_TRUE(config_after);
  EXPECT_EQ(config_after->body, config_before->body);
  printf("[ battery  ] running: %zu cases in %.1f s; ember RSS %ld KiB after boot, %ld KiB "
         "after the warm-up, %ld KiB after the battery (%+ld KiB; API workers %s); guest at "
         "tick %d\n",
         result.cases, result.seconds, rss_at_start, rss_before, rss_after,
         rss_after - rss_before, rested ? "ended when idle" : "kept", ticks);
  EXPECT_GE(result.cases, 200u);
  if (kRssIsEmbers) EXPECT_LE(rss_after - rss_before, kMaxRssGrowthKib);

  r = vm.Call("PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}");
  ASSERT_TRUE(r && r->status == 204) << (r ? r->body : vm.proc().err());
  std::optional<int> code = vm.proc().WaitExit(seconds(60));
  ASSERT_TRUE(code) << vm.proc().out();
  EXPECT_EQ(*code, 0) << vm.proc().out() << vm.proc().err();
  EXPECT_EQ(CountLines(vm.proc().out(), "probe: done passed=1 failed=0"), 1) << vm.proc().out();

  // After the exit: the socket went with the process. Connecting fails cleanly, every time.
  EXPECT_NE(access(vm.sock().c_str(), F_OK), 0) << "the socket file outlived the monitor";
  for (const Case& c : {Fault("after exit: GET /", Http("GET", "/", "")),
                        Fault("after exit: InstanceStart",
                              Http("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}")),
                        Fault("after exit: garbage", "BREW / HTTP/1.1\r\n\r\n")}) {
    Outcome o = Exchange(vm.sock(), c);
    EXPECT_EQ(o.kind, Outcome::Kind::kNoConnection) << c.name << ": " << KindName(o.kind);
  }
  EXPECT_LT(ApiClient(vm.sock()).Connect(), 0);
  EXPECT_FALSE(vm.Call("GET", "/"));
}

}  // namespace
}  // namespace ember::testing

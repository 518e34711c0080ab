#include "vmm/base/log.h"

#include <fcntl.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <shared_mutex>

#include "vmm/base/metrics.h"

namespace ember {
namespace {

// The configuration LogLine reads. LogLine holds the lock shared across its write(2), so
// UpdateLogger (exclusive) never closes an fd a line is being written to. The level lives apart
// in an atomic: LogEnabled runs before every line and takes no lock.
struct LoggerState {
  std::shared_mutex mu;
  LoggerConfig config;
  UniqueFd owned_fd;  // the log_path UpdateLogger opened, if any
};

LoggerState& State() {
  static LoggerState state;
  return state;
}

constinit std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
thread_local const char* t_thread_name = "main";

// Rust's log::Level names, which Firecracker prints.
const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kError: return "ERROR";
    case LogLevel::kWarning: return "WARN";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kTrace: return "TRACE";
    case LogLevel::kOff: break;
  }
  return "OFF";
}

// Firecracker's LocalTime: local time with nanoseconds, "2024-05-01T12:34:56.123456789".
size_t FormatTimestamp(char* buf, size_t size) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  localtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
  int m = snprintf(buf + n, size - n, ".%09ld", ts.tv_nsec);
  return n + static_cast<size_t>(m > 0 ? m : 0);
}

// snprintf that appends at *n; *n stays short of `size` (a truncated piece ends there).
void Append(char* buf, size_t size, size_t* n, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));
void Append(char* buf, size_t size, size_t* n, const char* fmt, ...) {
  if (*n + 1 >= size) return;
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(buf + *n, size - *n, fmt, ap);
  va_end(ap);
  if (m > 0) *n = std::min(size - 1, *n + static_cast<size_t>(m));  // vsnprintf's NUL
}

void CountLostLine(ssize_t written, int err) {
  metrics().logger.missed_log_count.Inc();
  if (written < 0 && err != EAGAIN && err != EWOULDBLOCK) metrics().logger.log_fails.Inc();
}

}  // namespace

std::optional<LogLevel> ParseLogLevel(std::string_view name) {
  static constexpr struct {
    const char* name;
    LogLevel level;
  } kLevels[] = {{"Error", LogLevel::kError}, {"Warning", LogLevel::kWarning},
                 {"Warn", LogLevel::kWarning}, {"Info", LogLevel::kInfo},
                 {"Debug", LogLevel::kDebug}, {"Trace", LogLevel::kTrace},
                 {"Off", LogLevel::kOff}};
  for (const auto& l : kLevels) {
    if (name.size() == strlen(l.name) && strncasecmp(name.data(), l.name, name.size()) == 0)
      return l.level;
  }
  return std::nullopt;
}

void ConfigureLogger(const LoggerConfig& config) {
  LoggerState& s = State();
  std::unique_lock lock(s.mu);
  s.config = config;
  g_level.store(static_cast<int>(config.level), std::memory_order_relaxed);
}

LoggerConfig CurrentLoggerConfig() {
  LoggerState& s = State();
  std::shared_lock lock(s.mu);
  return s.config;
}

Result<UniqueFd> OpenNonBlockingSink(const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0600);
  if (fd < 0) return Error::Errno(StrFormat("open(%s, O_RDWR|O_APPEND|O_CREAT|O_NONBLOCK)",
                                            path.c_str()));
  return UniqueFd(fd);
}

Status UpdateLogger(const LoggerUpdate& update) {
  // Opened before the lock: a failure changes nothing, and no line waits on open(2).
  UniqueFd fd;
  if (update.log_path) {
    auto opened = OpenNonBlockingSink(*update.log_path);
    if (!opened.ok()) {
      return Error{"Failed to open target file " + *update.log_path + ": " +
                       ErrnoName(opened.error().err),
                   opened.error().err};
    }
    fd = std::move(*opened);
  }
  LoggerState& s = State();
  std::unique_lock lock(s.mu);
  if (fd.valid()) {
    s.config.fd = fd.get();
    s.owned_fd = std::move(fd);  // closes the previous log_path, if any
  }
  s.config.level = update.level.value_or(LogLevel::kInfo);
  if (update.show_level) s.config.show_level = *update.show_level;
  if (update.show_log_origin) s.config.show_origin = *update.show_log_origin;
  g_level.store(static_cast<int>(s.config.level), std::memory_order_relaxed);
  return Ok();
}

bool LogEnabled(LogLevel level) {
  return level != LogLevel::kOff &&
         static_cast<int>(level) <= g_level.load(std::memory_order_relaxed);
}

void SetThreadLogName(const char* name) { t_thread_name = name; }

void LogLine(LogLevel level, const char* file, int line, const char* fmt, ...) {
  char buf[kMaxLogLineBytes];
  constexpr size_t kRoom = sizeof(buf) - 1;  // the newline always fits
  size_t n = FormatTimestamp(buf, kRoom);

  LoggerState& s = State();
  std::shared_lock lock(s.mu);
  const LoggerConfig& c = s.config;
  Append(buf, kRoom, &n, " [%s:%s", c.instance_id.c_str(), t_thread_name);
  if (c.show_level) Append(buf, kRoom, &n, ":%s", LevelName(level));
  if (c.show_origin) {
    const char* base = strrchr(file, '/');
    Append(buf, kRoom, &n, ":%s:%d", base ? base + 1 : file, line);
  }
  Append(buf, kRoom, &n, "] ");
  if (n < kRoom) {
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, kRoom - n, fmt, ap);
    va_end(ap);
    if (m > 0) n = std::min(kRoom - 1, n + static_cast<size_t>(m));  // vsnprintf's NUL
  }
  buf[n++] = '\n';

  // One write per line: lines from different threads never interleave, and on a pipe a line of
  // at most PIPE_BUF bytes is taken whole or refused (EAGAIN), never cut.
  ssize_t written;
  do {
    written = write(c.fd, buf, n);
  } while (written < 0 && errno == EINTR);
  if (written != static_cast<ssize_t>(n)) CountLostLine(written, errno);
}

}  // namespace ember

#include "vmm/base/log.h"

#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace ember {
namespace {

LoggerConfig g_config;
thread_local const char* t_thread_name = "main";

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

}  // namespace

std::optional<LogLevel> ParseLogLevel(std::string_view name) {
  static constexpr struct {
    const char* name;
    LogLevel level;
  } kLevels[] = {{"Error", LogLevel::kError}, {"Warning", LogLevel::kWarning},
                 {"Info", LogLevel::kInfo},   {"Debug", LogLevel::kDebug},
                 {"Trace", LogLevel::kTrace}, {"Off", LogLevel::kOff}};
  for (const auto& l : kLevels) {
    if (name.size() == strlen(l.name) && strncasecmp(name.data(), l.name, name.size()) == 0)
      return l.level;
  }
  return std::nullopt;
}

void ConfigureLogger(const LoggerConfig& config) { g_config = config; }
const LoggerConfig& CurrentLoggerConfig() { return g_config; }

bool LogEnabled(LogLevel level) {
  return level != LogLevel::kOff && static_cast<int>(level) <= static_cast<int>(g_config.level);
}

void SetThreadLogName(const char* name) { t_thread_name = name; }

void LogLine(LogLevel level, const char* file, int line, const char* fmt, ...) {
  char buf[4096];
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  localtime_r(&tv.tv_sec, &tm);
  size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  n += static_cast<size_t>(snprintf(buf + n, sizeof(buf) - n, ".%06ld [%s:%s", tv.tv_usec,
                                    g_config.instance_id.c_str(), t_thread_name));
  if (g_config.show_level && n < sizeof(buf))
    n += static_cast<size_t>(snprintf(buf + n, sizeof(buf) - n, ":%s", LevelName(level)));
  if (g_config.show_origin && n < sizeof(buf)) {
    const char* base = strrchr(file, '/');
    n += static_cast<size_t>(
        snprintf(buf + n, sizeof(buf) - n, ":%s:%d", base ? base + 1 : file, line));
  }
  if (n < sizeof(buf)) n += static_cast<size_t>(snprintf(buf + n, sizeof(buf) - n, "] "));
  if (n < sizeof(buf)) {
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
    va_end(ap);
    if (m > 0) n += static_cast<size_t>(m);
  }
  if (n >= sizeof(buf)) n = sizeof(buf) - 1;
  buf[n++] = '\n';
  // One write per line so that lines from different threads never interleave.
  ssize_t ignored = write(g_config.fd, buf, n);
  (void)ignored;
}

}  // namespace ember

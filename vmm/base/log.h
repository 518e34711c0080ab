// The logger: printf-style, one write(2) per line, format as Firecracker's
// "<timestamp> [<instance id>:<thread>[:<LEVEL>][:<file>:<line>]] <message>".
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ember {

enum class LogLevel { kOff = 0, kError, kWarning, kInfo, kDebug, kTrace };

// "Error" | "Warning" | "Info" | "Debug" | "Trace" | "Off" (Firecracker's spelling; matched
// case-insensitively as Firecracker does).
std::optional<LogLevel> ParseLogLevel(std::string_view name);

struct LoggerConfig {
  LogLevel level = LogLevel::kInfo;
  bool show_level = false;
  bool show_origin = false;
  std::string instance_id = "anonymous-instance";
  int fd = 2;  // stderr: stdout carries the guest's serial console
};

void ConfigureLogger(const LoggerConfig& config);
const LoggerConfig& CurrentLoggerConfig();
bool LogEnabled(LogLevel level);
// The name this thread shows in log lines ("main", "vmm", "vcpu 0").
void SetThreadLogName(const char* name);
void LogLine(LogLevel level, const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));

}  // namespace ember

#define EMBER_LOG(level, ...)                                             \
  do {                                                                    \
    if (::ember::LogEnabled(level))                                       \
      ::ember::LogLine(level, __FILE__, __LINE__, __VA_ARGS__);           \
  } while (0)
#define LOG_ERROR(...) EMBER_LOG(::ember::LogLevel::kError, __VA_ARGS__)
#define LOG_WARN(...) EMBER_LOG(::ember::LogLevel::kWarning, __VA_ARGS__)
#define LOG_INFO(...) EMBER_LOG(::ember::LogLevel::kInfo, __VA_ARGS__)
#define LOG_DEBUG(...) EMBER_LOG(::ember::LogLevel::kDebug, __VA_ARGS__)
#define LOG_TRACE(...) EMBER_LOG(::ember::LogLevel::kTrace, __VA_ARGS__)

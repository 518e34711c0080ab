// The logger: printf-style, one write(2) per line, format as Firecracker's
// "<timestamp> [<instance id>:<thread>[:<LEVEL>][:<file>:<line>]] <message>" (firecracker-facts
// §7, src/vmm/src/logger/logging.rs). A line the destination cannot take whole (a full FIFO) is
// dropped and counted in the metrics' logger.missed_log_count; logging never blocks.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "vmm/base/result.h"
#include "vmm/base/unique_fd.h"

namespace ember {

enum class LogLevel { kOff = 0, kError, kWarning, kInfo, kDebug, kTrace };

// "Error" | "Warning" | "Warn" | "Info" | "Debug" | "Trace" | "Off", matched case-insensitively
// (Firecracker's LevelFilter accepts "warn" and "warning" in any case).
std::optional<LogLevel> ParseLogLevel(std::string_view name);

// Lines longer than this are truncated. It is PIPE_BUF, so a line written to a pipe or FIFO
// arrives whole or not at all (pipe(7)): readers never see half a line.
inline constexpr size_t kMaxLogLineBytes = 4096;

struct LoggerConfig {
  LogLevel level = LogLevel::kInfo;
  bool show_level = false;
  bool show_origin = false;
  std::string instance_id = "anonymous-instance";
  int fd = 2;  // borrowed, not closed; stderr: stdout carries the guest's serial console
};

// Replaces the whole configuration (the command line's settings, at startup).
void ConfigureLogger(const LoggerConfig& config);
// A copy of the configuration in force.
LoggerConfig CurrentLoggerConfig();

// A PUT /logger body (Firecracker's LoggerConfig). Absent fields keep their setting, except the
// level, which Firecracker's Logger::update resets to Info when the body has none.
struct LoggerUpdate {
  std::optional<std::string> log_path;
  std::optional<LogLevel> level;
  std::optional<bool> show_level;
  std::optional<bool> show_log_origin;
};

// Applies a PUT /logger at any time, from any thread: a LogLine running concurrently finishes
// with the old settings, the next one uses the new. The new log_path is opened before anything
// changes, so a path that cannot be opened leaves the logger as it was and is reported as
// "Failed to open target file <path>: <errno>".
Status UpdateLogger(const LoggerUpdate& update);

// Opens a log or metrics destination as Firecracker's open_file_nonblock does: created if
// missing, O_NONBLOCK so a full FIFO costs a dropped line instead of a stalled thread, and
// read-write so that opening a FIFO succeeds before its reader attaches (a write-only
// non-blocking open fails with ENXIO, fifo(7)) and a reader that goes away never raises
// SIGPIPE. O_APPEND keeps an existing file's contents; O_CLOEXEC keeps it out of children.
Result<UniqueFd> OpenNonBlockingSink(const std::string& path);

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

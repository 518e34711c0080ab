// Subprocess: runs a program with its stdin, stdout and stderr on pipes and lets a test wait for
// a condition on its output (a line, an exit) with a timeout, never for a fixed time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ember::testing {

class Subprocess {
 public:
  struct Options {
    bool pipe_stdin = true;  // false: stdin is /dev/null
  };

  Subprocess(const std::vector<std::string>& argv, const Options& options);
  explicit Subprocess(const std::vector<std::string>& argv) : Subprocess(argv, Options{}) {}
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  bool started() const { return pid_ > 0; }

  void WriteStdin(const std::string& data);
  void CloseStdin();

  // Reads output until `done(stdout_so_far, stderr_so_far)` holds or the timeout passes.
  bool WaitFor(const std::function<bool(const std::string&, const std::string&)>& done,
               std::chrono::milliseconds timeout);
  // Waits until stdout contains `text`.
  bool WaitForStdout(const std::string& text, std::chrono::milliseconds timeout);
  // Waits for the process to exit (reading its output meanwhile); returns its exit code, or
  // 128+signal when killed by a signal, or nullopt on timeout (the process is then killed).
  std::optional<int> WaitExit(std::chrono::milliseconds timeout);
  void Kill(int sig);

  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

 private:
  // Reads whatever is available within `timeout`; false when both pipes are closed.
  bool Pump(std::chrono::milliseconds timeout);
  bool Reap(bool block);

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  std::string out_;
  std::string err_;
  std::optional<int> exit_code_;
};

// Path of a build output (bin/ember, guest/probe.elf) under the build tree the tests were built
// in; set by CMake through EMBER_BUILD_DIR.
std::string BuildPath(const std::string& relative);

// A fresh temporary directory removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& contents) const;

 private:
  std::string path_;
};

}  // namespace ember::testing

#include "tests/support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace ember::testing {
namespace {

using Clock = std::chrono::steady_clock;

void CloseFd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

}  // namespace

Subprocess::Subprocess(const std::vector<std::string>& argv, const Options& options) {
  int in[2] = {-1, -1}, out[2], err[2];
  if (options.pipe_stdin && pipe2(in, O_CLOEXEC) != 0) return;
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return;
  pid_ = fork();
  if (pid_ == 0) {
    if (options.pipe_stdin) {
      dup2(in[0], 0);
    } else {
      int devnull = open("/dev/null", O_RDONLY);
      dup2(devnull, 0);
    }
    dup2(out[1], 1);
    dup2(err[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  if (options.pipe_stdin) {
    close(in[0]);
    stdin_fd_ = in[1];
  }
  close(out[1]);
  close(err[1]);
  stdout_fd_ = out[0];
  stderr_fd_ = err[0];
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !exit_code_) {
    kill(pid_, SIGKILL);
    Reap(true);
  }
  CloseFd(&stdin_fd_);
  CloseFd(&stdout_fd_);
  CloseFd(&stderr_fd_);
}

void Subprocess::WriteStdin(const std::string& data) {
  if (stdin_fd_ < 0) return;
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(stdin_fd_, data.data() + done, data.size() - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

void Subprocess::CloseStdin() { CloseFd(&stdin_fd_); }

bool Subprocess::Pump(std::chrono::milliseconds timeout) {
  struct pollfd fds[2];
  int n = 0;
  if (stdout_fd_ >= 0) fds[n++] = {stdout_fd_, POLLIN, 0};
  if (stderr_fd_ >= 0) fds[n++] = {stderr_fd_, POLLIN, 0};
  if (n == 0) return false;
  int r = poll(fds, static_cast<nfds_t>(n), static_cast<int>(timeout.count()));
  if (r <= 0) return true;
  for (int i = 0; i < n; i++) {
    if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    char buf[65536];
    ssize_t got = read(fds[i].fd, buf, sizeof(buf));
    bool is_out = fds[i].fd == stdout_fd_;
    if (got <= 0) {
      CloseFd(is_out ? &stdout_fd_ : &stderr_fd_);
      continue;
    }
    (is_out ? out_ : err_).append(buf, static_cast<size_t>(got));
  }
  return true;
}

bool Subprocess::WaitFor(const std::function<bool(const std::string&, const std::string&)>& done,
                         std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!done(out_, err_)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    if (!Pump(std::min(left, std::chrono::milliseconds(100)))) {
      // Both pipes closed: nothing more will arrive.
      return done(out_, err_);
    }
  }
  return true;
}

bool Subprocess::WaitForStdout(const std::string& text, std::chrono::milliseconds timeout) {
  return WaitFor([&](const std::string& o, const std::string&) { return o.find(text) != std::string::npos; },
                 timeout);
}

bool Subprocess::Reap(bool block) {
  int status = 0;
  pid_t r = waitpid(pid_, &status, block ? 0 : WNOHANG);
  if (r != pid_) return false;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return true;
}

std::optional<int> Subprocess::WaitExit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  if (exit_code_) return exit_code_;
  auto deadline = Clock::now() + timeout;
  while (!Reap(false)) {
    if (Clock::now() >= deadline) {
      kill(pid_, SIGKILL);
      Reap(true);
      exit_code_.reset();
      pid_ = -1;
      return std::nullopt;
    }
    // Keep draining output so a child blocked on a full pipe can finish; once both pipes are
    // closed this is a short poll for the exit.
    if (!Pump(std::chrono::milliseconds(20))) poll(nullptr, 0, 5);
  }
  // Collect what the process wrote before it exited (bounded: a grandchild may hold the pipes).
  auto drain_deadline = Clock::now() + std::chrono::milliseconds(500);
  while ((stdout_fd_ >= 0 || stderr_fd_ >= 0) && Clock::now() < drain_deadline) {
    size_t before = out_.size() + err_.size();
    Pump(std::chrono::milliseconds(50));
    if (out_.size() + err_.size() == before) break;
  }
  return exit_code_;
}

void Subprocess::Kill(int sig) {
  if (pid_ > 0 && !exit_code_) kill(pid_, sig);
}

std::string BuildPath(const std::string& relative) {
  return std::string(EMBER_BUILD_DIR) + "/" + relative;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/ember-test-XXXXXX";
  const char* p = mkdtemp(tmpl);
  path_ = p ? p : "/tmp";
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Write(const std::string& name, const std::string& contents) const {
  std::string path = path_ + "/" + name;
  std::ofstream f(path, std::ios::binary);
  f << contents;
  return path;
}

}  // namespace ember::testing

#include "jailer/lineage.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "jailer/syscall.h"
#include "vmm/base/clock.h"

namespace ember::jailer {

Lineage::Lineage(const StartTimes& start) : first_pid_(getpid()), own_cpu_base_us_(start.cpu_us) {}

bool Lineage::is_first() const { return getpid() == first_pid_; }

Result<pid_t> Lineage::Fork(bool hold, UniqueFd* release) {
  if (!report_write_.valid()) {
    int fds[2];
    TRY_STATUS(CheckSys(pipe2(fds, O_CLOEXEC), "pipe2(report)"));
    report_read_.reset(fds[0]);
    report_write_.reset(fds[1]);
    // Orphaned descendants come back to us, so we can reap them all before cleaning up.
    TRY_STATUS(CheckSys(prctl(PR_SET_CHILD_SUBREAPER, 1), "prctl(PR_SET_CHILD_SUBREAPER, 1)"));
  }
  UniqueFd hold_read, hold_write;
  if (hold) {
    int go[2];
    TRY_STATUS(CheckSys(pipe2(go, O_CLOEXEC), "pipe2(release)"));
    hold_read.reset(go[0]);
    hold_write.reset(go[1]);
  }
  const uint64_t spent = ProcessCpuUs() - own_cpu_base_us_;
  const pid_t pid = fork();
  TRY_STATUS(CheckSys(pid, "fork()"));
  if (pid == 0) {
    ancestors_cpu_us_ += spent;
    own_cpu_base_us_ = 0;
    report_read_.reset();
    if (hold) {
      hold_write.reset();
      char byte;
      ssize_t n;
      do {
        n = read(hold_read.get(), &byte, 1);
      } while (n < 0 && errno == EINTR);
      if (n != 1) _exit(0);  // the parent failed, reported it, and is cleaning up
    }
    return 0;
  }
  if (hold) *release = std::move(hold_write);
  return pid;
}

Status Lineage::Release(UniqueFd release) {
  const char byte = 1;
  return CheckSys(write(release.get(), &byte, 1), "write(release)");
}

void Lineage::ReportAndExit(Step step, const std::string& message) {
  const std::string report = std::to_string(ExitCode(step)) + "\n" + message;
  if (!report_write_.valid() || write(report_write_.get(), report.data(), report.size()) < 0) {
    fprintf(stderr, "ember-jailer: %s: %s\n", StepName(step), message.c_str());
  }
  _exit(ExitCode(step));
}

int Lineage::AwaitExec(UndoLog* undo) {
  report_write_.reset();
  std::string report;
  char buf[4096];
  while (true) {
    ssize_t n = read(report_read_.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    report.append(buf, static_cast<size_t>(n));
  }
  if (report.empty()) return 0;  // every write end closed without a word: ember was exec'd
  const size_t nl = report.find('\n');
  const int code = atoi(report.substr(0, nl).c_str());
  const std::string message = nl == std::string::npos ? "" : report.substr(nl + 1);
  fprintf(stderr, "ember-jailer: %s: %s\n", StepName(static_cast<Step>(code)), message.c_str());
  // Every descendant has failed or handed over; none may stay in the cgroups we remove.
  while (waitpid(-1, nullptr, 0) > 0 || errno == EINTR) {
  }
  for (const std::string& f : undo->Run())
    fprintf(stderr, "ember-jailer: cleanup: %s\n", f.c_str());
  return code;
}

uint64_t Lineage::JailerCpuUs(uint64_t own) const {
  return ancestors_cpu_us_ + (own - own_cpu_base_us_);
}

}  // namespace ember::jailer

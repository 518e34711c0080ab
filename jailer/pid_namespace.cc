#include "jailer/pid_namespace.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>

#include "jailer/syscall.h"

namespace ember::jailer {
namespace {

Status WritePid(const JailPlan& plan, pid_t pid) {
  const std::string path = "/" + plan.exec_name + ".pid";
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  TRY_STATUS(CheckSys(fd.get(), "open(%s, O_CREAT|O_EXCL) in the jail", path.c_str()));
  const std::string text = std::to_string(pid);
  ssize_t n = write(fd.get(), text.data(), text.size());
  TRY_STATUS(CheckSys(n, "write(%s) in the jail", path.c_str()));
  if (static_cast<size_t>(n) != text.size()) return Error{"write(" + path + "): short write"};
  return Ok();
}

}  // namespace

Status EnterNewPidNamespace(const JailPlan& plan, Lineage* lineage, UndoLog* undo) {
  if (!plan.options.new_pid_ns) return Ok();
  // Firecracker's exec_into_new_pid_ns: if we lead a session, our exit would send SIGHUP to
  // ember, which (as a namespace's init) has handlers for it; so the child starts a session.
  const bool session_leader = getsid(0) == getpid();
  TRY_STATUS(CheckSys(unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)"));
  UniqueFd release;
  const pid_t child = TRY(lineage->Fork(/*hold=*/true, &release));
  if (child == 0) {
    if (session_leader) TRY_STATUS(CheckSys(setsid(), "setsid() in the new pid namespace"));
    return Ok();
  }
  Status written = WritePid(plan, child);
  if (written.ok()) written = Lineage::Release(std::move(release));
  if (!written.ok()) {
    // The child is held before its exec; it must not outlive our cleanup of its cgroups.
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    return written;
  }
  if (lineage->is_first()) _exit(lineage->AwaitExec(undo));  // as Daemonize: no exit handlers
  _exit(0);
}

Status WritePidFile(const JailPlan& plan) {
  if (plan.options.new_pid_ns) return Ok();  // the parent wrote the child's
  return WritePid(plan, getpid());
}

}  // namespace ember::jailer

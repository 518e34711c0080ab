#include "jailer/jail_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "jailer/syscall.h"
#include "jailer/validate.h"

namespace ember::jailer {
namespace {

Status MakeDirectory(const std::string& path, UndoLog* undo) {
  if (mkdir(path.c_str(), 0755) == 0) {
    undo->RemoveDirectory(path);
    return Ok();
  }
  if (errno != EEXIST) return CheckSys(-1, "mkdir(%s, 0755)", path.c_str());
  struct stat st;
  TRY_STATUS(CheckSys(lstat(path.c_str(), &st), "lstat(%s)", path.c_str()));
  if (!S_ISDIR(st.st_mode))
    return Error{StrFormat("%s exists and is not a directory", path.c_str())};
  return Ok();
}

}  // namespace

Status LockBaseDirectory(const JailPlan& plan, UniqueFd* lock) {
  const std::string base = plan.base_dir.empty() ? "/" : plan.base_dir;
  UniqueFd fd = TRY(OpenDirectory(base));
  int r;
  do {
    r = flock(fd.get(), LOCK_EX);
  } while (r != 0 && errno == EINTR);
  TRY_STATUS(CheckSys(r, "flock(%s, LOCK_EX)", base.c_str()));
  *lock = std::move(fd);
  return Ok();
}

Status CreateJailDirectory(const JailPlan& plan, UndoLog* undo) {
  for (const std::string* dir : {&plan.exec_dir, &plan.id_dir, &plan.root_dir}) {
    TRY_STATUS(MakeDirectory(*dir, undo));
  }
  return Ok();
}

Status ClaimJail(const JailPlan& plan, UniqueFd* lock) {
  UniqueFd fd = TRY(OpenDirectory(plan.id_dir));
  if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Error{StrFormat("jail %s is being built by another ember-jailer (%s is locked)",
                             plan.options.id.c_str(), plan.id_dir.c_str())};
    }
    return CheckSys(-1, "flock(%s, LOCK_EX)", plan.id_dir.c_str());
  }
  TRY_STATUS(CheckJailFree(plan));
  *lock = std::move(fd);
  return Ok();
}

Status CopyExecFile(const JailPlan& plan, UndoLog* undo) {
  const std::string dst = plan.root_dir + "/" + plan.exec_name;
  UniqueFd in(open(plan.exec_path.c_str(), O_RDONLY | O_CLOEXEC));
  TRY_STATUS(CheckSys(in.get(), "open(%s, O_RDONLY)", plan.exec_path.c_str()));
  struct stat st;
  TRY_STATUS(CheckSys(fstat(in.get(), &st), "fstat(%s)", plan.exec_path.c_str()));
  // A copy left by a run that died before writing its pid file is replaced, never followed.
  if (unlink(dst.c_str()) != 0 && errno != ENOENT) return CheckSys(-1, "unlink(%s)", dst.c_str());
  UniqueFd out(open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0700));
  TRY_STATUS(CheckSys(out.get(), "open(%s, O_CREAT|O_EXCL)", dst.c_str()));
  undo->RemoveFile(dst);
  off_t left = st.st_size;
  while (left > 0) {
    ssize_t n =
        copy_file_range(in.get(), nullptr, out.get(), nullptr, static_cast<size_t>(left), 0);
    if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL) && left == st.st_size) {
      break;  // no in-kernel copy between these files: fall back to read/write below
    }
    TRY_STATUS(CheckSys(n, "copy_file_range(%s, %s)", plan.exec_path.c_str(), dst.c_str()));
    if (n == 0)
      return Error{
          StrFormat("copy %s: the file shrank while being copied", plan.exec_path.c_str())};
    left -= n;
  }
  char buf[1 << 16];
  while (left > 0) {
    ssize_t n = read(in.get(), buf, sizeof(buf));
    TRY_STATUS(CheckSys(n, "read(%s)", plan.exec_path.c_str()));
    if (n == 0)
      return Error{
          StrFormat("copy %s: the file shrank while being copied", plan.exec_path.c_str())};
    for (ssize_t done = 0; done < n;) {
      ssize_t w = write(out.get(), buf + done, static_cast<size_t>(n - done));
      TRY_STATUS(CheckSys(w, "write(%s)", dst.c_str()));
      done += w;
    }
    left -= n;
  }
  TRY_STATUS(CheckSys(fchown(out.get(), plan.options.uid, plan.options.gid), "fchown(%s, %u, %u)",
                      dst.c_str(), plan.options.uid, plan.options.gid));
  // The source's permission bits without set-id bits: the copy never raises privileges.
  const mode_t mode = st.st_mode & 0755;
  return CheckSys(fchmod(out.get(), mode), "fchmod(%s, %04o)", dst.c_str(), mode);
}

}  // namespace ember::jailer

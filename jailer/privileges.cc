#include "jailer/privileges.h"

#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "jailer/syscall.h"

namespace ember::jailer {
namespace {

// glibc has no capget/capset wrappers (libcap does); the raw calls take these structs.
Status SetCapabilities(uint32_t value) {
  __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  for (auto& d : data) d = {value, value, value};
  return CheckSys(syscall(SYS_capset, &header, data), "capset(all sets = %#x)", value);
}

Status CheckNoCapabilities() {
  __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  TRY_STATUS(CheckSys(syscall(SYS_capget, &header, data), "capget()"));
  for (const auto& d : data) {
    if (d.effective || d.permitted || d.inheritable) {
      return Error{
          StrFormat("capabilities remain after the drop: effective %#x permitted %#x "
                    "inheritable %#x",
                    d.effective, d.permitted, d.inheritable)};
    }
  }
  return Ok();
}

}  // namespace

Status DropPrivileges(const JailPlan& plan) {
  const uid_t uid = plan.options.uid;
  const gid_t gid = plan.options.gid;
  TRY_STATUS(CheckSys(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS, 1)"));
  TRY_STATUS(CheckSys(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0),
                      "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)"));
  // Every capability the kernel knows: PR_CAPBSET_READ fails with EINVAL past the last one.
  for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
    TRY_STATUS(CheckSys(prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "prctl(PR_CAPBSET_DROP, %d)", cap));
  }
  TRY_STATUS(CheckSys(setgroups(0, nullptr), "setgroups(0, NULL)"));
  TRY_STATUS(CheckSys(setresgid(gid, gid, gid), "setresgid(%u, %u, %u)", gid, gid, gid));
  TRY_STATUS(CheckSys(setresuid(uid, uid, uid), "setresuid(%u, %u, %u)", uid, uid, uid));
  TRY_STATUS(SetCapabilities(0));

  TRY_STATUS(CheckNoCapabilities());
  for (int cap = 0;; cap++) {
    int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (r < 0) break;
    if (r == 1) return Error{StrFormat("capability %d is still in the bounding set", cap)};
  }
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  TRY_STATUS(CheckSys(getresuid(&ruid, &euid, &suid), "getresuid()"));
  TRY_STATUS(CheckSys(getresgid(&rgid, &egid, &sgid), "getresgid()"));
  if (ruid != uid || euid != uid || suid != uid || rgid != gid || egid != gid || sgid != gid) {
    return Error{StrFormat("ids after the drop are uid %u/%u/%u gid %u/%u/%u", ruid, euid, suid,
                           rgid, egid, sgid)};
  }
  if (getgroups(0, nullptr) != 0) return Error{"supplementary groups remain after setgroups(0)"};
  if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) return Error{"no_new_privs is not set"};
  return Ok();
}

}  // namespace ember::jailer

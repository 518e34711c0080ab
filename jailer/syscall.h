// Checked system calls for the jailer: a failure becomes an Error naming the call, its arguments
// and errno, as nsjail's PLOG_E does ("mkdir(/srv/jailer/ember, 0755): EROFS (Read-only file
// system)"). Also the few file helpers every step shares.
#pragma once

#include <sys/types.h>

#include <string>

#include "vmm/base/result.h"
#include "vmm/base/unique_fd.h"

namespace ember::jailer {

// Ok when ret >= 0; otherwise the formatted call and errno (read before formatting).
Status CheckSys(long ret, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// The whole of a small file (procfs, cgroupfs, a pid file).
Result<std::string> ReadSmallFile(const std::string& path);

// Writes `value` to an existing file in one write(2), as cgroupfs and procfs expect.
Status WriteExistingFile(const std::string& path, const std::string& value);

// True when `path` exists (lstat: a dangling symlink exists).
bool PathExists(const std::string& path);

// Opens `path` as a directory (O_PATH would not allow flock), or an error naming the call.
Result<UniqueFd> OpenDirectory(const std::string& path);

}  // namespace ember::jailer

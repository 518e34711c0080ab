#include "vmm/boot/image_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

namespace ember {

Status ImageSource::CheckRange(uint64_t offset, uint64_t len) const {
  if (Covers(offset, len)) return Ok();
  return Error{StrFormat("truncated: needs bytes 0x%llx+0x%llx but the image has %llu bytes",
                         static_cast<unsigned long long>(offset),
                         static_cast<unsigned long long>(len),
                         static_cast<unsigned long long>(size()))};
}

Result<FdImage> FdImage::Open(const std::string& path, const std::string& what) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Error::Errno(StrFormat("open %s %s", what.c_str(), path.c_str()));
  return FromFd(std::move(fd), what + " " + path);
}

Result<FdImage> FdImage::FromFd(UniqueFd fd, const std::string& what) {
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return Error::Errno(StrFormat("fstat %s", what.c_str()));
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
    return Error{StrFormat("%s is not a regular file", what.c_str())};
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (S_ISBLK(st.st_mode)) {
    off_t end = lseek(fd.get(), 0, SEEK_END);
    if (end < 0) return Error::Errno(StrFormat("lseek %s", what.c_str()));
    size = static_cast<uint64_t>(end);
  }
  return FdImage(std::move(fd), size, what);
}

Status FdImage::ReadAt(uint64_t offset, void* dst, uint64_t len) const {
  TRY_STATUS(CheckRange(offset, len));
  auto* out = static_cast<uint8_t*>(dst);
  while (len > 0) {
    ssize_t n = pread(fd_.get(), out, len, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::Errno(
          StrFormat("pread %s at 0x%llx", what_.c_str(), static_cast<unsigned long long>(offset)));
    }
    if (n == 0)
      return Error{StrFormat("%s shrank while being read (EOF at 0x%llx)", what_.c_str(),
                             static_cast<unsigned long long>(offset))};
    out += n;
    offset += static_cast<uint64_t>(n);
    len -= static_cast<uint64_t>(n);
  }
  return Ok();
}

Status BufferImage::ReadAt(uint64_t offset, void* dst, uint64_t len) const {
  TRY_STATUS(CheckRange(offset, len));
  if (len) memcpy(dst, data_ + offset, len);
  return Ok();
}

}  // namespace ember

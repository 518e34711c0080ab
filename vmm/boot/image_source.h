// Where kernel and initrd bytes come from: a file (pread at offsets) or a byte buffer (tests,
// fuzzers). Every read is bounds-checked against the image size first, so a loader can pass
// sizes read from an untrusted header straight to ReadAt and get an Error, never a short read.
#pragma once

#include <cstdint>
#include <string>

#include "vmm/base/result.h"
#include "vmm/base/unique_fd.h"

namespace ember {

class ImageSource {
 public:
  virtual ~ImageSource() = default;
  virtual uint64_t size() const = 0;
  // Reads exactly [offset, offset + len); an Error names the range and the image size when the
  // range is outside the image.
  virtual Status ReadAt(uint64_t offset, void* dst, uint64_t len) const = 0;

  bool Covers(uint64_t offset, uint64_t len) const {
    return offset <= size() && len <= size() - offset;
  }

 protected:
  Status CheckRange(uint64_t offset, uint64_t len) const;
};

class FdImage : public ImageSource {
 public:
  // Opens `path` read-only. `what` names the file in errors ("kernel", "initrd").
  static Result<FdImage> Open(const std::string& path, const std::string& what);
  // Takes an already open descriptor; its size comes from fstat.
  static Result<FdImage> FromFd(UniqueFd fd, const std::string& what);

  uint64_t size() const override { return size_; }
  Status ReadAt(uint64_t offset, void* dst, uint64_t len) const override;

 private:
  FdImage(UniqueFd fd, uint64_t size, std::string what)
      : fd_(std::move(fd)), size_(size), what_(std::move(what)) {}
  UniqueFd fd_;
  uint64_t size_;
  std::string what_;
};

class BufferImage : public ImageSource {
 public:
  BufferImage(const void* data, uint64_t size)
      : data_(static_cast<const uint8_t*>(data)), size_(size) {}
  uint64_t size() const override { return size_; }
  Status ReadAt(uint64_t offset, void* dst, uint64_t len) const override;

 private:
  const uint8_t* data_;
  uint64_t size_;
};

}  // namespace ember

// Result<T>: a value or an Error that says what failed and why. Shaped like std::expected, which
// GCC 12 offers only under -std=c++23.
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

#include "vmm/base/strings.h"

namespace ember {

struct Error {
  std::string message;
  int err = 0;  // errno when the failure came from a system call, else 0

  // "what: strerror(errno)"; call right after the failing syscall.
  static Error Errno(const std::string& what, int e = errno) {
    return Error{what + ": " + ErrnoName(e), e};
  }
  // Prefixes context: "loading kernel: " + inner message.
  Error Wrap(const std::string& context) const { return Error{context + ": " + message, err}; }
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

inline Status Ok() { return {}; }

}  // namespace ember

// TRY(expr): evaluates a Result; on error returns it from the enclosing function, else yields the
// value. Uses the GNU statement-expression extension (GCC and clang).
#define EMBER_CONCAT_(a, b) a##b
#define EMBER_CONCAT(a, b) EMBER_CONCAT_(a, b)
#define TRY(expr)                                   \
  ({                                                \
    auto&& EMBER_CONCAT(r_, __LINE__) = (expr);      \
    if (!EMBER_CONCAT(r_, __LINE__).ok())           \
      return EMBER_CONCAT(r_, __LINE__).error();    \
    std::move(EMBER_CONCAT(r_, __LINE__)).value();  \
  })
// TRY_STATUS(expr): the same for Status, which has no value.
#define TRY_STATUS(expr)                                                          \
  do {                                                                            \
    auto EMBER_CONCAT(s_, __LINE__) = (expr);                                     \
    if (!EMBER_CONCAT(s_, __LINE__).ok()) return EMBER_CONCAT(s_, __LINE__).error(); \
  } while (0)

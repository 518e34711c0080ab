// Small string helpers shared by every layer: printf-style formatting (GCC 12 has no <format>),
// errno names, hex.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ember {

std::string StrFormat(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// "EINVAL (Invalid argument)".
std::string ErrnoName(int err);

// Splits on a single separator character; empty fields are kept.
std::vector<std::string_view> Split(std::string_view s, char sep);

// Parses a whole decimal (or 0x-prefixed hex) unsigned number; false on junk or overflow.
bool ParseU64(std::string_view s, uint64_t* out);

// `value` in double quotes for an error message, with quotes and backslashes escaped and control
// characters as \xNN, so that a hostile argument keeps the message on one line.
std::string QuoteForMessage(std::string_view value);

}  // namespace ember

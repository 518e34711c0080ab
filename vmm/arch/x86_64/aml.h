// A writer for the small part of the ACPI Machine Language (ACPI 6.5 chapter 20, "AML
// Specification") that ember's DSDT uses: devices with named objects, integers, strings, EISA
// IDs, a constant _STA method and resource templates (chapter 6.4, "Resource Data Types") with
// I/O ports, fixed 32-bit memory ranges and extended interrupts. Every builder returns the
// encoded bytes of one term; a Device or a Method wraps the bytes of its children.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <vector>

namespace ember::aml {

using Bytes = std::vector<uint8_t>;

// AML opcodes and prefixes (ACPI 6.5, 20.3 "AML Byte Stream Byte Values").
inline constexpr uint8_t kZeroOp = 0x00;
inline constexpr uint8_t kOneOp = 0x01;
inline constexpr uint8_t kNameOp = 0x08;
inline constexpr uint8_t kBytePrefix = 0x0a;
inline constexpr uint8_t kWordPrefix = 0x0b;
inline constexpr uint8_t kDWordPrefix = 0x0c;
inline constexpr uint8_t kStringPrefix = 0x0d;
inline constexpr uint8_t kQWordPrefix = 0x0e;
inline constexpr uint8_t kBufferOp = 0x11;
inline constexpr uint8_t kMethodOp = 0x14;
inline constexpr uint8_t kDualNamePrefix = 0x2e;
inline constexpr uint8_t kMultiNamePrefix = 0x2f;
inline constexpr uint8_t kExtOpPrefix = 0x5b;
inline constexpr uint8_t kDeviceOp = 0x82;  // after kExtOpPrefix
inline constexpr uint8_t kReturnOp = 0xa4;

// Resource descriptor tags (ACPI 6.5, 6.4.2 small and 6.4.3 large resource data types).
inline constexpr uint8_t kIoPortDescriptor = 0x47;         // small item 0x08, 7 bytes of data
inline constexpr uint8_t kEndTagDescriptor = 0x79;         // small item 0x0F, 1 byte (checksum)
inline constexpr uint8_t kMemory32FixedDescriptor = 0x86;  // large item 0x06, 9 bytes of data
inline constexpr uint8_t kExtendedIrqDescriptor = 0x89;    // large item 0x09

// One 4-character name segment (20.2.2 NameSeg: a lead character 'A'-'Z' or '_', then
// 'A'-'Z', '0'-'9' or '_'). Literals are checked at compile time.
struct NameSeg {
  char c[4];

  consteval NameSeg(const char (&s)[5]) : c{s[0], s[1], s[2], s[3]} {  // NOLINT: implicit
    for (int i = 0; i < 4; i++) {
      const bool ok =
          (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_' || (i > 0 && s[i] >= '0' && s[i] <= '9');
      if (!ok) throw "invalid AML name segment";  // a compile error in a consteval context
    }
  }
  // `prefix` followed by `n` in three decimal digits ("V000"); n must be below 1000.
  static NameSeg Numbered(char prefix, unsigned n);

 private:
  NameSeg() = default;
};

// A name path of one or more segments, relative to the current scope ({"_SB_", "COM1"} is
// _SB_.COM1, which at the DSDT's top level is \_SB_.COM1).
struct NamePath {
  NamePath(std::initializer_list<NameSeg> segments) : segs(segments) {}  // NOLINT: implicit
  std::vector<NameSeg> segs;
};

// Terms (20.2).
Bytes Name(const NamePath& name, const Bytes& value);                    // DefName
Bytes Device(const NamePath& name, const std::vector<Bytes>& children);  // DefDevice
Bytes Method(const NamePath& name, uint8_t arg_count, const std::vector<Bytes>& body);
Bytes Return(const Bytes& value);
Bytes Integer(uint64_t value);        // ZeroOp, OneOp, or the shortest of Byte..QWord
Bytes DWord(uint32_t value);          // always DWordPrefix, as ASL's EISAID() compiles
Bytes String(std::string_view text);  // printable ASCII without NUL

// 19.6.35 EISAID: a compressed EISA ID ("PNP0501": three letters 'A'-'Z', four hex digits) for
// a _HID or _CID; the letters take 5 bits each ('A' = 1), the digits 4, stored big-endian.
consteval uint32_t EisaId(const char (&id)[8]) {
  uint32_t v = 0;
  for (int i = 0; i < 7; i++) {
    const char c = id[i];
    if (i < 3) {
      if (c < 'A' || c > 'Z') throw "EISA ID: three capital letters first";
      v = (v << 5) | static_cast<uint32_t>(c - 'A' + 1);
    } else {
      if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) throw "EISA ID: four hex digits";
      v = (v << 4) | static_cast<uint32_t>(c <= '9' ? c - '0' : c - 'A' + 10);
    }
  }
  return (v >> 24) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24);
}

// A ResourceTemplate: a Buffer holding the descriptors and an end tag with checksum 0.
Bytes ResourceTemplate(const std::vector<Bytes>& descriptors);
Bytes IoPort(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length);  // 16-bit decode
Bytes Memory32Fixed(bool read_write, uint32_t base, uint32_t length);
// Extended interrupt descriptor for one interrupt the device consumes: edge-triggered, active
// high, exclusive (ASL: Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive) {gsi}), which
// is how KVM's irqfd lines behave.
Bytes Interrupt(uint32_t gsi);

// PkgLength (20.2.4) for a package whose contents after the PkgLength are `payload_bytes` long:
// the encoded length counts itself. 1 to 4 bytes; payloads up to 2^28 - 5 bytes.
Bytes PkgLength(size_t payload_bytes);

}  // namespace ember::aml

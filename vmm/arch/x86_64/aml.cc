#include "vmm/arch/x86_64/aml.h"

namespace ember::aml {
namespace {

// Byte by byte: GCC 12's -Warray-bounds misfires on vector::insert of short vectors.
void Append(Bytes* out, const Bytes& more) {
  for (uint8_t b : more) out->push_back(b);
}

void AppendLe(Bytes* out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; i++) out->push_back(static_cast<uint8_t>(value >> (8 * i)));
}

Bytes NameString(const NamePath& name) {
  Bytes out;
  if (name.segs.size() == 2) out.push_back(kDualNamePrefix);
  if (name.segs.size() > 2) {
    out.push_back(kMultiNamePrefix);
    out.push_back(static_cast<uint8_t>(name.segs.size()));
  }
  for (const NameSeg& seg : name.segs)
    for (char c : seg.c) out.push_back(static_cast<uint8_t>(c));
  return out;
}

// Op [ExtOp] PkgLength contents: the shape of Device, Method and Buffer.
Bytes Package(std::initializer_list<uint8_t> ops, const Bytes& contents) {
  Bytes out(ops);
  Append(&out, PkgLength(contents.size()));
  Append(&out, contents);
  return out;
}

}  // namespace

NameSeg NameSeg::Numbered(char prefix, unsigned n) {
  NameSeg seg;
  seg.c[0] = prefix;
  seg.c[1] = static_cast<char>('0' + n / 100 % 10);
  seg.c[2] = static_cast<char>('0' + n / 10 % 10);
  seg.c[3] = static_cast<char>('0' + n % 10);
  return seg;
}

Bytes PkgLength(size_t payload_bytes) {
  // One byte holds 6 bits of length; with N following bytes the lead byte keeps 4 bits and each
  // follower 8, and the length includes the PkgLength bytes themselves.
  for (int followers = 0; followers <= 3; followers++) {
    const size_t total = payload_bytes + 1 + followers;
    const size_t limit = followers == 0 ? (1u << 6) : (size_t{1} << (4 + 8 * followers));
    if (total >= limit) continue;
    if (followers == 0) return {static_cast<uint8_t>(total)};
    Bytes out{static_cast<uint8_t>((followers << 6) | (total & 0xf))};
    AppendLe(&out, total >> 4, followers);
    return out;
  }
  return {};  // beyond 2^28: no DSDT of ours comes near
}

Bytes Name(const NamePath& name, const Bytes& value) {
  Bytes out{kNameOp};
  Append(&out, NameString(name));
  Append(&out, value);
  return out;
}

Bytes Device(const NamePath& name, const std::vector<Bytes>& children) {
  Bytes contents = NameString(name);
  for (const Bytes& child : children) Append(&contents, child);
  return Package({kExtOpPrefix, kDeviceOp}, contents);
}

Bytes Method(const NamePath& name, uint8_t arg_count, const std::vector<Bytes>& body) {
  Bytes contents = NameString(name);
  contents.push_back(arg_count & 0x7);  // MethodFlags: not serialized, SyncLevel 0
  for (const Bytes& term : body) Append(&contents, term);
  return Package({kMethodOp}, contents);
}

Bytes Return(const Bytes& value) {
  Bytes out{kReturnOp};
  Append(&out, value);
  return out;
}

Bytes Integer(uint64_t value) {
  if (value == 0) return {kZeroOp};
  if (value == 1) return {kOneOp};
  Bytes out;
  if (value <= UINT8_MAX) {
    out.push_back(kBytePrefix);
    AppendLe(&out, value, 1);
  } else if (value <= UINT16_MAX) {
    out.push_back(kWordPrefix);
    AppendLe(&out, value, 2);
  } else if (value <= UINT32_MAX) {
    out.push_back(kDWordPrefix);
    AppendLe(&out, value, 4);
  } else {
    out.push_back(kQWordPrefix);
    AppendLe(&out, value, 8);
  }
  return out;
}

Bytes String(std::string_view text) {
  Bytes out{kStringPrefix};
  for (char c : text) out.push_back(static_cast<uint8_t>(c));
  out.push_back(0);
  return out;
}

Bytes DWord(uint32_t value) {
  Bytes out{kDWordPrefix};
  AppendLe(&out, value, 4);
  return out;
}

Bytes ResourceTemplate(const std::vector<Bytes>& descriptors) {
  Bytes data;
  for (const Bytes& d : descriptors) Append(&data, d);
  data.push_back(kEndTagDescriptor);
  data.push_back(0);  // checksum 0: "treated as if the checksum operation succeeded" (6.4.2.9)
  Bytes contents = Integer(data.size());  // BufferSize
  Append(&contents, data);
  return Package({kBufferOp}, contents);
}

Bytes IoPort(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length) {
  Bytes out{kIoPortDescriptor, 1 /* decodes 16 address bits */};
  AppendLe(&out, min, 2);
  AppendLe(&out, max, 2);
  out.push_back(alignment);
  out.push_back(length);
  return out;
}

Bytes Memory32Fixed(bool read_write, uint32_t base, uint32_t length) {
  Bytes out{kMemory32FixedDescriptor};
  AppendLe(&out, 9, 2);  // data length
  out.push_back(read_write ? 1 : 0);
  AppendLe(&out, base, 4);
  AppendLe(&out, length, 4);
  return out;
}

Bytes Interrupt(uint32_t gsi) {
  // 6.4.3.6: flags bit 0 consumer, bit 1 edge (else level), bit 2 active-low, bit 3 shared.
  constexpr uint8_t kConsumerEdgeHighExclusive = (1u << 0) | (1u << 1);
  Bytes out{kExtendedIrqDescriptor};
  AppendLe(&out, 6, 2);  // data length: flags, count, one DWord
  out.push_back(kConsumerEdgeHighExclusive);
  out.push_back(1);  // one interrupt number follows
  AppendLe(&out, gsi, 4);
  return out;
}

}  // namespace ember::aml

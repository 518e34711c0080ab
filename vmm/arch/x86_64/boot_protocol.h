// Which entry convention the vCPU starts in; decided by the kernel image (facts 2.2).
#pragma once

namespace ember {

enum class BootProtocol {
  kLinux64,  // Linux 64-bit boot protocol: long mode, paging on, rsi = zero page
  kPvh,      // Xen PVH: 32-bit protected mode, paging off, rbx = hvm_start_info
};

inline const char* BootProtocolName(BootProtocol p) {
  return p == BootProtocol::kPvh ? "PVH" : "Linux 64-bit";
}

}  // namespace ember

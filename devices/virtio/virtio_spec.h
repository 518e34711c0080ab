// Constants of the virtio 1.x specification that the device side uses: virtio-mmio registers
// (section 4.2.2), device status (2.1), feature bits (6), split-virtqueue layout (2.6) and the
// block device's request format (5.2.6). Values only; no driver code shares this header.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ember::virtio {

// 4.2.2 MMIO device register layout (offsets into the device's 4 KiB window).
inline constexpr uint32_t kMmioMagic = 0x74726976;  // "virt"
inline constexpr uint32_t kMmioVersion = 2;         // modern only
inline constexpr uint32_t kMmioVendorId = 0;
enum MmioReg : uint64_t {
  kRegMagic = 0x000,
  kRegVersion = 0x004,
  kRegDeviceId = 0x008,
  kRegVendorId = 0x00c,
  kRegDeviceFeatures = 0x010,
  kRegDeviceFeaturesSel = 0x014,
  kRegDriverFeatures = 0x020,
  kRegDriverFeaturesSel = 0x024,
  kRegQueueSel = 0x030,
  kRegQueueNumMax = 0x034,
  kRegQueueNum = 0x038,
  kRegQueueReady = 0x044,
  kRegQueueNotify = 0x050,
  kRegInterruptStatus = 0x060,
  kRegInterruptAck = 0x064,
  kRegStatus = 0x070,
  kRegQueueDescLow = 0x080,
  kRegQueueDescHigh = 0x084,
  kRegQueueDriverLow = 0x090,  // the available ring
  kRegQueueDriverHigh = 0x094,
  kRegQueueDeviceLow = 0x0a0,  // the used ring
  kRegQueueDeviceHigh = 0x0a4,
  kRegShmSel = 0x0ac,
  kRegShmLenLow = 0x0b0,
  kRegShmLenHigh = 0x0b4,
  kRegShmBaseLow = 0x0b8,
  kRegShmBaseHigh = 0x0bc,
  kRegQueueReset = 0x0c0,
  kRegConfigGeneration = 0x0fc,
  kRegConfig = 0x100,
};

// InterruptStatus bits.
inline constexpr uint32_t kInterruptUsedBuffer = 1;
inline constexpr uint32_t kInterruptConfigChange = 2;

// 2.1 Device status field.
inline constexpr uint32_t kStatusAcknowledge = 1;
inline constexpr uint32_t kStatusDriver = 2;
inline constexpr uint32_t kStatusDriverOk = 4;
inline constexpr uint32_t kStatusFeaturesOk = 8;
inline constexpr uint32_t kStatusNeedsReset = 64;
inline constexpr uint32_t kStatusFailed = 128;

// 6 Reserved feature bits (bit numbers).
inline constexpr int kFIndirectDesc = 28;
inline constexpr int kFEventIdx = 29;
inline constexpr int kFVersion1 = 32;

constexpr uint64_t Bit(int n) { return uint64_t{1} << n; }

// Device IDs (5).
inline constexpr uint32_t kDeviceIdNet = 1;
inline constexpr uint32_t kDeviceIdBlock = 2;
inline constexpr uint32_t kDeviceIdEntropy = 4;
inline constexpr uint32_t kDeviceIdVsock = 19;

// 2.7.5 The virtqueue descriptor table.
inline constexpr uint16_t kDescFNext = 1;
inline constexpr uint16_t kDescFWrite = 2;
inline constexpr uint16_t kDescFIndirect = 4;
inline constexpr uint16_t kAvailFNoInterrupt = 1;
inline constexpr uint16_t kUsedFNoNotify = 1;

struct Desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(Desc) == 16);

struct UsedElem {
  uint32_t id;
  uint32_t len;
};
static_assert(sizeof(UsedElem) == 8);

// 5.2 Block device.
inline constexpr int kBlkFRo = 5;
inline constexpr int kBlkFFlush = 9;
inline constexpr uint32_t kBlkTIn = 0;
inline constexpr uint32_t kBlkTOut = 1;
inline constexpr uint32_t kBlkTFlush = 4;
inline constexpr uint32_t kBlkTGetId = 8;
inline constexpr uint8_t kBlkSOk = 0;
inline constexpr uint8_t kBlkSIoErr = 1;
inline constexpr uint8_t kBlkSUnsupp = 2;
inline constexpr uint32_t kBlkIdBytes = 20;
inline constexpr uint64_t kSectorSize = 512;

struct BlkReqHeader {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};
static_assert(sizeof(BlkReqHeader) == 16);

// 5.1 Network device.
inline constexpr int kNetFCsum = 0;
inline constexpr int kNetFGuestCsum = 1;
inline constexpr int kNetFMtu = 3;
inline constexpr int kNetFMac = 5;
inline constexpr int kNetFGuestTso4 = 7;
inline constexpr int kNetFGuestTso6 = 8;
inline constexpr int kNetFGuestUfo = 10;
inline constexpr int kNetFHostTso4 = 11;
inline constexpr int kNetFHostTso6 = 12;
inline constexpr int kNetFHostUfo = 14;
inline constexpr int kNetFMrgRxbuf = 15;
// struct virtio_net_hdr_v1: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset,
// num_buffers (all modern devices use this 12-byte form).
inline constexpr size_t kNetHdrLen = 12;
inline constexpr size_t kNetHdrNumBuffersOffset = 10;
// The largest frame: a 64 KiB GSO packet plus its Ethernet and VLAN header (Firecracker's
// MAX_BUFFER_SIZE = 65562 including the virtio header).
inline constexpr size_t kNetMaxFrame = 65550;

}  // namespace ember::virtio

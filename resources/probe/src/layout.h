// The probe's fixed addresses and sizes, shared by the assembly entry code and C.
// Guest-physical layout (the probe runs identity-mapped):
//   0x10000-0x10fff   AP real-mode trampoline (copied there by the smp scenario; SIPI vector 0x10)
//   0x100000          image start: PVH 32-bit entry (head), 0x100200 the 64-bit Linux entry,
//                     then text, rodata, data (GDT, page tables), bss (IDT, stacks)
//   0x1000000-0x10fffff virtio queues: 32 KiB per virtio_mmio.device slot (up to 32)
//   0x1100000-0x11fffff virtio request headers, status bytes, indirect tables, small buffers
//   0x1200000-0x13fffff queues 1-3 of multi-queue devices (net, vsock): 64 KiB per slot
//   0x1400000-0x17fffff net and vsock packet buffers
//   0x2000000-0x3ffffff blk-bench data buffers (never read or written by the probe)
// Everything else the probe uses lives inside its image; see README.md.
#ifndef PROBE_LAYOUT_H
#define PROBE_LAYOUT_H

#define PROBE_LOAD_ADDR 0x100000
// Linux boot protocol: the 64-bit entry is at the protected-mode image's load address + 0x200.
#define PROBE_LINUX64_ENTRY_OFFSET 0x200

#define SEL_CODE64 0x08
#define SEL_DATA 0x10
#define SEL_CODE32 0x18
#define GDT_LIMIT (4 * 8 - 1)

#define BSP_STACK_SIZE 0x4000
#define AP_STACK_SIZE 0x1000
// Firecracker's MAX_SUPPORTED_VCPUS.
#define PROBE_MAX_CPUS 32

#define AP_TRAMPOLINE_PADDR 0x10000

#define ISR_STUB_SIZE 16

// Virtio memory (guest RAM the probe owns; scenarios check it is in the memory map).
#define VIRTIO_QUEUE_AREA 0x1000000
#define VIRTIO_QUEUE_SLOT_SIZE 0x8000
#define VIRTIO_REQ_AREA 0x1100000
#define VIRTIO_REQ_AREA_SIZE 0x100000
#define VIRTIO_REQ_HEADERS (VIRTIO_REQ_AREA + 0x0000)   // 256 block request headers, 16 bytes
#define VIRTIO_REQ_STATUS (VIRTIO_REQ_AREA + 0x1000)    // 256 block status bytes
#define VIRTIO_REQ_TABLES (VIRTIO_REQ_AREA + 0x2000)    // indirect descriptor tables, 56 KiB
#define VIRTIO_REQ_BUFFERS (VIRTIO_REQ_AREA + 0x10000)  // small data buffers, 4 KiB each
// Queues 1-3 of multi-queue devices (net, vsock): 64 KiB per virtio_mmio.device slot, 0x4000
// per queue.
#define VIRTIO_EXTRA_QUEUE_AREA 0x1200000
#define VIRTIO_EXTRA_QUEUE_SLOT_SIZE 0x10000
#define VIRTIO_EXTRA_QUEUE_SIZE 0x4000
// Packet buffers of net and vsock (4 MiB; see virtio_net.h, virtio_vsock.h).
#define VIRTIO_PACKET_AREA 0x1400000
#define VIRTIO_PACKET_AREA_SIZE 0x400000
#define VIRTIO_BULK_AREA 0x2000000
#define VIRTIO_BULK_AREA_SIZE 0x2000000

#endif

// Vmm::RegisterMetricsSources: the devices and vCPUs keep their own counters; these sources read
// them into Firecracker's metrics groups (vmm/base/metrics_groups.h) each time a metrics line is
// written, from whichever thread writes it. The sources read `this` (the vCPUs) until
// UnregisterMetricsSources(this), which must run before the vCPUs are destroyed (~Vmm).
//
// Where ember's counters and Firecracker's fields differ, the mapping is noted below; fields
// with no ember counter stay 0.
#include <mutex>

#include "devices/virtio/rng.h"
#include "devices/virtio/vsock.h"
#include "vmm/base/metrics.h"
#include "vmm/vmm.h"

namespace ember {
namespace {

BlockDeviceMetrics ReadBlock(const virtio::Block& block) {
  BlockDeviceMetrics m;
  m.read_bytes = block.read_bytes();
  m.write_bytes = block.write_bytes();
  m.rate_limiter_throttled_events = block.throttled();
  m.guest_errors = block.errors();
  return m;
}

// NetCounters are plain fields the VMM thread updates under the transport's lock.
NetDeviceMetrics ReadNet(const virtio::Net& net, std::mutex& transport_mu) {
  virtio::NetCounters c;
  {
    std::lock_guard lock(transport_mu);
    c = net.counters();
  }
  NetDeviceMetrics m;
  m.rx_bytes_count = c.rx_bytes;
  m.rx_packets_count = c.rx_frames;
  m.tx_bytes_count = c.tx_bytes;
  m.tx_packets_count = c.tx_frames;
  m.rx_rate_limiter_throttled = c.rx_throttled;
  m.tx_rate_limiter_throttled = c.tx_throttled;
  m.tap_write_fails = c.tx_dropped;  // frames the TAP refused
  m.guest_errors = net.errors();
  return m;
}

VsockDeviceMetrics ReadVsock(const virtio::Vsock& vsock) {
  VsockDeviceMetrics m;
  m.conns_added = vsock.connections_opened();
  m.muxer_event_fails = vsock.host_errors();  // malformed input from host-side clients
  m.guest_errors = vsock.errors();
  return m;
}

EntropyDeviceMetrics ReadEntropy(const virtio::Rng& rng) {
  EntropyDeviceMetrics m;
  m.entropy_bytes = rng.bytes();
  m.guest_errors = rng.errors();
  return m;
}

UartMetrics ReadSerial(const Serial& serial) {
  const SerialCounters c = serial.Counters();
  UartMetrics m;
  m.error_count = c.bad_accesses + c.tx_errors + c.rx_overruns;
  m.missed_write_count = c.tx_dropped_eagain;  // output dropped: the console fd was full
  m.write_count = c.tx_bytes;
  m.read_count = c.rx_bytes;
  return m;
}

I8042Metrics ReadI8042(const I8042& i8042) {
  const I8042Counters c = i8042.Counters();
  I8042Metrics m;
  m.error_count = c.bad_accesses + c.output_overflows;
  m.missed_write_count = c.unknown_commands;  // as Firecracker counts unhandled commands
  m.reset_count = c.reset_requests;
  return m;
}

VcpuMetrics ReadVcpus(const std::vector<std::unique_ptr<Vcpu>>& vcpus) {
  VcpuMetrics m;
  for (const auto& vcpu : vcpus) {
    const VcpuCounters c = vcpu->counters();
    m.exit_io_in += c.exit_io_in;
    m.exit_io_out += c.exit_io_out;
    m.exit_mmio_read += c.exit_mmio_read;
    m.exit_mmio_write += c.exit_mmio_write;
    m.failures += c.failures;
  }
  return m;
}

}  // namespace

void Vmm::RegisterMetricsSources() {
  MetricsSystem& system = metrics_system();
  system.RemoveSources(this);  // registering twice must not count twice

  // Devices are captured by shared_ptr: a source never reads a destroyed device.
  for (const VirtioSlot& slot : virtio_) {
    virtio::VirtioDevice* device = slot.device.get();
    if (auto* block = dynamic_cast<virtio::Block*>(device)) {
      for (const auto& [drive_id, drive] : drives_by_id_) {
        if (drive != block) continue;
        std::shared_ptr<virtio::Block> b(slot.device, block);
        system.AddSource(this, drive_id, [b] { return ReadBlock(*b); });
      }
    } else if (auto* net = dynamic_cast<virtio::Net*>(device)) {
      for (const auto& [iface_id, iface] : nets_by_id_) {
        if (iface != net) continue;
        std::shared_ptr<virtio::Net> n(slot.device, net);
        std::shared_ptr<virtio::MmioTransport> t = slot.transport;
        system.AddSource(this, iface_id, [n, t] { return ReadNet(*n, t->mutex()); });
      }
    } else if (auto* vsock = dynamic_cast<virtio::Vsock*>(device)) {
      std::shared_ptr<virtio::Vsock> v(slot.device, vsock);
      system.AddSource(this, [v] { return ReadVsock(*v); });
    } else if (auto* rng = dynamic_cast<virtio::Rng*>(device)) {
      std::shared_ptr<virtio::Rng> r(slot.device, rng);
      system.AddSource(this, [r] { return ReadEntropy(*r); });
    }
  }
  if (serial_) system.AddSource(this, [s = serial_] { return ReadSerial(*s); });
  if (i8042_) system.AddSource(this, [k = i8042_] { return ReadI8042(*k); });
  system.AddSource(this, [this] { return ReadVcpus(vcpus_); });
}

}  // namespace ember

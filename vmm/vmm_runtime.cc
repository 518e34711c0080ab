// The Vmm's runtime requests (PATCH /vm, SendCtrlAltDel, PATCH /drives, PATCH
// /network-interfaces), all on the VMM thread.
#include "vmm/base/clock.h"
#include "vmm/base/log.h"
#include "vmm/base/metrics.h"
#include "vmm/base/strings.h"
#include "vmm/vmm.h"

namespace ember {

// vCPUs first, then devices: once no vCPU runs, nothing new reaches a queue, and the devices
// stop with whatever the guest had already posted still in their rings (and in the ioeventfds'
// counters), to be served after Resume.
Status Vmm::Pause() {
  if (paused_) return Ok();
  const uint64_t start_us = MonotonicUs();
  for (size_t i = 0; i < vcpus_.size(); i++) {
    if (Status s = vcpus_[i]->Pause(); !s.ok()) {
      for (size_t j = 0; j < i; j++) (void)vcpus_[j]->Resume();
      return s.error().Wrap("pausing vCPU " + std::to_string(i));
    }
  }
  TRY_STATUS(loop_->Suspend(EventLoop::kDevices));
  paused_ = true;
  metrics().latencies_us.vmm_pause_vm.Set(MonotonicUs() - start_us);
  LOG_INFO("the microVM is paused");
  return Ok();
}

Status Vmm::Resume() {
  if (!paused_) return Ok();
  const uint64_t start_us = MonotonicUs();
  TRY_STATUS(loop_->Resume(EventLoop::kDevices));
  for (size_t i = 0; i < vcpus_.size(); i++) {
    if (Status s = vcpus_[i]->Resume(); !s.ok())
      return s.error().Wrap("resuming vCPU " + std::to_string(i));
  }
  paused_ = false;
  metrics().latencies_us.vmm_resume_vm.Set(MonotonicUs() - start_us);
  LOG_INFO("the microVM is resumed");
  return Ok();
}

Status Vmm::SendCtrlAltDel() {
  if (paused_) return Error{"the microVM is paused"};
  return i8042_->SendCtrlAltDel();
}

Status Vmm::UpdateDrive(const DriveUpdate& update) {
  auto it = drives_by_id_.find(update.drive_id);
  if (it == drives_by_id_.end())
    return Error{StrFormat("no drive with drive_id \"%s\"", update.drive_id.c_str())};
  virtio::Block* block = it->second;
  if (update.path_on_host) {
    TRY_STATUS(block->UpdateBackingFile(*update.path_on_host));
    LOG_INFO("drive %s: now backed by %s", update.drive_id.c_str(),
             update.path_on_host->c_str());
  }
  if (update.rate_limiter) block->UpdateRateLimiter(*update.rate_limiter);
  return Ok();
}

Status Vmm::UpdateNetworkInterface(const NetworkInterfaceUpdate& update) {
  auto it = nets_by_id_.find(update.iface_id);
  if (it == nets_by_id_.end())
    return Error{StrFormat("no network interface with iface_id \"%s\"", update.iface_id.c_str())};
  it->second->UpdateRateLimiters(update.rx_rate_limiter, update.tx_rate_limiter);
  return Ok();
}

}  // namespace ember

// IrqLine: the one way a device raises an interrupt. Devices never see KVM; the VMM implements a
// line with an eventfd registered through KVM_IRQFD, tests with a recorder
// (tests/support/recording_irq_line.h).
#pragma once

namespace ember {

class IrqLine {
 public:
  virtual ~IrqLine() = default;
  // Signals one edge. Devices call it with their own lock held, so an implementation must not
  // call back into the device; an eventfd write (what the VMM does) is fine.
  virtual void Trigger() = 0;
};

}  // namespace ember

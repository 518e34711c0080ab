// Serial: a 16550A UART (COM1 on x86: ports 0x3f8..0x3ff, GSI 4; facts 2.6). Register layout
// and bits follow Linux include/uapi/linux/serial_reg.h; the behaviour modelled is what the
// Linux 8250 driver's probe and startup check: the IER and scratch read-back tests, the
// loopback test (MSR mirrors MCR), FIFO detection through IIR bits 6-7, and THRE being
// re-asserted whenever the THRE interrupt is (re-)enabled.
//
// Transmission is instantaneous: a THR write goes straight to the output fd, so LSR always shows
// THRE|TEMT. Input is a 64-byte receive FIFO fed by the VMM thread (EnqueueInput); the VMM stops
// reading stdin while the FIFO is full and resumes when the input-space callback fires.
//
// Thread safety: every public method takes the device's mutex. The IrqLine is triggered with
// the mutex held; the input-space callback is invoked after the mutex is released.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "devices/bus.h"
#include "devices/irq_line.h"

namespace ember {

// Everything a snapshot needs to resume the UART where the guest left it.
struct SerialState {
  uint8_t ier = 0;
  uint8_t lcr = 0;
  uint8_t mcr = 0;
  uint8_t scr = 0;
  uint8_t dll = 0;
  uint8_t dlm = 0;
  bool fifo_enabled = false;     // FCR bit 0, reported in IIR bits 6-7
  bool overrun = false;          // LSR.OE, cleared when the guest reads LSR
  bool thre_pending = false;     // THRE interrupt raised and not yet acknowledged by an IIR read
  std::vector<uint8_t> rx_fifo;  // oldest byte first; at most Serial::kFifoSize bytes
};

struct SerialCounters {
  uint64_t tx_bytes = 0;           // bytes written to the output fd
  uint64_t tx_dropped_eagain = 0;  // output bytes dropped because the fd was full
  uint64_t tx_errors = 0;          // output bytes lost to any other write(2) failure
  uint64_t rx_bytes = 0;           // bytes accepted into the receive FIFO
  uint64_t rx_overruns = 0;        // loopback bytes lost to a full FIFO
  uint64_t bad_accesses = 0;       // reads/writes wider than a byte or outside the 8 ports
};

class Serial : public BusDevice {
 public:
  static constexpr size_t kFifoSize = 64;  // receive FIFO depth (bytes)
  static constexpr uint64_t kRegisterCount = 8;

  // `irq` must outlive the device. The output sink is `out_fd`, written one byte per THR write
  // with write(2); a negative fd discards output. The fd is borrowed, not owned. The VMM should
  // hand over a non-blocking fd (facts 2.6 opens serial_out_path O_NONBLOCK): a full pipe then
  // costs dropped bytes (counted) instead of a vCPU stuck in write(2).
  Serial(IrqLine* irq, int out_fd);

  void Read(uint64_t offset, uint8_t* data, size_t len) override;
  void Write(uint64_t offset, const uint8_t* data, size_t len) override;

  // Console input from the VMM thread. Returns how many bytes fit in the receive FIFO (the rest
  // is the caller's to keep); raises the RX interrupt when the guest enabled it.
  size_t EnqueueInput(const uint8_t* data, size_t len);
  // Free bytes in the receive FIFO.
  size_t InputRoom() const;
  // True when EnqueueInput would accept nothing: the VMM stops reading its input until the
  // input-space callback fires (back-pressure instead of dropping typed bytes).
  bool InputFull() const;
  // Called (without the device lock held, on a vCPU thread) each time the guest takes a byte
  // out of a full FIFO or clears a full FIFO, i.e. when room appears after InputRoom() was 0.
  // Set it before the vCPUs start.
  void SetInputSpaceCallback(std::function<void()> callback);

  SerialState Save() const;
  // Out-of-range values in `state` are clamped (register masks, FIFO truncated to kFifoSize).
  void Restore(const SerialState& state);

  SerialCounters Counters() const;

 private:
  uint8_t ReadRegister(uint64_t offset, bool* room_appeared);
  void WriteRegister(uint64_t offset, uint8_t value, bool* room_appeared);
  void Transmit(uint8_t value);
  bool PushRx(uint8_t value);
  uint8_t PopRx(bool* room_appeared);
  void ClearRx(bool* room_appeared);
  uint8_t InterruptId() const;
  uint8_t ModemStatus() const;
  void NotifyRoom(bool room_appeared);

  IrqLine* const irq_;
  const int out_fd_;
  mutable std::mutex mu_;
  std::function<void()> input_space_callback_;

  uint8_t ier_ = 0;
  uint8_t lcr_;
  uint8_t mcr_;
  uint8_t scr_ = 0;
  uint8_t dll_;
  uint8_t dlm_ = 0;
  bool fifo_enabled_ = false;
  bool overrun_ = false;
  bool thre_pending_ = false;
  std::array<uint8_t, kFifoSize> rx_{};
  size_t rx_head_ = 0;
  size_t rx_count_ = 0;
  SerialCounters counters_;
};

}  // namespace ember

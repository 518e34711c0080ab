// I8042: the PC keyboard controller, reduced to what an x86 microVM needs (facts 2.6, 2.8): the
// guest's reboot path (command 0xFE, CMD_RESET_CPU, pulses the reset line) and a keyboard that
// can deliver Ctrl-Alt-Del. One bus device spans ports 0x60..0x64: offset 0 is the data port,
// offset 4 the status (read) / command (write) port; offsets 1-3 read 0 and ignore writes, as
// Firecracker's do. Port 0x61 (system control port B: speaker gate, PIT OUT2, which Linux's PIT
// calibration polls) never gets here: the VMM creates the in-kernel PIT with
// KVM_PIT_SPEAKER_DUMMY, so KVM answers 0x61 itself before any exit to user space.
//
// Linux with `i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd` (Firecracker's default cmdline)
// flushes the output buffer, reads the CTR twice until stable, writes it back, may run the self
// test, and then only reads scancodes one byte per IRQ 1; without dumbkbd, atkbd's probe also
// sends keyboard commands (GETID, RESET_DIS, SETLEDS...) to port 0x60, all acknowledged here.
// Commands and bits follow Linux drivers/input/serio/i8042.h; keyboard replies follow the PS/2
// keyboard protocol (ACK 0xFA, BAT-OK 0xAA, MF2 ID 0xAB 0x83).
//
// Thread safety: every public method takes the device's mutex. The IrqLine is triggered with
// the mutex held; the reset callback is invoked after the mutex is released.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <vector>

#include "devices/bus.h"
#include "devices/irq_line.h"
#include "vmm/base/result.h"

namespace ember {

struct I8042State {
  uint8_t ctr = 0;                      // controller command byte (CTR)
  uint8_t output_port = 0;              // read by 0xD0, written by 0xD1
  uint8_t data = 0;                     // last byte the guest read from port 0x60
  uint8_t pending_command = 0;          // controller command waiting for its data byte, or 0
  uint8_t pending_kbd_command = 0;      // keyboard command waiting for its argument, or 0
  bool last_write_was_command = false;  // status bit 3 (CMD/DATA)
  std::vector<uint8_t> output;          // bytes queued for the guest, oldest first
};

struct I8042Counters {
  uint64_t reset_requests = 0;    // 0xFE commands (all of them, not only the first)
  uint64_t unknown_commands = 0;  // controller commands we do not model (ignored)
  uint64_t output_overflows = 0;  // bytes dropped because the output queue was full
  uint64_t bad_accesses = 0;      // accesses wider than a byte
};

class I8042 : public BusDevice {
 public:
  static constexpr uint64_t kPortCount = 5;  // 0x60..0x64
  static constexpr size_t kOutputQueueSize = 16;

  // `irq` is the keyboard line (IRQ 1) and must outlive the device. `reset` runs on the vCPU
  // thread that wrote 0xFE to the command port, once: Linux's keyboard reboot writes 0xFE up to
  // ten times (arch/x86/kernel/reboot.c), and after the first the machine is already going down.
  I8042(IrqLine* irq, std::function<void()> reset);

  void Read(uint64_t offset, uint8_t* data, size_t len) override;
  void Write(uint64_t offset, const uint8_t* data, size_t len) override;

  // PUT /actions SendCtrlAltDel, from the VMM thread while vCPU threads use the ports: queues
  // the set-2 scancodes for Ctrl, Alt, Del make (0x14 0x11 0xE0 0x71, facts 2.6; Firecracker's
  // trigger_ctrl_alt_del) and raises IRQ 1 when the guest enabled keyboard interrupts. Fails,
  // queueing nothing, when the output queue lacks room for all four bytes (Firecracker's
  // InternalBufferFull).
  Status SendCtrlAltDel();

  I8042State Save() const;
  // The output queue is truncated to kOutputQueueSize bytes.
  void Restore(const I8042State& state);

  I8042Counters Counters() const;

 private:
  uint8_t ReadStatus() const;
  uint8_t ReadData();
  bool WriteCommand(uint8_t command);  // true: the first reset request, run the callback
  void WriteData(uint8_t value);
  void KeyboardCommand(uint8_t value);
  void Queue(std::initializer_list<uint8_t> bytes);
  void RaiseIfEnabled();

  IrqLine* const irq_;
  const std::function<void()> reset_;
  mutable std::mutex mu_;

  uint8_t ctr_;
  uint8_t output_port_;
  uint8_t data_ = 0;
  uint8_t pending_command_ = 0;
  uint8_t pending_kbd_command_ = 0;
  bool last_write_was_command_ = false;
  bool reset_signalled_ = false;  // not snapshot state: a VM that asked for reset is stopping
  std::deque<uint8_t> output_;
  I8042Counters counters_;
};

}  // namespace ember

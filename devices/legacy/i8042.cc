#include "devices/legacy/i8042.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace ember {
namespace {

constexpr uint64_t kDataPort = 0;    // 0x60
constexpr uint64_t kStatusPort = 4;  // 0x64: status on read, command on write

// Status register (Linux i8042.h I8042_STR_*).
constexpr uint8_t kStrObf = 0x01;
constexpr uint8_t kStrSysFlag = 0x04;
constexpr uint8_t kStrCmdDat = 0x08;
constexpr uint8_t kStrKeyLock = 0x10;  // set: keyboard not inhibited

// Controller command byte (I8042_CTR_*).
constexpr uint8_t kCtrKbdInt = 0x01;
constexpr uint8_t kCtrSysFlag = 0x04;
constexpr uint8_t kCtrKbdDis = 0x10;
constexpr uint8_t kCtrAuxDis = 0x20;

// Controller commands (low byte of Linux's I8042_CMD_*).
constexpr uint8_t kCmdReadCtr = 0x20;
constexpr uint8_t kCmdWriteCtr = 0x60;
constexpr uint8_t kCmdAuxDisable = 0xa7;
constexpr uint8_t kCmdAuxEnable = 0xa8;
constexpr uint8_t kCmdSelfTest = 0xaa;
constexpr uint8_t kCmdKbdTest = 0xab;
constexpr uint8_t kCmdKbdDisable = 0xad;
constexpr uint8_t kCmdKbdEnable = 0xae;
constexpr uint8_t kCmdReadOutputPort = 0xd0;
constexpr uint8_t kCmdWriteOutputPort = 0xd1;
constexpr uint8_t kCmdWriteKbdOutput = 0xd2;  // next data byte appears as keyboard input
constexpr uint8_t kCmdWriteAuxOutput = 0xd3;  // takes a data byte; no mouse here, so dropped
constexpr uint8_t kCmdWriteAux = 0xd4;        // likewise
constexpr uint8_t kCmdResetCpu = 0xfe;

constexpr uint8_t kSelfTestOk = 0x55;
constexpr uint8_t kKbdTestOk = 0x00;

// PS/2 keyboard commands and replies.
constexpr uint8_t kKbdSetLeds = 0xed;
constexpr uint8_t kKbdEcho = 0xee;
constexpr uint8_t kKbdIdentify = 0xf2;
constexpr uint8_t kKbdSetTypematic = 0xf3;
constexpr uint8_t kKbdReset = 0xff;
constexpr uint8_t kKbdAck = 0xfa;
constexpr uint8_t kKbdBatOk = 0xaa;
constexpr uint8_t kKbdIdMf2[] = {0xab, 0x83};

// Power-on: keyboard interrupts on and the POST flag set (as Firecracker); no scancode
// translation, so the guest reads set-2 codes as SendCtrlAltDel sends them.
constexpr uint8_t kDefaultCtr = kCtrKbdInt | kCtrSysFlag;
constexpr uint8_t kDefaultOutputPort = 0x03;  // reset line released, A20 enabled

}  // namespace

I8042::I8042(IrqLine* irq, std::function<void()> reset)
    : irq_(irq), reset_(std::move(reset)), ctr_(kDefaultCtr), output_port_(kDefaultOutputPort) {}

void I8042::Read(uint64_t offset, uint8_t* data, size_t len) {
  std::lock_guard<std::mutex> lock(mu_);
  if (len != 1) {
    counters_.bad_accesses++;
    if (len) memset(data, 0, len);
    return;
  }
  switch (offset) {
    case kDataPort:
      data[0] = ReadData();
      return;
    case kStatusPort:
      data[0] = ReadStatus();
      return;
    default:
      data[0] = 0;
      return;
  }
}

void I8042::Write(uint64_t offset, const uint8_t* data, size_t len) {
  bool reset = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (len != 1) {
      counters_.bad_accesses++;
      return;
    }
    if (offset == kStatusPort) {
      reset = WriteCommand(data[0]);
    } else if (offset == kDataPort) {
      WriteData(data[0]);
    }
  }
  // Outside the lock: the VMM's handler stops the VM, which may touch this device again.
  if (reset && reset_) reset_();
}

uint8_t I8042::ReadStatus() const {
  uint8_t status = kStrKeyLock;
  if (!output_.empty()) status |= kStrObf;
  if (ctr_ & kCtrSysFlag) status |= kStrSysFlag;
  if (last_write_was_command_) status |= kStrCmdDat;
  return status;
}

uint8_t I8042::ReadData() {
  if (!output_.empty()) {
    data_ = output_.front();
    output_.pop_front();
    // Linux's i8042_interrupt takes one byte per interrupt: announce the next one.
    if (!output_.empty()) RaiseIfEnabled();
  }
  return data_;  // an empty buffer re-reads the last byte, as the hardware latch does
}

bool I8042::WriteCommand(uint8_t command) {
  last_write_was_command_ = true;
  pending_command_ = 0;
  switch (command) {
    case kCmdReadCtr:
      Queue({ctr_});
      return false;
    case kCmdWriteCtr:
    case kCmdWriteOutputPort:
    case kCmdWriteKbdOutput:
    case kCmdWriteAuxOutput:
    case kCmdWriteAux:
      pending_command_ = command;
      return false;
    case kCmdAuxDisable:
      ctr_ |= kCtrAuxDis;
      return false;
    case kCmdAuxEnable:
      ctr_ &= ~kCtrAuxDis;
      return false;
    case kCmdSelfTest:
      Queue({kSelfTestOk});
      return false;
    case kCmdKbdTest:
      Queue({kKbdTestOk});
      return false;
    case kCmdKbdDisable:
      ctr_ |= kCtrKbdDis;
      return false;
    case kCmdKbdEnable:
      ctr_ &= ~kCtrKbdDis;
      return false;
    case kCmdReadOutputPort:
      Queue({output_port_});
      return false;
    case kCmdResetCpu:
      // facts 2.8: with reboot=k the guest's reboot ends here, and the VMM exits.
      counters_.reset_requests++;
      return !std::exchange(reset_signalled_, true);
    default:
      counters_.unknown_commands++;
      return false;
  }
}

void I8042::WriteData(uint8_t value) {
  last_write_was_command_ = false;
  const uint8_t command = std::exchange(pending_command_, 0);
  switch (command) {
    case kCmdWriteCtr: {
      const bool was_enabled = ctr_ & kCtrKbdInt;
      ctr_ = value;
      if (!was_enabled && !output_.empty()) RaiseIfEnabled();
      return;
    }
    case kCmdWriteOutputPort:
      // Bit 0 is the CPU reset line on real boards; Linux resets through 0xFE, so it is only
      // stored.
      output_port_ = value;
      return;
    case kCmdWriteKbdOutput:
      Queue({value});
      return;
    case kCmdWriteAuxOutput:
    case kCmdWriteAux:
      return;
    default:
      KeyboardCommand(value);
      return;
  }
}

void I8042::KeyboardCommand(uint8_t value) {
  if (pending_kbd_command_) {
    // The argument of SET_LEDS or SET_TYPEMATIC: accepted and ignored.
    pending_kbd_command_ = 0;
    Queue({kKbdAck});
    return;
  }
  switch (value) {
    case kKbdReset:
      Queue({kKbdAck, kKbdBatOk});
      return;
    case kKbdSetLeds:
    case kKbdSetTypematic:
      pending_kbd_command_ = value;
      Queue({kKbdAck});
      return;
    case kKbdIdentify:
      Queue({kKbdAck, kKbdIdMf2[0], kKbdIdMf2[1]});
      return;
    case kKbdEcho:
      Queue({kKbdEcho});
      return;
    default:
      // ENABLE (0xF4), DISABLE (0xF5), scancode-set and the rest: acknowledged.
      Queue({kKbdAck});
      return;
  }
}

void I8042::Queue(std::initializer_list<uint8_t> bytes) {
  const bool was_empty = output_.empty();
  for (uint8_t b : bytes) {
    if (output_.size() == kOutputQueueSize) {
      counters_.output_overflows++;
      continue;
    }
    output_.push_back(b);
  }
  if (was_empty && !output_.empty()) RaiseIfEnabled();
}

void I8042::RaiseIfEnabled() {
  if (ctr_ & kCtrKbdInt) irq_->Trigger();
}

Status I8042::SendCtrlAltDel() {
  std::lock_guard<std::mutex> lock(mu_);
  constexpr size_t kSequenceLen = 4;
  if (kOutputQueueSize - output_.size() < kSequenceLen) {
    counters_.output_overflows++;
    return Error{"i8042: output buffer full, Ctrl-Alt-Del not sent"};
  }
  // Set-2 make codes: Ctrl, Alt, then the extended Del (facts 2.6).
  const bool was_empty = output_.empty();
  Queue({0x14, 0x11, 0xe0, 0x71});
  if (!was_empty) RaiseIfEnabled();  // Queue() raised only if the buffer had been empty
  return Ok();
}

I8042State I8042::Save() const {
  std::lock_guard<std::mutex> lock(mu_);
  I8042State s;
  s.ctr = ctr_;
  s.output_port = output_port_;
  s.data = data_;
  s.pending_command = pending_command_;
  s.pending_kbd_command = pending_kbd_command_;
  s.last_write_was_command = last_write_was_command_;
  s.output.assign(output_.begin(), output_.end());
  return s;
}

void I8042::Restore(const I8042State& s) {
  std::lock_guard<std::mutex> lock(mu_);
  ctr_ = s.ctr;
  output_port_ = s.output_port;
  data_ = s.data;
  pending_command_ = s.pending_command;
  pending_kbd_command_ = s.pending_kbd_command;
  last_write_was_command_ = s.last_write_was_command;
  const size_t n = std::min(s.output.size(), kOutputQueueSize);
  output_.assign(s.output.begin(), s.output.begin() + static_cast<std::ptrdiff_t>(n));
}

I8042Counters I8042::Counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

}  // namespace ember

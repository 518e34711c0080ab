#include "devices/legacy/serial.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ember {
namespace {

// Register offsets (Linux include/uapi/linux/serial_reg.h).
constexpr uint64_t kRbrThr = 0;  // RX/TX; DLL when LCR.DLAB
constexpr uint64_t kIer = 1;     // DLM when LCR.DLAB
constexpr uint64_t kIirFcr = 2;  // IIR on read, FCR on write
constexpr uint64_t kLcr = 3;
constexpr uint64_t kMcr = 4;
constexpr uint64_t kLsr = 5;
constexpr uint64_t kMsr = 6;
constexpr uint64_t kScr = 7;

constexpr uint8_t kIerRdi = 0x01;   // received data available
constexpr uint8_t kIerThri = 0x02;  // transmitter holding register empty
constexpr uint8_t kIerRlsi = 0x04;  // receiver line status
constexpr uint8_t kIerMask = 0x0f;  // bits 4-7 read as 0 on a 16550A (Linux probes bit 6)

constexpr uint8_t kIirNoInt = 0x01;
constexpr uint8_t kIirThri = 0x02;
constexpr uint8_t kIirRdi = 0x04;
constexpr uint8_t kIirRlsi = 0x06;
constexpr uint8_t kIirFifoEnabled = 0xc0;  // both bits: a 16550A with working FIFOs

constexpr uint8_t kFcrEnableFifo = 0x01;
constexpr uint8_t kFcrClearRcvr = 0x02;

constexpr uint8_t kLcrDlab = 0x80;

constexpr uint8_t kMcrDtr = 0x01;
constexpr uint8_t kMcrRts = 0x02;
constexpr uint8_t kMcrOut1 = 0x04;
constexpr uint8_t kMcrOut2 = 0x08;
constexpr uint8_t kMcrLoop = 0x10;
constexpr uint8_t kMcrMask = 0x1f;

constexpr uint8_t kLsrDr = 0x01;
constexpr uint8_t kLsrOe = 0x02;
constexpr uint8_t kLsrThre = 0x20;
constexpr uint8_t kLsrTemt = 0x40;

constexpr uint8_t kMsrCts = 0x10;
constexpr uint8_t kMsrDsr = 0x20;
constexpr uint8_t kMsrRi = 0x40;
constexpr uint8_t kMsrDcd = 0x80;

// Power-on values as vm-superio and QEMU use them: 8N1, OUT2 (the PC's IRQ gate) set, 9600 baud.
constexpr uint8_t kDefaultLcr = 0x03;
constexpr uint8_t kDefaultMcr = kMcrOut2;
constexpr uint8_t kDefaultDll = 0x0c;

}  // namespace

Serial::Serial(IrqLine* irq, int out_fd)
    : irq_(irq), out_fd_(out_fd), lcr_(kDefaultLcr), mcr_(kDefaultMcr), dll_(kDefaultDll) {}

void Serial::Read(uint64_t offset, uint8_t* data, size_t len) {
  bool room_appeared = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (len != 1 || offset >= kRegisterCount) {
      // The UART's registers are byte-wide; wider or stray reads see a floating bus.
      counters_.bad_accesses++;
      if (len) memset(data, 0xff, len);
      return;
    }
    data[0] = ReadRegister(offset, &room_appeared);
  }
  NotifyRoom(room_appeared);
}

void Serial::Write(uint64_t offset, const uint8_t* data, size_t len) {
  bool room_appeared = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (len != 1 || offset >= kRegisterCount) {
      counters_.bad_accesses++;
      return;
    }
    WriteRegister(offset, data[0], &room_appeared);
  }
  NotifyRoom(room_appeared);
}

uint8_t Serial::ReadRegister(uint64_t offset, bool* room_appeared) {
  const bool dlab = lcr_ & kLcrDlab;
  switch (offset) {
    case kRbrThr:
      return dlab ? dll_ : PopRx(room_appeared);
    case kIer:
      return dlab ? dlm_ : ier_;
    case kIirFcr: {
      const uint8_t id = InterruptId();
      // Reading IIR while it names THRE acknowledges that interrupt (16550A datasheet); the
      // 8250 driver's THRE test relies on the UART re-raising it when IER.THRI is rewritten.
      if (id == kIirThri) thre_pending_ = false;
      return id | (fifo_enabled_ ? kIirFifoEnabled : 0);
    }
    case kLcr:
      return lcr_;
    case kMcr:
      return mcr_;
    case kLsr: {
      uint8_t lsr = kLsrThre | kLsrTemt;
      if (rx_count_) lsr |= kLsrDr;
      if (overrun_) lsr |= kLsrOe;
      overrun_ = false;  // error bits clear on read
      return lsr;
    }
    case kMsr:
      return ModemStatus();
    case kScr:
      return scr_;
  }
  return 0xff;
}

void Serial::WriteRegister(uint64_t offset, uint8_t value, bool* room_appeared) {
  const bool dlab = lcr_ & kLcrDlab;
  switch (offset) {
    case kRbrThr:
      if (dlab) {
        dll_ = value;
      } else {
        Transmit(value);
      }
      return;
    case kIer:
      if (dlab) {
        dlm_ = value;
        return;
      }
      ier_ = value & kIerMask;
      // An empty transmitter raises THRE as soon as the interrupt is enabled.
      if (ier_ & kIerThri) thre_pending_ = true;
      if (InterruptId() != kIirNoInt) irq_->Trigger();
      return;
    case kIirFcr:
      fifo_enabled_ = value & kFcrEnableFifo;
      if (value & kFcrClearRcvr) ClearRx(room_appeared);
      return;
    case kLcr:
      lcr_ = value;
      return;
    case kMcr:
      mcr_ = value & kMcrMask;
      return;
    case kScr:
      scr_ = value;
      return;
    default:
      // LSR and MSR are read-only (their writes are factory-test hooks on real parts).
      return;
  }
}

void Serial::Transmit(uint8_t value) {
  bool raise = false;
  if (mcr_ & kMcrLoop) {
    // Loopback: the transmitter feeds the receiver and nothing leaves the chip.
    if (PushRx(value)) {
      raise |= (ier_ & kIerRdi) != 0;
    } else {
      overrun_ = true;
      counters_.rx_overruns++;
      raise |= (ier_ & kIerRlsi) != 0;
    }
  } else if (out_fd_ >= 0) {
    ssize_t n;
    do {
      n = ::write(out_fd_, &value, 1);
    } while (n < 0 && errno == EINTR);
    if (n == 1) {
      counters_.tx_bytes++;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // A full non-blocking FIFO or pipe must not stall the vCPU (facts 2.6: serial_out_path
      // is opened non-blocking); the byte is lost.
      counters_.tx_dropped_eagain++;
    } else {
      counters_.tx_errors++;
    }
  }
  // The byte left the holding register at once: THRE is empty again.
  if (ier_ & kIerThri) {
    thre_pending_ = true;
    raise = true;
  }
  if (raise) irq_->Trigger();
}

bool Serial::PushRx(uint8_t value) {
  if (rx_count_ == kFifoSize) return false;
  rx_[(rx_head_ + rx_count_) % kFifoSize] = value;
  rx_count_++;
  return true;
}

uint8_t Serial::PopRx(bool* room_appeared) {
  if (rx_count_ == 0) return 0;
  if (rx_count_ == kFifoSize) *room_appeared = true;
  const uint8_t value = rx_[rx_head_];
  rx_head_ = (rx_head_ + 1) % kFifoSize;
  rx_count_--;
  return value;
}

void Serial::ClearRx(bool* room_appeared) {
  if (rx_count_ == kFifoSize) *room_appeared = true;
  rx_head_ = 0;
  rx_count_ = 0;
}

// IIR bits 0-3 by 16550A priority: line status, then received data, then THRE. Modem-status
// interrupts are never raised: the modem lines are constant outside loopback.
uint8_t Serial::InterruptId() const {
  if ((ier_ & kIerRlsi) && overrun_) return kIirRlsi;
  if ((ier_ & kIerRdi) && rx_count_) return kIirRdi;
  if ((ier_ & kIerThri) && thre_pending_) return kIirThri;
  return kIirNoInt;
}

uint8_t Serial::ModemStatus() const {
  if (mcr_ & kMcrLoop) {
    // Loopback wires RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD; the 8250 probe writes
    // LOOP|OUT2|RTS and expects MSR & 0xf0 == 0x90.
    uint8_t msr = 0;
    if (mcr_ & kMcrRts) msr |= kMsrCts;
    if (mcr_ & kMcrDtr) msr |= kMsrDsr;
    if (mcr_ & kMcrOut1) msr |= kMsrRi;
    if (mcr_ & kMcrOut2) msr |= kMsrDcd;
    return msr;
  }
  // A console that is always there: carrier, data set ready, clear to send.
  return kMsrDcd | kMsrDsr | kMsrCts;
}

void Serial::NotifyRoom(bool room_appeared) {
  if (!room_appeared) return;
  std::function<void()> callback;
  {
    std::lock_guard<std::mutex> lock(mu_);
    callback = input_space_callback_;
  }
  if (callback) callback();
}

size_t Serial::EnqueueInput(const uint8_t* data, size_t len) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t accepted = 0;
  while (accepted < len && PushRx(data[accepted])) accepted++;
  counters_.rx_bytes += accepted;
  if (accepted && (ier_ & kIerRdi)) irq_->Trigger();
  return accepted;
}

size_t Serial::InputRoom() const {
  std::lock_guard<std::mutex> lock(mu_);
  return kFifoSize - rx_count_;
}

bool Serial::InputFull() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rx_count_ == kFifoSize;
}

void Serial::SetInputSpaceCallback(std::function<void()> callback) {
  std::lock_guard<std::mutex> lock(mu_);
  input_space_callback_ = std::move(callback);
}

SerialState Serial::Save() const {
  std::lock_guard<std::mutex> lock(mu_);
  SerialState s;
  s.ier = ier_;
  s.lcr = lcr_;
  s.mcr = mcr_;
  s.scr = scr_;
  s.dll = dll_;
  s.dlm = dlm_;
  s.fifo_enabled = fifo_enabled_;
  s.overrun = overrun_;
  s.thre_pending = thre_pending_;
  s.rx_fifo.reserve(rx_count_);
  for (size_t i = 0; i < rx_count_; i++) s.rx_fifo.push_back(rx_[(rx_head_ + i) % kFifoSize]);
  return s;
}

void Serial::Restore(const SerialState& s) {
  std::lock_guard<std::mutex> lock(mu_);
  ier_ = s.ier & kIerMask;
  lcr_ = s.lcr;
  mcr_ = s.mcr & kMcrMask;
  scr_ = s.scr;
  dll_ = s.dll;
  dlm_ = s.dlm;
  fifo_enabled_ = s.fifo_enabled;
  overrun_ = s.overrun;
  thre_pending_ = s.thre_pending;
  rx_head_ = 0;
  rx_count_ = std::min(s.rx_fifo.size(), kFifoSize);
  std::copy_n(s.rx_fifo.begin(), rx_count_, rx_.begin());
}

SerialCounters Serial::Counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

}  // namespace ember

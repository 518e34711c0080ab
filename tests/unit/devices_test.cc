// Offline tests of the device bus and the legacy x86 devices (UART, i8042, boot timer).
#include <fcntl.h>
#include <gtest/gtest.h>

#include "vmm/base/clock.h"
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "devices/bus.h"
#include "devices/legacy/boot_timer.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/serial.h"
#include "tests/support/recording_irq_line.h"
#include "vmm/base/log.h"
#include "vmm/base/unique_fd.h"

namespace ember {
namespace {

// --- Bus ---------------------------------------------------------------------------------------

// Remembers the last access and answers reads with the low byte of the offset.
class FakeDevice : public BusDevice {
 public:
  void Read(uint64_t offset, uint8_t* data, size_t len) override {
    reads++;
    last_offset = offset;
    for (size_t i = 0; i < len; i++) data[i] = static_cast<uint8_t>(offset + i);
  }
  void Write(uint64_t offset, const uint8_t* data, size_t len) override {
    writes++;
    last_offset = offset;
    last_write.assign(data, data + len);
  }
  int reads = 0;
  int writes = 0;
  uint64_t last_offset = 0;
  std::vector<uint8_t> last_write;
};

TEST(BusTest, InsertRejectsOverlapZeroLengthWrapAndNull) {
  Bus bus;
  auto dev = std::make_shared<FakeDevice>();
  ASSERT_TRUE(bus.Insert(dev, 0x100, 0x10).ok());
  EXPECT_FALSE(bus.Insert(dev, 0x100, 0x10).ok());  // identical
  EXPECT_FALSE(bus.Insert(dev, 0xf8, 0x9).ok());    // tail overlaps the head
  EXPECT_FALSE(bus.Insert(dev, 0x10f, 0x1).ok());   // last byte
  EXPECT_FALSE(bus.Insert(dev, 0x104, 0x2).ok());   // inside
  EXPECT_FALSE(bus.Insert(dev, 0x0, 0x1000).ok());  // around
  EXPECT_FALSE(bus.Insert(dev, 0x200, 0).ok());
  EXPECT_FALSE(bus.Insert(dev, UINT64_MAX, 2).ok());
  EXPECT_FALSE(bus.Insert(nullptr, 0x300, 1).ok());
  EXPECT_TRUE(bus.Insert(dev, 0xf8, 0x8).ok());      // adjacent below
  EXPECT_TRUE(bus.Insert(dev, 0x110, 0x8).ok());     // adjacent above
  EXPECT_TRUE(bus.Insert(dev, UINT64_MAX, 1).ok());  // the very last byte
  EXPECT_EQ(bus.size(), 4u);
}

TEST(BusTest, LookupPassesOffsetsAndFindsEachRange) {
  Bus bus;
  std::vector<std::shared_ptr<FakeDevice>> devs;
  // Inserted out of order: the bus keeps them sorted.
  for (uint64_t base : {0x500u, 0x100u, 0x300u, 0x3f8u, 0x60u}) {
    devs.push_back(std::make_shared<FakeDevice>());
    ASSERT_TRUE(bus.Insert(devs.back(), base, 8).ok());
  }
  uint8_t b = 0;
  ASSERT_TRUE(bus.Read(0x3fd, &b, 1));
  EXPECT_EQ(devs[3]->reads, 1);
  EXPECT_EQ(devs[3]->last_offset, 5u);
  EXPECT_EQ(b, 5);
  const uint8_t w[4] = {1, 2, 3, 4};
  ASSERT_TRUE(bus.Write(0x504, w, 4));  // exactly reaches the end
  EXPECT_EQ(devs[0]->last_offset, 4u);
  EXPECT_EQ(devs[0]->last_write, std::vector<uint8_t>(w, w + 4));
  ASSERT_TRUE(bus.Read(0x60, &b, 1));
  EXPECT_EQ(devs[4]->reads, 1);
  EXPECT_EQ(bus.unmapped_reads(), 0u);
  EXPECT_EQ(bus.unmapped_writes(), 0u);
}

TEST(BusTest, UnmappedAndStraddlingAccessesAreCountedAndReadAllOnes) {
  Bus bus;
  auto dev = std::make_shared<FakeDevice>();
  ASSERT_TRUE(bus.Insert(dev, 0x1000, 0x10).ok());
  uint8_t buf[4] = {0, 0, 0, 0};
  EXPECT_FALSE(bus.Read(0xfff, buf, 1));
  EXPECT_EQ(buf[0], 0xff);
  EXPECT_FALSE(bus.Read(0x100e, buf, 4));  // straddles the end
  EXPECT_EQ(buf[3], 0xff);
  EXPECT_FALSE(bus.Read(0x1010, buf, 1));
  EXPECT_FALSE(bus.Write(0x0, buf, 1));
  EXPECT_FALSE(bus.Write(0x100f, buf, 2));
  EXPECT_FALSE(bus.Read(UINT64_MAX, buf, 4));
  EXPECT_EQ(dev->reads, 0);
  EXPECT_EQ(dev->writes, 0);
  EXPECT_EQ(bus.unmapped_reads(), 4u);
  EXPECT_EQ(bus.unmapped_writes(), 2u);
}

TEST(BusTest, ConcurrentDispatchCountsEveryMiss) {
  Bus bus;
  ASSERT_TRUE(bus.Insert(std::make_shared<FakeDevice>(), 0x10, 1).ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&bus] {
      uint8_t b;
      for (int i = 0; i < 1000; i++) bus.Read(0x20, &b, 1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bus.unmapped_reads(), 4000u);
}

// --- Serial ------------------------------------------------------------------------------------

constexpr uint64_t kRbr = 0, kIer = 1, kIir = 2, kFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6,
                   kScr = 7;

struct Pipe {
  UniqueFd read;
  UniqueFd write;
  static Pipe Create(int flags = 0) {
    int fds[2];
    EXPECT_EQ(pipe2(fds, O_CLOEXEC | flags), 0);
    return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
  }
  std::string Drain() const {
    std::string out;
    char buf[256];
    int fl = fcntl(read.get(), F_GETFL);
    fcntl(read.get(), F_SETFL, fl | O_NONBLOCK);
    for (;;) {
      ssize_t n = ::read(read.get(), buf, sizeof(buf));
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
};

uint8_t In(BusDevice& d, uint64_t off) {
  uint8_t v = 0;
  d.Read(off, &v, 1);
  return v;
}
void Out(BusDevice& d, uint64_t off, uint8_t v) { d.Write(off, &v, 1); }

TEST(SerialTest, ScratchAndIerReadBackAsThe8250ProbeExpects) {
  RecordingIrqLine irq;
  Serial s(&irq, -1);
  for (uint8_t v : {0xa5, 0x5a}) {
    Out(s, kScr, v);
    EXPECT_EQ(In(s, kScr), v);
  }
  // autoconfig(): IER=0 reads 0, IER=0x0f reads 0x0f; bits 4-7 do not stick (UUE probe).
  Out(s, kIer, 0);
  EXPECT_EQ(In(s, kIer) & 0x0f, 0);
  Out(s, kIer, 0x0f);
  EXPECT_EQ(In(s, kIer), 0x0f);
  Out(s, kIer, 0xff);
  EXPECT_EQ(In(s, kIer), 0x0f);
}

TEST(SerialTest, LoopbackMirrorsMcrInMsrAndFeedsTheReceiver) {
  RecordingIrqLine irq;
  Pipe out = Pipe::Create();
  Serial s(&irq, out.write.get());
  Out(s, kMcr, 0x10 | 0x0a);  // LOOP | OUT2 | RTS, the 8250 probe
  EXPECT_EQ(In(s, kMsr) & 0xf0, 0x90);
  Out(s, kMcr, 0x10 | 0x05);  // LOOP | OUT1 | DTR
  EXPECT_EQ(In(s, kMsr) & 0xf0, 0x60);
  Out(s, kRbr, 'x');
  EXPECT_EQ(In(s, kLsr) & 0x01, 0x01);
  EXPECT_EQ(In(s, kRbr), 'x');
  EXPECT_EQ(In(s, kLsr) & 0x01, 0x00);
  EXPECT_EQ(out.Drain(), "");  // nothing left the chip
  Out(s, kMcr, 0x08);
  EXPECT_EQ(In(s, kMsr) & 0xf0, 0xb0);  // DCD|DSR|CTS: a console that is always there
}

TEST(SerialTest, LoopbackOverrunSetsOeUntilLsrIsRead) {
  RecordingIrqLine irq;
  Serial s(&irq, -1);
  Out(s, kMcr, 0x10);
  for (size_t i = 0; i < Serial::kFifoSize + 1; i++) Out(s, kRbr, static_cast<uint8_t>(i));
  EXPECT_EQ(s.Counters().rx_overruns, 1u);
  EXPECT_EQ(In(s, kLsr) & 0x02, 0x02);
  EXPECT_EQ(In(s, kLsr) & 0x02, 0x00);
}

TEST(SerialTest, DlabSelectsTheDivisorLatch) {
  RecordingIrqLine irq;
  Pipe out = Pipe::Create();
  Serial s(&irq, out.write.get());
  Out(s, kIer, 0x01);
  Out(s, kLcr, 0x83);
  Out(s, kRbr, 0x01);  // DLL, not THR
  Out(s, kIer, 0x00);  // DLM, not IER
  EXPECT_EQ(In(s, kRbr), 0x01);
  EXPECT_EQ(In(s, kIer), 0x00);
  Out(s, kLcr, 0x03);
  EXPECT_EQ(In(s, kLcr), 0x03);
  EXPECT_EQ(In(s, kIer), 0x01);  // IER untouched
  EXPECT_EQ(out.Drain(), "");
}

TEST(SerialTest, FifoEnableShowsInIirTopBits) {
  RecordingIrqLine irq;
  Serial s(&irq, -1);
  EXPECT_EQ(In(s, kIir), 0x01);
  Out(s, kFcr, 0x01);
  EXPECT_EQ(In(s, kIir) >> 6, 3);  // 16550A
  Out(s, kFcr, 0x00);
  EXPECT_EQ(In(s, kIir) >> 6, 0);
}

TEST(SerialTest, ThreInterruptOnEnableIsAcknowledgedByIirAndReasserted) {
  RecordingIrqLine irq;
  Serial s(&irq, -1);
  EXPECT_EQ(In(s, kLsr) & 0x60, 0x60);  // THRE|TEMT
  Out(s, kIer, 0x02);
  EXPECT_EQ(irq.TakeCount(), 1u);
  EXPECT_EQ(In(s, kIir), 0x02);
  EXPECT_EQ(In(s, kIir), 0x01);  // reading IIR acknowledged THRE
  // serial8250_startup's THRE test: IER=0 then IER=THRI must re-raise it.
  Out(s, kIer, 0x00);
  Out(s, kIer, 0x02);
  EXPECT_EQ(In(s, kIir), 0x02);
  EXPECT_EQ(irq.TakeCount(), 1u);
  Out(s, kRbr, 'a');  // every transmitted byte empties THR again
  EXPECT_EQ(irq.TakeCount(), 1u);
  EXPECT_EQ(In(s, kIir), 0x02);
  Out(s, kIer, 0x00);
  Out(s, kRbr, 'b');
  EXPECT_EQ(irq.count(), 0u);
  EXPECT_EQ(In(s, kIir), 0x01);
}

TEST(SerialTest, ReceivedDataRaisesIrqAndOutranksThre) {
  RecordingIrqLine irq;
  Serial s(&irq, -1);
  const uint8_t in[] = {'h', 'i'};
  EXPECT_EQ(s.EnqueueInput(in, 2), 2u);
  EXPECT_EQ(irq.count(), 0u);  // IER.RDI off
  EXPECT_EQ(In(s, kIir), 0x01);
  Out(s, kIer, 0x03);  // RDI | THRI
  EXPECT_EQ(irq.TakeCount(), 1u);
  EXPECT_EQ(In(s, kIir), 0x04);  // RX data first
  EXPECT_EQ(In(s, kLsr) & 0x01, 0x01);
  EXPECT_EQ(In(s, kRbr), 'h');
  EXPECT_EQ(In(s, kRbr), 'i');
  EXPECT_EQ(In(s, kLsr) & 0x01, 0x00);
  EXPECT_EQ(In(s, kIir), 0x02);  // then THRE
  EXPECT_EQ(In(s, kIir), 0x01);
  EXPECT_EQ(s.EnqueueInput(in, 1), 1u);
  EXPECT_EQ(irq.TakeCount(), 1u);
  EXPECT_EQ(In(s, kIir), 0x04);
  EXPECT_EQ(In(s, kRbr), 'h');
  EXPECT_EQ(In(s, kRbr), 0);  // an empty receiver reads 0
}

TEST(SerialTest, FullFifoPushesBackAndCallsBackWhenTheGuestMakesRoom) {
  RecordingIrqLine irq;
  Serial s(&irq, -1);
  int callbacks = 0;
  s.SetInputSpaceCallback([&] { callbacks++; });
  std::vector<uint8_t> in(100);
  for (size_t i = 0; i < in.size(); i++) in[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(s.InputRoom(), Serial::kFifoSize);
  EXPECT_EQ(s.EnqueueInput(in.data(), in.size()), Serial::kFifoSize);
  EXPECT_EQ(s.InputRoom(), 0u);
  EXPECT_TRUE(s.InputFull());
  EXPECT_EQ(s.EnqueueInput(in.data(), 1), 0u);
  EXPECT_EQ(In(s, kRbr), 0);
  EXPECT_EQ(callbacks, 1);
  EXPECT_FALSE(s.InputFull());
  EXPECT_EQ(s.InputRoom(), 1u);
  EXPECT_EQ(In(s, kRbr), 1);
  EXPECT_EQ(callbacks, 1);  // only the read out of a full FIFO
  EXPECT_EQ(s.EnqueueInput(in.data() + 64, 36), 2u);
  for (int i = 2; i < 64; i++) EXPECT_EQ(In(s, kRbr), i);
  EXPECT_EQ(In(s, kRbr), 64);
  EXPECT_EQ(In(s, kRbr), 65);
  EXPECT_EQ(callbacks, 2);
  EXPECT_EQ(s.Counters().rx_bytes, 66u);
}

TEST(SerialTest, ClearingAFullFifoCallsBack) {
  RecordingIrqLine irq;
  Serial s(&irq, -1);
  int callbacks = 0;
  s.SetInputSpaceCallback([&] { callbacks++; });
  std::vector<uint8_t> in(Serial::kFifoSize, 'z');
  ASSERT_EQ(s.EnqueueInput(in.data(), in.size()), in.size());
  Out(s, kFcr, 0x03);  // ENABLE_FIFO | CLEAR_RCVR
  EXPECT_EQ(callbacks, 1);
  EXPECT_EQ(s.InputRoom(), Serial::kFifoSize);
}

// The register dance of Linux's autoconfig()/autoconfig_16550a() and serial8250_startup(): the
// UART must come out as a plain 16550A with no EFR, no 64-byte FIFO and a working THRE.
TEST(SerialTest, LinuxAutoconfigSeesA16550A) {
  RecordingIrqLine irq;
  Serial s(&irq, -1);
  Out(s, kIer, 0);
  EXPECT_EQ(In(s, kIer) & 0x0f, 0);
  Out(s, kIer, 0x0f);
  EXPECT_EQ(In(s, kIer) & 0x0f, 0x0f);
  Out(s, kIer, 0);
  Out(s, kMcr, 0x1a);
  EXPECT_EQ(In(s, kMsr) & 0xf0, 0x90);
  Out(s, kMcr, 0x08);
  Out(s, kLcr, 0x00);
  Out(s, kFcr, 0x01);
  EXPECT_EQ(In(s, kIir) >> 6, 3);  // FIFOs: a 16550A
  Out(s, kLcr, 0x80);              // UART_LCR_CONF_MODE_A
  EXPECT_NE(In(s, kIir), 0);       // EFR would read 0 on a ST16C650V1
  Out(s, kLcr, 0xbf);              // UART_LCR_CONF_MODE_B
  EXPECT_NE(In(s, kIir), 0);       // and here on a 16650 and up
  Out(s, kLcr, 0x80);
  Out(s, kFcr, 0x21);              // ENABLE_FIFO | UART_FCR7_64BYTE
  EXPECT_NE(In(s, kIir) >> 5, 7);  // not a 16750
  Out(s, kLcr, 0x00);
  Out(s, kIer, 0x40);  // UART_IER_UUE does not stick: not an XScale
  EXPECT_EQ(In(s, kIer) & 0x40, 0);
  Out(s, kIer, 0);
  // serial8250_startup: clear FIFOs, read the interrupt registers, LSR must not float.
  Out(s, kFcr, 0x07);
  Out(s, kFcr, 0x00);
  In(s, kLsr);
  In(s, kRbr);
  In(s, kIir);
  In(s, kMsr);
  EXPECT_NE(In(s, kLsr), 0xff);
  EXPECT_EQ(In(s, kLsr) & 0x40, 0x40);
  Out(s, kIer, 0x02);
  EXPECT_EQ(In(s, kIir) & 0x01, 0);
  Out(s, kIer, 0);
  Out(s, kIer, 0x02);
  EXPECT_EQ(In(s, kIir) & 0x01, 0);  // THRE re-asserted: no UART_BUG_THRE
  Out(s, kIer, 0);
}

// A vCPU thread drains the receiver through the bus while the VMM thread feeds it with
// back-pressure, as vmm.cc does: every byte arrives, in order.
TEST(SerialTest, ConcurrentInputIsNeverLostOrReordered) {
  RecordingIrqLine irq;
  auto s = std::make_shared<Serial>(&irq, -1);
  Bus bus;
  ASSERT_TRUE(bus.Insert(s, 0x3f8, Serial::kRegisterCount).ok());
  constexpr size_t kTotal = 20000;
  std::thread guest([&bus] {
    size_t next = 0;
    while (next < kTotal) {
      uint8_t lsr = 0;
      bus.Read(0x3f8 + kLsr, &lsr, 1);
      if (!(lsr & 0x01)) continue;
      uint8_t b = 0;
      bus.Read(0x3f8 + kRbr, &b, 1);
      ASSERT_EQ(b, static_cast<uint8_t>(next));
      next++;
    }
  });
  size_t sent = 0;
  while (sent < kTotal) {
    uint8_t chunk[16];
    size_t n = std::min(sizeof(chunk), kTotal - sent);
    for (size_t i = 0; i < n; i++) chunk[i] = static_cast<uint8_t>(sent + i);
    sent += s->EnqueueInput(chunk, n);
  }
  guest.join();
  EXPECT_EQ(s->Counters().rx_bytes, kTotal);
}

TEST(SerialTest, OutputReachesThePipe) {
  RecordingIrqLine irq;
  Pipe out = Pipe::Create();
  Serial s(&irq, out.write.get());
  for (char c : std::string("hello\n")) Out(s, kRbr, static_cast<uint8_t>(c));
  EXPECT_EQ(out.Drain(), "hello\n");
  EXPECT_EQ(s.Counters().tx_bytes, 6u);
}

TEST(SerialTest, FullNonBlockingOutputDropsAndCounts) {
  RecordingIrqLine irq;
  Pipe out = Pipe::Create(O_NONBLOCK);
  const int capacity = fcntl(out.write.get(), F_GETPIPE_SZ);
  ASSERT_GT(capacity, 0);
  Serial s(&irq, out.write.get());
  for (int i = 0; i < capacity + 10; i++) Out(s, kRbr, 'x');
  SerialCounters c = s.Counters();
  EXPECT_EQ(c.tx_bytes, static_cast<uint64_t>(capacity));
  EXPECT_EQ(c.tx_dropped_eagain, 10u);
}

TEST(SerialTest, ClosedOutputCountsErrors) {
  RecordingIrqLine irq;
  Pipe out = Pipe::Create();
  out.read.reset();
  // So the write fails with EPIPE instead of killing the test.
  auto saved = signal(SIGPIPE, SIG_IGN);
  Serial s(&irq, out.write.get());
  Out(s, kRbr, 'x');
  signal(SIGPIPE, saved);
  EXPECT_EQ(s.Counters().tx_errors, 1u);
}

TEST(SerialTest, SaveRestoreRoundTrip) {
  RecordingIrqLine irq;
  Serial a(&irq, -1);
  Out(a, kLcr, 0x80);
  Out(a, kRbr, 0x34);
  Out(a, kIer, 0x12);
  Out(a, kLcr, 0x1b);
  Out(a, kIer, 0x05);
  Out(a, kScr, 0x77);
  Out(a, kMcr, 0x0b);
  Out(a, kFcr, 0x01);
  const uint8_t in[] = {'a', 'b', 'c'};
  a.EnqueueInput(in, 3);
  EXPECT_EQ(In(a, kRbr), 'a');
  SerialState st = a.Save();
  EXPECT_EQ(st.rx_fifo, (std::vector<uint8_t>{'b', 'c'}));

  Serial b(&irq, -1);
  b.Restore(st);
  EXPECT_EQ(In(b, kScr), 0x77);
  EXPECT_EQ(In(b, kMcr), 0x0b);
  EXPECT_EQ(In(b, kIer), 0x05);
  EXPECT_EQ(In(b, kIir), 0xc4);
  EXPECT_EQ(In(b, kRbr), 'b');
  EXPECT_EQ(In(b, kRbr), 'c');
  Out(b, kLcr, 0x9b);
  EXPECT_EQ(In(b, kRbr), 0x34);
  EXPECT_EQ(In(b, kIer), 0x12);

  SerialState hostile;
  hostile.rx_fifo.assign(1000, 1);
  hostile.ier = 0xff;
  b.Restore(hostile);
  EXPECT_EQ(b.InputRoom(), 0u);
  EXPECT_EQ(In(b, kIer), 0x0f);
}

// --- i8042 -------------------------------------------------------------------------------------

constexpr uint64_t kData = 0, kCmd = 4;

std::vector<uint8_t> DrainI8042(I8042& k) {
  std::vector<uint8_t> out;
  while (In(k, kCmd) & 0x01) out.push_back(In(k, kData));
  return out;
}

TEST(I8042Test, SelfTestsAndCtrRoundTrip) {
  RecordingIrqLine irq;
  I8042 k(&irq, [] {});
  EXPECT_EQ(In(k, kCmd) & 0x01, 0);
  Out(k, kCmd, 0xaa);
  EXPECT_EQ(In(k, kCmd) & 0x09, 0x09);  // OBF, last write was a command
  EXPECT_EQ(In(k, kData), 0x55);
  EXPECT_EQ(In(k, kCmd) & 0x01, 0);
  Out(k, kCmd, 0xab);
  EXPECT_EQ(DrainI8042(k), std::vector<uint8_t>{0x00});

  Out(k, kCmd, 0x60);
  Out(k, kData, 0x47);
  EXPECT_EQ(In(k, kCmd) & 0x08, 0);  // last write was data
  Out(k, kCmd, 0x20);
  EXPECT_EQ(DrainI8042(k), std::vector<uint8_t>{0x47});
  Out(k, kCmd, 0xad);
  Out(k, kCmd, 0x20);
  EXPECT_EQ(DrainI8042(k), std::vector<uint8_t>{0x57});
  Out(k, kCmd, 0xae);
  Out(k, kCmd, 0x20);
  EXPECT_EQ(DrainI8042(k), std::vector<uint8_t>{0x47});

  Out(k, kCmd, 0xd1);
  Out(k, kData, 0xdf);
  Out(k, kCmd, 0xd0);
  EXPECT_EQ(DrainI8042(k), std::vector<uint8_t>{0xdf});
}

TEST(I8042Test, ResetCommandCallsTheCallbackOnce) {
  RecordingIrqLine irq;
  int resets = 0;
  I8042 k(&irq, [&] { resets++; });
  Out(k, kData, 0xfe);  // on the data port it is a keyboard byte, not a reset
  EXPECT_EQ(resets, 0);
  Out(k, kCmd, 0xfe);
  EXPECT_EQ(resets, 1);
  EXPECT_EQ(k.Counters().reset_requests, 1u);
  // Linux's BOOT_KBD reboot: up to ten times "wait for IBF clear, write 0xFE".
  for (int i = 0; i < 9; i++) {
    EXPECT_EQ(In(k, kCmd) & 0x02, 0);
    Out(k, kCmd, 0xfe);
  }
  EXPECT_EQ(resets, 1);
  EXPECT_EQ(k.Counters().reset_requests, 10u);
}

// The controller half of Linux's i8042_controller_check/_init with i8042.dumbkbd: flush, read
// the CTR until two reads agree, write it back with the keyboard disabled, then enable it.
TEST(I8042Test, LinuxInitSequence) {
  RecordingIrqLine irq;
  I8042 k(&irq, [] {});
  ASSERT_TRUE(k.SendCtrlAltDel().ok());  // stale bytes the flush must be able to drain
  int flushed = 0;
  while ((In(k, kCmd) & 0x01) && flushed < 16) {
    In(k, kData);
    flushed++;
  }
  EXPECT_EQ(flushed, 4);
  EXPECT_NE(In(k, kCmd), 0xff);      // "No controller found" if the status reads as a floating bus
  EXPECT_NE(In(k, kCmd) & 0x10, 0);  // KEYLOCK: not inhibited
  uint8_t ctr[2];
  for (uint8_t& c : ctr) {
    EXPECT_EQ(In(k, kCmd) & 0x02, 0);  // IBF clear: the command may be written
    Out(k, kCmd, 0x20);
    ASSERT_EQ(In(k, kCmd) & 0x01, 0x01);
    c = In(k, kData);
  }
  EXPECT_EQ(ctr[0], ctr[1]);
  EXPECT_EQ(ctr[0] & 0x40, 0);  // no XLATE: Linux goes direct and atkbd expects set 2
  uint8_t init = static_cast<uint8_t>((ctr[0] | 0x10) & ~0x01);
  Out(k, kCmd, 0x60);
  Out(k, kData, init);
  Out(k, kCmd, 0xaa);
  EXPECT_EQ(DrainI8042(k), std::vector<uint8_t>{0x55});
  irq.TakeCount();
  uint8_t enabled = static_cast<uint8_t>((init & ~0x10) | 0x01);
  Out(k, kCmd, 0x60);
  Out(k, kData, enabled);
  Out(k, kCmd, 0x20);
  EXPECT_EQ(DrainI8042(k), std::vector<uint8_t>{enabled});
  EXPECT_EQ(k.Counters().unknown_commands, 0u);
}

TEST(I8042Test, KeyboardCommandsAreAcknowledged) {
  RecordingIrqLine irq;
  I8042 k(&irq, [] {});
  Out(k, kData, 0xff);
  EXPECT_EQ(DrainI8042(k), (std::vector<uint8_t>{0xfa, 0xaa}));
  Out(k, kData, 0xf4);
  EXPECT_EQ(DrainI8042(k), std::vector<uint8_t>{0xfa});
  Out(k, kData, 0xf5);
  EXPECT_EQ(DrainI8042(k), std::vector<uint8_t>{0xfa});
  Out(k, kData, 0xed);
  Out(k, kData, 0x07);  // LED argument, not a command
  EXPECT_EQ(DrainI8042(k), (std::vector<uint8_t>{0xfa, 0xfa}));
  Out(k, kData, 0xf3);
  Out(k, kData, 0xff);  // typematic argument, not a reset
  EXPECT_EQ(DrainI8042(k), (std::vector<uint8_t>{0xfa, 0xfa}));
  Out(k, kData, 0xf2);
  EXPECT_EQ(DrainI8042(k), (std::vector<uint8_t>{0xfa, 0xab, 0x83}));
  Out(k, kData, 0x42);
  EXPECT_EQ(DrainI8042(k), std::vector<uint8_t>{0xfa});
}

TEST(I8042Test, UnknownCommandsAreIgnoredAndCounted) {
  RecordingIrqLine irq;
  I8042 k(&irq, [] {});
  Out(k, kCmd, 0x12);
  Out(k, kCmd, 0xc0);
  EXPECT_EQ(k.Counters().unknown_commands, 2u);
  EXPECT_EQ(In(k, kCmd) & 0x01, 0);
  EXPECT_EQ(In(k, 1), 0);
  EXPECT_EQ(In(k, 3), 0);
}

TEST(I8042Test, CtrlAltDelQueuesScancodesAndRaisesIrq1) {
  RecordingIrqLine irq;
  I8042 k(&irq, [] {});
  ASSERT_TRUE(k.SendCtrlAltDel().ok());
  EXPECT_EQ(irq.TakeCount(), 1u);
  std::vector<uint8_t> got;
  while (In(k, kCmd) & 0x01) {
    got.push_back(In(k, kData));
  }
  EXPECT_EQ(got, (std::vector<uint8_t>{0x14, 0x11, 0xe0, 0x71}));
  EXPECT_EQ(irq.TakeCount(), 3u);  // one more edge per remaining byte, as Linux reads one per IRQ
  // The buffer holds 16 bytes: four sequences fit, the fifth does not.
  for (int i = 0; i < 4; i++) EXPECT_TRUE(k.SendCtrlAltDel().ok());
  EXPECT_FALSE(k.SendCtrlAltDel().ok());
}

// SendCtrlAltDel comes from the VMM thread while a vCPU thread polls the ports: every sequence
// arrives whole and in order, and no byte goes unannounced (at least one edge per byte; a send
// into a buffer still holding bytes adds one more), however the two interleave.
TEST(I8042Test, CtrlAltDelFromAnotherThreadArrivesWhole) {
  RecordingIrqLine irq;
  I8042 k(&irq, [] {});
  constexpr int kSequences = 200;
  std::vector<uint8_t> got;
  std::atomic<bool> sent_all{false};
  std::thread vcpu([&] {
    // Reads until every byte is in: the sender is done and the buffer is empty.
    while (!(sent_all.load() && !(In(k, kCmd) & 0x01))) {
      if (In(k, kCmd) & 0x01) got.push_back(In(k, kData));
    }
  });
  int sent = 0;
  while (sent < kSequences) {
    if (k.SendCtrlAltDel().ok()) sent++;  // a full buffer refuses; retry once drained
  }
  sent_all = true;
  vcpu.join();
  ASSERT_EQ(got.size(), 4u * kSequences);
  for (size_t i = 0; i < got.size(); i += 4) {
    ASSERT_EQ(std::vector<uint8_t>(got.begin() + i, got.begin() + i + 4),
              (std::vector<uint8_t>{0x14, 0x11, 0xe0, 0x71}))
        << "sequence " << i / 4;
  }
  EXPECT_GE(irq.count(), 4u * kSequences);
}

TEST(I8042Test, NoIrqWhenKeyboardInterruptsAreDisabled) {
  RecordingIrqLine irq;
  I8042 k(&irq, [] {});
  Out(k, kCmd, 0x60);
  Out(k, kData, 0x04);  // KBDINT off
  Out(k, kCmd, 0xaa);
  ASSERT_TRUE(k.SendCtrlAltDel().ok());
  EXPECT_EQ(irq.TakeCount(), 0u);
  Out(k, kCmd, 0x60);
  Out(k, kData, 0x05);  // on again with bytes waiting: announce them
  EXPECT_EQ(irq.TakeCount(), 1u);
}

TEST(I8042Test, SaveRestoreRoundTrip) {
  RecordingIrqLine irq;
  I8042 a(&irq, [] {});
  Out(a, kCmd, 0x60);
  Out(a, kData, 0x45);
  ASSERT_TRUE(a.SendCtrlAltDel().ok());
  EXPECT_EQ(In(a, kData), 0x14);
  Out(a, kData, 0xed);  // leaves a keyboard command waiting for its argument
  I8042State st = a.Save();
  I8042 b(&irq, [] {});
  b.Restore(st);
  EXPECT_EQ(b.Save().ctr, 0x45);
  Out(b, kData, 0x01);  // the LED argument
  EXPECT_EQ(DrainI8042(b), (std::vector<uint8_t>{0x11, 0xe0, 0x71, 0xfa, 0xfa}));
}

// --- Boot timer --------------------------------------------------------------------------------

class LoggerCapture {
 public:
  LoggerCapture() : saved_(CurrentLoggerConfig()), pipe_(Pipe::Create()) {
    LoggerConfig c = saved_;
    c.level = LogLevel::kInfo;
    c.fd = pipe_.write.get();
    ConfigureLogger(c);
  }
  ~LoggerCapture() { ConfigureLogger(saved_); }
  std::string Take() { return pipe_.Drain(); }

 private:
  LoggerConfig saved_;
  Pipe pipe_;
};

TEST(BootTimerTest, LogsOnlyForTheMagicByte) {
  LoggerCapture log;
  const uint64_t start = MonotonicUs() - 2500;
  BootTimer t(start, ProcessCpuUs());
  const uint8_t other = 122;
  t.Write(0, &other, 1);
  const uint8_t magic = 123;
  t.Write(1, &magic, 1);
  const uint8_t wide[4] = {123, 0, 0, 0};
  t.Write(0, wide, 4);
  EXPECT_EQ(log.Take(), "");
  EXPECT_FALSE(t.Measured().has_value());
  uint8_t r[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  t.Read(0, r, 8);
  EXPECT_EQ(r[7], 0);

  t.Write(0, &magic, 1);
  std::string line = log.Take();
  EXPECT_NE(line.find("Guest-boot-time = "), std::string::npos) << line;
  EXPECT_NE(line.find(" CPU us "), std::string::npos) << line;
  ASSERT_TRUE(t.Measured().has_value());
  EXPECT_GE(t.Measured()->wall_us, 2500u);
  unsigned long long us = 0, ms = 0;
  ASSERT_EQ(sscanf(line.c_str() + line.find("Guest-boot-time"), "Guest-boot-time = %llu us %llu ms",
                   &us, &ms),
            2);
  EXPECT_EQ(us, t.Measured()->wall_us);
  EXPECT_EQ(ms, us / 1000);
}

// --- Hostile widths ----------------------------------------------------------------------------

TEST(DevicesTest, OddWidthAccessesNeverCrash) {
  RecordingIrqLine irq;
  Pipe out = Pipe::Create(O_NONBLOCK);
  LoggerCapture log;
  int resets = 0;
  std::vector<std::pair<std::shared_ptr<BusDevice>, uint64_t>> devices = {
      {std::make_shared<Serial>(&irq, out.write.get()), Serial::kRegisterCount},
      {std::make_shared<I8042>(&irq, [&] { resets++; }), I8042::kPortCount},
      {std::make_shared<BootTimer>(0, 0), 16},
  };
  uint8_t buf[8] = {123, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe};
  for (auto& [dev, ports] : devices) {
    for (uint64_t off = 0; off < ports + 4; off++) {
      for (size_t len : {0u, 3u, 8u}) {
        dev->Write(off, buf, len);
        uint8_t r[8];
        dev->Read(off, r, len);
      }
    }
  }
  EXPECT_EQ(resets, 0);
  EXPECT_EQ(out.Drain(), "");
  EXPECT_EQ(log.Take(), "");
}

}  // namespace
}  // namespace ember

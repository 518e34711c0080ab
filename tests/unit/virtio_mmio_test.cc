// Tests of virtio::MmioTransport (virtio 1.x section 4.2) with a fake device that counts what the
// transport asks of it, and end to end with the real virtio::Block (5.2) over an image file and
// virtio::Rng (5.4): the driver's side is played by register accesses and
// tests/support/virtq_driver.h, interrupts are counted by RecordingIrqLine.
#include <gtest/gtest.h>
#include <sys/epoll.h>

#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "devices/virtio/block.h"
#include "devices/virtio/mmio_transport.h"
#include "devices/virtio/rng.h"
#include "devices/virtio/virtio_device.h"
#include "devices/virtio/virtio_spec.h"
#include "tests/support/process.h"
#include "tests/support/recording_irq_line.h"
#include "tests/support/virtq_driver.h"
#include "vmm/memory/guest_memory.h"

namespace ember {
namespace {

using testing::TempDir;
using testing::VirtqBuffer;
using testing::VirtqDriver;
using namespace virtio;  // NOLINT: the registers and constants of the spec

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kRegion2 = 2 * kMiB;
constexpr uint64_t kRamEnd = 3 * kMiB;
// Queue q's rings at kRings + q * 0x4000.
constexpr uint64_t kRings = 0x1000;
constexpr uint64_t kHeader = 0x40000;
constexpr uint64_t kDataAddr = 0x50000;
constexpr uint64_t kStatusAddr = 0x4f000;
constexpr uint64_t kImageSectors = 64;

// A device that records what the transport asks of it. ProcessQueue serves queue `index` by
// returning every chain with its writable length, through the same CheckPop/MaybeSignal path the
// real devices use.
class FakeDevice : public VirtioDevice {
 public:
  static constexpr uint32_t kId = 42;
  static constexpr uint64_t kOffered =
      Bit(kFVersion1) | Bit(kFEventIdx) | Bit(kFIndirectDesc) | Bit(3) | Bit(40);

  explicit FakeDevice(size_t queues = 2, uint16_t max_size = kMaxQueueSize)
      : VirtioDevice("fake"), queues_(queues), max_size_(max_size) {
    config_space_ = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
  }
  uint32_t device_id() const override { return kId; }
  uint64_t offered_features() const override { return kOffered; }
  size_t queue_count() const override { return queues_; }
  uint16_t queue_max_size() const override { return max_size_; }
  void Activate(const ActiveQueues& active) override {
    activations++;
    acked = active.features;
    VirtioDevice::Activate(active);
  }
  void Reset() override {
    resets++;
    VirtioDevice::Reset();
  }
  void ProcessQueue(size_t index) override {
    processed.push_back(index);
    if (!active()) return;
    Queue& q = (*active_.queues)[index];
    DescriptorChain chain;
    QueueError error;
    bool used = false;
    while (q.Pop(&chain, &error)) {
      if (!CheckPop(q, error, chain)) continue;
      q.AddUsed(chain.head, static_cast<uint32_t>(chain.writable_bytes));
      used = true;
    }
    if (error != QueueError::kNone) CheckPop(q, error, chain);
    if (used) MaybeSignal(q);
  }

  int activations = 0;
  int resets = 0;
  uint64_t acked = 0;
  std::vector<size_t> processed;

 private:
  size_t queues_;
  uint16_t max_size_;
};

class MmioTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = GuestMemory::Create({{0, kMiB}, {kRegion2, kMiB}});
    ASSERT_TRUE(m.ok()) << m.error().message;
    mem_ = std::make_unique<GuestMemory>(std::move(*m));
  }

  void Use(std::shared_ptr<VirtioDevice> device) {
    device_ = device;
    transport_ = std::make_unique<MmioTransport>(device, mem_.get(), &irq_);
  }
  void UseFake(size_t queues = 2, uint16_t max_size = kMaxQueueSize) {
    fake_ = std::make_shared<FakeDevice>(queues, max_size);
    Use(fake_);
  }

  uint32_t Reg(uint64_t offset) { return RegOf(*transport_, offset); }
  void SetReg(uint64_t offset, uint32_t value) { SetRegOf(*transport_, offset, value); }
  static uint32_t RegOf(MmioTransport& t, uint64_t offset) {
    uint32_t v = 0xdeadbeef;
    t.Read(offset, reinterpret_cast<uint8_t*>(&v), 4);
    return v;
  }
  static void SetRegOf(MmioTransport& t, uint64_t offset, uint32_t value) {
    t.Write(offset, reinterpret_cast<const uint8_t*>(&value), 4);
  }
  uint64_t DeviceFeatures() {
    SetReg(kRegDeviceFeaturesSel, 0);
    uint64_t lo = Reg(kRegDeviceFeatures);
    SetReg(kRegDeviceFeaturesSel, 1);
    return lo | uint64_t{Reg(kRegDeviceFeatures)} << 32;
  }
  void AckFeatures(uint64_t features) {
    SetReg(kRegDriverFeaturesSel, 0);
    SetReg(kRegDriverFeatures, static_cast<uint32_t>(features));
    SetReg(kRegDriverFeaturesSel, 1);
    SetReg(kRegDriverFeatures, static_cast<uint32_t>(features >> 32));
  }
  // Sets up queue `index` as `driver` describes it (while the status allows it).
  void ConfigureQueue(uint32_t index, const VirtqDriver& driver) {
    SetReg(kRegQueueSel, index);
    SetReg(kRegQueueNum, driver.size());
    SetReg(kRegQueueDescLow, static_cast<uint32_t>(driver.desc_addr()));
    SetReg(kRegQueueDescHigh, static_cast<uint32_t>(driver.desc_addr() >> 32));
    SetReg(kRegQueueDriverLow, static_cast<uint32_t>(driver.avail_addr()));
    SetReg(kRegQueueDriverHigh, static_cast<uint32_t>(driver.avail_addr() >> 32));
    SetReg(kRegQueueDeviceLow, static_cast<uint32_t>(driver.used_addr()));
    SetReg(kRegQueueDeviceHigh, static_cast<uint32_t>(driver.used_addr() >> 32));
    SetReg(kRegQueueReady, 1);
  }
  // The driver's initialisation (3.1.1) up to FEATURES_OK; returns whether it was accepted.
  bool Negotiate(uint64_t features) {
    SetReg(kRegStatus, kStatusAcknowledge);
    SetReg(kRegStatus, kStatusAcknowledge | kStatusDriver);
    AckFeatures(features);
    SetReg(kRegStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
    return Reg(kRegStatus) & kStatusFeaturesOk;
  }
  void DriverOk() {
    SetReg(kRegStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  }
  // The whole sequence with one driver per queue, the rings of queue q at kRings + q * 0x4000.
  void BringUp(uint64_t features, uint16_t size = 16) {
    ASSERT_TRUE(Negotiate(features));
    drivers_.clear();
    size_t n = device_->queue_count();
    for (size_t q = 0; q < n; q++) {
      uint64_t base = kRings + q * 0x4000;
      drivers_.emplace_back(*mem_, size, base, base + 0x1000, base + 0x2000);
      ConfigureQueue(static_cast<uint32_t>(q), drivers_.back());
    }
    DriverOk();
    ASSERT_EQ(Reg(kRegStatus) & kStatusNeedsReset, 0u);
  }
  VirtqDriver& driver(size_t q = 0) { return drivers_[q]; }

  std::unique_ptr<GuestMemory> mem_;
  RecordingIrqLine irq_;
  std::shared_ptr<VirtioDevice> device_;
  std::shared_ptr<FakeDevice> fake_;
  std::unique_ptr<MmioTransport> transport_;
  std::vector<VirtqDriver> drivers_;
};

constexpr uint64_t kDriverOkAll =
    kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk;

// --- Registers ----------------------------------------------------------------------------------

TEST_F(MmioTest, IdentifiesTheDevice) {
  UseFake();
  EXPECT_EQ(Reg(kRegMagic), 0x74726976u);
  EXPECT_EQ(Reg(kRegVersion), 2u);
  EXPECT_EQ(Reg(kRegDeviceId), FakeDevice::kId);
  EXPECT_EQ(Reg(kRegVendorId), 0u);
  EXPECT_EQ(Reg(kRegStatus), 0u);
  EXPECT_EQ(Reg(kRegInterruptStatus), 0u);
  EXPECT_EQ(Reg(kRegConfigGeneration), 0u);
  EXPECT_EQ(fake_->errors(), 0u);

  auto rng = Rng::Create(std::nullopt);
  ASSERT_TRUE(rng.ok());
  Use(*rng);
  EXPECT_EQ(Reg(kRegDeviceId), kDeviceIdEntropy);
  EXPECT_EQ(Reg(kRegMagic), kMmioMagic);
}

TEST_F(MmioTest, OffersFeaturesThroughTheSelectRegister) {
  UseFake();
  SetReg(kRegDeviceFeaturesSel, 0);
  EXPECT_EQ(Reg(kRegDeviceFeatures), static_cast<uint32_t>(FakeDevice::kOffered));
  SetReg(kRegDeviceFeaturesSel, 1);
  EXPECT_EQ(Reg(kRegDeviceFeatures), static_cast<uint32_t>(FakeDevice::kOffered >> 32));
  EXPECT_EQ(Reg(kRegDeviceFeatures) & 1, 1u);  // VERSION_1 is bit 0 of the second word
  SetReg(kRegDeviceFeaturesSel, 2);
  EXPECT_EQ(Reg(kRegDeviceFeatures), 0u);
  SetReg(kRegDeviceFeaturesSel, 0xffffffff);
  EXPECT_EQ(Reg(kRegDeviceFeatures), 0u);
  EXPECT_EQ(DeviceFeatures(), FakeDevice::kOffered);
}

TEST_F(MmioTest, AcceptsDriverFeaturesOnlyDuringNegotiation) {
  UseFake();
  // Before DRIVER: refused.
  AckFeatures(Bit(kFVersion1));
  EXPECT_EQ(transport_->Save().acked_features, 0u);
  EXPECT_EQ(fake_->errors(), 2u);

  SetReg(kRegStatus, kStatusAcknowledge);
  SetReg(kRegStatus, kStatusAcknowledge | kStatusDriver);
  AckFeatures(Bit(kFVersion1) | Bit(3));
  EXPECT_EQ(transport_->Save().acked_features, Bit(kFVersion1) | Bit(3));
  // The low word alone can be rewritten, the high word is kept.
  SetReg(kRegDriverFeaturesSel, 0);
  SetReg(kRegDriverFeatures, 0);
  EXPECT_EQ(transport_->Save().acked_features, Bit(kFVersion1));
  SetReg(kRegDriverFeaturesSel, 0);
  SetReg(kRegDriverFeatures, 1u << 3);
  // A word past the second: 0 is ignored, anything else is counted.
  uint64_t before = fake_->errors();
  SetReg(kRegDriverFeaturesSel, 2);
  SetReg(kRegDriverFeatures, 0);
  EXPECT_EQ(fake_->errors(), before);
  SetReg(kRegDriverFeatures, 1);
  EXPECT_EQ(fake_->errors(), before + 1);
  EXPECT_EQ(transport_->Save().acked_features, Bit(kFVersion1) | Bit(3));

  SetReg(kRegStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  ASSERT_TRUE(Reg(kRegStatus) & kStatusFeaturesOk);
  // After FEATURES_OK: frozen.
  SetReg(kRegDriverFeaturesSel, 0);
  SetReg(kRegDriverFeatures, 0);
  EXPECT_EQ(transport_->Save().acked_features, Bit(kFVersion1) | Bit(3));
  EXPECT_EQ(fake_->errors(), before + 2);
}

TEST_F(MmioTest, StatusBitsAreOnlyAddedInOrder) {
  UseFake();
  struct Step {
    uint32_t write;
    uint32_t expect;
    bool error;
  };
  const uint32_t A = kStatusAcknowledge, D = kStatusDriver, F = kStatusFeaturesOk,
                 O = kStatusDriverOk;
  AckFeatures(0);  // refused before DRIVER: two errors
  uint64_t errors = fake_->errors();
  ASSERT_EQ(errors, 2u);
  for (Step s : {
           Step{D, 0, true},          // DRIVER before ACKNOWLEDGE
           Step{A | F, 0, true},      // skips DRIVER
           Step{A | D | O, 0, true},  // skips FEATURES_OK
           Step{0x10, 0, true},       // an unknown bit
           Step{A, A, false},
           Step{A, A, false},  // rewriting the same value is fine
           Step{A | D, A | D, false},
           Step{D, A | D, true},      // clears ACKNOWLEDGE
           Step{A | D | O, A | D, true},
           Step{A | D | 0x20, A | D, true},
       }) {
    SCOPED_TRACE(s.write);
    SetReg(kRegStatus, s.write);
    EXPECT_EQ(Reg(kRegStatus), s.expect);
    if (s.error) errors++;
    EXPECT_EQ(fake_->errors(), errors);
  }
  AckFeatures(Bit(kFVersion1));
  SetReg(kRegStatus, A | D | F);
  EXPECT_EQ(Reg(kRegStatus), A | D | F);
  SetReg(kRegStatus, A | F);  // clears DRIVER
  EXPECT_EQ(Reg(kRegStatus), A | D | F);
  EXPECT_EQ(fake_->errors(), errors + 1);
  EXPECT_EQ(fake_->activations, 0);
  // FAILED is always accepted and sticks until a reset.
  SetReg(kRegStatus, kStatusFailed);
  EXPECT_EQ(Reg(kRegStatus), A | D | F | kStatusFailed);
  SetReg(kRegStatus, 0);
  EXPECT_EQ(Reg(kRegStatus), 0u);
}

TEST_F(MmioTest, RefusesFeaturesOkWithoutVersion1) {
  UseFake();
  EXPECT_FALSE(Negotiate(Bit(kFEventIdx)));
  EXPECT_EQ(Reg(kRegStatus), kStatusAcknowledge | kStatusDriver);
  EXPECT_GE(fake_->errors(), 1u);
  // The driver may try again with better features.
  AckFeatures(Bit(kFVersion1) | Bit(kFEventIdx));
  SetReg(kRegStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  EXPECT_EQ(Reg(kRegStatus), kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
}

TEST_F(MmioTest, RefusesFeaturesOkWithFeaturesNotOffered) {
  UseFake();
  for (uint64_t extra : {Bit(0), Bit(kBlkFRo), Bit(33), Bit(63)}) {
    SCOPED_TRACE(extra);
    EXPECT_FALSE(Negotiate(Bit(kFVersion1) | extra));
    EXPECT_EQ(Reg(kRegStatus) & kStatusFeaturesOk, 0u);
    SetReg(kRegStatus, 0);
  }
  EXPECT_TRUE(Negotiate(FakeDevice::kOffered));
}

TEST_F(MmioTest, WritingZeroToStatusResetsTheDevice) {
  UseFake();
  BringUp(Bit(kFVersion1));
  EXPECT_EQ(fake_->activations, 1);
  EXPECT_EQ(fake_->acked, Bit(kFVersion1));
  driver(0).AddChain({{kDataAddr, 8, true}});
  transport_->OnQueueNotify(0);
  EXPECT_EQ(Reg(kRegInterruptStatus), kInterruptUsedBuffer);
  transport_->NotifyConfigChange();
  EXPECT_EQ(Reg(kRegConfigGeneration), 1u);
  EXPECT_EQ(Reg(kRegInterruptStatus), kInterruptUsedBuffer | kInterruptConfigChange);

  SetReg(kRegStatus, 0);
  EXPECT_EQ(fake_->resets, 1);
  EXPECT_FALSE(fake_->active());
  EXPECT_EQ(Reg(kRegStatus), 0u);
  EXPECT_EQ(Reg(kRegInterruptStatus), 0u);
  EXPECT_EQ(Reg(kRegConfigGeneration), 1u);  // the generation keeps counting
  MmioTransportState s = transport_->Save();
  EXPECT_FALSE(s.activated);
  EXPECT_EQ(s.acked_features, 0u);
  ASSERT_EQ(s.queues.size(), 2u);
  for (const QueueState& q : s.queues) EXPECT_EQ(q, QueueState{});
  SetReg(kRegQueueSel, 0);
  EXPECT_EQ(Reg(kRegQueueReady), 0u);
  // Notifications after the reset are not processed.
  size_t processed = fake_->processed.size();
  transport_->OnQueueNotify(0);
  EXPECT_EQ(fake_->processed.size(), processed);
}

TEST_F(MmioTest, QueueNumMaxIsZeroForQueuesThatDoNotExist) {
  UseFake(2, 64);
  SetReg(kRegQueueSel, 0);
  EXPECT_EQ(Reg(kRegQueueNumMax), 64u);
  SetReg(kRegQueueSel, 1);
  EXPECT_EQ(Reg(kRegQueueNumMax), 64u);
  SetReg(kRegQueueSel, 2);
  EXPECT_EQ(Reg(kRegQueueNumMax), 0u);
  EXPECT_EQ(Reg(kRegQueueReady), 0u);
  SetReg(kRegQueueSel, 0xffffffff);
  EXPECT_EQ(Reg(kRegQueueNumMax), 0u);
  EXPECT_EQ(fake_->errors(), 0u);
}

TEST_F(MmioTest, QueueConfigurationIsOnlyAcceptedBetweenFeaturesOkAndDriverOk) {
  UseFake();
  VirtqDriver d(*mem_, 16, kRings, kRings + 0x1000, kRings + 0x2000);
  // Before FEATURES_OK: 8 register writes, all refused.
  SetReg(kRegStatus, kStatusAcknowledge);
  SetReg(kRegStatus, kStatusAcknowledge | kStatusDriver);
  ConfigureQueue(0, d);
  EXPECT_EQ(fake_->errors(), 8u);
  EXPECT_EQ(transport_->Save().queues[0], QueueState{});

  AckFeatures(Bit(kFVersion1));
  SetReg(kRegStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  // A queue that does not exist.
  SetReg(kRegQueueSel, 5);
  SetReg(kRegQueueNum, 16);
  SetReg(kRegQueueReady, 1);
  SetReg(kRegQueueReady, 0);
  EXPECT_EQ(fake_->errors(), 11u);

  ConfigureQueue(0, d);
  EXPECT_EQ(fake_->errors(), 11u);
  QueueState q = transport_->Save().queues[0];
  EXPECT_EQ(q.size, 16);
  EXPECT_EQ(q.desc_addr, kRings);
  EXPECT_EQ(q.avail_addr, kRings + 0x1000);
  EXPECT_EQ(q.used_addr, kRings + 0x2000);
  EXPECT_TRUE(q.ready);
  // A ready queue cannot be changed until the driver takes it back (QueueReady = 0).
  SetReg(kRegQueueDescLow, 0x9000);
  EXPECT_EQ(fake_->errors(), 12u);
  SetReg(kRegQueueReady, 0);
  SetReg(kRegQueueNum, 0x10000);  // too big for 16 bits: becomes 0, refused at activation
  EXPECT_EQ(transport_->Save().queues[0].size, 0);
  ConfigureQueue(0, d);
  VirtqDriver d1(*mem_, 16, kRings + 0x4000, kRings + 0x5000, kRings + 0x6000);
  ConfigureQueue(1, d1);
  DriverOk();
  EXPECT_EQ(fake_->activations, 1);
  uint64_t errors = fake_->errors();
  // After DRIVER_OK: refused.
  SetReg(kRegQueueSel, 0);
  SetReg(kRegQueueNum, 8);
  SetReg(kRegQueueDescLow, 0);
  SetReg(kRegQueueReady, 0);
  EXPECT_EQ(fake_->errors(), errors + 3);
  EXPECT_EQ(transport_->Save().queues[0].size, 16);
  EXPECT_EQ(transport_->Save().queues[0].desc_addr, kRings);
  EXPECT_TRUE(transport_->Save().queues[0].ready);
}

TEST_F(MmioTest, ActivationWithBadQueuesSetsNeedsResetAndRaisesAConfigInterrupt) {
  UseFake();
  ASSERT_TRUE(Negotiate(Bit(kFVersion1)));
  VirtqDriver good(*mem_, 16, kRings, kRings + 0x1000, kRings + 0x2000);
  ConfigureQueue(0, good);
  // Queue 1's descriptor table is in the gap between the regions.
  SetReg(kRegQueueSel, 1);
  SetReg(kRegQueueNum, 16);
  SetReg(kRegQueueDescLow, static_cast<uint32_t>(kMiB));
  SetReg(kRegQueueDriverLow, kRings + 0x5000);
  SetReg(kRegQueueDeviceLow, kRings + 0x6000);
  SetReg(kRegQueueReady, 1);
  EXPECT_EQ(irq_.count(), 0u);
  DriverOk();
  EXPECT_EQ(Reg(kRegStatus), kDriverOkAll | kStatusNeedsReset);
  EXPECT_EQ(Reg(kRegInterruptStatus), kInterruptConfigChange);
  EXPECT_EQ(irq_.TakeCount(), 1u);
  EXPECT_EQ(fake_->activations, 0);
  EXPECT_EQ(fake_->errors(), 1u);
  EXPECT_FALSE(transport_->Save().activated);
  // Nothing is served until a reset.
  good.AddChain({{kDataAddr, 8, true}});
  transport_->OnQueueNotify(0);
  SetReg(kRegQueueNotify, 0);
  EXPECT_TRUE(fake_->processed.empty());
  EXPECT_EQ(good.UsedIdx(), 0);
  // A read-modify-write that echoes NEEDS_RESET back is harmless.
  SetReg(kRegStatus, Reg(kRegStatus));
  EXPECT_EQ(Reg(kRegStatus), kDriverOkAll | kStatusNeedsReset);

  SetReg(kRegStatus, 0);
  EXPECT_EQ(Reg(kRegStatus), 0u);
  BringUp(Bit(kFVersion1));
  EXPECT_EQ(fake_->activations, 1);
  driver(0).AddChain({{kDataAddr, 8, true}});
  transport_->OnQueueNotify(0);
  EXPECT_EQ(driver(0).UsedIdx(), 1);
}

TEST_F(MmioTest, ActivationRefusesMisalignedAndBadlySizedQueues) {
  for (int variant = 0; variant < 3; variant++) {
    SCOPED_TRACE(variant);
    UseFake(1);
    ASSERT_TRUE(Negotiate(Bit(kFVersion1)));
    VirtqDriver d(*mem_, 16, kRings, kRings + 0x1000, kRings + 0x2000);
    ConfigureQueue(0, d);
    SetReg(kRegQueueReady, 0);
    if (variant == 0) SetReg(kRegQueueDescLow, kRings + 8);
    if (variant == 1) SetReg(kRegQueueNum, 24);
    if (variant == 2) SetReg(kRegQueueNum, 512);
    SetReg(kRegQueueReady, 1);
    DriverOk();
    EXPECT_TRUE(Reg(kRegStatus) & kStatusNeedsReset);
    EXPECT_EQ(fake_->activations, 0);
  }
}

TEST_F(MmioTest, AQueueLeftUnreadyCannotBeActivated) {
  UseFake(2);
  ASSERT_TRUE(Negotiate(Bit(kFVersion1)));
  ConfigureQueue(0, VirtqDriver(*mem_, 16, kRings, kRings + 0x1000, kRings + 0x2000));
  DriverOk();
  EXPECT_TRUE(Reg(kRegStatus) & kStatusNeedsReset);
  EXPECT_EQ(fake_->activations, 0);
}

TEST_F(MmioTest, InterruptStatusIsAcknowledgedBitByBit) {
  UseFake();
  BringUp(Bit(kFVersion1));
  driver(1).AddChain({{kDataAddr, 8, true}});
  SetReg(kRegQueueNotify, 1);
  EXPECT_EQ(fake_->processed.back(), 1u);
  EXPECT_EQ(driver(1).UsedIdx(), 1);
  EXPECT_EQ(irq_.TakeCount(), 1u);
  transport_->NotifyConfigChange();
  EXPECT_EQ(irq_.TakeCount(), 1u);
  EXPECT_EQ(Reg(kRegInterruptStatus), kInterruptUsedBuffer | kInterruptConfigChange);
  SetReg(kRegInterruptAck, kInterruptUsedBuffer);
  EXPECT_EQ(Reg(kRegInterruptStatus), kInterruptConfigChange);
  SetReg(kRegInterruptAck, kInterruptConfigChange);
  EXPECT_EQ(Reg(kRegInterruptStatus), 0u);
  EXPECT_EQ(irq_.count(), 0u);
}

TEST_F(MmioTest, ServesBuffersMadeAvailableBeforeDriverOk) {
  UseFake(1);
  ASSERT_TRUE(Negotiate(Bit(kFVersion1)));
  VirtqDriver d(*mem_, 16, kRings, kRings + 0x1000, kRings + 0x2000);
  ConfigureQueue(0, d);
  d.AddChain({{kDataAddr, 8, true}});
  DriverOk();
  EXPECT_EQ(d.UsedIdx(), 1);
  EXPECT_EQ(d.Used(0).len, 8u);
  EXPECT_EQ(irq_.count(), 1u);
}

TEST_F(MmioTest, ReadsConfigSpaceAtAnyWidth) {
  UseFake();
  uint8_t b[8];
  transport_->Read(kRegConfig, b, 4);
  EXPECT_EQ(b[0], 0x11);
  EXPECT_EQ(b[3], 0x44);
  transport_->Read(kRegConfig + 5, b, 1);
  EXPECT_EQ(b[0], 0x66);
  transport_->Read(kRegConfig + 6, b, 4);  // runs past the end: zeros
  EXPECT_EQ(b[0], 0x77);
  EXPECT_EQ(b[1], 0x88);
  EXPECT_EQ(b[2], 0);
  EXPECT_EQ(b[3], 0);
  transport_->Read(0xffc, b, 4);
  EXPECT_EQ(b[0], 0);
  EXPECT_EQ(fake_->errors(), 0u);
  // The fake's config space is read-only: writes are counted, not applied.
  uint8_t w[4] = {1, 2, 3, 4};
  transport_->Write(kRegConfig, w, 4);
  EXPECT_EQ(fake_->errors(), 1u);
  transport_->Read(kRegConfig, b, 1);
  EXPECT_EQ(b[0], 0x11);
}

TEST_F(MmioTest, CountsRegisterAccessesThatAreNot32BitAligned) {
  UseFake();
  uint8_t b[8];
  memset(b, 0xaa, sizeof(b));
  transport_->Read(kRegMagic, b, 2);
  EXPECT_EQ(b[0], 0);
  EXPECT_EQ(b[1], 0);
  EXPECT_EQ(b[2], 0xaa);
  transport_->Read(kRegMagic, b, 8);
  transport_->Read(kRegMagic + 1, b, 4);
  transport_->Read(kRegStatus, b, 1);
  EXPECT_EQ(fake_->errors(), 4u);
  uint8_t v[8] = {kStatusAcknowledge, 0, 0, 0, 0, 0, 0, 0};
  transport_->Write(kRegStatus, v, 1);
  transport_->Write(kRegStatus, v, 2);
  transport_->Write(kRegStatus, v, 8);
  transport_->Write(kRegStatus + 2, v, 4);
  EXPECT_EQ(fake_->errors(), 8u);
  EXPECT_EQ(Reg(kRegStatus), 0u);
  // Unknown or write-only registers read as 0 and are counted; read-only ones ignore writes.
  EXPECT_EQ(Reg(kRegQueueNotify), 0u);
  EXPECT_EQ(Reg(0x0a8), 0u);
  SetReg(kRegMagic, 0);
  SetReg(kRegQueueReset, 1);
  SetReg(kRegShmSel, 0);
  EXPECT_EQ(fake_->errors(), 13u);
  EXPECT_EQ(Reg(kRegMagic), kMmioMagic);
  // No shared memory regions: length and base read as all ones (4.2.2).
  EXPECT_EQ(Reg(kRegShmLenLow), 0xffffffffu);
  EXPECT_EQ(Reg(kRegShmBaseHigh), 0xffffffffu);
}

TEST_F(MmioTest, CountsNotificationsForQueuesThatAreNotLive) {
  UseFake();
  // Before activation.
  SetReg(kRegQueueNotify, 0);
  transport_->OnQueueNotify(0);
  EXPECT_EQ(fake_->errors(), 2u);
  EXPECT_TRUE(fake_->processed.empty());
  BringUp(Bit(kFVersion1));
  fake_->processed.clear();
  // Queues that do not exist.
  SetReg(kRegQueueNotify, 2);
  SetReg(kRegQueueNotify, 0xffffffff);
  transport_->OnQueueNotify(2);
  transport_->OnQueueNotify(0xffffffff);
  EXPECT_EQ(fake_->errors(), 6u);
  EXPECT_TRUE(fake_->processed.empty());
  transport_->OnQueueNotify(1);
  SetReg(kRegQueueNotify, 0);
  EXPECT_EQ(fake_->processed, (std::vector<size_t>{1, 0}));
  EXPECT_EQ(fake_->errors(), 6u);
}

// --- Ring errors during processing --------------------------------------------------------------

TEST_F(MmioTest, ARingErrorSetsNeedsResetAndAResetRecovers) {
  auto rng = Rng::Create(std::nullopt);
  ASSERT_TRUE(rng.ok());
  Use(*rng);
  BringUp(Bit(kFVersion1));
  driver().AddChain({{kDataAddr, 16, true}});
  transport_->OnQueueNotify(0);
  EXPECT_EQ(driver().UsedIdx(), 1);
  EXPECT_EQ(irq_.TakeCount(), 1u);
  SetReg(kRegInterruptAck, kInterruptUsedBuffer);

  driver().Publish(16);  // a head outside the table of 16
  transport_->OnQueueNotify(0);
  EXPECT_EQ(Reg(kRegStatus), kDriverOkAll | kStatusNeedsReset);
  EXPECT_EQ(Reg(kRegInterruptStatus), kInterruptConfigChange);
  EXPECT_EQ(irq_.TakeCount(), 1u);
  EXPECT_EQ(device_->errors(), 1u);
  EXPECT_EQ(driver().UsedIdx(), 1);
  // Stopped: a good chain after the bad one is not served, and no new interrupt.
  driver().AddChain({{kDataAddr, 16, true}});
  transport_->OnQueueNotify(0);
  SetReg(kRegQueueNotify, 0);
  EXPECT_EQ(driver().UsedIdx(), 1);
  EXPECT_EQ(irq_.count(), 0u);

  SetReg(kRegStatus, 0);
  EXPECT_EQ(Reg(kRegStatus), 0u);
  EXPECT_EQ(Reg(kRegInterruptStatus), 0u);
  EXPECT_FALSE(device_->active());
  BringUp(Bit(kFVersion1));  // fresh rings
  driver().AddChain({{kDataAddr, 16, true}});
  transport_->OnQueueNotify(0);
  EXPECT_EQ(driver().UsedIdx(), 1);
  EXPECT_EQ(driver().Used(0).len, 16u);
  EXPECT_EQ(Reg(kRegStatus), kDriverOkAll);
}

TEST_F(MmioTest, AnAvailIndexJumpSetsNeedsReset) {
  UseFake(1);
  BringUp(Bit(kFVersion1), 8);
  driver().SetAvailIdx(9);
  transport_->OnQueueNotify(0);
  EXPECT_TRUE(Reg(kRegStatus) & kStatusNeedsReset);
  EXPECT_EQ(fake_->errors(), 1u);
  EXPECT_EQ(driver().UsedIdx(), 0);
}

TEST_F(MmioTest, AChainErrorIsAnsweredAndTheQueueGoesOn) {
  UseFake(1);
  BringUp(Bit(kFVersion1));
  uint16_t bad = driver().AddChain({{kMiB - 8, 16, true}});  // straddles the gap
  uint16_t good = driver().AddChain({{kDataAddr, 16, true}});
  transport_->OnQueueNotify(0);
  EXPECT_EQ(fake_->errors(), 1u);
  EXPECT_EQ(Reg(kRegStatus), kDriverOkAll);
  ASSERT_EQ(driver().UsedIdx(), 2);
  EXPECT_EQ(driver().Used(0).id, bad);
  EXPECT_EQ(driver().Used(0).len, 0u);
  EXPECT_EQ(driver().Used(1).id, good);
  EXPECT_EQ(driver().Used(1).len, 16u);
}

// --- Block --------------------------------------------------------------------------------------

struct BlkResult {
  uint8_t status;
  uint32_t used_len;
};

class BlockTest : public MmioTest {
 protected:
  // A 64-sector image whose byte at offset o is (o * 7 + o / 512) & 0xff.
  static std::string Pattern(size_t bytes) {
    std::string s(bytes, '\0');
    for (size_t o = 0; o < bytes; o++) s[o] = static_cast<char>((o * 7 + o / 512) & 0xff);
    return s;
  }
  std::string ImagePath() { return dir_.path() + "/disk.img"; }
  std::string ReadImage() {
    std::ifstream f(ImagePath(), std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  void OpenBlock(bool read_only = false, bool writeback = false) {
    if (image_.empty()) {
      image_ = Pattern(kImageSectors * kSectorSize);
      dir_.Write("disk.img", image_);
    }
    BlockOptions o;
    o.drive_id = "rootfs";
    o.path = ImagePath();
    o.read_only = read_only;
    o.writeback = writeback;
    auto b = Block::Open(o);
    ASSERT_TRUE(b.ok()) << b.error().message;
    block_ = *b;
    Use(block_);
  }
  // VERSION_1 and INDIRECT_DESC; EVENT_IDX is left out so that every completion interrupts.
  void Start(bool read_only = false, bool writeback = false) {
    OpenBlock(read_only, writeback);
    BringUp(Bit(kFVersion1) | Bit(kFIndirectDesc) | (DeviceFeatures() & Bit(kBlkFRo)));
  }
  void WriteHeader(uint32_t type, uint64_t sector, uint64_t at = kHeader) {
    BlkReqHeader h{type, 0, sector};
    ASSERT_TRUE(mem_->WriteObj(at, h).ok());
  }
  // Publishes `bufs`, notifies, and returns the status byte at kStatusAddr and the used length.
  BlkResult Submit(const std::vector<VirtqBuffer>& bufs) {
    EXPECT_TRUE(mem_->WriteObj<uint8_t>(kStatusAddr, 0xee).ok());
    uint16_t used_before = driver().UsedIdx();
    uint16_t head = driver().AddChain(bufs);
    transport_->OnQueueNotify(0);
    EXPECT_EQ(driver().UsedIdx(), static_cast<uint16_t>(used_before + 1));
    EXPECT_EQ(driver().Used(used_before).id, head);
    return {*mem_->ReadObj<uint8_t>(kStatusAddr), driver().Used(used_before).len};
  }
  // A request with a header, one data buffer and the status byte.
  BlkResult Request(uint32_t type, uint64_t sector, uint32_t data_len, bool data_writable) {
    WriteHeader(type, sector);
    std::vector<VirtqBuffer> bufs = {{kHeader, 16, false}};
    if (data_len) bufs.push_back({kDataAddr, data_len, data_writable});
    bufs.push_back({kStatusAddr, 1, true});
    return Submit(bufs);
  }
  std::string Guest(uint64_t gpa, size_t len) {
    std::string s(len, '\0');
    EXPECT_TRUE(mem_->Read(gpa, s.data(), len).ok());
    return s;
  }

  TempDir dir_;
  std::string image_;
  std::shared_ptr<Block> block_;
};

TEST_F(BlockTest, ReportsItsCapacityInConfigSpace) {
  OpenBlock();
  EXPECT_EQ(Reg(kRegDeviceId), kDeviceIdBlock);
  EXPECT_EQ(block_->capacity_sectors(), kImageSectors);
  EXPECT_EQ(Reg(kRegConfig), kImageSectors);
  EXPECT_EQ(Reg(kRegConfig + 4), 0u);
  uint64_t capacity = 0;
  transport_->Read(kRegConfig, reinterpret_cast<uint8_t*>(&capacity), 8);
  EXPECT_EQ(capacity, kImageSectors);
  EXPECT_EQ(Reg(kRegConfig + 8), 0u);  // past the capacity field
}

TEST_F(BlockTest, OffersFeaturesByDriveOptions) {
  OpenBlock();
  uint64_t f = DeviceFeatures();
  EXPECT_TRUE(f & Bit(kFVersion1));
  EXPECT_TRUE(f & Bit(kFEventIdx));
  EXPECT_TRUE(f & Bit(kFIndirectDesc));
  EXPECT_FALSE(f & Bit(kBlkFRo));
  EXPECT_FALSE(f & Bit(kBlkFFlush));
  OpenBlock(/*read_only=*/true);
  EXPECT_TRUE(DeviceFeatures() & Bit(kBlkFRo));
  EXPECT_FALSE(DeviceFeatures() & Bit(kBlkFFlush));
  OpenBlock(/*read_only=*/false, /*writeback=*/true);
  EXPECT_FALSE(DeviceFeatures() & Bit(kBlkFRo));
  EXPECT_TRUE(DeviceFeatures() & Bit(kBlkFFlush));
}

TEST_F(BlockTest, InReadsTheImageIntoGuestMemory) {
  Start();
  BlkResult r = Request(kBlkTIn, 2, 1024, true);
  EXPECT_EQ(r.status, kBlkSOk);
  EXPECT_EQ(r.used_len, 1025u);
  EXPECT_EQ(Guest(kDataAddr, 1024), image_.substr(2 * 512, 1024));
  EXPECT_EQ(irq_.count(), 1u);
  EXPECT_EQ(Reg(kRegInterruptStatus), kInterruptUsedBuffer);
  EXPECT_EQ(block_->read_bytes(), 1024u);
  EXPECT_EQ(block_->requests(), 1u);
  EXPECT_EQ(block_->errors(), 0u);
  // The last sector.
  r = Request(kBlkTIn, kImageSectors - 1, 512, true);
  EXPECT_EQ(r.status, kBlkSOk);
  EXPECT_EQ(Guest(kDataAddr, 512), image_.substr((kImageSectors - 1) * 512, 512));
}

TEST_F(BlockTest, FramingIsNotAssumed) {
  Start();
  // Header split 10 + 6, data split over both regions, data and status in one descriptor.
  WriteHeader(kBlkTIn, 3, kHeader);
  BlkReqHeader h{kBlkTIn, 0, 3};
  ASSERT_TRUE(mem_->Write(kHeader, &h, 10).ok());
  ASSERT_TRUE(mem_->Write(kRegion2 + 0x100, reinterpret_cast<uint8_t*>(&h) + 10, 6).ok());
  uint16_t used_before = driver().UsedIdx();
  driver().AddChain({{kHeader, 10, false},
                     {kRegion2 + 0x100, 6, false},
                     {kDataAddr, 100, true},
                     {kRegion2 + 0x1000, 412, true},
                     {kDataAddr + 0x1000, 513, true}});
  transport_->OnQueueNotify(0);
  ASSERT_EQ(driver().UsedIdx(), used_before + 1);
  EXPECT_EQ(driver().Used(used_before).len, 1025u);
  std::string got = Guest(kDataAddr, 100) + Guest(kRegion2 + 0x1000, 412) +
                    Guest(kDataAddr + 0x1000, 512);
  EXPECT_EQ(got, image_.substr(3 * 512, 1024));
  EXPECT_EQ(Guest(kDataAddr + 0x1000 + 512, 1), std::string(1, kBlkSOk));
}

TEST_F(BlockTest, ServesRequestsThroughIndirectTables) {
  Start();
  WriteHeader(kBlkTIn, 4);
  ASSERT_TRUE(mem_->WriteObj<uint8_t>(kStatusAddr, 0xee).ok());
  driver().AddIndirectChain(0x30000, {{kHeader, 16, false}, {kDataAddr, 512, true}, {kStatusAddr, 1, true}});
  transport_->OnQueueNotify(0);
  EXPECT_EQ(driver().UsedIdx(), 1);
  EXPECT_EQ(driver().Used(0).len, 513u);
  EXPECT_EQ(*mem_->ReadObj<uint8_t>(kStatusAddr), kBlkSOk);
  EXPECT_EQ(Guest(kDataAddr, 512), image_.substr(4 * 512, 512));
}

TEST_F(BlockTest, OutWritesGuestMemoryToTheImage) {
  Start();
  std::string data(1024, '\0');
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>(255 - i % 251);
  ASSERT_TRUE(mem_->Write(kDataAddr, data.data(), data.size()).ok());
  BlkResult r = Request(kBlkTOut, 5, 1024, false);
  EXPECT_EQ(r.status, kBlkSOk);
  EXPECT_EQ(r.used_len, 1u);
  std::string expected = image_;
  expected.replace(5 * 512, 1024, data);
  EXPECT_EQ(ReadImage(), expected);
  EXPECT_EQ(block_->write_bytes(), 1024u);
  // And reads back.
  ASSERT_TRUE(mem_->Fill(kDataAddr, 0, 1024).ok());
  EXPECT_EQ(Request(kBlkTIn, 5, 1024, true).status, kBlkSOk);
  EXPECT_EQ(Guest(kDataAddr, 1024), data);
}

TEST_F(BlockTest, FlushIsOfferedAndServedWithWriteback) {
  Start(/*read_only=*/false, /*writeback=*/true);
  BlkResult r = Request(kBlkTFlush, 0, 0, false);
  EXPECT_EQ(r.status, kBlkSOk);
  EXPECT_EQ(r.used_len, 1u);
}

TEST_F(BlockTest, GetIdReturnsTwentyBytes) {
  Start();
  ASSERT_TRUE(mem_->Fill(kDataAddr, 0xee, 64).ok());
  BlkResult r = Request(kBlkTGetId, 0, 20, true);
  EXPECT_EQ(r.status, kBlkSOk);
  EXPECT_EQ(r.used_len, 21u);
  ASSERT_EQ(block_->id().size(), 20u);
  EXPECT_EQ(Guest(kDataAddr, 20), block_->id());
  EXPECT_NE(block_->id()[0], '\0');
  EXPECT_EQ(Guest(kDataAddr + 20, 1), std::string(1, '\xee'));
  // A larger buffer still gets 20 bytes.
  r = Request(kBlkTGetId, 0, 64, true);
  EXPECT_EQ(r.used_len, 21u);
}

TEST_F(BlockTest, AnUnknownRequestTypeIsUnsupported) {
  Start();
  for (uint32_t type : {2u, 3u, 11u, 13u, 99u, 0xffffffffu}) {
    SCOPED_TRACE(type);
    BlkResult r = Request(type, 0, 512, true);
    EXPECT_EQ(r.status, kBlkSUnsupp);
    EXPECT_EQ(r.used_len, 1u);
  }
}

TEST_F(BlockTest, ReadingOrWritingBeyondTheCapacityIsAnIoError) {
  Start();
  EXPECT_EQ(Request(kBlkTIn, kImageSectors - 1, 1024, true).status, kBlkSIoErr);
  EXPECT_EQ(Request(kBlkTIn, kImageSectors, 512, true).status, kBlkSIoErr);
  EXPECT_EQ(Request(kBlkTIn, ~uint64_t{0}, 512, true).status, kBlkSIoErr);
  EXPECT_EQ(Request(kBlkTIn, uint64_t{1} << 55, 512, true).status, kBlkSIoErr);
  EXPECT_EQ(Request(kBlkTOut, kImageSectors, 512, false).status, kBlkSIoErr);
  EXPECT_EQ(Request(kBlkTOut, ~uint64_t{0} - 1, 1024, false).status, kBlkSIoErr);
  EXPECT_EQ(ReadImage(), image_);
  // Not hostile: nothing counted.
  EXPECT_EQ(block_->errors(), 0u);
}

TEST_F(BlockTest, APartialSectorIsAnIoError) {
  Start();
  EXPECT_EQ(Request(kBlkTIn, 0, 100, true).status, kBlkSIoErr);
  EXPECT_EQ(Request(kBlkTOut, 0, 513, false).status, kBlkSIoErr);
  EXPECT_EQ(ReadImage(), image_);
  EXPECT_EQ(block_->errors(), 2u);
}

TEST_F(BlockTest, AReadOnlyDriveRefusesWrites) {
  Start(/*read_only=*/true);
  EXPECT_TRUE(transport_->Save().acked_features & Bit(kBlkFRo));
  ASSERT_TRUE(mem_->Fill(kDataAddr, 0x5a, 512).ok());
  BlkResult r = Request(kBlkTOut, 1, 512, false);
  EXPECT_EQ(r.status, kBlkSIoErr);
  EXPECT_EQ(r.used_len, 1u);
  EXPECT_EQ(ReadImage(), image_);
  EXPECT_EQ(Request(kBlkTIn, 1, 512, true).status, kBlkSOk);
  EXPECT_EQ(Guest(kDataAddr, 512), image_.substr(512, 512));
  // FLUSH is not offered; one sent anyway has nothing to do.
  EXPECT_EQ(Request(kBlkTFlush, 0, 0, false).status, kBlkSOk);
}

TEST_F(BlockTest, AHeaderInADeviceWritableBufferIsDropped) {
  Start();
  WriteHeader(kBlkTIn, 0);
  BlkResult r = Submit({{kHeader, 16, true}, {kDataAddr, 512, true}, {kStatusAddr, 1, true}});
  EXPECT_EQ(r.used_len, 0u);
  EXPECT_EQ(r.status, 0xee);  // untouched
  EXPECT_EQ(block_->errors(), 1u);
  // A request with no writable status byte is dropped the same way.
  r = Submit({{kHeader, 16, false}, {kDataAddr, 512, false}});
  EXPECT_EQ(r.used_len, 0u);
  EXPECT_EQ(block_->errors(), 2u);
  // A short header.
  r = Submit({{kHeader, 8, false}, {kStatusAddr, 1, true}});
  EXPECT_EQ(r.used_len, 0u);
  EXPECT_EQ(r.status, 0xee);
  EXPECT_EQ(block_->errors(), 3u);
  // The device goes on.
  EXPECT_EQ(Request(kBlkTIn, 0, 512, true).status, kBlkSOk);
  EXPECT_EQ(Reg(kRegStatus), kDriverOkAll);
}

TEST_F(BlockTest, DataBuffersMustPointTheRightWay) {
  Start();
  BlkResult r = Request(kBlkTIn, 0, 512, /*data_writable=*/false);
  EXPECT_EQ(r.status, kBlkSIoErr);
  EXPECT_EQ(r.used_len, 1u);
  EXPECT_EQ(block_->errors(), 1u);
  r = Request(kBlkTOut, 0, 512, /*data_writable=*/true);
  EXPECT_EQ(r.status, kBlkSIoErr);
  EXPECT_EQ(block_->errors(), 2u);
  EXPECT_EQ(ReadImage(), image_);
}

TEST_F(BlockTest, AChainOutsideGuestRamIsReturnedEmpty) {
  Start();
  WriteHeader(kBlkTIn, 0);
  BlkResult r = Submit({{kHeader, 16, false}, {kRamEnd - 256, 512, true}, {kStatusAddr, 1, true}});
  EXPECT_EQ(r.used_len, 0u);
  EXPECT_EQ(r.status, 0xee);
  EXPECT_EQ(block_->errors(), 1u);
  EXPECT_EQ(block_->requests(), 0u);
  EXPECT_EQ(Request(kBlkTIn, 0, 512, true).status, kBlkSOk);
}

TEST_F(BlockTest, EventIdxSuppressesInterruptsAndAsksForNotifications) {
  OpenBlock();
  BringUp(Bit(kFVersion1) | Bit(kFEventIdx));
  driver().SetUsedEvent(0);
  EXPECT_EQ(Request(kBlkTIn, 0, 512, true).status, kBlkSOk);
  EXPECT_EQ(irq_.TakeCount(), 1u);  // used_event 0 is in [0, 1)
  EXPECT_EQ(driver().AvailEvent(), 1);
  EXPECT_EQ(Request(kBlkTIn, 0, 512, true).status, kBlkSOk);
  EXPECT_EQ(irq_.TakeCount(), 0u);  // used_event 0 is behind [1, 2)
  EXPECT_EQ(driver().AvailEvent(), 2);
  driver().SetUsedEvent(2);
  EXPECT_EQ(Request(kBlkTIn, 0, 512, true).status, kBlkSOk);
  EXPECT_EQ(irq_.TakeCount(), 1u);
}

TEST_F(BlockTest, OpenRefusesAMissingFile) {
  BlockOptions o;
  o.drive_id = "scratch";
  o.path = dir_.path() + "/missing.img";
  auto b = Block::Open(o);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message.find("scratch"), std::string::npos) << b.error().message;
  EXPECT_NE(b.error().message.find("missing.img"), std::string::npos) << b.error().message;
}

TEST_F(BlockTest, OpenRefusesADirectory) {
  for (bool read_only : {false, true}) {
    SCOPED_TRACE(read_only);
    BlockOptions o;
    o.drive_id = "scratch";
    o.path = dir_.path();
    o.read_only = read_only;
    auto b = Block::Open(o);
    ASSERT_FALSE(b.ok());
    EXPECT_NE(b.error().message.find("scratch"), std::string::npos) << b.error().message;
  }
}

TEST_F(BlockTest, OpenRefusesASizeThatIsNotWholeSectors) {
  BlockOptions o;
  o.drive_id = "odd";
  o.path = dir_.Write("odd.img", std::string(1000, 'x'));
  auto b = Block::Open(o);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message.find("odd"), std::string::npos) << b.error().message;
  EXPECT_NE(b.error().message.find("512"), std::string::npos) << b.error().message;
}

// --- Rng ----------------------------------------------------------------------------------------

// --- PATCH /drives: a new backing file and a new rate limiter while the guest runs -------------

// Another image, 128 sectors, whose byte at offset o is (o * 3 + 0x5a) & 0xff: readable apart
// from the first one anywhere.
std::string OtherPattern(size_t bytes) {
  std::string s(bytes, '\0');
  for (size_t o = 0; o < bytes; o++) s[o] = static_cast<char>((o * 3 + 0x5a) & 0xff);
  return s;
}
constexpr uint64_t kOtherSectors = 128;

uint64_t ConfigCapacity(MmioTransport& t) {
  uint64_t capacity = 0;
  t.Read(kRegConfig, reinterpret_cast<uint8_t*>(&capacity), 8);
  return capacity;
}

TEST_F(BlockTest, UpdateBackingFileServesTheNewImageAndAnnouncesItsCapacity) {
  Start();
  ASSERT_EQ(Request(kBlkTIn, 0, 512, true).status, kBlkSOk);
  SetReg(kRegInterruptAck, kInterruptUsedBuffer);
  irq_.TakeCount();
  const std::string old_id = block_->id();
  const uint32_t generation = Reg(kRegConfigGeneration);
  const std::string other = OtherPattern(kOtherSectors * kSectorSize);
  const std::string other_path = dir_.Write("other.img", other);

  Status s = block_->UpdateBackingFile(other_path);
  ASSERT_TRUE(s.ok()) << s.error().message;

  EXPECT_EQ(block_->capacity_sectors(), kOtherSectors);
  EXPECT_EQ(ConfigCapacity(*transport_), kOtherSectors);
  EXPECT_EQ(Reg(kRegConfigGeneration), generation + 1);
  EXPECT_EQ(Reg(kRegInterruptStatus), kInterruptConfigChange);
  EXPECT_EQ(irq_.TakeCount(), 1u);
  EXPECT_NE(block_->id(), old_id);  // GET_ID follows the file (another inode)
  SetReg(kRegInterruptAck, kInterruptConfigChange);

  // Reads come from the new file, including past the old capacity.
  BlkResult r = Request(kBlkTIn, 2, 1024, true);
  EXPECT_EQ(r.status, kBlkSOk);
  EXPECT_EQ(Guest(kDataAddr, 1024), other.substr(2 * 512, 1024));
  r = Request(kBlkTIn, kOtherSectors - 1, 512, true);
  EXPECT_EQ(r.status, kBlkSOk);
  EXPECT_EQ(Guest(kDataAddr, 512), other.substr((kOtherSectors - 1) * 512, 512));
  EXPECT_EQ(Request(kBlkTIn, kOtherSectors, 512, true).status, kBlkSIoErr);
  // Writes go there too, and the old image is left alone.
  ASSERT_TRUE(mem_->Write(kDataAddr, std::string(512, '\x77').data(), 512).ok());
  EXPECT_EQ(Request(kBlkTOut, 3, 512, false).status, kBlkSOk);
  std::ifstream f(other_path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str().substr(3 * 512, 512), std::string(512, '\x77'));
  EXPECT_EQ(ReadImage(), image_);
  EXPECT_EQ(block_->Save().path, other_path);
  EXPECT_EQ(block_->Save().capacity_sectors, kOtherSectors);
}

TEST_F(BlockTest, UpdateBackingFileBeforeDriverOkRaisesNoInterrupt) {
  OpenBlock();
  ASSERT_TRUE(Negotiate(Bit(kFVersion1)));
  const std::string other_path = dir_.Write("other.img", OtherPattern(kOtherSectors * kSectorSize));
  ASSERT_TRUE(block_->UpdateBackingFile(other_path).ok());
  // The driver reads the capacity when it comes up; the generation still tells it changed.
  EXPECT_EQ(ConfigCapacity(*transport_), kOtherSectors);
  EXPECT_EQ(Reg(kRegConfigGeneration), 1u);
  EXPECT_EQ(Reg(kRegInterruptStatus), 0u);
  EXPECT_EQ(irq_.count(), 0u);
}

TEST_F(BlockTest, AFailedUpdateLeavesTheDriveOnItsImage) {
  Start();
  const uint32_t generation = Reg(kRegConfigGeneration);
  irq_.TakeCount();
  Status s = block_->UpdateBackingFile(dir_.path() + "/missing.img");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("rootfs"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("missing.img"), std::string::npos) << s.error().message;
  s = block_->UpdateBackingFile(dir_.Write("odd.img", std::string(1000, 'x')));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("multiple of 512"), std::string::npos) << s.error().message;

  EXPECT_EQ(ConfigCapacity(*transport_), kImageSectors);
  EXPECT_EQ(Reg(kRegConfigGeneration), generation);
  EXPECT_EQ(Reg(kRegInterruptStatus), 0u);
  EXPECT_EQ(irq_.count(), 0u);
  EXPECT_EQ(Request(kBlkTIn, 5, 512, true).status, kBlkSOk);
  EXPECT_EQ(Guest(kDataAddr, 512), image_.substr(5 * 512, 512));
}

class RecordingWatcher : public EventWatcher {
 public:
  Status Watch(int fd, uint32_t events) override {
    fds[fd] = events;
    return Ok();
  }
  void Unwatch(int fd) override { fds.erase(fd); }
  std::map<int, uint32_t> fds;
};

TEST_F(BlockTest, UpdateRateLimiterThrottlesTheNextRequests) {
  Start();
  RecordingWatcher watcher;
  ASSERT_TRUE(transport_->AttachEvents(&watcher).ok());
  EXPECT_TRUE(watcher.fds.empty());  // no bucket yet: nothing to wait for
  ASSERT_EQ(Request(kBlkTIn, 0, 512, true).status, kBlkSOk);

  // One operation per 1000 s: the next request passes, the one after waits in the ring.
  block_->UpdateRateLimiter(RateLimiterConfig{std::nullopt, TokenBucketConfig{1, 0, 1000000}});
  ASSERT_EQ(watcher.fds.size(), 1u);
  EXPECT_EQ(watcher.fds.begin()->second, static_cast<uint32_t>(EPOLLIN));
  ASSERT_EQ(Request(kBlkTIn, 1, 512, true).status, kBlkSOk);
  WriteHeader(kBlkTIn, 2);
  driver().AddChain({{kHeader, 16, false}, {kDataAddr, 512, true}, {kStatusAddr, 1, true}});
  transport_->OnQueueNotify(0);
  EXPECT_EQ(driver().UsedIdx(), 2);
  EXPECT_EQ(block_->throttled(), 1u);

  // A bucket left out keeps its state; the one given is new and full.
  block_->UpdateRateLimiter(RateLimiterConfig{TokenBucketConfig{4096, 0, 100}, std::nullopt});
  BlockState st = block_->Save();
  ASSERT_TRUE(st.rate_limiter.has_value());
  ASSERT_TRUE(st.rate_limiter->bandwidth.has_value());
  EXPECT_EQ(st.rate_limiter->bandwidth->size, 4096u);
  EXPECT_EQ(st.rate_limiter->bandwidth->budget, 4096u);
  ASSERT_TRUE(st.rate_limiter->ops.has_value());
  EXPECT_EQ(st.rate_limiter->ops->size, 1u);
  EXPECT_EQ(st.rate_limiter->ops->budget, 0u);
  EXPECT_TRUE(st.rate_limiter->blocked);
  EXPECT_EQ(watcher.fds.size(), 1u);  // the same timer, watched once
}

class RngTest : public MmioTest {
 protected:
  void Start() {
    auto r = Rng::Create(std::nullopt);
    ASSERT_TRUE(r.ok()) << r.error().message;
    rng_ = *r;
    Use(rng_);
    BringUp(Bit(kFVersion1));
  }
  bool AllZero(uint64_t gpa, size_t len) {
    std::vector<uint8_t> v(len);
    EXPECT_TRUE(mem_->Read(gpa, v.data(), len).ok());
    for (uint8_t b : v) {
      if (b) return false;
    }
    return true;
  }
  std::shared_ptr<Rng> rng_;
};

TEST_F(RngTest, FillsTheWritableBuffers) {
  Start();
  uint16_t head = driver().AddChain({{kDataAddr, 256, true}, {kRegion2 + 0x1000, 4096, true}});
  transport_->OnQueueNotify(0);
  ASSERT_EQ(driver().UsedIdx(), 1);
  EXPECT_EQ(driver().Used(0).id, head);
  EXPECT_EQ(driver().Used(0).len, 256u + 4096u);
  EXPECT_FALSE(AllZero(kDataAddr, 256));
  EXPECT_FALSE(AllZero(kRegion2 + 0x1000, 4096));
  EXPECT_TRUE(AllZero(kDataAddr + 256, 256));
  EXPECT_EQ(rng_->bytes(), 256u + 4096u);
  EXPECT_EQ(irq_.count(), 1u);
  EXPECT_EQ(rng_->errors(), 0u);
}

TEST_F(RngTest, CapsARequestAt64KiB) {
  Start();
  driver().AddChain({{kRegion2, 96 * 1024, true}, {kDataAddr, 4096, true}});
  transport_->OnQueueNotify(0);
  ASSERT_EQ(driver().UsedIdx(), 1);
  EXPECT_EQ(driver().Used(0).len, kRngMaxRequestBytes);
  EXPECT_FALSE(AllZero(kRegion2 + kRngMaxRequestBytes - 256, 256));
  EXPECT_TRUE(AllZero(kRegion2 + kRngMaxRequestBytes, 32 * 1024));
  EXPECT_TRUE(AllZero(kDataAddr, 4096));
}

TEST_F(RngTest, AReadableBufferIsCountedAndReturnedEmpty) {
  Start();
  driver().AddChain({{kDataAddr, 16, false}, {kDataAddr + 0x100, 64, true}});
  driver().AddChain({{kDataAddr, 16, false}});
  transport_->OnQueueNotify(0);
  ASSERT_EQ(driver().UsedIdx(), 2);
  EXPECT_EQ(driver().Used(0).len, 0u);
  EXPECT_EQ(driver().Used(1).len, 0u);
  EXPECT_TRUE(AllZero(kDataAddr + 0x100, 64));
  EXPECT_EQ(rng_->errors(), 2u);
  EXPECT_EQ(Reg(kRegStatus), kDriverOkAll);
}

// --- Save and restore ---------------------------------------------------------------------------

TEST_F(BlockTest, SaveAndRestoreContinueMidStream) {
  Start();
  ASSERT_EQ(Request(kBlkTIn, 1, 512, true).status, kBlkSOk);
  // A second request is published but not yet notified when the snapshot is taken.
  WriteHeader(kBlkTIn, 6);
  uint16_t pending = driver().AddChain({{kHeader, 16, false}, {kDataAddr, 512, true}, {kStatusAddr, 1, true}});
  MmioTransportState saved = transport_->Save();
  BlockState block_state = block_->Save();
  EXPECT_TRUE(saved.activated);
  EXPECT_EQ(saved.status, kDriverOkAll);
  ASSERT_EQ(saved.queues.size(), 1u);
  EXPECT_EQ(saved.queues[0].next_avail, 1);
  EXPECT_EQ(saved.queues[0].next_used, 1);
  EXPECT_EQ(block_state.capacity_sectors, kImageSectors);
  EXPECT_EQ(block_state.path, ImagePath());

  // A fresh device and transport over the same guest memory.
  BlockOptions o;
  o.drive_id = "rootfs";
  o.path = block_state.path;
  auto fresh = Block::Open(o);
  ASSERT_TRUE(fresh.ok());
  Status block_restored = (*fresh)->Restore(block_state);
  ASSERT_TRUE(block_restored.ok()) << block_restored.error().message;
  RecordingIrqLine irq2;
  MmioTransport restored(*fresh, mem_.get(), &irq2);
  Status s = restored.Restore(saved);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(restored.Save(), saved);
  EXPECT_TRUE((*fresh)->active());
  transport_.reset();  // the old one is gone

  restored.OnQueueNotify(0);
  ASSERT_EQ(driver().UsedIdx(), 2);
  EXPECT_EQ(driver().Used(1).id, pending);
  EXPECT_EQ(driver().Used(1).len, 513u);
  EXPECT_EQ(Guest(kDataAddr, 512), image_.substr(6 * 512, 512));
  EXPECT_EQ(irq2.count(), 1u);
  EXPECT_EQ(RegOf(restored, kRegInterruptStatus), kInterruptUsedBuffer);
  // And goes on.
  WriteHeader(kBlkTIn, 7);
  driver().AddChain({{kHeader, 16, false}, {kDataAddr, 512, true}, {kStatusAddr, 1, true}});
  SetRegOf(restored, kRegQueueNotify, 0);
  ASSERT_EQ(driver().UsedIdx(), 3);
  EXPECT_EQ(Guest(kDataAddr, 512), image_.substr(7 * 512, 512));
  EXPECT_EQ(RegOf(restored, kRegStatus), kDriverOkAll);
}

TEST_F(BlockTest, RestoreKeepsTheRateLimiterAndRefusesAnotherImage) {
  OpenBlock();  // writes the image
  BlockOptions o;
  o.drive_id = "limited";
  o.path = ImagePath();
  o.rate_limiter = RateLimiterConfig{TokenBucketConfig{4096, 0, 1000}, std::nullopt};
  auto a = Block::Open(o);
  ASSERT_TRUE(a.ok()) << a.error().message;
  BlockState saved = (*a)->Save();
  ASSERT_TRUE(saved.rate_limiter.has_value());
  ASSERT_TRUE(saved.rate_limiter->bandwidth.has_value());
  EXPECT_EQ(saved.rate_limiter->bandwidth->size, 4096u);
  auto b = Block::Open(o);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE((*b)->Restore(saved).ok());
  EXPECT_EQ((*b)->Save().rate_limiter->bandwidth->budget, saved.rate_limiter->bandwidth->budget);

  BlockState other = saved;
  other.capacity_sectors += 1;
  Status s = (*b)->Restore(other);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("sectors"), std::string::npos) << s.error().message;
}

TEST_F(MmioTest, RestoreOfAnInactiveTransportLeavesTheDeviceInactive) {
  UseFake();
  ASSERT_TRUE(Negotiate(Bit(kFVersion1)));
  MmioTransportState saved = transport_->Save();
  auto fake2 = std::make_shared<FakeDevice>();
  MmioTransport t2(fake2, mem_.get(), &irq_);
  ASSERT_TRUE(t2.Restore(saved).ok());
  EXPECT_EQ(t2.Save(), saved);
  EXPECT_EQ(fake2->activations, 0);
  EXPECT_EQ(RegOf(t2, kRegStatus), kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
}

TEST_F(MmioTest, RestoreRefusesAStateOfAnotherShape) {
  UseFake(2);
  BringUp(Bit(kFVersion1));
  MmioTransportState saved = transport_->Save();
  auto one_queue = std::make_shared<FakeDevice>(1);
  MmioTransport t1(one_queue, mem_.get(), &irq_);
  EXPECT_FALSE(t1.Restore(saved).ok());
  auto smaller = std::make_shared<FakeDevice>(2, 64);
  MmioTransport t2(smaller, mem_.get(), &irq_);
  EXPECT_FALSE(t2.Restore(saved).ok());
  EXPECT_EQ(smaller->activations, 0);
}

}  // namespace
}  // namespace ember

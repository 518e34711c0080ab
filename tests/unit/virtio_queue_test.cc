// Tests of virtio::Queue, the device side of a split virtqueue (virtio 1.x section 2.7), against
// an in-memory GuestMemory with two regions, [0, 1 MiB) and [2 MiB, 3 MiB), so that "outside
// RAM" and "in the gap" both exist. The driver side is tests/support/virtq_driver.h. Every
// hostile case asserts the exact QueueError; ASan/UBSan builds assert that nothing was touched
// outside the mappings.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "devices/virtio/queue.h"
#include "devices/virtio/virtio_spec.h"
#include "tests/support/virtq_driver.h"
#include "vmm/memory/guest_memory.h"

namespace ember {
namespace {

using testing::VirtqBuffer;
using testing::VirtqDriver;
using virtio::Bit;
using virtio::Desc;
using virtio::DescriptorChain;
using virtio::kDescFIndirect;
using virtio::kDescFNext;
using virtio::kDescFWrite;
using virtio::Queue;
using virtio::QueueError;
using virtio::QueueState;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kRegion2 = 2 * kMiB;     // second region: [2 MiB, 3 MiB)
constexpr uint64_t kRamEnd = 3 * kMiB;
constexpr uint64_t kDescAddr = 0x1000;     // 16 * 256 bytes
constexpr uint64_t kAvailAddr = 0x2000;    // 6 + 2 * 256
constexpr uint64_t kUsedAddr = 0x3000;     // 6 + 8 * 256
constexpr uint64_t kData = 0x10000;        // data buffers from here
constexpr uint64_t kTable = 0x8000;        // indirect tables
constexpr uint64_t kIndirect = Bit(virtio::kFIndirectDesc);
constexpr uint64_t kEventIdx = Bit(virtio::kFEventIdx);

class QueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = GuestMemory::Create({{0, kMiB}, {kRegion2, kMiB}});
    ASSERT_TRUE(m.ok()) << m.error().message;
    mem_ = std::make_unique<GuestMemory>(std::move(*m));
  }

  // A queue of `size` at the standard addresses, activated with `features`.
  void Start(uint16_t size, uint64_t features = 0) {
    driver_.emplace(*mem_, size, kDescAddr, kAvailAddr, kUsedAddr);
    driver_->Configure(&queue_);
    Status s = queue_.Activate(mem_.get(), features);
    ASSERT_TRUE(s.ok()) << s.error().message;
  }

  uint8_t* Host(uint64_t gpa, uint64_t len = 1) {
    auto h = mem_->HostAddress(gpa, len);
    EXPECT_TRUE(h.ok());
    return h.ok() ? *h : nullptr;
  }

  // Pops a chain that must be taken without error.
  DescriptorChain PopOk() {
    DescriptorChain chain;
    QueueError error;
    EXPECT_TRUE(queue_.Pop(&chain, &error));
    EXPECT_EQ(error, QueueError::kNone);
    return chain;
  }
  // Pops a chain that must be taken (the head consumed) and reported with `expected`.
  void ExpectChainError(QueueError expected) {
    ASSERT_FALSE(virtio::IsRingError(expected));
    DescriptorChain chain;
    QueueError error;
    uint16_t before = queue_.state().next_avail;
    ASSERT_TRUE(queue_.Pop(&chain, &error));
    EXPECT_EQ(error, expected);
    EXPECT_EQ(queue_.state().next_avail, static_cast<uint16_t>(before + 1));
  }
  // Pops from a broken ring: nothing is taken and `expected` is reported.
  void ExpectRingError(QueueError expected) {
    ASSERT_TRUE(virtio::IsRingError(expected));
    DescriptorChain chain;
    QueueError error;
    uint16_t before = queue_.state().next_avail;
    EXPECT_FALSE(queue_.Pop(&chain, &error));
    EXPECT_EQ(error, expected);
    EXPECT_EQ(queue_.state().next_avail, before);
  }
  void ExpectEmpty() {
    DescriptorChain chain;
    QueueError error;
    EXPECT_FALSE(queue_.Pop(&chain, &error));
    EXPECT_EQ(error, QueueError::kNone);
  }

  std::unique_ptr<GuestMemory> mem_;
  std::optional<VirtqDriver> driver_;
  Queue queue_;
};

// --- Activation ---------------------------------------------------------------------------------

TEST_F(QueueTest, ActivatesValidRings) {
  Start(256, kEventIdx | kIndirect);
  EXPECT_TRUE(queue_.activated());
  EXPECT_TRUE(queue_.state().event_idx);
  EXPECT_TRUE(queue_.state().indirect);
  EXPECT_EQ(queue_.Pending(), 0);
  ExpectEmpty();
}

TEST_F(QueueTest, ActivateRecordsOnlyNegotiatedFeatures) {
  Start(8, Bit(virtio::kFVersion1));
  EXPECT_FALSE(queue_.state().event_idx);
  EXPECT_FALSE(queue_.state().indirect);
}

TEST_F(QueueTest, ActivateRefusesAQueueThatIsNotReady) {
  VirtqDriver d(*mem_, 8, kDescAddr, kAvailAddr, kUsedAddr);
  d.Configure(&queue_);
  queue_.config().ready = false;
  EXPECT_FALSE(queue_.Activate(mem_.get(), 0).ok());
  EXPECT_FALSE(queue_.activated());
}

TEST_F(QueueTest, ActivateRefusesSizesThatAreNotPowersOfTwoUpToTheMaximum) {
  for (uint16_t size : {0, 3, 6, 100, 255, 512, 0xffff}) {
    SCOPED_TRACE(size);
    Queue q;
    VirtqDriver d(*mem_, 8, kDescAddr, kAvailAddr, kUsedAddr);
    d.Configure(&q);
    q.config().size = size;
    EXPECT_FALSE(q.Activate(mem_.get(), 0).ok());
    EXPECT_FALSE(q.activated());
    DescriptorChain chain;
    QueueError error;
    EXPECT_FALSE(q.Pop(&chain, &error));
    EXPECT_EQ(error, QueueError::kNone);
  }
  // A smaller device maximum is enforced too.
  Queue small(16);
  VirtqDriver d(*mem_, 32, kDescAddr, kAvailAddr, kUsedAddr);
  d.Configure(&small);
  EXPECT_FALSE(small.Activate(mem_.get(), 0).ok());
  small.config().size = 16;
  EXPECT_TRUE(small.Activate(mem_.get(), 0).ok());
  for (uint16_t size : {1, 2, 4, 128, 256}) {
    SCOPED_TRACE(size);
    Queue q;
    VirtqDriver d2(*mem_, size, kDescAddr, kAvailAddr, kUsedAddr);
    d2.Configure(&q);
    EXPECT_TRUE(q.Activate(mem_.get(), 0).ok());
  }
}

TEST_F(QueueTest, ActivateRefusesMisalignedRings) {
  struct Case {
    uint64_t desc, avail, used;
  };
  // 2.7: descriptor table 16-byte aligned, available ring 2, used ring 4.
  for (Case c : {Case{kDescAddr + 8, kAvailAddr, kUsedAddr}, Case{kDescAddr + 1, kAvailAddr, kUsedAddr},
                 Case{kDescAddr, kAvailAddr + 1, kUsedAddr}, Case{kDescAddr, kAvailAddr, kUsedAddr + 2},
                 Case{kDescAddr, kAvailAddr, kUsedAddr + 1}}) {
    SCOPED_TRACE(std::to_string(c.desc) + " " + std::to_string(c.avail) + " " + std::to_string(c.used));
    Queue q;
    VirtqDriver d(*mem_, 8, kDescAddr, kAvailAddr, kUsedAddr);
    d.Configure(&q);
    q.config().desc_addr = c.desc;
    q.config().avail_addr = c.avail;
    q.config().used_addr = c.used;
    EXPECT_FALSE(q.Activate(mem_.get(), 0).ok());
    EXPECT_FALSE(q.activated());
  }
}

TEST_F(QueueTest, ActivateRefusesRingsOutsideRam) {
  struct Case {
    const char* what;
    uint64_t desc, avail, used;
  };
  const uint64_t wrap = ~uint64_t{0} - 15;  // 16-byte aligned, 2^64 - 16
  for (Case c : {
           Case{"desc in the gap", kMiB, kAvailAddr, kUsedAddr},
           Case{"desc straddles the end of region 1", kMiB - 16 * 128, kAvailAddr, kUsedAddr},
           Case{"desc past the end of RAM", kRamEnd, kAvailAddr, kUsedAddr},
           Case{"desc wraps 2^64", wrap, kAvailAddr, kUsedAddr},
           Case{"avail in the gap", kDescAddr, kMiB + 0x1000, kUsedAddr},
           Case{"avail's used_event past region 1", kDescAddr, kMiB - (4 + 2 * 256), kUsedAddr},
           Case{"avail wraps 2^64", kDescAddr, wrap, kUsedAddr},
           Case{"used straddles the start of region 2", kDescAddr, kAvailAddr, kRegion2 - 8},
           Case{"used's avail_event past the end of RAM", kDescAddr, kAvailAddr,
                kRamEnd - (4 + 8 * 256)},
           Case{"used wraps 2^64", kDescAddr, kAvailAddr, wrap},
       }) {
    SCOPED_TRACE(c.what);
    Queue q;
    VirtqDriver d(*mem_, 256, kDescAddr, kAvailAddr, kUsedAddr);
    d.Configure(&q);
    q.config().desc_addr = c.desc;
    q.config().avail_addr = c.avail;
    q.config().used_addr = c.used;
    EXPECT_FALSE(q.Activate(mem_.get(), 0).ok());
    EXPECT_FALSE(q.activated());
    EXPECT_EQ(q.Pending(), 0);
    q.AddUsed(0, 0);  // ignored, not a write through a null ring
    EXPECT_FALSE(q.NeedsInterrupt());
    EXPECT_FALSE(q.EnableNotification());
  }
  // The same rings in region 2 are fine.
  Queue q;
  VirtqDriver d(*mem_, 256, kRegion2 + kDescAddr, kRegion2 + kAvailAddr, kRegion2 + kUsedAddr);
  d.Configure(&q);
  EXPECT_TRUE(q.Activate(mem_.get(), 0).ok());
}

TEST_F(QueueTest, ResetForgetsEverythingButTheMaximum) {
  Queue q(64);
  VirtqDriver d(*mem_, 32, kDescAddr, kAvailAddr, kUsedAddr);
  d.Configure(&q);
  ASSERT_TRUE(q.Activate(mem_.get(), kEventIdx).ok());
  d.AddChain({{kData, 16, false}});
  q.Reset();
  EXPECT_FALSE(q.activated());
  QueueState expected;
  expected.max_size = expected.size = 64;
  EXPECT_EQ(q.state(), expected);
  DescriptorChain chain;
  QueueError error;
  EXPECT_FALSE(q.Pop(&chain, &error));
  EXPECT_EQ(error, QueueError::kNone);
}

// --- Normal chains -----------------------------------------------------------------------------

TEST_F(QueueTest, SplitsAChainIntoReadableThenWritableParts) {
  Start(16);
  uint16_t head = driver_->AddChain({{kData, 16, false},
                                     {kRegion2 + 0x100, 100, false},
                                     {kData + 0x1000, 512, true},
                                     {kRegion2 + 0x2000, 1, true}});
  EXPECT_EQ(queue_.Pending(), 1);
  DescriptorChain c = PopOk();
  EXPECT_EQ(c.head, head);
  ASSERT_EQ(c.readable.size(), 2u);
  ASSERT_EQ(c.writable.size(), 2u);
  EXPECT_EQ(c.readable[0].host, Host(kData));
  EXPECT_EQ(c.readable[0].len, 16u);
  EXPECT_EQ(c.readable[1].host, Host(kRegion2 + 0x100));
  EXPECT_EQ(c.readable[1].len, 100u);
  EXPECT_EQ(c.writable[0].host, Host(kData + 0x1000));
  EXPECT_EQ(c.writable[0].len, 512u);
  EXPECT_EQ(c.writable[1].host, Host(kRegion2 + 0x2000));
  EXPECT_EQ(c.writable[1].len, 1u);
  EXPECT_EQ(c.readable_bytes, 116u);
  EXPECT_EQ(c.writable_bytes, 513u);
  EXPECT_EQ(queue_.Pending(), 0);
  ExpectEmpty();
}

TEST_F(QueueTest, PopsReadableOnlyAndWritableOnlyChainsInOrder) {
  Start(8);
  uint16_t h1 = driver_->AddChain({{kData, 8, false}});
  uint16_t h2 = driver_->AddChain({{kData + 8, 8, true}, {kData + 16, 8, true}});
  EXPECT_EQ(queue_.Pending(), 2);
  DescriptorChain c1 = PopOk();
  EXPECT_EQ(c1.head, h1);
  EXPECT_EQ(c1.readable.size(), 1u);
  EXPECT_TRUE(c1.writable.empty());
  DescriptorChain c2 = PopOk();
  EXPECT_EQ(c2.head, h2);
  EXPECT_TRUE(c2.readable.empty());
  EXPECT_EQ(c2.writable.size(), 2u);
  EXPECT_EQ(c2.writable_bytes, 16u);
}

TEST_F(QueueTest, ReusingAChainObjectStartsFromEmpty) {
  Start(8);
  driver_->AddChain({{kData, 8, false}, {kData + 8, 8, true}});
  driver_->AddChain({{kData + 64, 4, true}});
  DescriptorChain chain;
  QueueError error;
  ASSERT_TRUE(queue_.Pop(&chain, &error));
  ASSERT_TRUE(queue_.Pop(&chain, &error));
  EXPECT_EQ(error, QueueError::kNone);
  EXPECT_TRUE(chain.readable.empty());
  EXPECT_EQ(chain.readable_bytes, 0u);
  EXPECT_EQ(chain.writable.size(), 1u);
  EXPECT_EQ(chain.writable_bytes, 4u);
}

TEST_F(QueueTest, ZeroLengthDescriptorsCarryNothing) {
  Start(8);
  // A zero-length buffer names no bytes, so even a wild address is harmless.
  driver_->AddChain({{kData, 0, false}, {kData, 4, false}, {~uint64_t{0}, 0, true}, {kData, 2, true}});
  DescriptorChain c = PopOk();
  EXPECT_EQ(c.readable.size(), 1u);
  EXPECT_EQ(c.writable.size(), 1u);
  EXPECT_EQ(c.readable_bytes, 4u);
  EXPECT_EQ(c.writable_bytes, 2u);
}

TEST_F(QueueTest, AcceptsAChainAsLongAsTheQueue) {
  Start(4);
  std::vector<VirtqBuffer> bufs;
  for (int i = 0; i < 4; i++) bufs.push_back({kData + 0x100 * i, 0x10, i >= 2});
  driver_->AddChain(bufs);
  DescriptorChain c = PopOk();
  EXPECT_EQ(c.readable.size(), 2u);
  EXPECT_EQ(c.writable.size(), 2u);
}

TEST_F(QueueTest, CopyFromReadableCrossesSegments) {
  Start(8);
  // Three readable segments of 5, 3 and 8 bytes holding 0..15, then a writable one.
  const uint64_t a = kData, b = kRegion2 + 0x40, c = kData + 0x800;
  for (int i = 0; i < 16; i++) {
    uint64_t gpa = i < 5 ? a + i : i < 8 ? b + (i - 5) : c + (i - 8);
    ASSERT_TRUE(mem_->WriteObj<uint8_t>(gpa, static_cast<uint8_t>(i)).ok());
  }
  driver_->AddChain({{a, 5, false}, {b, 3, false}, {c, 8, false}, {kData + 0x900, 4, true}});
  DescriptorChain chain = PopOk();
  ASSERT_EQ(chain.readable_bytes, 16u);

  uint8_t out[32];
  memset(out, 0xee, sizeof(out));
  EXPECT_EQ(chain.CopyFromReadable(0, out, 16), 16u);
  for (int i = 0; i < 16; i++) EXPECT_EQ(out[i], i);
  EXPECT_EQ(out[16], 0xee);

  memset(out, 0xee, sizeof(out));
  EXPECT_EQ(chain.CopyFromReadable(3, out, 7), 7u);  // 3..9: all three segments
  for (int i = 0; i < 7; i++) EXPECT_EQ(out[i], 3 + i);
  EXPECT_EQ(out[7], 0xee);

  EXPECT_EQ(chain.CopyFromReadable(5, out, 3), 3u);  // exactly the middle segment
  EXPECT_EQ(out[0], 5);
  EXPECT_EQ(out[2], 7);

  memset(out, 0xee, sizeof(out));
  EXPECT_EQ(chain.CopyFromReadable(12, out, 32), 4u);  // runs off the end: what there is
  EXPECT_EQ(out[0], 12);
  EXPECT_EQ(out[3], 15);
  EXPECT_EQ(out[4], 0xee);

  EXPECT_EQ(chain.CopyFromReadable(16, out, 1), 0u);
  EXPECT_EQ(chain.CopyFromReadable(~uint64_t{0}, out, 1), 0u);
  EXPECT_EQ(chain.CopyFromReadable(0, out, 0), 0u);
}

TEST_F(QueueTest, CopyToWritableCrossesSegments) {
  Start(8);
  const uint64_t a = kData, b = kRegion2 + 0x40, c = kData + 0x800;
  ASSERT_TRUE(mem_->Fill(a, 0xee, 0x1000).ok());
  ASSERT_TRUE(mem_->Fill(b, 0xee, 0x10).ok());
  driver_->AddChain({{kData + 0x900, 4, false}, {a, 2, true}, {b, 4, true}, {c, 6, true}});
  DescriptorChain chain = PopOk();
  ASSERT_EQ(chain.writable_bytes, 12u);

  uint8_t in[32];
  for (int i = 0; i < 32; i++) in[i] = static_cast<uint8_t>(0x80 + i);
  EXPECT_EQ(chain.CopyToWritable(1, in, 7), 7u);  // offsets 1..7: a[1], b[0..3], c[0..1]
  EXPECT_EQ(*Host(a), 0xee);
  EXPECT_EQ(*Host(a + 1), 0x80);
  for (int i = 0; i < 4; i++) EXPECT_EQ(*Host(b + i), 0x81 + i);
  EXPECT_EQ(*Host(c), 0x85);
  EXPECT_EQ(*Host(c + 1), 0x86);
  EXPECT_EQ(*Host(c + 2), 0xee);

  // Only what fits is written, and nothing past the last segment.
  EXPECT_EQ(chain.CopyToWritable(10, in, 32), 2u);
  EXPECT_EQ(*Host(c + 4), 0x80);
  EXPECT_EQ(*Host(c + 5), 0x81);
  EXPECT_EQ(*Host(c + 6), 0xee);
  EXPECT_EQ(chain.CopyToWritable(12, in, 1), 0u);
  EXPECT_EQ(chain.CopyToWritable(~uint64_t{0}, in, 1), 0u);
  // The readable part is never written.
  EXPECT_EQ(*Host(kData + 0x900), 0xee);
}

// --- The used ring ------------------------------------------------------------------------------

TEST_F(QueueTest, AddUsedPublishesTheElementThenTheIndex) {
  Start(8);
  uint16_t h1 = driver_->AddChain({{kData, 16, false}});
  uint16_t h2 = driver_->AddChain({{kData, 16, true}});
  PopOk();
  PopOk();
  // Completion order is the device's: the second chain first.
  queue_.AddUsed(h2, 16);
  EXPECT_EQ(driver_->UsedIdx(), 1);
  EXPECT_EQ(driver_->Used(0).id, h2);
  EXPECT_EQ(driver_->Used(0).len, 16u);
  queue_.AddUsed(h1, 0);
  EXPECT_EQ(driver_->UsedIdx(), 2);
  EXPECT_EQ(driver_->Used(1).id, h1);
  EXPECT_EQ(driver_->Used(1).len, 0u);
  EXPECT_EQ(queue_.state().next_used, 2);
}

TEST_F(QueueTest, RingsWrapAroundTheQueueAndTheSixteenBitIndex) {
  VirtqDriver d(*mem_, 4, kDescAddr, kAvailAddr, kUsedAddr);
  d.Configure(&queue_);
  // Start just before the 16-bit indices wrap, as a restored queue may.
  queue_.config().next_avail = 65533;
  queue_.config().next_used = 65533;
  queue_.config().signalled_used = 65533;
  ASSERT_TRUE(queue_.Activate(mem_.get(), 0).ok());
  d.SetAvailIdx(65533);
  for (int round = 0; round < 10; round++) {
    SCOPED_TRACE(round);
    uint16_t head = d.AddChain({{kData + 0x10 * round, 0x10, true}});
    EXPECT_EQ(queue_.Pending(), 1);
    DescriptorChain c = PopOk();
    EXPECT_EQ(c.head, head);
    ASSERT_EQ(c.writable.size(), 1u);
    EXPECT_EQ(c.writable[0].host, Host(kData + 0x10 * round));
    queue_.AddUsed(c.head, round);
    uint16_t n = static_cast<uint16_t>(65533 + round);
    EXPECT_EQ(d.UsedIdx(), static_cast<uint16_t>(n + 1));
    EXPECT_EQ(d.Used(n).id, head);
    EXPECT_EQ(d.Used(n).len, static_cast<uint32_t>(round));
  }
  EXPECT_EQ(queue_.state().next_avail, 7);
}

TEST_F(QueueTest, WithoutEventIdxTheNoInterruptFlagDecides) {
  Start(8);
  driver_->AddChain({{kData, 1, true}});
  PopOk();
  queue_.AddUsed(0, 1);
  EXPECT_TRUE(queue_.NeedsInterrupt());
  driver_->SetAvailFlags(virtio::kAvailFNoInterrupt);
  driver_->AddChain({{kData, 1, true}});
  PopOk();
  queue_.AddUsed(1, 1);
  EXPECT_FALSE(queue_.NeedsInterrupt());
  // used_event is not looked at without the feature.
  driver_->SetUsedEvent(2);
  driver_->AddChain({{kData, 1, true}});
  PopOk();
  queue_.AddUsed(2, 1);
  EXPECT_FALSE(queue_.NeedsInterrupt());
  driver_->SetAvailFlags(0);
  EXPECT_TRUE(queue_.NeedsInterrupt());
}

TEST_F(QueueTest, EventIdxInterruptsOnlyWhenUsedEventIsInTheNewWindow) {
  Start(8, kEventIdx);
  auto complete = [&](int n) {
    for (int i = 0; i < n; i++) {
      driver_->AddChain({{kData, 1, true}});
      DescriptorChain c = PopOk();
      queue_.AddUsed(c.head, 1);
    }
  };
  // Window [0, 3): used_event 1 is inside.
  complete(3);
  driver_->SetUsedEvent(1);
  EXPECT_TRUE(queue_.NeedsInterrupt());
  // Window [3, 5): used_event 1 is behind it.
  complete(2);
  EXPECT_FALSE(queue_.NeedsInterrupt());
  // Window [5, 6): used_event 6 has not been reached yet...
  driver_->SetUsedEvent(6);
  complete(1);
  EXPECT_FALSE(queue_.NeedsInterrupt());
  // ...and is the first element of window [6, 7).
  complete(1);
  EXPECT_TRUE(queue_.NeedsInterrupt());
  // An empty window never interrupts.
  EXPECT_FALSE(queue_.NeedsInterrupt());
  // With EVENT_IDX the NO_INTERRUPT flag is ignored (2.7.7).
  driver_->SetAvailFlags(virtio::kAvailFNoInterrupt);
  driver_->SetUsedEvent(7);
  complete(1);
  EXPECT_TRUE(queue_.NeedsInterrupt());
}

TEST_F(QueueTest, EventIdxWindowWrapsTheSixteenBitIndex) {
  VirtqDriver d(*mem_, 8, kDescAddr, kAvailAddr, kUsedAddr);
  d.Configure(&queue_);
  queue_.config().next_used = 65534;
  queue_.config().signalled_used = 65534;
  ASSERT_TRUE(queue_.Activate(mem_.get(), kEventIdx).ok());
  queue_.AddUsed(0, 0);
  queue_.AddUsed(1, 0);
  queue_.AddUsed(2, 0);  // window [65534, 1)
  d.SetUsedEvent(65535);
  EXPECT_TRUE(queue_.NeedsInterrupt());
  queue_.AddUsed(3, 0);
  queue_.AddUsed(4, 0);  // window [1, 3)
  d.SetUsedEvent(65535);
  EXPECT_FALSE(queue_.NeedsInterrupt());
  queue_.AddUsed(5, 0);  // window [3, 4)
  d.SetUsedEvent(3);
  EXPECT_TRUE(queue_.NeedsInterrupt());
}

TEST_F(QueueTest, EnableNotificationWritesAvailEventAndReportsNewWork) {
  Start(8, kEventIdx);
  driver_->AddChain({{kData, 1, true}});
  driver_->AddChain({{kData, 1, true}});
  PopOk();
  PopOk();
  EXPECT_FALSE(queue_.EnableNotification());
  EXPECT_EQ(driver_->AvailEvent(), 2);
  // A chain that arrived after the last Pop must be served before the device sleeps.
  driver_->AddChain({{kData, 1, true}});
  EXPECT_TRUE(queue_.EnableNotification());
  EXPECT_EQ(driver_->AvailEvent(), 2);
  PopOk();
  EXPECT_FALSE(queue_.EnableNotification());
  EXPECT_EQ(driver_->AvailEvent(), 3);
}

TEST_F(QueueTest, EnableNotificationWithoutEventIdxLeavesTheUsedRingAlone) {
  Start(8);
  ASSERT_TRUE(mem_->WriteObj<uint16_t>(kUsedAddr + 4 + 8 * 8, 0xbeef).ok());
  EXPECT_FALSE(queue_.EnableNotification());
  driver_->AddChain({{kData, 1, true}});
  EXPECT_TRUE(queue_.EnableNotification());
  EXPECT_EQ(driver_->AvailEvent(), 0xbeef);
  EXPECT_EQ(driver_->UsedFlags(), 0);
}

TEST_F(QueueTest, UndoPopPutsTheChainBack) {
  Start(8);
  uint16_t h1 = driver_->AddChain({{kData, 4, false}});
  uint16_t h2 = driver_->AddChain({{kData, 4, true}});
  EXPECT_EQ(queue_.Pending(), 2);
  DescriptorChain c = PopOk();
  EXPECT_EQ(c.head, h1);
  EXPECT_EQ(queue_.Pending(), 1);
  queue_.UndoPop();
  EXPECT_EQ(queue_.Pending(), 2);
  EXPECT_EQ(PopOk().head, h1);
  EXPECT_EQ(PopOk().head, h2);
  ExpectEmpty();
}

TEST_F(QueueTest, PendingCountsWhatTheDriverPublished) {
  Queue idle;
  EXPECT_EQ(idle.Pending(), 0);  // not activated
  Start(8);
  EXPECT_EQ(queue_.Pending(), 0);
  for (int i = 0; i < 8; i++) driver_->AddChain({{kData, 4, false}});
  EXPECT_EQ(queue_.Pending(), 8);  // a full ring
  PopOk();
  EXPECT_EQ(queue_.Pending(), 7);
  driver_->SetAvailIdx(static_cast<uint16_t>(queue_.state().next_avail + 9));
  EXPECT_EQ(queue_.Pending(), 0);  // broken ring
}

// --- Hostile buffers ----------------------------------------------------------------------------

struct BadBuffer {
  const char* what;
  uint64_t addr;
  uint32_t len;
};
const BadBuffer kBadBuffers[] = {
    {"in the gap", kMiB, 16},
    {"in the gap, far", kMiB + 0x80000, 4096},
    {"past the end of RAM", kRamEnd, 1},
    {"far past the end of RAM", uint64_t{1} << 40, 4096},
    {"at 2^64 - 1", ~uint64_t{0}, 1},
    {"addr + len wraps past 2^64", ~uint64_t{0} - 0xff, 0x200},
    {"addr + len wraps to inside RAM", ~uint64_t{0} - 0xf, 0x1000},
    {"straddles the gap from region 1", kMiB - 8, 16},
    {"straddles the gap into region 2", kRegion2 - 8, 16},
    {"straddles the end of RAM", kRamEnd - 8, 16},
    {"longer than region 1", kData, 0xffffffff},
    {"spans both regions and the gap", kMiB - 0x1000, 2 * kMiB},
};

TEST_F(QueueTest, RefusesBuffersOutsideGuestRam) {
  for (const BadBuffer& b : kBadBuffers) {
    for (bool writable : {false, true}) {
      SCOPED_TRACE(std::string(b.what) + (writable ? " (writable)" : " (readable)"));
      Start(8);
      driver_->AddChain({{kData, 16, false}, {b.addr, b.len, writable}, {kData + 16, 1, true}});
      ExpectChainError(QueueError::kBufferOutsideMemory);
      // A chain error drops that chain only: the next one is served.
      uint16_t good = driver_->AddChain({{kData, 16, false}, {kData + 16, 1, true}});
      EXPECT_EQ(PopOk().head, good);
      queue_.Reset();
    }
  }
}

TEST_F(QueueTest, BuffersAtTheEdgesOfEachRegionAreAccepted) {
  Start(8);
  driver_->AddChain({{0, 16, false}, {kMiB - 16, 16, false}, {kRegion2, 16, true}, {kRamEnd - 16, 16, true}});
  DescriptorChain c = PopOk();
  EXPECT_EQ(c.readable.size(), 2u);
  EXPECT_EQ(c.writable.size(), 2u);
  EXPECT_EQ(c.writable[1].host, Host(kRamEnd - 16, 16));
}

TEST_F(QueueTest, RefusesALoopBackToTheHead) {
  Start(4);
  // 0 -> 1 -> 2 -> 3 -> 0: five descriptors in a queue of four.
  for (uint16_t i = 0; i < 4; i++) {
    driver_->WriteDesc(i, {kData + 16 * i, 16, kDescFNext, static_cast<uint16_t>((i + 1) % 4)});
  }
  driver_->Publish(0);
  ExpectChainError(QueueError::kChainTooLong);
}

TEST_F(QueueTest, RefusesADescriptorThatNamesItself) {
  Start(8);
  driver_->WriteDesc(5, {kData, 16, kDescFNext | kDescFWrite, 5});
  driver_->Publish(5);
  ExpectChainError(QueueError::kChainTooLong);
}

TEST_F(QueueTest, RefusesALoopIntoTheMiddleOfTheChain) {
  Start(8);
  driver_->WriteDesc(0, {kData, 16, kDescFNext, 1});
  driver_->WriteDesc(1, {kData, 16, kDescFNext, 2});
  driver_->WriteDesc(2, {kData, 16, kDescFNext, 1});
  driver_->Publish(0);
  ExpectChainError(QueueError::kChainTooLong);
}

TEST_F(QueueTest, RefusesAChainLongerThanTheQueueOfAMaximumSizeTable) {
  Start(256);
  for (uint16_t i = 0; i < 256; i++) {
    driver_->WriteDesc(i, {kData, 1, kDescFNext, static_cast<uint16_t>((i + 1) % 256)});
  }
  driver_->Publish(17);
  ExpectChainError(QueueError::kChainTooLong);
}

TEST_F(QueueTest, RefusesANextIndexOutsideTheTable) {
  for (uint16_t next : {8, 9, 255, 256, 0xffff}) {
    SCOPED_TRACE(next);
    Start(8);
    driver_->WriteDesc(0, {kData, 16, kDescFNext, next});
    driver_->Publish(0);
    ExpectChainError(QueueError::kDescOutOfRange);
    queue_.Reset();
  }
}

TEST_F(QueueTest, RefusesAReadableBufferAfterAWritableOne) {
  Start(8);
  driver_->AddChain({{kData, 16, false}, {kData + 16, 16, true}, {kData + 32, 16, false}});
  ExpectChainError(QueueError::kReadableAfterWritable);
  // Even a zero-length readable one: the order rule is about descriptors (2.7.4.2).
  driver_->AddChain({{kData + 16, 16, true}, {kData, 0, false}});
  ExpectChainError(QueueError::kReadableAfterWritable);
}

// --- Indirect descriptors -----------------------------------------------------------------------

TEST_F(QueueTest, FollowsAnIndirectTable) {
  Start(8, kIndirect);
  uint16_t head = driver_->AddIndirectChain(
      kTable, {{kData, 16, false}, {kRegion2, 512, true}, {kData + 0x100, 1, true}});
  DescriptorChain c = PopOk();
  EXPECT_EQ(c.head, head);
  ASSERT_EQ(c.readable.size(), 1u);
  ASSERT_EQ(c.writable.size(), 2u);
  EXPECT_EQ(c.readable[0].host, Host(kData));
  EXPECT_EQ(c.writable[0].host, Host(kRegion2));
  EXPECT_EQ(c.writable_bytes, 513u);
}

TEST_F(QueueTest, FollowsDirectDescriptorsThenAnIndirectTable) {
  Start(8, kIndirect);
  driver_->WriteTable(kTable, {{kData + 0x100, 8, kDescFWrite, 0}});
  driver_->WriteDesc(0, {kData, 16, kDescFNext, 1});
  driver_->WriteDesc(1, {kTable, 16, kDescFIndirect, 0});
  driver_->Publish(0);
  DescriptorChain c = PopOk();
  EXPECT_EQ(c.readable_bytes, 16u);
  EXPECT_EQ(c.writable_bytes, 8u);
}

TEST_F(QueueTest, AcceptsAnIndirectTableAsLargeAsTheQueue) {
  Start(16, kIndirect);
  std::vector<VirtqBuffer> bufs;
  for (int i = 0; i < 16; i++) bufs.push_back({kData + 0x10 * i, 0x10, i >= 8});
  driver_->AddIndirectChain(kTable, bufs);
  DescriptorChain c = PopOk();
  EXPECT_EQ(c.readable.size(), 8u);
  EXPECT_EQ(c.writable.size(), 8u);
}

TEST_F(QueueTest, RefusesIndirectWithoutTheFeature) {
  Start(8, kEventIdx);
  driver_->AddIndirectChain(kTable, {{kData, 16, false}});
  ExpectChainError(QueueError::kIndirectNotNegotiated);
}

TEST_F(QueueTest, RefusesIndirectWithNext) {
  Start(8, kIndirect);
  driver_->WriteTable(kTable, {{kData, 16, 0, 0}});
  driver_->WriteDesc(0, {kTable, 16, kDescFIndirect | kDescFNext, 1});
  driver_->WriteDesc(1, {kData, 16, kDescFWrite, 0});
  driver_->Publish(0);
  ExpectChainError(QueueError::kIndirectWithNext);
}

TEST_F(QueueTest, RefusesNestedIndirect) {
  Start(8, kIndirect);
  driver_->WriteTable(kTable + 0x100, {{kData, 16, 0, 0}});
  driver_->WriteTable(kTable, {{kData, 16, kDescFNext, 1}, {kTable + 0x100, 16, kDescFIndirect, 0}});
  driver_->WriteDesc(0, {kTable, 32, kDescFIndirect, 0});
  driver_->Publish(0);
  ExpectChainError(QueueError::kIndirectNested);
  // Nested in the first entry too, and naming its own table.
  driver_->WriteTable(kTable, {{kTable, 16, kDescFIndirect, 0}});
  driver_->WriteDesc(1, {kTable, 16, kDescFIndirect, 0});
  driver_->Publish(1);
  ExpectChainError(QueueError::kIndirectNested);
}

TEST_F(QueueTest, RefusesIndirectTablesOfBadLength) {
  // Queue size 16: at most 16 entries (256 bytes).
  for (uint32_t len : {0u, 1u, 15u, 17u, 24u, 16u * 16 + 8, 16u * 17, 0xfffffff0u, 0xffffffffu}) {
    SCOPED_TRACE(len);
    Start(16, kIndirect);
    driver_->WriteDesc(0, {kTable, len, kDescFIndirect, 0});
    driver_->Publish(0);
    ExpectChainError(QueueError::kIndirectBadLength);
    queue_.Reset();
  }
}

TEST_F(QueueTest, RefusesIndirectTablesOutsideRam) {
  struct Case {
    const char* what;
    uint64_t addr;
    uint32_t len;
  };
  for (Case c : {Case{"in the gap", kMiB, 16}, Case{"straddles the gap", kMiB - 16, 32},
                 Case{"straddles the end of RAM", kRamEnd - 16, 64},
                 Case{"past the end of RAM", kRamEnd, 16},
                 Case{"wraps 2^64", ~uint64_t{0} - 15, 32}}) {
    SCOPED_TRACE(c.what);
    Start(8, kIndirect);
    driver_->WriteDesc(0, {c.addr, c.len, kDescFIndirect, 0});
    driver_->Publish(0);
    ExpectChainError(QueueError::kIndirectOutsideMemory);
    queue_.Reset();
  }
}

TEST_F(QueueTest, RefusesALoopInsideAnIndirectTable) {
  Start(8, kIndirect);
  driver_->WriteTable(kTable, {{kData, 16, kDescFNext, 1}, {kData, 16, kDescFNext, 0}});
  driver_->WriteDesc(0, {kTable, 32, kDescFIndirect, 0});
  driver_->Publish(0);
  ExpectChainError(QueueError::kChainTooLong);
  // An entry naming itself.
  driver_->WriteTable(kTable, {{kData, 16, kDescFNext | kDescFWrite, 0}});
  driver_->WriteDesc(1, {kTable, 16, kDescFIndirect, 0});
  driver_->Publish(1);
  ExpectChainError(QueueError::kChainTooLong);
}

TEST_F(QueueTest, RefusesANextIndexOutsideTheIndirectTable) {
  Start(8, kIndirect);
  // The table has two entries; index 2 is past it even though the queue has 8.
  driver_->WriteTable(kTable, {{kData, 16, kDescFNext, 1}, {kData, 16, kDescFNext, 2}, {kData, 1, 0, 0}});
  driver_->WriteDesc(0, {kTable, 32, kDescFIndirect, 0});
  driver_->Publish(0);
  ExpectChainError(QueueError::kDescOutOfRange);
}

TEST_F(QueueTest, RefusesBadBuffersInsideAnIndirectTable) {
  Start(8, kIndirect);
  driver_->AddIndirectChain(kTable, {{kData, 16, false}, {kMiB - 8, 16, true}});
  ExpectChainError(QueueError::kBufferOutsideMemory);
  driver_->AddIndirectChain(kTable, {{kData, 16, true}, {kData, 16, false}});
  ExpectChainError(QueueError::kReadableAfterWritable);
  // Direct writable, then an indirect table starting with a readable buffer.
  driver_->WriteTable(kTable, {{kData, 16, 0, 0}});
  driver_->WriteDesc(4, {kData, 16, kDescFWrite | kDescFNext, 5});
  driver_->WriteDesc(5, {kTable, 16, kDescFIndirect, 0});
  driver_->Publish(4);
  ExpectChainError(QueueError::kReadableAfterWritable);
}

// --- Hostile rings ------------------------------------------------------------------------------

TEST_F(QueueTest, AnAvailIndexJumpIsARingErrorAndTakesNothing) {
  Start(8);
  driver_->AddChain({{kData, 16, false}});
  PopOk();
  // next_avail is 1; 1 + 8 is a full ring, 1 + 9 is impossible.
  for (uint16_t idx : {10, 100, 0x8000, 0 /* backwards */}) {
    SCOPED_TRACE(idx);
    driver_->SetAvailIdx(idx);
    EXPECT_EQ(queue_.Pending(), 0);
    ExpectRingError(QueueError::kAvailIndexJump);
  }
  driver_->SetAvailIdx(9);
  EXPECT_EQ(queue_.Pending(), 8);
}

TEST_F(QueueTest, AnAvailHeadOutsideTheTableIsARingErrorAndTakesNothing) {
  for (uint16_t head : {8, 9, 256, 0xffff}) {
    SCOPED_TRACE(head);
    Start(8);
    driver_->Publish(head);
    ExpectRingError(QueueError::kHeadOutOfRange);
    // Still broken on the next attempt: the device must be reset.
    ExpectRingError(QueueError::kHeadOutOfRange);
    queue_.Reset();
  }
}

TEST_F(QueueTest, RingErrorsAreTheOnlyOnesThatNeedAReset) {
  std::set<std::string> names;
  for (int e = 0; e <= static_cast<int>(QueueError::kReadableAfterWritable); e++) {
    auto error = static_cast<QueueError>(e);
    names.insert(virtio::QueueErrorName(error));
    bool ring = error == QueueError::kAvailIndexJump || error == QueueError::kHeadOutOfRange;
    EXPECT_EQ(virtio::IsRingError(error), ring) << e;
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(QueueError::kReadableAfterWritable) + 1);
  EXPECT_EQ(names.count("unknown queue error"), 0u);
}

// --- Save and restore ---------------------------------------------------------------------------

TEST_F(QueueTest, StateRoundTripsThroughAFreshQueue) {
  Start(16, kEventIdx | kIndirect);
  uint16_t h1 = driver_->AddChain({{kData, 16, false}, {kData + 16, 1, true}});
  uint16_t h2 = driver_->AddChain({{kData + 32, 8, true}});
  uint16_t h3 = driver_->AddChain({{kData + 64, 8, true}});
  EXPECT_EQ(PopOk().head, h1);
  EXPECT_EQ(PopOk().head, h2);
  queue_.AddUsed(h1, 1);
  queue_.AddUsed(h2, 8);
  driver_->SetUsedEvent(0);
  EXPECT_TRUE(queue_.NeedsInterrupt());
  const QueueState saved = queue_.state();
  EXPECT_EQ(saved.next_avail, 2);
  EXPECT_EQ(saved.next_used, 2);
  EXPECT_EQ(saved.signalled_used, 2);

  Queue restored;
  restored.config() = saved;
  ASSERT_TRUE(restored.Activate(mem_.get(), kEventIdx | kIndirect).ok());
  EXPECT_EQ(restored.state(), saved);
  EXPECT_EQ(restored.Pending(), 1);
  DescriptorChain c;
  QueueError error;
  ASSERT_TRUE(restored.Pop(&c, &error));
  EXPECT_EQ(error, QueueError::kNone);
  EXPECT_EQ(c.head, h3);
  restored.AddUsed(h3, 8);
  EXPECT_EQ(driver_->UsedIdx(), 3);
  EXPECT_EQ(driver_->Used(2).id, h3);
  driver_->SetUsedEvent(2);
  EXPECT_TRUE(restored.NeedsInterrupt());
}

}  // namespace
}  // namespace ember

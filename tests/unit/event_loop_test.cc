// The event loop's source groups: a paused microVM's device fds leave epoll and come back with
// their callbacks and events intact.
#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "vmm/base/event_loop.h"

namespace ember {
namespace {

TEST(EventLoopTest, SuspendedGroupIsNotDispatchedUntilResumed) {
  EventLoop loop = *EventLoop::Create();
  EventFd device = *EventFd::Create(EFD_NONBLOCK);
  EventFd api = *EventFd::Create(EFD_NONBLOCK);
  int device_calls = 0, api_calls = 0;
  ASSERT_TRUE(loop.Add(device.fd(), EPOLLIN, [&](uint32_t) { device_calls++; device.Consume(); },
                       EventLoop::kDevices).ok());
  ASSERT_TRUE(loop.Add(api.fd(), EPOLLIN, [&](uint32_t) { api_calls++; api.Consume(); }).ok());

  ASSERT_TRUE(loop.Suspend(EventLoop::kDevices).ok());
  ASSERT_TRUE(device.Signal().ok());
  ASSERT_TRUE(api.Signal().ok());
  EXPECT_EQ(*loop.RunOnce(0), 1);
  EXPECT_EQ(api_calls, 1);
  EXPECT_EQ(device_calls, 0);

  // Changing a suspended source's events is remembered, not applied to epoll.
  ASSERT_TRUE(loop.Modify(device.fd(), EPOLLIN).ok());
  EXPECT_EQ(*loop.RunOnce(0), 0);

  ASSERT_TRUE(loop.Resume(EventLoop::kDevices).ok());
  EXPECT_EQ(*loop.RunOnce(0), 1);
  EXPECT_EQ(device_calls, 1);
}

TEST(EventLoopTest, SourcesAddedWhileSuspendedStartOnResume) {
  EventLoop loop = *EventLoop::Create();
  ASSERT_TRUE(loop.Suspend(EventLoop::kDevices).ok());
  EventFd device = *EventFd::Create(EFD_NONBLOCK);
  int calls = 0;
  ASSERT_TRUE(loop.Add(device.fd(), EPOLLIN, [&](uint32_t) { calls++; device.Consume(); },
                       EventLoop::kDevices).ok());
  ASSERT_TRUE(device.Signal().ok());
  EXPECT_EQ(*loop.RunOnce(0), 0);
  // Removing a suspended source works and it never fires.
  ASSERT_TRUE(loop.Remove(device.fd()).ok());
  ASSERT_TRUE(loop.Resume(EventLoop::kDevices).ok());
  EXPECT_EQ(*loop.RunOnce(0), 0);
  EXPECT_EQ(calls, 0);
  EXPECT_FALSE(loop.Remove(device.fd()).ok());
}

}  // namespace
}  // namespace ember

// VmmChannel: how API requests reach the VMM thread. The API thread posts an action and blocks;
// the VMM thread, woken by the eventfd in its event loop, applies queued actions in order and
// answers each. The API thread never touches VM state (firecracker-facts §1.1: one request at a
// time, forwarded to the VMM thread).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

#include "vmm/base/event_loop.h"
#include "vmm/base/result.h"
#include "vmm/config/vmm_action.h"

namespace ember {

class VmmChannel {
 public:
  using Handler = std::function<Result<VmmData>(const VmmAction&)>;

  static Result<std::unique_ptr<VmmChannel>> Create();

  // API thread: queues the action and waits for the VMM thread's answer. After Close(), fails
  // at once with "the microVM has exited".
  Result<VmmData> Call(VmmAction action);

  // VMM thread: the eventfd to watch, and what to do when it is readable.
  int fd() const { return event_.fd(); }
  void Serve(const Handler& handler);

  // VMM thread, when it stops serving: answers whatever is queued, and every later call, with
  // an error.
  void Close();

 private:
  struct Pending {
    VmmAction action;
    std::optional<Result<VmmData>> answer;
  };
  explicit VmmChannel(EventFd event) : event_(std::move(event)) {}

  EventFd event_;
  std::mutex mu_;
  std::condition_variable answered_;
  std::deque<std::shared_ptr<Pending>> queue_;
  bool closed_ = false;
};

}  // namespace ember

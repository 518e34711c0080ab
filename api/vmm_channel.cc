#include "api/vmm_channel.h"

#include <sys/eventfd.h>

namespace ember {

namespace {
constexpr const char* kExited = "the microVM has exited";
}

Result<std::unique_ptr<VmmChannel>> VmmChannel::Create() {
  EventFd event = TRY(EventFd::Create(EFD_NONBLOCK));
  return std::unique_ptr<VmmChannel>(new VmmChannel(std::move(event)));
}

Result<VmmData> VmmChannel::Call(VmmAction action) {
  auto pending = std::make_shared<Pending>(Pending{std::move(action), std::nullopt});
  std::unique_lock<std::mutex> lock(mu_);
  if (closed_) return Error{kExited};
  queue_.push_back(pending);
  if (Status s = event_.Signal(); !s.ok()) {
    queue_.pop_back();
    return s.error();
  }
  answered_.wait(lock, [&] { return pending->answer.has_value(); });
  return std::move(*pending->answer);
}

void VmmChannel::Serve(const Handler& handler) {
  event_.Consume();
  for (;;) {
    std::shared_ptr<Pending> next;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) return;
      next = queue_.front();
      queue_.pop_front();
    }
    // Handled without the lock: the API thread may queue the next request meanwhile.
    Result<VmmData> answer = handler(next->action);
    {
      std::lock_guard<std::mutex> lock(mu_);
      next->answer = std::move(answer);
    }
    answered_.notify_all();
  }
}

void VmmChannel::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    for (auto& pending : queue_) pending->answer = Result<VmmData>(Error{kExited});
    queue_.clear();
  }
  answered_.notify_all();
}

}  // namespace ember

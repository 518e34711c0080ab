// The API server's transport (HTTP over a Unix socket, on its own threads) and the hand-off to
// the VMM thread, without a VM: a stand-in handler answers.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>
#include <vector>

#include "api/api_server.h"
#include "api/vmm_channel.h"
#include "tests/support/api_client.h"
#include "tests/support/process.h"

namespace ember {
namespace {

using testing::ApiClient;
using testing::ApiReply;
using testing::TempDir;

HttpResponse Echo(const HttpRequest& r) {
  HttpResponse res;
  res.status = 200;
  res.body = "{\"method\": \"" + r.method + "\", \"path\": \"" + r.path + "\", \"len\": " +
             std::to_string(r.body.size()) + "}";
  res.deprecated = r.path == "/old";
  return res;
}

std::unique_ptr<ApiServer> StartEcho(const std::string& path, size_t max_payload = 51200) {
  ApiServerOptions options;
  options.socket_path = path;
  options.max_payload_bytes = max_payload;
  auto server = ApiServer::Bind(options, Echo);
  EXPECT_TRUE(server.ok()) << (server.ok() ? "" : server.error().message);
  if (!server.ok()) return nullptr;
  (*server)->Start();
  return std::move(*server);
}

TEST(ApiServerTest, ServesRequestsInCurlsWireFormat) {
  TempDir dir;
  const std::string sock = dir.path() + "/api.sock";
  auto server = StartEcho(sock);
  ASSERT_TRUE(server);
  ApiClient client(sock);
  std::optional<ApiReply> r = client.Put("/machine-config", R"({"vcpu_count": 2})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"method": "PUT", "path": "/machine-config", "len": 17})");
  EXPECT_FALSE(r->HasHeader("deprecation"));
  r = client.Get("/old");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->HasHeader("deprecation"));
}

TEST(ApiServerTest, ErrorsFromTheHttpLayerAreFirecrackerFaults) {
  TempDir dir;
  const std::string sock = dir.path() + "/api.sock";
  auto server = StartEcho(sock, 100);
  ASSERT_TRUE(server);
  ApiClient client(sock);
  // Over the payload limit: 400 (Firecracker's status for it) with a fault_message.
  std::optional<ApiReply> r = client.Put("/drives/x", std::string(101, 'a'));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("fault_message"), std::string::npos) << r->body;
  // Exactly at the limit is served.
  r = client.Put("/drives/x", std::string(100, 'a'));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  // Garbage instead of a request line.
  r = client.Raw("\x01\x02 nonsense\r\n\r\n");
  if (r) {
    EXPECT_EQ(r->status, 400);
  }
  // The server is still fine.
  r = client.Get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST(ApiServerTest, ALiveSocketIsRefusedAStaleOneReplacedAndAFileLeftAlone) {
  TempDir dir;
  const std::string sock = dir.path() + "/api.sock";
  auto server = StartEcho(sock);
  ASSERT_TRUE(server);
  ApiServerOptions options;
  options.socket_path = sock;
  auto second = ApiServer::Bind(options, Echo);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("in use"), std::string::npos) << second.error().message;
  server->Stop();
  struct stat st;
  EXPECT_NE(stat(sock.c_str(), &st), 0) << "Stop() removes the socket";

  // A stale socket: bound, never listened on, its owner gone.
  {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, sock.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    close(fd);
  }
  auto replaced = StartEcho(sock);
  ASSERT_TRUE(replaced);
  ASSERT_TRUE(ApiClient(sock).Get("/"));
  replaced->Stop();

  const std::string file = dir.path() + "/not-a-socket";
  std::ofstream(file) << "keep me";
  options.socket_path = file;
  auto refused = ApiServer::Bind(options, Echo);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("not a socket"), std::string::npos);
  std::ifstream in(file);
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "keep me");
}

TEST(ApiServerTest, AnIdleConnectionDoesNotBlockOthers) {
  TempDir dir;
  const std::string sock = dir.path() + "/api.sock";
  auto server = StartEcho(sock);
  ASSERT_TRUE(server);
  ApiClient client(sock);
  // Two clients that connect and say nothing (or half a request) hold their threads only.
  int idle = client.Connect();
  int half = client.Connect();
  ASSERT_GE(idle, 0);
  ASSERT_GE(half, 0);
  ASSERT_GT(write(half, "GET / HT", 8), 0);
  for (int i = 0; i < 20; i++) {
    std::optional<ApiReply> r = client.Get("/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  close(idle);
  close(half);
}

TEST(VmmChannelTest, RequestsAreAnsweredInOrderOnTheServingThread) {
  auto channel = *VmmChannel::Create();
  EventLoop loop = *EventLoop::Create();
  std::vector<int> order;
  std::thread::id served_on;
  ASSERT_TRUE(loop.Add(channel->fd(), EPOLLIN, [&](uint32_t) {
                    channel->Serve([&](const VmmAction& a) -> Result<VmmData> {
                      served_on = std::this_thread::get_id();
                      if (std::holds_alternative<PauseVm>(a)) return Error{"paused? no"};
                      order.push_back(static_cast<int>(a.index()));
                      if (std::holds_alternative<ResumeVm>(a)) loop.Stop();
                      return VmmData{NoData{}};
                    });
                  }).ok());
  std::atomic<int> failures{0};
  std::thread api([&] {
    if (!channel->Call(GetVersion{}).ok()) failures++;
    Result<VmmData> paused = channel->Call(PauseVm{});
    if (paused.ok() || paused.error().message != "paused? no") failures++;
    if (!channel->Call(ResumeVm{}).ok()) failures++;
  });
  ASSERT_TRUE(loop.Run().ok());
  api.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(served_on, std::this_thread::get_id());
  ASSERT_EQ(order.size(), 2u);
}

TEST(VmmChannelTest, CloseAnswersWaitingAndLaterCalls) {
  auto channel = *VmmChannel::Create();
  std::atomic<bool> answered{false};
  std::string message;
  std::thread api([&] {
    Result<VmmData> r = channel->Call(GetInstanceInfo{});
    message = r.ok() ? "" : r.error().message;
    answered = true;
  });
  // The call is queued when the eventfd fires.
  pollfd p = {channel->fd(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1);
  channel->Close();
  api.join();
  EXPECT_TRUE(answered);
  EXPECT_EQ(message, "the microVM has exited");
  Result<VmmData> later = channel->Call(GetVersion{});
  ASSERT_FALSE(later.ok());
}

}  // namespace
}  // namespace ember

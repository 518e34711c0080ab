// A one-request API client for the linux-api check inside the test host, where there is no curl:
// tests/support/api_client (curl's wire format over the Unix socket), built static.
//
//   lv-api SOCKET METHOD PATH [BODY]   prints "<status> <body>"; exit 0 on 2xx, 1 otherwise
//   lv-api SOCKET wait                 waits (30 s at most) until the socket accepts
#include <chrono>
#include <cstdio>
#include <string>

#include "tests/support/api_client.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: lv-api SOCKET METHOD PATH [BODY] | lv-api SOCKET wait\n");
    return 2;
  }
  ember::testing::ApiClient client(argv[1]);
  const std::string method = argv[2];
  if (method == "wait") return client.WaitUntilAccepting(std::chrono::seconds(30)) ? 0 : 1;
  if (argc < 4) return 2;
  auto reply = client.Request(method, argv[3], argc > 4 ? argv[4] : "");
  if (!reply) {
    fprintf(stderr, "lv-api: %s %s: no reply\n", argv[2], argv[3]);
    return 1;
  }
  printf("%d %s\n", reply->status, reply->body.c_str());
  return reply->status >= 200 && reply->status < 300 ? 0 : 1;
}

// The peer that api_bench measures ember against: the least a process can do to serve an API on
// a Unix socket. Built twice, static and dynamic, from this one file.
//
//   api_bench_peer listen PATH   binds and listens on PATH, then waits for a signal: the floor
//                                for "exec to API socket accepting"
//   api_bench_peer serve PATH    answers every HTTP request on PATH with a fixed reply, one
//                                connection at a time, on one thread: the floor for a request's
//                                round trip on this machine
#define _GNU_SOURCE  // memmem, accept4
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int Listen(const char* path) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(addr.sun_path)) return -1;
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (bind(fd, (struct sockaddr*)&addr, sizeof(addr)) != 0 || listen(fd, SOMAXCONN) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

// One connection: requests in order, each answered once its headers and Content-Length bytes of
// body are in; GET gets a 200 with a what ember's GET / answers (same bytes), anything else 204.
static void ServeConnection(int fd) {
  static const char kGet[] =
      "HTTP/1.1 200 OK\r\nContent-Length: 73\r\nContent-Type: application/json\r\n"
      "Keep-Alive: timeout=5, max=5\r\n\r\n"
      "{\"id\":\"x\",\"state\":\"Not started\",\"vmm_version\":\"0.1.0\",\"app_name\":\"ember\"}";
  static const char kPut[] = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";
  char buf[65536];
  size_t have = 0;
  for (;;) {
    char* end = have ? memmem(buf, have, "\r\n\r\n", 4) : NULL;
    if (end) {
      size_t head = (size_t)(end - buf) + 4;
      size_t body = 0;
      for (char* p = buf; p < end; p++) {
        if ((p == buf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0)
          body = strtoul(p + 15, NULL, 10);
      }
      if (head + body > sizeof(buf)) return;
      if (have >= head + body) {
        int is_get = strncmp(buf, "GET ", 4) == 0;
        if (WriteAll(fd, is_get ? kGet : kPut, is_get ? sizeof(kGet) - 1 : sizeof(kPut) - 1))
          return;
        memmove(buf, buf + head + body, have - head - body);
        have -= head + body;
        continue;
      }
    }
    if (have == sizeof(buf)) return;
    ssize_t n = recv(fd, buf + have, sizeof(buf) - have, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    have += (size_t)n;
  }
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s listen|serve PATH\n", argv[0]);
    return 2;
  }
  int fd = Listen(argv[2]);
  if (fd < 0) {
    perror(argv[2]);
    return 1;
  }
  if (strcmp(argv[1], "listen") == 0) {
    for (;;) pause();
  }
  for (;;) {
    int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return 1;
    }
    ServeConnection(c);
    close(c);
  }
}

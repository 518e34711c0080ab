// Both ends of the linux-virtio vsock check, built static. busybox has no AF_VSOCK, so the
// guest side runs this inside L2; the host side talks to ember's vsock Unix socket the way
// Firecracker's docs/vsock.md describes (host-initiated: "CONNECT <port>\n", answered by
// "OK <local port>\n"; guest-initiated: ember connects to "<uds_path>_<port>").
//
//   lv-vsock guest-listen PORT               accept one connection, read a line L, answer
//                                            "PONG L"; prints LV-VSOCK-LISTENING, LV-VSOCK-IN
//   lv-vsock guest-connect CID PORT MSG      send MSG, print the answer as LV-VSOCK-OUT
//   lv-vsock host-listen PATH OUTFILE        accept one connection on PATH, read a line L,
//                                            save it to OUTFILE, answer "ACK L"
//   lv-vsock host-connect PATH PORT MSG      CONNECT to PORT through PATH (retried until the
//                                            guest listens), send MSG, print the answer
// Every mode gives up after 60 s (alarm), so a lost peer fails the test instead of hanging it.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum { kLine = 256, kTimeoutS = 60 };

static int die(const char *what) {
  fprintf(stderr, "lv-vsock: %s: %s\n", what, strerror(errno));
  return 1;
}

// Reads one '\n'-terminated line (without it) into buf; -1 when the peer closed first.
static int read_line(int fd, char *buf, size_t size) {
  size_t n = 0;
  while (n + 1 < size) {
    ssize_t r = read(fd, buf + n, 1);
    if (r <= 0) return -1;
    if (buf[n] == '\n') break;
    n++;
  }
  buf[n] = 0;
  return (int)n;
}

static int write_line(int fd, const char *prefix, const char *text) {
  char out[2 * kLine];
  int n = snprintf(out, sizeof(out), "%s%s\n", prefix, text);
  return write(fd, out, (size_t)n) == n ? 0 : -1;
}

static int guest_listen(unsigned port) {
  int s = socket(AF_VSOCK, SOCK_STREAM, 0);
  if (s < 0) return die("socket(AF_VSOCK)");
  struct sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
  if (bind(s, (struct sockaddr *)&addr, sizeof(addr)) != 0) return die("bind(vsock)");
  if (listen(s, 1) != 0) return die("listen(vsock)");
  printf("LV-VSOCK-LISTENING %u\n", port);
  fflush(stdout);
  int c = accept(s, NULL, NULL);
  if (c < 0) return die("accept(vsock)");
  char line[kLine];
  if (read_line(c, line, sizeof(line)) < 0) return die("read(vsock)");
  printf("LV-VSOCK-IN: %s\n", line);
  fflush(stdout);
  return write_line(c, "PONG ", line) == 0 ? 0 : die("write(vsock)");
}

static int guest_connect(unsigned cid, unsigned port, const char *msg) {
  int s = socket(AF_VSOCK, SOCK_STREAM, 0);
  if (s < 0) return die("socket(AF_VSOCK)");
  struct sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
  if (connect(s, (struct sockaddr *)&addr, sizeof(addr)) != 0) return die("connect(vsock)");
  char line[kLine];
  if (write_line(s, "", msg) != 0 || read_line(s, line, sizeof(line)) < 0)
    return die("exchange(vsock)");
  printf("LV-VSOCK-OUT: %s\n", line);
  return 0;
}

static int unix_socket(const char *path, struct sockaddr_un *addr) {
  memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  snprintf(addr->sun_path, sizeof(addr->sun_path), "%s", path);
  return socket(AF_UNIX, SOCK_STREAM, 0);
}

static int host_listen(const char *path, const char *outfile) {
  struct sockaddr_un addr;
  int s = unix_socket(path, &addr);
  unlink(path);
  if (s < 0 || bind(s, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(s, 1) != 0)
    return die(path);
  int c = accept(s, NULL, NULL);
  if (c < 0) return die("accept(unix)");
  char line[kLine];
  if (read_line(c, line, sizeof(line)) < 0) return die("read(unix)");
  FILE *f = fopen(outfile, "w");
  if (!f || fprintf(f, "%s\n", line) < 0 || fclose(f) != 0) return die(outfile);
  return write_line(c, "ACK ", line) == 0 ? 0 : die("write(unix)");
}

// One attempt: 1 = answered (printed), 0 = not yet (no socket, or no listener: ember closes the
// connection), -1 = failure.
static int host_connect_once(const char *path, unsigned port, const char *msg) {
  struct sockaddr_un addr;
  int s = unix_socket(path, &addr);
  if (s < 0) return -1;
  if (connect(s, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
    close(s);
    return errno == ENOENT || errno == ECONNREFUSED ? 0 : -1;
  }
  char cmd[32], line[kLine];
  snprintf(cmd, sizeof(cmd), "CONNECT %u", port);
  if (write_line(s, "", cmd) != 0 || read_line(s, line, sizeof(line)) < 0) {
    close(s);
    return 0;
  }
  if (strncmp(line, "OK ", 3) != 0) {
    fprintf(stderr, "lv-vsock: CONNECT answered '%s'\n", line);
    return -1;
  }
  printf("LV-HOST-VSOCK-CONNECTED: %s\n", line);
  if (write_line(s, "", msg) != 0 || read_line(s, line, sizeof(line)) < 0) return -1;
  printf("LV-HOST-VSOCK-REPLY: %s\n", line);
  return 1;
}

static int host_connect(const char *path, unsigned port, const char *msg) {
  for (;;) {  // until the guest listens; the alarm bounds it
    int r = host_connect_once(path, port, msg);
    if (r != 0) return r == 1 ? 0 : die("host connect");
    struct timespec pause = {0, 100 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
}

int main(int argc, char **argv) {
  alarm(kTimeoutS);
  const char *mode = argc > 1 ? argv[1] : "";
  if (!strcmp(mode, "guest-listen") && argc == 3) return guest_listen((unsigned)atoi(argv[2]));
  if (!strcmp(mode, "guest-connect") && argc == 5)
    return guest_connect((unsigned)atoi(argv[2]), (unsigned)atoi(argv[3]), argv[4]);
  if (!strcmp(mode, "host-listen") && argc == 4) return host_listen(argv[2], argv[3]);
  if (!strcmp(mode, "host-connect") && argc == 5)
    return host_connect(argv[2], (unsigned)atoi(argv[3]), argv[4]);
  fprintf(stderr, "usage: see the top of lv-vsock.c\n");
  return 2;
}

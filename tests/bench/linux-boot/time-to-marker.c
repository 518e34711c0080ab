// Runs a VMM and measures, on the monotonic clock, the time from just before its exec to the
// first output line containing MARKER (the guest init's line on the serial console), and to its
// exit. Its output goes to LOG. A VMM still running SECONDS after the start, or 5 s after the
// marker, is killed: QEMU's microvm has no i8042, so its guest's reboot=k does not end it.
//   time-to-marker MARKER SECONDS LOG -- COMMAND [ARGS...]
// Prints "marker_ms=<ms|none> exit_ms=<ms> status=<exit status or 128+signal>".
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  if (argc < 6 || strcmp(argv[4], "--") != 0) {
    fprintf(stderr, "usage: time-to-marker MARKER SECONDS LOG -- COMMAND [ARGS...]\n");
    return 2;
  }
  const char *marker = argv[1];
  const double limit_ms = atof(argv[2]) * 1e3;
  FILE *log = fopen(argv[3], "w");
  int out[2];
  if (!log || pipe(out) != 0) return perror("setup"), 2;

  const double start = now_ms();
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    int null = open("/dev/null", 0);
    if (null >= 0) dup2(null, 0);
    execvp(argv[5], argv + 5);
    perror("exec");
    _exit(127);
  }
  close(out[1]);

  double marker_at = -1;
  char buf[65536], line[4096];
  size_t len = 0;
  for (;;) {
    const double t = now_ms();
    double deadline = start + limit_ms;
    if (marker_at >= 0 && marker_at + 5e3 < deadline) deadline = marker_at + 5e3;
    if (t >= deadline) {
      kill(-pid, SIGKILL);
      break;
    }
    struct pollfd p = {out[0], POLLIN, 0};
    if (poll(&p, 1, (int)(deadline - t) + 1) <= 0) continue;
    ssize_t n = read(out[0], buf, sizeof(buf));
    if (n <= 0) break;  // the VMM closed its output: it exited
    fwrite(buf, 1, (size_t)n, log);
    for (ssize_t i = 0; i < n && marker_at < 0; i++) {  // look for the marker line by line
      if (buf[i] == '\n' || len + 1 == sizeof(line)) {
        line[len] = 0;
        if (strstr(line, marker)) marker_at = now_ms();
        len = 0;
      } else {
        line[len++] = buf[i];
      }
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  const double end = now_ms();
  fclose(log);
  if (marker_at >= 0)
    printf("marker_ms=%.0f", marker_at - start);
  else
    printf("marker_ms=none");
  printf(" exit_ms=%.0f status=%d\n", end - start,
         WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  return marker_at >= 0 ? 0 : 1;
}

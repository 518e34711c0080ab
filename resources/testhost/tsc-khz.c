// tsc-khz: prints the host TSC frequency in kHz, measured against
// CLOCK_MONOTONIC_RAW over ~200 ms. run.sh falls back to it when the kernel
// log (dmesg "tsc: Detected ... MHz") is not readable, e.g. in CI containers.
// Under QEMU TCG the guest TSC runs at the host TSC rate, and L1 needs that
// rate on its command line (tsc_early_khz) to avoid PIT calibration.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <x86intrin.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void) {
  double t0 = now_s();
  uint64_t c0 = __rdtsc();
  struct timespec nap = {.tv_sec = 0, .tv_nsec = 200 * 1000 * 1000};
  nanosleep(&nap, NULL);
  double t1 = now_s();
  uint64_t c1 = __rdtsc();
  if (t1 <= t0 || c1 <= c0) return 1;
  printf("%.0f\n", (double)(c1 - c0) / (t1 - t0) / 1e3);
  return 0;
}

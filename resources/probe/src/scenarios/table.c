#include <stdarg.h>

#include "format.h"
#include "scenario.h"
#include "string.h"

static const struct scenario kScenarios[] = {
    {"boot", scenario_boot},
    {"smp", scenario_smp},
    {"irq", scenario_irq},
    {"serial-in", scenario_serial_in},
    {"idle", scenario_idle},
    {"triple-fault", scenario_triple_fault},
    {"blk", scenario_blk},
    {"blk-ro", scenario_blk_ro},
    {"blk-swap", scenario_blk_swap},
    {"rng", scenario_rng},
    {"evil-queue", scenario_evil_queue},
    {"blk-bench", scenario_blk_bench},
    {"net", scenario_net},
    {"evil-net", scenario_evil_net},
    {"vsock", scenario_vsock},
    {"evil-vsock", scenario_evil_vsock},
    {"net-bench", scenario_net_bench},
    {"net-bench-tcp", scenario_net_bench_tcp},
    {"vsock-bench", scenario_vsock_bench},
    {"ticks", scenario_ticks},
};

const struct scenario *scenario_find(const char *name, size_t len) {
  for (size_t i = 0; i < sizeof kScenarios / sizeof kScenarios[0]; i++) {
    if (strlen(kScenarios[i].name) == len && memcmp(kScenarios[i].name, name, len) == 0) {
      return &kScenarios[i];
    }
  }
  return NULL;
}

const char *scenario_failf(const char *fmt, ...) {
  static char reason[256];
  char tmp[sizeof reason];  // arguments may point into `reason` (a nested failure)
  va_list ap;
  va_start(ap, fmt);
  format_v(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  memcpy(reason, tmp, sizeof reason);
  return reason;
}

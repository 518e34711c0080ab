// Scenarios: each is one function returning NULL on success or the reason it failed (a string
// literal, or scenario_failf()). Adding one = a function in scenarios/<name>.c, its declaration
// here, and one line in scenarios/table.c.
#ifndef PROBE_SCENARIO_H
#define PROBE_SCENARIO_H

#include <stddef.h>

typedef const char *(*scenario_fn)(void);

struct scenario {
  const char *name;
  scenario_fn run;
};

// Formats a failure reason into a static buffer (valid until the next call).
const char *scenario_failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const struct scenario *scenario_find(const char *name, size_t len);

const char *scenario_boot(void);
const char *scenario_smp(void);
const char *scenario_irq(void);
const char *scenario_serial_in(void);
const char *scenario_idle(void);
const char *scenario_triple_fault(void);
const char *scenario_blk(void);
const char *scenario_blk_ro(void);
const char *scenario_blk_swap(void);
const char *scenario_rng(void);
const char *scenario_evil_queue(void);
const char *scenario_blk_bench(void);
const char *scenario_net(void);
const char *scenario_evil_net(void);
const char *scenario_vsock(void);
const char *scenario_evil_vsock(void);
const char *scenario_net_bench(void);
const char *scenario_net_bench_tcp(void);
const char *scenario_vsock_bench(void);
const char *scenario_ticks(void);

#endif

// idle: the guest halts with interrupts off and never finishes, so the benchmark can measure the
// VMM's memory while the vCPU sleeps. The harness kills the VMM.
#include "console.h"
#include "io.h"
#include "scenario.h"

const char *scenario_idle(void) {
  console_printf("probe: idle\n");
  cpu_halt_forever();
}

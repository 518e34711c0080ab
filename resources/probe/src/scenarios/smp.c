// smp: every vCPU starts (INIT-SIPI-SIPI) and checks in from long mode with a distinct APIC ID.
#include <stdint.h>

#include "ap.h"
#include "apic.h"
#include "cmdline.h"
#include "mptable.h"
#include "scenario.h"
#include "wait.h"

static const uint32_t kTimeoutMs = 5000;

static bool all_checked_in(void *expected) {
  return ap_checkins()->count >= *(uint32_t *)expected;
}

const char *scenario_smp(void) {
  // Without probe.cpus, the VMM's MP table says how many vCPUs there are (1 if none is found).
  uint64_t cpus;
  if (!cmdline_param_u64("probe.cpus", &cpus)) {
    cpus = mptable_cpu_count();
    if (cpus == 0) cpus = 1;
  }
  if (cpus == 0 || cpus > PROBE_MAX_CPUS) return scenario_failf("cpus=%lu out of range", cpus);
  if (cpus == 1) return NULL;
  uint32_t bsp = lapic_id();
  if (bsp >= cpus) return scenario_failf("BSP APIC ID %u is not below %lu", bsp, cpus);

  uint32_t aps = (uint32_t)cpus - 1;
  if (!ap_start_all((uint32_t)cpus, bsp)) return "an INIT or SIPI IPI was not delivered";
  bool arrived = wait_until(all_checked_in, &aps, kTimeoutMs);
  const volatile struct ap_checkin *c = ap_checkins();
  if (!arrived) {
    return scenario_failf("%u of %u APs checked in within %u ms", c->count, aps, kTimeoutMs);
  }
  if (c->count != aps) return scenario_failf("%u APs checked in, expected %u", c->count, aps);
  if (c->out_of_range) return scenario_failf("%u APs have APIC IDs >= 32", c->out_of_range);
  for (uint32_t id = 0; id < cpus; id++) {
    uint32_t want = id == bsp ? 0 : 1;
    if (c->per_apic_id[id] != want) {
      return scenario_failf("APIC ID %u checked in %u times, expected %u", id,
                            c->per_apic_id[id], want);
    }
  }
  return NULL;
}

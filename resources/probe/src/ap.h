// Starting the application processors: the trampoline (arch/trampoline.S) brings each AP into
// long mode on the probe's page tables; ap_main() then records its APIC ID and parks the CPU.
#ifndef PROBE_AP_H
#define PROBE_AP_H

#include <stdbool.h>
#include <stdint.h>

#include "layout.h"

struct ap_checkin {
  uint32_t count;                          // APs that reached ap_main
  uint32_t per_apic_id[PROBE_MAX_CPUS];    // arrivals per APIC ID (a duplicate shows as 2)
  uint32_t out_of_range;                   // APs whose APIC ID is >= PROBE_MAX_CPUS
};

// Copies the trampoline below 1 MiB, clears the check-in record and sends INIT, SIPI, SIPI to
// each APIC ID in [0, cpus) other than the caller's. Returns false if an IPI was not delivered.
// KVM and QEMU deliver INIT and SIPI at once, so the 10 ms/200 us delays real hardware needs
// (SDM 9.4.4) are left out.
bool ap_start_all(uint32_t cpus, uint32_t bsp_apic_id);
const volatile struct ap_checkin *ap_checkins(void);

#endif

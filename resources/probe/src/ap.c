#include "ap.h"

#include "apic.h"
#include "interrupts.h"
#include "io.h"
#include "string.h"

extern const char ap_trampoline_start[], ap_trampoline_end[];

// Used by arch/trampoline.S: each AP takes the next stack slot.
uint32_t ap_stack_next;
uint8_t ap_stacks[PROBE_MAX_CPUS - 1][AP_STACK_SIZE] __attribute__((aligned(16)));

static struct ap_checkin g_checkin;

void ap_main(void);
void ap_main(void) {
  idt_load();  // an NMI or fault must not triple-fault the AP (Firecracker exits with an error)
  uint32_t id = lapic_id();
  if (id < PROBE_MAX_CPUS) {
    __atomic_fetch_add(&g_checkin.per_apic_id[id], 1, __ATOMIC_SEQ_CST);
  } else {
    __atomic_fetch_add(&g_checkin.out_of_range, 1, __ATOMIC_SEQ_CST);
  }
  __atomic_fetch_add(&g_checkin.count, 1, __ATOMIC_SEQ_CST);
  cpu_halt_forever();
}

bool ap_start_all(uint32_t cpus, uint32_t bsp_apic_id) {
  memcpy((void *)(uintptr_t)AP_TRAMPOLINE_PADDR, ap_trampoline_start,
         (size_t)(ap_trampoline_end - ap_trampoline_start));
  memset(&g_checkin, 0, sizeof g_checkin);
  __atomic_store_n(&ap_stack_next, 0, __ATOMIC_SEQ_CST);
  const uint32_t vector = AP_TRAMPOLINE_PADDR >> 12;
  bool delivered = true;
  for (uint32_t id = 0; id < cpus; id++) {
    if (id == bsp_apic_id) continue;
    delivered &= lapic_send_ipi(id, kIcrInit);
    delivered &= lapic_send_ipi(id, kIcrStartup | vector);
    delivered &= lapic_send_ipi(id, kIcrStartup | vector);
  }
  return delivered;
}

const volatile struct ap_checkin *ap_checkins(void) { return &g_checkin; }

// Local APIC (xAPIC MMIO at 0xFEE00000) and IOAPIC (0xFEC00000), the addresses Firecracker and
// QEMU use and the MP table announces.
#ifndef PROBE_APIC_H
#define PROBE_APIC_H

#include <stdbool.h>
#include <stdint.h>

enum {
  kIcrInit = 0x00004500,     // delivery mode INIT, level assert (SDM vol. 3, 11.6.1)
  kIcrStartup = 0x00004600,  // delivery mode Start-Up; low byte = vector (page number)
};

void lapic_enable(void);
uint32_t lapic_id(void);
void lapic_eoi(void);
// Writes ICR (destination in physical mode) and waits, bounded, until it is delivered.
bool lapic_send_ipi(uint32_t dest_apic_id, uint32_t icr_low);

// Periodic LAPIC timer, for wake-ups from hlt. count is in bus clocks at divide-by-1.
void lapic_timer_periodic(uint8_t vector, uint32_t count);
void lapic_timer_stop(void);

// IOAPIC redirection entry: fixed delivery, physical destination, edge, active high.
void ioapic_route(unsigned pin, uint8_t vector, uint32_t dest_apic_id);
void ioapic_mask(unsigned pin);

#endif

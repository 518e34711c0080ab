// Port I/O, MMIO and CPU-control primitives for the probe guest.
#ifndef PROBE_IO_H
#define PROBE_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline void outb(uint16_t port, uint8_t value) {
  __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint8_t inb(uint16_t port) {
  uint8_t value;
  __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
  return value;
}

static inline void mmio_write8(uint64_t addr, uint8_t value) {
  *(volatile uint8_t *)(uintptr_t)addr = value;
}

static inline void mmio_write32(uint64_t addr, uint32_t value) {
  *(volatile uint32_t *)(uintptr_t)addr = value;
}

static inline uint32_t mmio_read32(uint64_t addr) {
  return *(volatile uint32_t *)(uintptr_t)addr;
}

static inline void cpu_cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void cpu_pause(void) { __asm__ volatile("pause" ::: "memory"); }

// sti's one-instruction interrupt shadow makes "sti; hlt" atomic: an interrupt that became
// pending while the caller checked its wake-up condition with interrupts off still wakes the hlt.
static inline void cpu_sti_hlt_cli(void) { __asm__ volatile("sti; hlt; cli" ::: "memory"); }

__attribute__((noreturn)) static inline void cpu_halt_forever(void) {
  for (;;) __asm__ volatile("cli; hlt" ::: "memory");
}

#endif

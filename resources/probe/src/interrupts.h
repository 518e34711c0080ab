// The probe's IDT: every vector has an entry stub (arch/isr.S); exceptions print and reset,
// other vectors call the handler registered for them, then signal LAPIC EOI.
#ifndef PROBE_INTERRUPTS_H
#define PROBE_INTERRUPTS_H

#include <stdint.h>

// Vectors the probe uses. 0x20-0x2f stay free (legacy PIC range).
enum {
  kVecPit = 0x30,
  kVecUart = 0x31,
  kVecKbd = 0x32,  // i8042 keyboard, IOAPIC pin 1
  kVecTicker = 0x3e,
  kVecVirtioBase = 0x40,  // + virtio_mmio.device slot (0-31)
  kVecSpurious = 0xff,  // LAPIC spurious-interrupt vector: no EOI (SDM vol. 3, 11.9)
};

struct isr_frame {
  uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rdi, rsi, rbp, rbx, rdx, rcx, rax;
  uint64_t vector, error;
  uint64_t rip, cs, rflags, rsp, ss;  // pushed by the CPU
};

typedef void (*irq_handler)(uint8_t vector);

void idt_init(void);
// Loads the IDT on the calling CPU (the BSP after idt_init, each AP on arrival).
void idt_load(void);
void irq_set_handler(uint8_t vector, irq_handler handler);

// Loads an IDT with limit 0 and executes ud2: #UD cannot be delivered, nor #GP or #DF, so the
// CPU shuts down (triple fault). QEMU with -no-reboot exits on it.
void triple_fault(void) __attribute__((noreturn));

#endif

#include "interrupts.h"

#include "apic.h"
#include "console.h"
#include "layout.h"
#include "machine.h"

struct idt_gate {
  uint16_t offset_low;
  uint16_t selector;
  uint8_t ist;
  uint8_t type_attr;
  uint16_t offset_mid;
  uint32_t offset_high;
  uint32_t reserved;
} __attribute__((packed));

struct idt_pointer {
  uint16_t limit;
  uint64_t base;
} __attribute__((packed));

enum { kGateInterrupt64 = 0x8e };  // present, DPL 0, 64-bit interrupt gate (IF cleared on entry)

extern const char isr_stubs[];

static struct idt_gate g_idt[256] __attribute__((aligned(16)));
static irq_handler g_handlers[256];

void idt_init(void) {
  for (unsigned v = 0; v < 256; v++) {
    uint64_t addr = (uint64_t)(uintptr_t)(isr_stubs + v * ISR_STUB_SIZE);
    g_idt[v].offset_low = (uint16_t)addr;
    g_idt[v].selector = SEL_CODE64;
    g_idt[v].ist = 0;
    g_idt[v].type_attr = kGateInterrupt64;
    g_idt[v].offset_mid = (uint16_t)(addr >> 16);
    g_idt[v].offset_high = (uint32_t)(addr >> 32);
    g_idt[v].reserved = 0;
  }
}

void idt_load(void) {
  struct idt_pointer p = {sizeof g_idt - 1, (uint64_t)(uintptr_t)g_idt};
  __asm__ volatile("lidt %0" : : "m"(p));
}

void irq_set_handler(uint8_t vector, irq_handler handler) { g_handlers[vector] = handler; }

void triple_fault(void) {
  struct idt_pointer empty = {0, 0};
  __asm__ volatile("lidt %0; ud2" : : "m"(empty));
  __builtin_unreachable();
}

void isr_dispatch(struct isr_frame *f);
void isr_dispatch(struct isr_frame *f) {
  if (f->vector < 32) {
    static int nested;
    if (nested++) triple_fault();
    console_printf("probe: exception %lu error 0x%lx rip 0x%lx cpu %u\n", f->vector, f->error,
                   f->rip, lapic_id());
    machine_reset();
  }
  irq_handler h = g_handlers[f->vector];
  if (h) h((uint8_t)f->vector);
  if (f->vector != kVecSpurious) lapic_eoi();
}

/* Switching a CPU from 32-bit protected mode (flat segments, paging off) to 64-bit long mode
 * with the probe's own page tables (Intel SDM vol. 3, 10.8.5 "Initializing IA-32e Mode").
 * Used by the PVH entry and by the AP trampoline. Needs no stack. */
#ifndef PROBE_LONG_MODE_H
#define PROBE_LONG_MODE_H

#define CR0_PE 0x00000001
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define MSR_EFER 0xc0000080
#define EFER_LME 0x100

.macro ENTER_LONG_MODE target
  mov %cr4, %eax
  or $CR4_PAE, %eax
  mov %eax, %cr4
  mov $pml4, %eax
  mov %eax, %cr3
  mov $MSR_EFER, %ecx
  rdmsr
  or $EFER_LME, %eax
  wrmsr
  mov %cr0, %eax
  or $(CR0_PG | CR0_PE), %eax
  mov %eax, %cr0
  ljmp $SEL_CODE64, $\target
.endm

.macro LOAD_DATA_SEGMENTS
  mov $SEL_DATA, %eax
  mov %eax, %ds
  mov %eax, %es
  mov %eax, %ss
  mov %eax, %fs
  mov %eax, %gs
.endm

#endif

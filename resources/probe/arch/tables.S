/* The probe's GDT and page tables, fully initialized at build time so both entry paths and the
 * APs can load them before any code has run. */
#include "../src/layout.h"

  .data
  .balign 16
  .globl gdt
gdt:
  .quad 0
  .quad 0x00af9b000000ffff  /* SEL_CODE64: 64-bit code, DPL 0 */
  .quad 0x00cf93000000ffff  /* SEL_DATA: flat 4 GiB read/write data */
  .quad 0x00cf9b000000ffff  /* SEL_CODE32: flat 4 GiB 32-bit code (PVH entry, APs) */
  .globl gdt_pointer
  .balign 8
gdt_pointer:
  .word GDT_LIMIT
  .quad gdt

/* Identity map of 0-4 GiB with 2 MiB pages (PS=1 in the PDEs): the VMM's map covers only 1 GiB,
 * but the boot timer (0xC0000000), IOAPIC (0xFEC00000) and LAPIC (0xFEE00000) are in the top
 * GiB, which is mapped cache-disabled (PCD|PWT). */
#define PTE_P 0x1
#define PTE_RW 0x2
#define PTE_PWT 0x8
#define PTE_PCD 0x10
#define PTE_PS 0x80

  .section .data.pagetables, "aw"
  .balign 4096
  .globl pml4
pml4:
  .quad pdpt + PTE_P + PTE_RW
  .fill 511, 8, 0
pdpt:
  .quad pd + 0x0000 + PTE_P + PTE_RW
  .quad pd + 0x1000 + PTE_P + PTE_RW
  .quad pd + 0x2000 + PTE_P + PTE_RW
  .quad pd + 0x3000 + PTE_P + PTE_RW
  .fill 508, 8, 0
pd:
  .set page, 0
  .rept 4 * 512
  .if page >= 3 * 512
  .quad (page << 21) + PTE_P + PTE_RW + PTE_PS + PTE_PCD + PTE_PWT
  .else
  .quad (page << 21) + PTE_P + PTE_RW + PTE_PS
  .endif
  .set page, page + 1
  .endr

  .section .note.GNU-stack, "", @progbits

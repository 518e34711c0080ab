/* Real-mode setup code of probe.bzImage, for loaders that start a bzImage the traditional way
 * (QEMU -kernel: its option ROM jumps to setup segment + 0x20 : 0 in real mode, DS = setup
 * segment). The VMM uses the 64-bit boot protocol and never runs this. It does in miniature what
 * a VMM does for the 64-bit boot protocol (Documentation/arch/x86/boot.rst):
 *   - builds a zero page with the setup header and the BIOS E820 map (int 0x15, AX=0xE820),
 *   - identity-maps the first 1 GiB with 2 MiB pages,
 *   - enters long mode directly from real mode (CR0.PE and CR0.PG in one write, EFER.LME set)
 *     and jumps to the 64-bit entry at 0x100200 with RSI = zero page.
 * So booting the bzImage under QEMU exercises the probe's 64-bit entry path.
 *
 * mkbzimage copies the .text of this file to offset STUB_OFFSET of the setup sectors; the jump
 * at 0x200 lands on it. Memory used, relative to the setup segment base B (below 64 KiB):
 *   B+0x1000 PML4, B+0x2000 PDPT, B+0x3000 PD, B+0x4000 zero page, stack below B+0x8000. */
#define STUB_OFFSET 0x268   /* end of the 2.12 setup header; keep in sync with mkbzimage.cc */
#define OFF(label) ((label) - stub_start + STUB_OFFSET)

#define PML4 0x1000
#define PDPT 0x2000
#define PD 0x3000
#define ZERO_PAGE 0x4000
#define STACK_TOP 0x8000
#define BP_E820_ENTRIES 0x1e8
#define BP_E820_TABLE 0x2d0
#define E820_MAX 128
#define SMAP 0x534d4150
#define ENTRY64 0x100200

  .text
  .code16
stub_start:
  cli
  cld
  mov %cs, %ax
  sub $0x20, %ax
  mov %ax, %ds
  mov %ax, %es
  mov %ax, %ss
  mov $STACK_TOP, %sp
  movzwl %ax, %ebp
  shl $4, %ebp                 /* ebp = B, the setup segment's linear base */

  /* Clear the page tables and the zero page. */
  mov $PML4, %di
  mov $((ZERO_PAGE + 0x1000 - PML4) / 4), %cx
  xor %eax, %eax
  rep stosl

  lea (PDPT + 3)(%ebp), %eax   /* present, writable */
  mov %eax, PML4
  lea (PD + 3)(%ebp), %eax
  mov %eax, PDPT
  mov $PD, %di
  mov $0x83, %eax              /* present, writable, 2 MiB page */
  mov $512, %cx
1:
  stosl
  add $4, %di                  /* the high dword stays 0 */
  add $0x200000, %eax
  loop 1b

  /* Zero page: the setup header as the loader patched it (cmd_line_ptr etc.). */
  mov $0x1f1, %si
  mov $(ZERO_PAGE + 0x1f1), %di
  mov $(STUB_OFFSET - 0x1f1), %cx
  rep movsb

  /* E820 map from the BIOS. */
  xor %ebx, %ebx
  mov $(ZERO_PAGE + BP_E820_TABLE), %di
  xor %si, %si
2:
  mov $0xe820, %eax
  mov $20, %ecx
  mov $SMAP, %edx
  push %si
  push %di
  push %ds
  int $0x15
  pop %ds
  pop %di
  pop %si
  jc 3f
  cmp $SMAP, %eax
  jne 3f
  inc %si
  add $20, %di
  test %ebx, %ebx
  jz 3f
  cmp $E820_MAX, %si
  jb 2b
3:
  mov %si, %ax
  mov %al, ZERO_PAGE + BP_E820_ENTRIES

  /* Long mode. */
  lea OFF(gdt)(%ebp), %eax
  mov %eax, OFF(gdtr) + 2
  lgdtl OFF(gdtr)
  mov %cr4, %eax
  or $0x20, %eax               /* PAE */
  mov %eax, %cr4
  lea PML4(%ebp), %eax
  mov %eax, %cr3
  mov $0xc0000080, %ecx        /* EFER */
  rdmsr
  or $0x100, %eax              /* LME */
  wrmsr
  lea ZERO_PAGE(%ebp), %esi
  mov %cr0, %eax
  or $0x80000001, %eax         /* PG | PE */
  mov %eax, %cr0
  mov $0x10, %ax
  mov %ax, %ds
  mov %ax, %es
  mov %ax, %ss
  ljmpl $0x08, $ENTRY64

  .balign 8
gdt:
  .quad 0
  .quad 0x00af9b000000ffff     /* 0x08: 64-bit code */
  .quad 0x00cf93000000ffff     /* 0x10: flat data */
gdtr:
  .word 3 * 8 - 1
  .long 0                      /* filled in: B + OFF(gdt) */

  .section .note.GNU-stack, "", @progbits

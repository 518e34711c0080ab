/* The probe's two entry points, at fixed offsets of the image so the bzImage works too:
 *   0x100000  PVH entry (Xen PVH ABI, xen/include/public/arch-x86/hvm/start_info.h): 32-bit
 *             protected mode, paging off, EBX = struct hvm_start_info.
 *   0x100200  64-bit Linux boot protocol entry (Documentation/arch/x86/boot.rst, "64-bit boot
 *             protocol"): long mode, the VMM's identity map of low memory, RSI = boot_params.
 * Both zero .bss, switch to the probe's GDT and 0-4 GiB page tables and its own stack, and call
 * probe_main(protocol, boot structure address). */
#include "../src/layout.h"
#include "long_mode.h"

#define BOOT_LINUX64 1
#define BOOT_PVH 2

  .section .head.text, "ax"
  .code32
  .globl pvh_entry
pvh_entry:
  cli
  cld
  lgdt gdt_pointer
  ljmp $SEL_CODE32, $1f
1:
  LOAD_DATA_SEGMENTS
  mov $__bss_start, %edi
  mov $__bss_end, %ecx
  sub %edi, %ecx
  xor %eax, %eax
  rep stosb
  ENTER_LONG_MODE pvh_entry64

  .org PROBE_LINUX64_ENTRY_OFFSET, 0x90
  .code64
  .globl linux64_entry
linux64_entry:
  cli
  cld
  mov %rsi, %r12
  lea __bss_start(%rip), %rdi
  lea __bss_end(%rip), %rcx
  sub %rdi, %rcx
  xor %eax, %eax
  rep stosb
  lgdt gdt_pointer(%rip)
  mov $pml4, %eax
  mov %rax, %cr3
  lea bsp_stack_top(%rip), %rsp
  pushq $SEL_CODE64
  lea 1f(%rip), %rax
  push %rax
  lretq
1:
  LOAD_DATA_SEGMENTS
  mov $BOOT_LINUX64, %edi
  mov %r12, %rsi
  call probe_main
  jmp park

  .text
  .code64
pvh_entry64:
  LOAD_DATA_SEGMENTS
  lea bsp_stack_top(%rip), %rsp
  mov $BOOT_PVH, %edi
  mov %ebx, %esi  /* upper halves of registers are undefined after the mode switch */
  call probe_main
  .globl park
park:
  cli
  hlt
  jmp park

  .bss
  .balign 16
bsp_stack:
  .skip BSP_STACK_SIZE
bsp_stack_top:

  .section .note.GNU-stack, "", @progbits

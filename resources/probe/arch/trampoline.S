/* Application-processor start-up. The smp scenario copies the real-mode part
 * [ap_trampoline_start, ap_trampoline_end) to AP_TRAMPOLINE_PADDR and sends INIT-SIPI-SIPI with
 * vector AP_TRAMPOLINE_PADDR >> 12, so an AP starts at CS = 0x1000, IP = 0 (SDM vol. 3, 9.4.4
 * "MP Initialization Example"). It loads the probe's GDT, enters protected mode and jumps to
 * ap_entry32 inside the image, which is identity-mapped at 1 MiB; from there the AP takes the
 * same way into long mode as the PVH entry, takes a stack and calls ap_main(). */
#include "../src/layout.h"
#include "long_mode.h"

  .section .rodata.trampoline, "a"
  .code16
  .globl ap_trampoline_start
  .globl ap_trampoline_end
ap_trampoline_start:
  cli
  cld
  mov %cs, %ax
  mov %ax, %ds
  lgdtl ap_trampoline_gdtr - ap_trampoline_start
  mov %cr0, %eax
  or $CR0_PE, %eax
  mov %eax, %cr0
  ljmpl $SEL_CODE32, $ap_entry32
  .balign 8
ap_trampoline_gdtr:
  .word GDT_LIMIT
  .long gdt
ap_trampoline_end:

  .text
  .code32
ap_entry32:
  LOAD_DATA_SEGMENTS
  ENTER_LONG_MODE ap_entry64

  .code64
ap_entry64:
  LOAD_DATA_SEGMENTS
  mov $1, %eax
  lock xadd %eax, ap_stack_next(%rip)
  cmp $(PROBE_MAX_CPUS - 1), %eax
  jae park
  inc %eax
  imul $AP_STACK_SIZE, %eax
  lea ap_stacks(%rip), %rsp
  add %rax, %rsp
  call ap_main
  jmp park

  .section .note.GNU-stack, "", @progbits

/* Interrupt entry: one 16-byte stub per vector (isr_stubs + 16 * vector) pushes a uniform
 * frame (a dummy error code where the CPU pushes none, then the vector) and jumps to
 * isr_common, which saves the general registers and calls isr_dispatch(struct isr_frame *).
 * The probe is built with -mgeneral-regs-only, so no FPU/SSE state needs saving. */
#include "../src/layout.h"

  .text
  .code64
  .balign ISR_STUB_SIZE
  .globl isr_stubs
isr_stubs:
  .set vector, 0
  .rept 256
  /* Exceptions with an error code: #DF #TS #NP #SS #GP #PF #AC #CP #VC #SX (SDM 6.13). */
  .if (vector == 8) || (vector == 10) || (vector == 11) || (vector == 12) || (vector == 13) || (vector == 14) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
  .else
  pushq $0
  .endif
  pushq $vector
  jmp isr_common
  /* Pads to the next stub with hlt (never int3); gas stops with "attempt to move .org
   * backwards" if a stub outgrows ISR_STUB_SIZE. */
  .org isr_stubs + ISR_STUB_SIZE * (vector + 1), 0xf4
  .set vector, vector + 1
  .endr

isr_common:
  push %rax
  push %rcx
  push %rdx
  push %rbx
  push %rbp
  push %rsi
  push %rdi
  push %r8
  push %r9
  push %r10
  push %r11
  push %r12
  push %r13
  push %r14
  push %r15
  mov %rsp, %rdi
  cld
  call isr_dispatch
  pop %r15
  pop %r14
  pop %r13
  pop %r12
  pop %r11
  pop %r10
  pop %r9
  pop %r8
  pop %rdi
  pop %rsi
  pop %rbp
  pop %rbx
  pop %rdx
  pop %rcx
  pop %rax
  add $16, %rsp
  iretq

  .section .note.GNU-stack, "", @progbits

/* XEN_ELFNOTE_PHYS32_ENTRY (xen/include/public/elfnote.h): name "Xen", type 18, a 32-bit
 * physical entry address. A VMM that finds it boots the ELF through PVH. Linked into probe.elf
 * only; probe-linux64.elf leaves it out to force the 64-bit Linux boot protocol. */
  .section .note.Xen, "a", @note
  .balign 4
  .long 4          /* namesz */
  .long 4          /* descsz */
  .long 18         /* XEN_ELFNOTE_PHYS32_ENTRY */
  .asciz "Xen"
  .balign 4
  .long pvh_entry
  .balign 4

  .section .note.GNU-stack, "", @progbits

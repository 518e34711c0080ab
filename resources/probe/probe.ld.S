/* Linker script for the probe guest, run through the C preprocessor: PROBE_PVH_NOTE adds the
 * Xen PVH entry note (probe.elf); without it the image boots only through the 64-bit Linux boot
 * protocol (probe-linux64.elf, and the bzImage made from it).
 * One RWX PT_LOAD at physical 0x100000 keeps the flattened bzImage payload identical to the ELF's
 * memory image. */
OUTPUT_FORMAT("elf64-x86-64")
OUTPUT_ARCH(i386:x86-64)
ENTRY(linux64_entry)

PHDRS {
  image PT_LOAD FLAGS(7);
#ifdef PROBE_PVH_NOTE
  note PT_NOTE FLAGS(4);
#endif
}

SECTIONS {
  . = 0x100000;
  __image_start = .;
  .head : { KEEP(*(.head.text)) } :image =0x90909090
  .text : { *(.text .text.*) } :image =0x90909090
  .rodata : { *(.rodata .rodata.*) } :image
#ifdef PROBE_PVH_NOTE
  .note.Xen : { KEEP(*(.note.Xen)) } :image :note
#endif
  .data : { *(.data .data.*) } :image
  .bss : {
    __bss_start = .;
    *(.bss .bss.*) *(COMMON)
    . = ALIGN(16);
    __bss_end = .;
  } :image
  __image_end = .;

  /DISCARD/ : { *(.note.*) *(.comment) *(.eh_frame*) *(.gnu.hash) *(.hash) *(.dynsym) *(.dynstr) }
}

ASSERT(linux64_entry == 0x100000 + 0x200, "the 64-bit Linux entry must sit at load address + 0x200")

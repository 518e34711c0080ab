#include "legacy.h"

#include "io.h"

enum {
  kPic1Data = 0x21,
  kPic2Data = 0xa1,
  kPitChannel0 = 0x40,
  kPitCommand = 0x43,
  kPitCh0LoHiMode2 = 0x34,
  kPitCh0LoHiMode0 = 0x30,
  kPitInputHz = 1193182,
  kI8042Command = 0x64,
  kI8042ResetCpu = 0xfe,
};

void pic_mask_all(void) {
  outb(kPic1Data, 0xff);
  outb(kPic2Data, 0xff);
}

void pit_start_periodic(uint32_t hz) {
  uint32_t divisor = kPitInputHz / (hz ? hz : 1);
  if (divisor > 0xffff) divisor = 0xffff;
  if (divisor < 2) divisor = 2;
  outb(kPitCommand, kPitCh0LoHiMode2);
  outb(kPitChannel0, (uint8_t)divisor);
  outb(kPitChannel0, (uint8_t)(divisor >> 8));
}

void pit_stop(void) {
  outb(kPitCommand, kPitCh0LoHiMode0);
  outb(kPitChannel0, 0);
  outb(kPitChannel0, 0);
}

void i8042_reset(void) { outb(kI8042Command, kI8042ResetCpu); }

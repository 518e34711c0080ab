// Legacy PC devices: the 8259 PICs, the 8254 PIT and the i8042 reset line.
#ifndef PROBE_LEGACY_H
#define PROBE_LEGACY_H

#include <stdint.h>

// Masks every 8259 input, so interrupts arrive only through the IOAPIC.
void pic_mask_all(void);
// Channel 0, mode 2 (rate generator) at about `hz` interrupts per second.
void pit_start_periodic(uint32_t hz);
// Channel 0 to mode 0 (interrupt on terminal count) with count 0 (65536): at most one more
// edge, about 55 ms later, then silence.
void pit_stop(void);
// i8042 command 0xFE: pulse the CPU reset line (Firecracker: ends the VMM, exit code 0).
void i8042_reset(void);

#endif

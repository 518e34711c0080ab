// Ending the run.
#ifndef PROBE_MACHINE_H
#define PROBE_MACHINE_H

// Resets through the i8042 (Firecracker ends the VMM with exit code 0 on it); where there is no
// i8042 (QEMU microvm), shuts the CPU down with a triple fault after a short grace period.
void machine_reset(void) __attribute__((noreturn));

#endif

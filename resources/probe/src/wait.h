// Bounded waiting without burning instructions: the CPU halts between checks and a periodic
// LAPIC timer tick (besides any device interrupt) wakes it. Matters on a slow or nested KVM,
// where every instruction of a spin loop is expensive.
#ifndef PROBE_WAIT_H
#define PROBE_WAIT_H

#include <stdbool.h>
#include <stdint.h>

// The LAPIC timer runs at the 1 GHz bus clock KVM and QEMU emulate (1 ns per count).
enum { kTickMs = 10 };

// Checks done(ctx) with interrupts off; returns true as soon as it holds, false after about
// timeout_ms. Interrupts are enabled only while halted.
bool wait_until(bool (*done)(void *), void *ctx, uint32_t timeout_ms);
void wait_ms(uint32_t ms);
// Milliseconds spent waiting so far (ticks count only inside wait_until, which is where a
// scenario's time goes): the clock for deadlines that span several waits.
uint64_t wait_clock_ms(void);

#endif

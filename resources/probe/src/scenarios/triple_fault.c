// triple-fault: shuts the CPU down on purpose; the VMM must report it as an error (Firecracker
// treats KVM_EXIT_SHUTDOWN as a failed guest, unlike the i8042 reset). Never returns.
#include "interrupts.h"
#include "scenario.h"

const char *scenario_triple_fault(void) { triple_fault(); }

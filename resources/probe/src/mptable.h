// Intel MultiProcessor Specification 1.4 tables, which Firecracker writes at 0x9fc00.
#ifndef PROBE_MPTABLE_H
#define PROBE_MPTABLE_H

// Enabled processor entries of the MP configuration table, or 0 when no valid table is found
// in the EBDA's last KiB (0x9fc00-0x9ffff) or the BIOS area (0xf0000-0xfffff) (MP spec 4.1).
unsigned mptable_cpu_count(void);

#endif

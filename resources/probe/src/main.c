// The probe's C entry: set up the CPU and console, run the scenarios named by "probe=", report,
// and end the VM.
#include <stdint.h>

#include "apic.h"
#include "bootinfo.h"
#include "cmdline.h"
#include "console.h"
#include "interrupts.h"
#include "io.h"
#include "legacy.h"
#include "machine.h"
#include "scenario.h"
#include "wait.h"

// Firecracker's boot-timer device: a guest write of 123 at offset 0 logs the boot time.
static const uint64_t kBootTimerAddr = 0xc0000000;
static const uint8_t kBootTimerMagic = 123;
// Scenarios run when the command line has no "probe=".
static const char kDefaultScenarios[] = "boot";
// Time for the VMM to act on the i8042 reset before the probe forces a shutdown.
static const uint32_t kResetGraceMs = 500;

struct tally {
  unsigned passed, failed;
};

static void run_one(const char *name, size_t len, struct tally *t) {
  const struct scenario *s = scenario_find(name, len);
  const char *reason = s ? s->run() : "unknown scenario";
  console_write("probe: ", 7);
  console_write(name, len);
  if (reason) {
    console_printf(" FAIL %s\n", reason);
    t->failed++;
  } else {
    console_printf(" ok\n");
    t->passed++;
  }
}

static void run_list(const char *list, size_t len, struct tally *t) {
  size_t start = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i == len || list[i] == ',') {
      if (i > start) run_one(list + start, i - start, t);
      start = i + 1;
    }
  }
}

void machine_reset(void) {
  i8042_reset();
  wait_ms(kResetGraceMs);
  triple_fault();
}

void probe_main(uint32_t protocol, uint64_t info_paddr);
void probe_main(uint32_t protocol, uint64_t info_paddr) {
  mmio_write8(kBootTimerAddr, kBootTimerMagic);
  idt_init();
  idt_load();
  console_init();
  pic_mask_all();
  lapic_enable();
  bootinfo_init((enum boot_protocol)protocol, info_paddr);
  console_printf("probe: entry %s\n", boot_protocol_name((enum boot_protocol)protocol));

  const char *list = kDefaultScenarios;
  size_t len = sizeof kDefaultScenarios - 1;
  cmdline_param("probe", &list, &len);
  struct tally t = {0, 0};
  run_list(list, len, &t);
  console_printf("probe: done passed=%u failed=%u\n", t.passed, t.failed);
  machine_reset();
}

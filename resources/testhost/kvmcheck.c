// kvmcheck: smallest end-to-end proof that /dev/kvm runs a guest.
//
// Test 1 (plain VM, the KVM API's classic example): 4 KiB of guest memory at
// 0x1000 holding real-mode code, one vCPU, and the expected exits:
//   mov dx, 0x3f8 ; mov al, 'K' ; out dx, al      -> KVM_EXIT_IO port 0x3f8 'K'
//   hlt                                           -> KVM_EXIT_HLT
// Test 2 (as ember sets a VM up): KVM_CREATE_IRQCHIP and KVM_CREATE_PIT2 before
// the vCPU exists, read both back (KVM_GET_IRQCHIP, KVM_GET_PIT2), then run
//   mov dx, 0x3f8 ; mov al, 'K' ; out dx, al      -> KVM_EXIT_IO port 0x3f8 'K'
//   out 0xf4, al                                  -> KVM_EXIT_IO port 0xf4 (end)
// With an in-kernel local APIC a HLT is handled inside KVM (the vCPU sleeps
// until an interrupt), so test 2 ends with an OUT instead.
//
// Prints one "KVMCHECK: ..." line per test with timings; exits 0 when both
// pass, 1 otherwise. Built static by build.sh so it runs in the bare L1.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const char *g_test = "";

static int fail(const char *what) {
  printf("KVMCHECK: FAIL %s: %s: %s\n", g_test, what, strerror(errno));
  return 1;
}

static int failf(const char *what, unsigned long long a,
                 unsigned long long b) {
  printf("KVMCHECK: FAIL %s: %s (0x%llx, 0x%llx)\n", g_test, what, a, b);
  return 1;
}

struct vm {
  int vm;
  int vcpu;
  struct kvm_run *run;
};

// Creates a VM (optionally with the in-kernel irqchip and PIT) with `code`
// at guest physical 0x1000 and one vCPU in real mode about to execute it.
// Descriptors are left open: the process is short-lived.
static int make_vm(int kvm, int irqchip, const uint8_t *code, size_t len,
                   struct vm *out) {
  const uint64_t guest_base = 0x1000;
  const size_t mem_size = 4096;

  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) return fail("KVM_CREATE_VM");
  // Must precede vCPU creation on Intel (VMX real-mode TSS); harmless on AMD.
  if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0)
    return fail("KVM_SET_TSS_ADDR");
  if (irqchip) {
    if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
      return fail("KVM_CREATE_IRQCHIP");
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
    if (ioctl(vm, KVM_CREATE_PIT2, &pit) < 0) return fail("KVM_CREATE_PIT2");
    struct kvm_irqchip chip = {.chip_id = KVM_IRQCHIP_IOAPIC};
    if (ioctl(vm, KVM_GET_IRQCHIP, &chip) < 0)
      return fail("KVM_GET_IRQCHIP(IOAPIC)");
    struct kvm_pit_state2 ps;
    if (ioctl(vm, KVM_GET_PIT2, &ps) < 0) return fail("KVM_GET_PIT2");
  }

  uint8_t *mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) return fail("mmap guest memory");
  memcpy(mem, code, len);
  struct kvm_userspace_memory_region region = {
      .slot = 0,
      .guest_phys_addr = guest_base,
      .memory_size = mem_size,
      .userspace_addr = (uint64_t)(uintptr_t)mem,
  };
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
    return fail("KVM_SET_USER_MEMORY_REGION");

  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) return fail("KVM_CREATE_VCPU");
  int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size < 0) return fail("KVM_GET_VCPU_MMAP_SIZE");
  struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE,
                             MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) return fail("mmap kvm_run");

  struct kvm_sregs sregs;
  if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) return fail("KVM_GET_SREGS");
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) return fail("KVM_SET_SREGS");
  struct kvm_regs regs = {.rip = guest_base, .rflags = 0x2};
  if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) return fail("KVM_SET_REGS");
  *out = (struct vm){.vm = vm, .vcpu = vcpu, .run = run};
  return 0;
}

// Runs until the next exit that reaches userspace.
static int run_once(struct vm *v) {
  for (;;) {
    if (ioctl(v->vcpu, KVM_RUN, 0) == 0) return 0;
    if (errno != EINTR && errno != EAGAIN) return fail("KVM_RUN");
  }
}

static int expect_out(struct vm *v, uint16_t port, uint8_t value) {
  struct kvm_run *r = v->run;
  if (r->exit_reason != KVM_EXIT_IO)
    return failf("expected KVM_EXIT_IO, got exit reason / hw reason",
                 r->exit_reason, r->hw.hardware_exit_reason);
  if (r->io.direction != KVM_EXIT_IO_OUT || r->io.size != 1 ||
      r->io.count != 1 || r->io.port != port)
    return failf("unexpected io exit (port, dir<<8|size)", r->io.port,
                 (unsigned)r->io.direction << 8 | r->io.size);
  uint8_t got = ((uint8_t *)r)[r->io.data_offset];
  if (got != value) return failf("unexpected OUT value (got, want)", got, value);
  return 0;
}

static int test_plain(int kvm) {
  static const uint8_t code[] = {
      0xba, 0xf8, 0x03,  // mov dx, 0x3f8
      0xb0, 'K',         // mov al, 'K'
      0xee,              // out dx, al
      0xf4,              // hlt
  };
  g_test = "plain";
  double t0 = now_ms();
  struct vm v;
  if (make_vm(kvm, 0, code, sizeof code, &v)) return 1;
  double t1 = now_ms();
  if (run_once(&v) || expect_out(&v, 0x3f8, 'K')) return 1;
  double t2 = now_ms();
  if (run_once(&v)) return 1;
  if (v.run->exit_reason != KVM_EXIT_HLT)
    return failf("expected KVM_EXIT_HLT, got exit reason / hw reason",
                 v.run->exit_reason, v.run->hw.hardware_exit_reason);
  double t3 = now_ms();
  printf("KVMCHECK: ok plain: KVM_EXIT_IO 0x3f8 'K' then KVM_EXIT_HLT; "
         "create VM+vCPU %.1f ms, run to 'K' %.1f ms, to HLT %.1f ms\n",
         t1 - t0, t2 - t1, t3 - t2);
  return 0;
}

static int test_irqchip(int kvm) {
  static const uint8_t code[] = {
      0xba, 0xf8, 0x03,  // mov dx, 0x3f8
      0xb0, 'K',         // mov al, 'K'
      0xee,              // out dx, al
      0xe6, 0xf4,        // out 0xf4, al
      0xf4,              // hlt (not reached)
  };
  g_test = "irqchip";
  double t0 = now_ms();
  struct vm v;
  if (make_vm(kvm, 1, code, sizeof code, &v)) return 1;
  double t1 = now_ms();
  if (run_once(&v) || expect_out(&v, 0x3f8, 'K')) return 1;
  if (run_once(&v) || expect_out(&v, 0xf4, 'K')) return 1;
  double t2 = now_ms();
  printf("KVMCHECK: ok irqchip: KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2, "
         "KVM_GET_IRQCHIP, KVM_GET_PIT2 work; guest ran to the end marker; "
         "create %.1f ms, run %.1f ms\n",
         t1 - t0, t2 - t1);
  return 0;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  g_test = "open";
  double t0 = now_ms();
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) return fail("open /dev/kvm");
  int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
  if (api != KVM_API_VERSION) return failf("KVM_GET_API_VERSION", (unsigned)api, 0);
  int rc = test_plain(kvm);
  rc |= test_irqchip(kvm);
  printf("KVMCHECK: %s, total %.1f ms\n", rc ? "FAILED" : "all ok",
         now_ms() - t0);
  return rc;
}

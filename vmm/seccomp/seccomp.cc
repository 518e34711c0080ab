#include "vmm/seccomp/seccomp.h"

#include <linux/seccomp.h>
#include <malloc.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "vmm/base/metrics.h"

namespace ember {
namespace {

// prctl(PR_GET_SECCOMP)'s answer for a thread under a filter.
constexpr int kSeccompModeFilter = 2;
// See EnableSeccompFilters.
constexpr int kMallocTrimThresholdBytes = 128 << 20;
// siginfo.si_code of a SIGSYS from a seccomp trap (SYS_SECCOMP, linux/signal.h).
constexpr int kSiCodeSeccomp = 1;

std::atomic<const SeccompFilters*> g_filters{nullptr};
std::atomic<SeccompTestHook> g_test_hook{nullptr};
std::atomic<int> g_log_fd{STDERR_FILENO};
// Written on the main thread before boot; read only by the SIGSYS handler.
char g_instance_id[128] = "anonymous-instance";

// What the SIGSYS line says about the thread. Plain static TLS: safe to read in a handler.
thread_local const char* t_role = nullptr;
thread_local char t_thread_name[32];

struct SyscallEntry {
  long nr;
  const char* name;
};
// Generated from <asm/unistd_64.h> by vmm/seccomp/CMakeLists.txt.
constexpr SyscallEntry kSyscallNames[] = {
#include "syscall_names.inc"
};

void RecordThread(SeccompRole role, const char* thread_name) {
  t_role = SeccompRoleName(role);
  strncpy(t_thread_name, thread_name ? thread_name : "?", sizeof(t_thread_name) - 1);
}

// ---- The SIGSYS line, built without allocating or locking ----------------------------------

struct LineBuffer {
  char data[512];
  size_t len = 0;

  void Add(const char* s) {
    while (*s && len < sizeof(data) - 1) data[len++] = *s++;
  }
  void AddNumber(unsigned long long v, unsigned base = 10) {
    char digits[24];
    size_t n = 0;
    do {
      digits[n++] = "0123456789abcdef"[v % base];
      v /= base;
    } while (v != 0);
    if (base == 16) Add("0x");
    while (n > 0 && len < sizeof(data) - 1) data[len++] = digits[--n];
  }
};

void WriteAll(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data += n;
    len -= static_cast<size_t>(n);
  }
}

void OnSigsys(int signo, siginfo_t* info, void* context) {
  // A second fault (another thread, or this handler itself under SA_NODEFER) writes its line and
  // leaves the last metrics line to the first.
  static std::atomic<bool> handling{false};
  const bool first = !handling.exchange(true);

  LineBuffer line;
  line.Add("[");
  line.Add(g_instance_id);
  line.Add(":");
  line.Add(t_thread_name[0] ? t_thread_name : "?");
  line.Add(":ERROR] ");
  if (info->si_code == kSiCodeSeccomp) {
    const long nr = info->si_syscall;
    // Firecracker's wording, then what it does not say: the name, the arguments, the thread.
    line.Add("Shutting down VM after intercepting a bad syscall (");
    line.AddNumber(static_cast<unsigned long long>(nr));
    line.Add("): ");
    const char* name = SyscallName(nr);
    line.Add(name ? name : "unknown");
    const auto* uc = static_cast<const ucontext_t*>(context);
    const greg_t* r = uc->uc_mcontext.gregs;
    const greg_t args[] = {r[REG_RDI], r[REG_RSI], r[REG_RDX], r[REG_R10], r[REG_R8], r[REG_R9]};
    line.Add("(");
    for (size_t i = 0; i < 6; ++i) {
      if (i) line.Add(", ");
      line.AddNumber(static_cast<unsigned long long>(args[i]), 16);
    }
    line.Add(") on thread \"");
    line.Add(t_thread_name[0] ? t_thread_name : "?");
    line.Add("\" (");
    line.Add(t_role ? t_role : "no");
    line.Add(" filter)");
  } else {
    line.Add("Shutting down VM after intercepting signal ");
    line.AddNumber(static_cast<unsigned long long>(signo));
    line.Add(", code ");
    line.AddNumber(static_cast<unsigned long long>(info->si_code));
  }
  line.Add("\n");
  const int log_fd = g_log_fd.load(std::memory_order_relaxed);
  WriteAll(log_fd, line.data, line.len);
  if (log_fd != STDERR_FILENO) WriteAll(STDERR_FILENO, line.data, line.len);
  if (first) {
    SeccompMetrics& m = metrics().seccomp;
    m.num_faults.Set(m.num_faults.value() + 1);
    if (metrics_system().configured()) (void)metrics_system().Flush();
  }
  _exit(kExitBadSyscall);
}

Status InstallSigsysHandler() {
  struct sigaction sa = {};
  sa.sa_sigaction = OnSigsys;
  // SA_NODEFER: a fault inside the handler comes back here (and exits 148) instead of the
  // kernel's forcing the default action on a blocked SIGSYS (a core dump).
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSYS, &sa, nullptr) != 0) return Error::Errno("sigaction(SIGSYS)");
  return Ok();
}

}  // namespace

const char* SyscallName(long nr) {
  for (const SyscallEntry& e : kSyscallNames) {
    if (e.nr == nr) return e.name;
  }
  return nullptr;
}

Result<SeccompFilters> CompileSeccompProfiles(const SeccompProfiles& profiles) {
  SeccompFilters filters;
  for (SeccompRole role : kSeccompRoles) {
    auto program = CompileSeccompFilter(profiles[role]);
    if (!program.ok())
      return program.error().Wrap(StrFormat("seccomp filter \"%s\"", SeccompRoleName(role)));
    (role == SeccompRole::kVmm ? filters.vmm : role == SeccompRole::kApi ? filters.api
                                                                         : filters.vcpu) =
        std::move(*program);
  }
  return filters;
}

Status InstallSeccompFilter(const BpfProgram& program) {
  if (program.instructions.empty() || program.instructions.size() > kMaxBpfInstructions)
    return Error{StrFormat("a seccomp program of %zu instructions (1 to %zu allowed)",
                           program.instructions.size(), kMaxBpfInstructions)};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return Error::Errno("prctl(PR_SET_NO_NEW_PRIVS, 1)");
  sock_fprog prog = {};
  prog.len = static_cast<unsigned short>(program.instructions.size());
  prog.filter = const_cast<sock_filter*>(program.instructions.data());
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
    return Error::Errno(StrFormat("seccomp(SECCOMP_SET_MODE_FILTER, %u instructions)", prog.len));
  return Ok();
}

Status EnableSeccompFilters(SeccompFilters filters) {
  if (g_filters.load()) return Error{"seccomp filters are already enabled"};
  TRY_STATUS(InstallSigsysHandler());
  // glibc reads the time zone (open /etc/localtime) the first time a log line formats its
  // timestamp; done here, no filtered thread ever needs open(2) for it.
  tzset();
  // glibc opens /proc/sys/vm/overcommit_memory the first time it shrinks a thread arena's heap
  // (malloc-sysdep.h, check_may_shrink_heap), which it does only when the heap's free top
  // exceeds the trim threshold. A threshold above a thread heap's largest size (64 MiB,
  // HEAP_MAX_SIZE) means it never does; the main arena still trims through brk(2) past it.
  mallopt(M_TRIM_THRESHOLD, kMallocTrimThresholdBytes);
  // Without a set arena limit glibc sizes one with get_nprocs() at the 9th arena, which opens
  // /sys/devices/system/cpu/online (seen: the API's 9th worker thread trapped on openat). ember
  // uses one arena anyway (api/main.cc: every extra arena stays resident); set here too for
  // other callers of this function.
  mallopt(M_ARENA_MAX, 1);
  // Lives as long as the process: threads read it until they end.
  g_filters.store(new SeccompFilters(std::move(filters)));
  return Ok();
}

bool SeccompFiltersEnabled() { return g_filters.load() != nullptr; }

Status ApplySeccompFilter(SeccompRole role, const char* thread_name) {
  const SeccompFilters* filters = g_filters.load();
  if (!filters) return Ok();
  RecordThread(role, thread_name);
  if (Status s = InstallSeccompFilter((*filters)[role]); !s.ok())
    return s.error().Wrap(StrFormat("installing the %s seccomp filter", SeccompRoleName(role)));
  if (SeccompTestHook hook = g_test_hook.load()) hook(role);
  return Ok();
}

Status EnsureSeccompFilter(SeccompRole role, const char* thread_name) {
  if (!g_filters.load()) return Ok();
  if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == kSeccompModeFilter) {
    RecordThread(role, thread_name);
    return Ok();
  }
  return ApplySeccompFilter(role, thread_name);
}

void SetSeccompViolationLog(int fd, const std::string& instance_id) {
  g_log_fd.store(fd, std::memory_order_relaxed);
  strncpy(g_instance_id, instance_id.c_str(), sizeof(g_instance_id) - 1);
}

void SetSeccompTestHook(SeccompTestHook hook) { g_test_hook.store(hook); }

}  // namespace ember

#include "vmm/seccomp/compiler.h"

#include <seccomp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>

#include "vmm/base/strings.h"
#include "vmm/base/unique_fd.h"

namespace ember {
namespace {

struct ContextDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using ScmpContext = std::unique_ptr<void, ContextDeleter>;

uint32_t ToScmpAction(const SeccompAction& a) {
  using Kind = SeccompAction::Kind;
  switch (a.kind) {
    case Kind::kAllow: return SCMP_ACT_ALLOW;
    case Kind::kErrno: return SCMP_ACT_ERRNO(a.value);
    case Kind::kKillThread: return SCMP_ACT_KILL_THREAD;
    case Kind::kKillProcess: return SCMP_ACT_KILL_PROCESS;
    case Kind::kLog: return SCMP_ACT_LOG;
    case Kind::kTrace: return SCMP_ACT_TRACE(a.value);
    case Kind::kTrap: return SCMP_ACT_TRAP;
  }
  return SCMP_ACT_KILL_PROCESS;
}

scmp_arg_cmp ToScmpCondition(const SeccompCondition& c) {
  scmp_arg_cmp cmp = {};
  cmp.arg = c.index;
  cmp.datum_a = c.value;
  switch (c.op) {
    case SeccompOp::kEq:
      if (c.width == SeccompArgWidth::kDword) {
        // libseccomp's EQ compares 64 bits; the low half alone is (arg & 0xffffffff) == val.
        cmp.op = SCMP_CMP_MASKED_EQ;
        cmp.datum_a = 0xffffffffu;
        cmp.datum_b = c.value;
      } else {
        cmp.op = SCMP_CMP_EQ;
      }
      break;
    case SeccompOp::kNe: cmp.op = SCMP_CMP_NE; break;
    case SeccompOp::kLt: cmp.op = SCMP_CMP_LT; break;
    case SeccompOp::kLe: cmp.op = SCMP_CMP_LE; break;
    case SeccompOp::kGt: cmp.op = SCMP_CMP_GT; break;
    case SeccompOp::kGe: cmp.op = SCMP_CMP_GE; break;
    case SeccompOp::kMaskedEq:
      cmp.op = SCMP_CMP_MASKED_EQ;
      cmp.datum_a = c.mask;
      cmp.datum_b = c.value;
      break;
  }
  return cmp;
}

Result<BpfProgram> Export(void* ctx) {
  UniqueFd memfd(memfd_create("ember-seccomp-bpf", MFD_CLOEXEC));
  if (!memfd.valid()) return Error::Errno("memfd_create for the seccomp program");
  if (int rc = seccomp_export_bpf(ctx, memfd.get()); rc != 0)
    return Error::Errno("seccomp_export_bpf", -rc);
  const off_t size = lseek(memfd.get(), 0, SEEK_CUR);
  if (size < 0) return Error::Errno("lseek on the seccomp program");
  if (size % sizeof(sock_filter) != 0)
    return Error{StrFormat("seccomp_export_bpf wrote %lld bytes, not whole instructions",
                           static_cast<long long>(size))};
  BpfProgram program;
  program.instructions.resize(static_cast<size_t>(size) / sizeof(sock_filter));
  const size_t bytes = static_cast<size_t>(size);
  auto* out = reinterpret_cast<char*>(program.instructions.data());
  for (size_t done = 0; done < bytes;) {
    ssize_t n = pread(memfd.get(), out + done, bytes - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Error::Errno("reading the seccomp program back", n == 0 ? EIO : errno);
    done += static_cast<size_t>(n);
  }
  return program;
}

}  // namespace

Result<BpfProgram> CompileSeccompFilter(const SeccompFilterConfig& config) {
  const uint32_t filter_action = ToScmpAction(config.filter_action);
  ScmpContext ctx(seccomp_init(ToScmpAction(config.default_action)));
  if (!ctx) return Error{"seccomp_init failed (the default action is not supported here?)"};

  // Earlier rules come earlier in the program: libseccomp orders syscalls by priority, 255 first.
  std::map<int, uint8_t> priority;
  for (size_t i = 0; i < config.rules.size(); ++i) {
    const SeccompRule& rule = config.rules[i];
    const std::string where = StrFormat("rule %zu (\"%s\")", i, rule.syscall.c_str());
    const int nr = seccomp_syscall_resolve_name(rule.syscall.c_str());
    if (nr == __NR_SCMP_ERROR) return Error{where + ": unknown system call"};
    // libseccomp's negative pseudo-numbers stand for syscalls x86_64 does not have.
    if (nr < 0) return Error{where + ": not a system call on x86_64"};
    if (!priority.count(nr)) {
      priority[nr] = static_cast<uint8_t>(255 - std::min<size_t>(priority.size(), 254));
      if (int rc = seccomp_syscall_priority(ctx.get(), nr, priority[nr]); rc != 0)
        return Error::Errno(where + ": seccomp_syscall_priority", -rc);
    }
    std::vector<scmp_arg_cmp> cmps;
    for (const SeccompCondition& c : rule.args) cmps.push_back(ToScmpCondition(c));
    int rc = seccomp_rule_add_array(ctx.get(), filter_action, nr,
                                    static_cast<unsigned int>(cmps.size()), cmps.data());
    if (rc == -EACCES && config.filter_action == config.default_action)
      return Error{where + ": the filter action is the default action, a rule would change nothing"};
    if (rc != 0) return Error::Errno(where + ": libseccomp rejected the rule", -rc);
  }
  BpfProgram program = TRY(Export(ctx.get()));
  if (program.instructions.size() > kMaxBpfInstructions)
    return Error{StrFormat("the compiled filter has %zu instructions, over the kernel's limit of %zu",
                           program.instructions.size(), kMaxBpfInstructions)};
  return program;
}

}  // namespace ember

// ember-jailer end to end: the binary builds real jails on this host (as root) and the tests
// check from the host, through /proc, what the jailed ember can and cannot do: its ids and
// capabilities, its namespaces and root, its cgroups and limits, what another tenant can reach,
// and that every refused invocation leaves the host exactly as it was. JailerTest needs no KVM
// (ember serves its API before any VM exists); JailerBootTest boots the probe in jails and runs
// in the nested test host where /dev/kvm is unusable.
#include <elf.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/ember_runner.h"
#include "tests/support/api_client.h"
#include "tests/support/echo_listener.h"
#include "tests/support/netns.h"
#include "vmm/base/strings.h"

namespace ember::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Root, and a host prepared for jails (PrepareHost, below).
#define REQUIRE_ROOT()                                           \
  do {                                                           \
    if (geteuid() != 0) GTEST_SKIP() << "the jailer needs root"; \
    PrepareHost();                                               \
  } while (0)

// Exit codes of the jailer's steps (jailer/steps.h).
constexpr int kExitArguments = 10;
constexpr int kExitValidate = 11;
constexpr int kExitClaimJail = 12;
constexpr int kExitJoinCgroups = 18;
constexpr int kExitExec = 25;
constexpr int kExitCleanup = 26;

std::string JailerBinary() {
  const char* env = getenv("EMBER_JAILER_BIN");
  return env ? env : BuildPath("bin/ember-jailer");
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The value of "Field:" in a /proc status file, tabs turned into spaces.
std::string StatusFieldIn(const std::string& status_file, const std::string& field) {
  std::istringstream in(Slurp(status_file));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) != 0) continue;
    std::string v = line.substr(field.size() + 1);
    std::replace(v.begin(), v.end(), '\t', ' ');
    while (!v.empty() && v.front() == ' ') v.erase(v.begin());
    return Trim(v);
  }
  return "<no " + field + ">";
}

std::string StatusField(pid_t pid, const std::string& field) {
  return StatusFieldIn(StrFormat("/proc/%d/status", pid), field);
}

std::string NamespaceOf(const std::string& pid, const std::string& ns) {
  char buf[128] = {};
  ssize_t n = readlink(("/proc/" + pid + "/ns/" + ns).c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// "soft hard" of a line of /proc/<pid>/limits.
std::string LimitOf(pid_t pid, const std::string& name) {
  std::istringstream in(Slurp(StrFormat("/proc/%d/limits", pid)));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0) continue;
    std::istringstream values(line.substr(name.size()));
    std::string soft, hard;
    values >> soft >> hard;
    return soft + " " + hard;
  }
  return "";
}

bool SameFile(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  return stat(a.c_str(), &sa) == 0 && stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

// Every path under `dir` with its type, mode and owner, sorted: two equal snapshots mean the
// tree did not change.
std::string TreeSnapshot(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> lines;
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(dir, ec))) return "(absent)";
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st;
    if (lstat(it->path().c_str(), &st) != 0) continue;
    lines.push_back(StrFormat("%s %o %u:%u", it->path().c_str(), st.st_mode, st.st_uid, st.st_gid));
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

// ---------------------------------------------------------------------------------------------
// The host the jails live on.

struct CgroupHierarchy {
  std::string mount_point;
  bool v2 = false;
  std::vector<std::string> controllers;
};

std::vector<CgroupHierarchy> CgroupHierarchies() {
  std::vector<CgroupHierarchy> out;
  std::istringstream in(Slurp("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(in, line)) {
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream left(line.substr(0, dash)), right(line.substr(dash + 3));
    std::string id, parent, dev, root, mount_point, fstype, source, options;
    left >> id >> parent >> dev >> root >> mount_point;
    right >> fstype >> source >> options;
    if (fstype != "cgroup" && fstype != "cgroup2") continue;
    CgroupHierarchy h;
    h.mount_point = mount_point;
    h.v2 = fstype == "cgroup2";
    for (std::string_view o : Split(options, ',')) h.controllers.emplace_back(o);
    out.push_back(std::move(h));
  }
  return out;
}

std::string HierarchyOf(const std::string& controller) {
  for (const CgroupHierarchy& h : CgroupHierarchies()) {
    if (!h.v2 && std::count(h.controllers.begin(), h.controllers.end(), controller)) {
      return h.mount_point;
    }
  }
  return "";
}

std::string UnifiedHierarchy() {
  for (const CgroupHierarchy& h : CgroupHierarchies()) {
    if (h.v2) return h.mount_point;
  }
  return "";
}

// The test host (resources/testhost) boots from an initramfs: its root is the rootfs, which
// pivot_root(2) refuses (EINVAL: the current root has no parent mount), and it mounts no
// cgroups. There, and only there (/testhost/busybox marks it), the tests give themselves what a
// real host has: a root filesystem mounted over the rootfs (a recursive bind of / moved onto /
// and entered with chroot, as switch_root does; every jailer started from here inherits it) and
// cgroup v1 hierarchies for memory, cpu and pids beside a cgroup2 mount. Everywhere: this process
// becomes a child subreaper, so ember processes the jailer leaves behind (--new-pid-ns,
// --daemonize) are reparented to it and their exit statuses can be read.
bool IsTestHost() { return access("/testhost/busybox", X_OK) == 0; }

void PrepareHost() {
  static std::once_flag once;
  std::call_once(once, [] {
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    if (geteuid() != 0 || !IsTestHost()) return;
    const std::string mountinfo = Slurp("/proc/self/mountinfo");
    if (mountinfo.find(" / / ") != std::string::npos &&
        mountinfo.find(" - rootfs rootfs ") != std::string::npos) {
      char cwd[4096];
      if (!getcwd(cwd, sizeof(cwd))) strcpy(cwd, "/");
      mkdir("/.jailer-test-root", 0755);
      if (mount("/", "/.jailer-test-root", nullptr, MS_BIND | MS_REC, nullptr) != 0 ||
          chdir("/.jailer-test-root") != 0 || mount(".", "/", nullptr, MS_MOVE, nullptr) != 0 ||
          chroot(".") != 0 || chdir(cwd) != 0) {
        fprintf(stderr, "jailer_test: cannot leave the rootfs: %s\n", strerror(errno));
      }
    }
    if (CgroupHierarchies().empty()) {
      mount("cgroup", "/sys/fs/cgroup", "tmpfs", 0, "mode=755");
      for (const char* c : {"memory", "cpu", "pids"}) {
        std::string dir = std::string("/sys/fs/cgroup/") + c;
        mkdir(dir.c_str(), 0755);
        if (mount("cgroup", dir.c_str(), "cgroup", 0, c) != 0) {
          fprintf(stderr, "jailer_test: mount cgroup %s: %s\n", c, strerror(errno));
        }
      }
      mkdir("/sys/fs/cgroup/unified", 0755);
      mount("cgroup2", "/sys/fs/cgroup/unified", "cgroup2", 0, nullptr);
    }
  });
}

// A dynamically linked ember (the sanitizer build) needs its shared libraries inside the jail,
// as a client provides kernels and disks there: their paths, from ldd. Empty for the static
// release build.
std::vector<std::string> ReadSharedLibraries(const std::string& binary) {
  std::string elf = Slurp(binary);
  if (elf.size() < sizeof(Elf64_Ehdr)) return {};
  Elf64_Ehdr eh;
  memcpy(&eh, elf.data(), sizeof(eh));
  bool dynamic = false;
  for (int i = 0; i < eh.e_phnum; i++) {
    Elf64_Phdr ph;
    size_t at = eh.e_phoff + static_cast<size_t>(i) * eh.e_phentsize;
    if (at + sizeof(ph) > elf.size()) break;
    memcpy(&ph, elf.data() + at, sizeof(ph));
    dynamic |= ph.p_type == PT_INTERP;
  }
  if (!dynamic) return {};
  Subprocess ldd({"/usr/bin/ldd", binary});
  ldd.WaitExit(seconds(30));
  std::vector<std::string> libs;
  std::istringstream in(ldd.out());
  std::string line;
  while (std::getline(in, line)) {
    size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    libs.push_back(line.substr(slash, line.find(' ', slash) - slash));
  }
  return libs;
}

const std::vector<std::string>& SharedLibrariesOf(const std::string& binary) {
  static std::mutex mu;
  static std::map<std::string, std::vector<std::string>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(binary);
  if (it == cache.end()) it = cache.emplace(binary, ReadSharedLibraries(binary)).first;
  return it->second;
}

bool EmberIsDynamic() {
  static const bool dynamic = !SharedLibrariesOf(EmberBinary()).empty();
  return dynamic;
}

void CopyInto(const std::string& from, const std::string& to, uid_t uid, gid_t gid) {
  std::filesystem::create_directories(std::filesystem::path(to).parent_path());
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
  chown(to.c_str(), uid, gid);
}

// A base directory for jails and a parent cgroup for them, both this process's own. The parent
// cgroup sits under this process's memory cgroup (on a shared machine that one may be somebody
// else's to account), and the teardown removes every level of it the jailers created.
class JailHost {
 public:
  JailHost() {
    PrepareHost();
    base_ = dir_.path() + "/srv";
    mkdir(base_.c_str(), 0755);
    // mkdtemp's 0700 would stop every other uid before the jails' own permissions are reached.
    chmod(dir_.path().c_str(), 0755);
    std::string memory;
    std::istringstream in(Slurp("/proc/self/cgroup"));
    std::string line;
    while (std::getline(in, line)) {
      std::vector<std::string_view> f = Split(line, ':');
      if (f.size() == 3) {
        for (std::string_view c : Split(f[1], ',')) {
          if (c == "memory") memory = std::string(f[2]);
        }
      }
    }
    while (!memory.empty() && memory.front() == '/') memory.erase(memory.begin());
    parent_ =
        (memory.empty() ? "" : memory + "/") + "ember-jailer-test-" + std::to_string(getpid());
    for (const CgroupHierarchy& h : CgroupHierarchies()) {
      std::string at = h.mount_point;
      size_t depth = 0;
      for (std::string_view part : Split(parent_, '/')) {
        at.append("/").append(part);
        if (access(at.c_str(), F_OK) != 0) break;
        depth++;
      }
      existing_depth_[h.mount_point] = depth;
    }
  }

  ~JailHost() {
    for (const auto& [mount_point, depth] : existing_depth_) {
      std::vector<std::string> levels;
      std::string at = mount_point;
      for (std::string_view part : Split(parent_, '/'))
        levels.push_back(at.append("/").append(part));
      for (size_t i = levels.size(); i > depth; i--) rmdir(levels[i - 1].c_str());
    }
  }

  const std::string& base() const { return base_; }
  const std::string& parent_cgroup() const { return parent_; }
  const TempDir& dir() const { return dir_; }
  std::string JailDir(const std::string& id) const { return base_ + "/ember/" + id; }
  std::string CgroupDir(const std::string& hierarchy, const std::string& id) const {
    return hierarchy + "/" + parent_ + "/" + id;
  }

  // The host state a refused run must leave alone: the jail tree and, in every hierarchy, which
  // levels of the parent cgroup exist and what is below it.
  std::string Snapshot() const {
    std::string out = TreeSnapshot(base_);
    for (const CgroupHierarchy& h : CgroupHierarchies()) {
      std::string at = h.mount_point;
      for (std::string_view part : Split(parent_, '/')) {
        at.append("/").append(part);
        out += at + (access(at.c_str(), F_OK) == 0 ? " exists\n" : " absent\n");
      }
      std::error_code ec;
      for (auto it = std::filesystem::recursive_directory_iterator(at, ec);
           !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_directory()) out += it->path().string() + "\n";
      }
    }
    return out;
  }

  // `ember-jailer --cleanup` for jail `id`.
  std::optional<int> Cleanup(const std::string& id, std::string* err = nullptr) const {
    Subprocess p({JailerBinary(), "--cleanup", "--id", id, "--exec-file", EmberBinary(),
                  "--chroot-base-dir", base_, "--parent-cgroup", parent_});
    std::optional<int> code = p.WaitExit(seconds(30));
    if (err) *err = p.err();
    return code;
  }

 private:
  TempDir dir_;
  std::string base_;
  std::string parent_;
  std::map<std::string, size_t> existing_depth_;
};

struct JailSpec {
  std::string id;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<std::string> flags;       // further jailer flags
  std::vector<std::string> ember_args;  // after "--"
  // Host files copied into the jail (owned by uid:gid) before the jailer runs, as a client
  // places kernels and disks: jail path -> host path.
  std::map<std::string, std::string> files;
};

// One jailed ember: its directory, its process, its API socket.
// A dynamic ember's shared libraries at their paths under `root` (nothing for a static one).
void PlaceSharedLibraries(const std::string& root) {
  for (const std::string& lib : SharedLibrariesOf(EmberBinary())) {
    // Hard links where possible: twenty jails of a sanitizer build would copy ~20 MiB each.
    std::filesystem::create_directories(std::filesystem::path(root + lib).parent_path());
    char resolved[PATH_MAX];
    if (!realpath(lib.c_str(), resolved) || link(resolved, (root + lib).c_str()) != 0) {
      CopyInto(lib, root + lib, 0, 0);
    }
  }
}

class Jail {
 public:
  Jail(const JailHost& host, JailSpec spec) : host_(host), spec_(std::move(spec)) {
    root_ = host_.JailDir(spec_.id) + "/root";
    PlaceSharedLibraries(root_);
    for (const auto& [in_jail, on_host] : spec_.files) {
      CopyInto(on_host, root_ + in_jail, spec_.uid, spec_.gid);
    }
    std::vector<std::string> argv = {JailerBinary(),
                                     "--id",
                                     spec_.id,
                                     "--exec-file",
                                     EmberBinary(),
                                     "--uid",
                                     std::to_string(spec_.uid),
                                     "--gid",
                                     std::to_string(spec_.gid),
                                     "--chroot-base-dir",
                                     host_.base(),
                                     "--parent-cgroup",
                                     host_.parent_cgroup()};
    argv.insert(argv.end(), spec_.flags.begin(), spec_.flags.end());
    argv.push_back("--");
    argv.insert(argv.end(), spec_.ember_args.begin(), spec_.ember_args.end());
    jailer_ = std::make_unique<Subprocess>(argv);
    jailer_pid_ = jailer_->pid();
  }

  ~Jail() {
    Stop();
    std::string err;
    std::optional<int> code = host_.Cleanup(spec_.id, &err);
    EXPECT_EQ(code, std::optional<int>(0)) << "--cleanup " << spec_.id << ": " << err;
    EXPECT_FALSE(std::filesystem::exists(host_.JailDir(spec_.id))) << "--cleanup left the jail";
  }

  const std::string& root() const { return root_; }
  const JailSpec& spec() const { return spec_; }
  std::string socket() const { return root_ + "/run/ember.socket"; }
  ApiClient api() const { return ApiClient(socket()); }
  Subprocess& jailer() { return *jailer_; }
  pid_t jailer_pid() const { return jailer_pid_; }

  // Until ember accepts on its API socket in the jail.
  bool WaitReady(milliseconds timeout = milliseconds(20000)) {
    return api().WaitUntilAccepting(timeout);
  }

  // ember's pid as the pid file says (the jailer writes it before ember runs); 0 if the jailer
  // ended without writing one.
  pid_t pid() {
    if (pid_ != 0) return pid_;
    const std::string file = root_ + "/ember.pid";
    jailer_->WaitFor([&](const std::string&, const std::string&) { return !Slurp(file).empty(); },
                     seconds(30));
    pid_ = static_cast<pid_t>(atoi(Slurp(file).c_str()));
    return pid_;
  }

  // Waits for ember to end: through the jailer's Subprocess when ember is the jailer's own
  // process, else as its subreaper.
  std::optional<int> WaitEmberExit(milliseconds timeout) {
    if (exit_code_) return exit_code_;
    const pid_t p = pid();
    if (p <= 0) return std::nullopt;
    if (p == jailer_pid_) {
      exit_code_ = jailer_->WaitExit(timeout);
      return exit_code_;
    }
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      int status = 0;
      if (waitpid(p, &status, WNOHANG) == p) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        jailer_->WaitFor([](const std::string&, const std::string&) { return false; },
                         milliseconds(200));
        return exit_code_;
      }
      jailer_->WaitFor([](const std::string&, const std::string&) { return false; },
                       milliseconds(20));
    }
    return std::nullopt;
  }

  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    if (pid() > 0 && !exit_code_) {
      kill(pid_, SIGKILL);
      WaitEmberExit(seconds(30));
    }
    jailer_->WaitExit(seconds(30));
  }

 private:
  const JailHost& host_;
  JailSpec spec_;
  std::string root_;
  std::unique_ptr<Subprocess> jailer_;
  pid_t jailer_pid_ = -1;
  pid_t pid_ = 0;
  std::optional<int> exit_code_;
  bool stopped_ = false;
};

// What the host sees of a running jailed ember through /proc: the isolation contract.
void ExpectJailedProcess(Jail& jail, bool new_pid_ns) {
  const pid_t pid = jail.pid();
  ASSERT_GT(pid, 0);
  const uint32_t uid = jail.spec().uid, gid = jail.spec().gid;
  EXPECT_EQ(StatusField(pid, "Uid"), StrFormat("%u %u %u %u", uid, uid, uid, uid));
  EXPECT_EQ(StatusField(pid, "Gid"), StrFormat("%u %u %u %u", gid, gid, gid, gid));
  EXPECT_EQ(StatusField(pid, "Groups"), "");
  for (const char* caps : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    EXPECT_EQ(StatusField(pid, caps), "0000000000000000") << caps;
  }
  EXPECT_EQ(StatusField(pid, "NoNewPrivs"), "1");
  // Its root is the jail's directory, and its mount namespace holds nothing else: the host's
  // tree was detached.
  const std::string proc = "/proc/" + std::to_string(pid);
  EXPECT_TRUE(SameFile(proc + "/root/", jail.root())) << "the process's / is not the jail";
  EXPECT_NE(NamespaceOf(std::to_string(pid), "mnt"), NamespaceOf("self", "mnt"));
  std::istringstream mounts(Slurp(proc + "/mountinfo"));
  std::string line;
  int count = 0;
  while (std::getline(mounts, line)) {
    std::istringstream f(line);
    std::string id, parent, dev, root, mount_point;
    f >> id >> parent >> dev >> root >> mount_point;
    EXPECT_EQ(mount_point, "/") << "a mount besides the jail's root: " << line;
    // The jail's directory, as a path inside the filesystem that holds it.
    EXPECT_TRUE(jail.root().size() >= root.size() &&
                jail.root().compare(jail.root().size() - root.size(), root.size(), root) == 0)
        << line;
    count++;
  }
  EXPECT_EQ(count, 1);
  if (new_pid_ns) {
    EXPECT_NE(NamespaceOf(std::to_string(pid), "pid"), NamespaceOf("self", "pid"));
    EXPECT_EQ(StatusField(pid, "NSpid"), StrFormat("%d 1", pid)) << "pid 1 of its namespace";
  } else {
    EXPECT_EQ(NamespaceOf(std::to_string(pid), "pid"), NamespaceOf("self", "pid"));
    EXPECT_EQ(pid, jail.jailer_pid()) << "without --new-pid-ns the jailer becomes ember";
  }
  // Nothing of the caller's environment, and the arguments Firecracker's jailer passes.
  EXPECT_EQ(Slurp(proc + "/environ"), "");
  std::string cmdline = Slurp(proc + "/cmdline");
  std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
  EXPECT_EQ(cmdline.rfind("/ember --id " + jail.spec().id + " --start-time-us ", 0), 0u) << cmdline;
  EXPECT_NE(cmdline.find(" --start-time-cpu-us "), std::string::npos) << cmdline;
  EXPECT_NE(cmdline.find(" --parent-cpu-time-us "), std::string::npos) << cmdline;
}

// The jail's directory as Firecracker's jailer leaves it: /, /dev, /dev/net and /run 0700 and
// owned by the tenant, the devices 0600, the binary a copy.
void ExpectJailLayout(Jail& jail) {
  const uint32_t uid = jail.spec().uid, gid = jail.spec().gid;
  auto expect = [&](const std::string& path, mode_t mode, uid_t u, gid_t g, dev_t rdev = 0) {
    struct stat st;
    ASSERT_EQ(lstat((jail.root() + path).c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_mode, mode) << path;
    EXPECT_EQ(st.st_uid, u) << path;
    EXPECT_EQ(st.st_gid, g) << path;
    if (rdev) {
      EXPECT_EQ(st.st_rdev, rdev) << path;
    }
  };
  expect("", S_IFDIR | 0700, uid, gid);
  expect("/dev", S_IFDIR | 0700, uid, gid);
  expect("/dev/net", S_IFDIR | 0700, uid, gid);
  expect("/run", S_IFDIR | 0700, uid, gid);
  expect("/dev/kvm", S_IFCHR | 0600, uid, gid, makedev(10, 232));
  expect("/dev/net/tun", S_IFCHR | 0600, uid, gid, makedev(10, 200));
  expect("/dev/urandom", S_IFCHR | 0600, uid, gid, makedev(1, 9));
  if (Slurp("/proc/misc").find(" userfaultfd\n") != std::string::npos) {
    expect("/dev/userfaultfd", S_IFCHR | 0600, uid, gid);
  }
  expect("/ember.pid", S_IFREG | 0644, 0, 0);
  struct stat copy, original;
  ASSERT_EQ(stat((jail.root() + "/ember").c_str(), &copy), 0);
  ASSERT_EQ(stat(EmberBinary().c_str(), &original), 0);
  EXPECT_NE(copy.st_ino, original.st_ino) << "copied, not linked";
  EXPECT_EQ(copy.st_size, original.st_size);
  EXPECT_EQ(copy.st_uid, uid);
}

uint32_t NextUid() {
  static std::atomic<uint32_t> next{41000};
  return next++;
}

JailSpec Spec(const std::string& id) {
  JailSpec s;
  s.id = id;
  s.uid = s.gid = NextUid();
  return s;
}

// ---------------------------------------------------------------------------------------------
// Without KVM: ember serves its API in the jail before any VM exists.

TEST(JailerTest, JailedEmberServesItsApiInsideTheJail) {
  REQUIRE_ROOT();
  JailHost host;
  // An inherited descriptor and an environment variable the jailer must not pass on.
  const std::string canary = host.dir().Write("canary", "");
  int leak = open(canary.c_str(), O_RDONLY);  // no O_CLOEXEC: inherited by the jailer
  setenv("EMBER_JAILER_TEST_CANARY", "1", 1);
  Jail jail(host, Spec("serves-api"));
  unsetenv("EMBER_JAILER_TEST_CANARY");
  close(leak);
  ASSERT_TRUE(jail.WaitReady()) << jail.jailer().err();
  std::optional<ApiReply> r = jail.api().Get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("\"id\":\"serves-api\""), std::string::npos) << r->body;
  ExpectJailedProcess(jail, /*new_pid_ns=*/false);
  ExpectJailLayout(jail);
  // No descriptor of ember's points at the canary.
  const std::string fd_dir = StrFormat("/proc/%d/fd", jail.pid());
  for (const auto& e : std::filesystem::directory_iterator(fd_dir)) {
    char target[4096] = {};
    readlink(e.path().c_str(), target, sizeof(target) - 1);
    EXPECT_EQ(std::string(target).find("canary"), std::string::npos)
        << e.path() << " -> " << target;
  }
  // Firecracker's default no-file limit, hard and soft.
  EXPECT_EQ(LimitOf(jail.pid(), "Max open files"), "2048 2048");
}

TEST(JailerTest, NewPidNamespaceAndDaemonize) {
  REQUIRE_ROOT();
  JailHost host;
  for (bool daemonize : {false, true}) {
    SCOPED_TRACE(daemonize ? "--daemonize --new-pid-ns" : "--new-pid-ns");
    JailSpec spec = Spec(daemonize ? "pidns-daemon" : "pidns");
    spec.flags = {"--new-pid-ns"};
    if (daemonize) spec.flags.push_back("--daemonize");
    Jail jail(host, spec);
    // The jailer exits 0 once ember runs; ember is another process, pid 1 of its namespace.
    EXPECT_EQ(jail.jailer().WaitExit(seconds(20)), std::optional<int>(0)) << jail.jailer().err();
    ASSERT_TRUE(jail.WaitReady()) << jail.jailer().err();
    EXPECT_NE(jail.pid(), jail.jailer_pid());
    ExpectJailedProcess(jail, /*new_pid_ns=*/true);
    const std::string fd1 = StrFormat("/proc/%d/fd/1", jail.pid());
    char target[256] = {};
    readlink(fd1.c_str(), target, sizeof(target) - 1);
    if (daemonize) {
      EXPECT_NE(getsid(jail.pid()), getsid(0)) << "ember left the caller's session";
      EXPECT_NE(getsid(jail.pid()), jail.pid()) << "and leads none (no terminal can be regained)";
      EXPECT_STREQ(target, "/dev/null");
    } else {
      EXPECT_NE(std::string(target), "/dev/null") << "stdout is still the caller's";
    }
    EXPECT_EQ(jail.api().Get("/")->status, 200);
  }
}

TEST(JailerTest, CgroupsV1AreCreatedSetAndJoined) {
  REQUIRE_ROOT();
  const std::string memory = HierarchyOf("memory"), cpu = HierarchyOf("cpu"),
                    pids = HierarchyOf("pids");
  if (memory.empty() || cpu.empty() || pids.empty())
    GTEST_SKIP() << "no cgroup v1 memory, cpu and pids";
  JailHost host;
  JailSpec spec = Spec("cgroups-v1");
  spec.flags = {"--cgroup", "memory.limit_in_bytes=64M", "--cgroup", "cpu.cfs_period_us=100000",
                "--cgroup", "cpu.cfs_quota_us=20000",    "--cgroup", "pids.max=32"};
  // cpuset: each new level starts with empty cpus and mems; the jailer fills them from the parent.
  const std::string cpuset = HierarchyOf("cpuset");
  if (!cpuset.empty()) spec.flags.insert(spec.flags.end(), {"--cgroup", "cpuset.cpus=0"});
  {
    Jail jail(host, spec);
    ASSERT_TRUE(jail.WaitReady()) << jail.jailer().err();
    const std::string own = Slurp(StrFormat("/proc/%d/cgroup", jail.pid()));
    for (const char* c : {"memory", "cpu", "pids"}) {
      EXPECT_NE(own.find(std::string(c) + ":/" + host.parent_cgroup() + "/cgroups-v1\n"),
                std::string::npos)
          << c << " in:\n"
          << own;
    }
    EXPECT_EQ(Trim(Slurp(host.CgroupDir(memory, "cgroups-v1") + "/memory.limit_in_bytes")),
              "67108864");
    EXPECT_EQ(Trim(Slurp(host.CgroupDir(cpu, "cgroups-v1") + "/cpu.cfs_quota_us")), "20000");
    EXPECT_EQ(Trim(Slurp(host.CgroupDir(cpu, "cgroups-v1") + "/cpu.cfs_period_us")), "100000");
    EXPECT_EQ(Trim(Slurp(host.CgroupDir(pids, "cgroups-v1") + "/pids.max")), "32");
    if (!cpuset.empty()) {
      EXPECT_EQ(Trim(Slurp(host.CgroupDir(cpuset, "cgroups-v1") + "/cpuset.cpus")), "0");
      EXPECT_EQ(Trim(Slurp(host.CgroupDir(cpuset, "cgroups-v1") + "/cpuset.mems")),
                Trim(Slurp(cpuset + "/cpuset.mems")));
      EXPECT_NE(own.find(":cpuset:/" + host.parent_cgroup() + "/cgroups-v1\n"), std::string::npos);
    }

    // pids.max binds the jail's cgroup: a helper that joins it can fork only up to the limit.
    const std::string procs = host.CgroupDir(pids, "cgroups-v1") + "/cgroup.procs";
    int report[2];
    ASSERT_EQ(pipe(report), 0);
    const char* procs_path = procs.c_str();
    pid_t helper = fork();
    if (helper == 0) {
      char self_pid[16];
      snprintf(self_pid, sizeof(self_pid), "%d", getpid());
      const int procs_fd = open(procs_path, O_WRONLY);
      if (procs_fd < 0 || write(procs_fd, self_pid, strlen(self_pid)) <= 0) _exit(1);
      int hold[2];
      if (pipe(hold) != 0) _exit(1);
      int forked = 0, err = 0;
      while (forked < 100) {
        pid_t c = fork();
        if (c == 0) {
          char b;
          close(hold[1]);
          read(hold[0], &b, 1);
          _exit(0);
        }
        if (c < 0) {
          err = errno;
          break;
        }
        forked++;
      }
      int out[2] = {forked, err};
      write(report[1], out, sizeof(out));
      close(hold[1]);
      while (wait(nullptr) > 0) {
      }
      _exit(0);
    }
    close(report[1]);
    int got[2] = {-1, -1};
    ASSERT_EQ(read(report[0], got, sizeof(got)), static_cast<ssize_t>(sizeof(got)));
    close(report[0]);
    waitpid(helper, nullptr, 0);
    EXPECT_EQ(got[1], EAGAIN) << "fork stopped by pids.max";
    EXPECT_GE(got[0], 1);
    EXPECT_LT(got[0], 32) << "ember's own tasks count against the same limit";
    // The kernel's own count of forks refused by this cgroup's pids.max.
    const std::string events = Slurp(host.CgroupDir(pids, "cgroups-v1") + "/pids.events");
    EXPECT_NE(events.find("max "), std::string::npos) << events;
    EXPECT_EQ(events.find("max 0"), std::string::npos) << events;
  }
  // --cleanup (run by ~Jail) removed the jail's cgroups.
  for (const std::string& h : {memory, cpu, pids, cpuset}) {
    if (h.empty()) continue;
    EXPECT_FALSE(std::filesystem::exists(host.CgroupDir(h, "cgroups-v1"))) << h;
  }
}

TEST(JailerTest, CgroupV2UnifiedHierarchy) {
  REQUIRE_ROOT();
  const std::string unified = UnifiedHierarchy();
  if (unified.empty()) GTEST_SKIP() << "no cgroup2 mount";
  JailHost host;
  // A controller this host delegates to cgroup2, if any, besides a core file.
  // Enabling a controller changes the hierarchy's root for everyone: only where it already is,
  // or in the throwaway test host.
  const std::string controllers = Trim(Slurp(unified + "/cgroup.controllers"));
  const std::vector<std::string_view> available = Split(controllers, ' ');
  const std::string root_enabled = Slurp(unified + "/cgroup.subtree_control");
  std::vector<std::string> flags = {"--cgroup-version", "2", "--cgroup",
                                    "cgroup.max.descendants=0"};
  std::string controller, file, value;
  for (const auto& [c, f, v] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"pids", "pids.max", "32"},
           {"memory", "memory.max", "268435456"},
           {"cpuset", "cpuset.cpus", "0"},
           {"hugetlb", "hugetlb.2MB.max", "0"}}) {
    if (std::count(available.begin(), available.end(), c) &&
        (IsTestHost() || root_enabled.find(c) != std::string::npos)) {
      controller = c, file = f, value = v;
      flags.insert(flags.end(), {"--cgroup", f + "=" + v});
      break;
    }
  }
  printf("[   INFO   ] cgroup v2 controller exercised: %s\n",
         controller.empty() ? "none (only the core's cgroup.max.descendants)" : controller.c_str());
  JailSpec spec = Spec("cgroups-v2");
  spec.flags = flags;
  {
    Jail jail(host, spec);
    ASSERT_TRUE(jail.WaitReady()) << jail.jailer().err();
    const std::string own = Slurp(StrFormat("/proc/%d/cgroup", jail.pid()));
    EXPECT_NE(own.find("0::/" + host.parent_cgroup() + "/cgroups-v2\n"), std::string::npos) << own;
    const std::string dir = host.CgroupDir(unified, "cgroups-v2");
    EXPECT_EQ(Trim(Slurp(dir + "/cgroup.max.descendants")), "0");
    if (!controller.empty()) {
      EXPECT_EQ(Trim(Slurp(dir + "/" + file)), value);
      EXPECT_NE(
          Slurp(unified + "/" + host.parent_cgroup() + "/cgroup.subtree_control").find(controller),
          std::string::npos);
    }
  }
  EXPECT_FALSE(std::filesystem::exists(host.CgroupDir(unified, "cgroups-v2")));

  // No --cgroup: Firecracker joins --parent-cgroup as is when it exists.
  const std::string prepared = unified + "/" + host.parent_cgroup();
  std::filesystem::create_directories(prepared);
  JailSpec join = Spec("cgroups-v2-join");
  join.flags = {"--cgroup-version", "2"};
  {
    Jail jail(host, join);
    ASSERT_TRUE(jail.WaitReady()) << jail.jailer().err();
    EXPECT_NE(
        Slurp(StrFormat("/proc/%d/cgroup", jail.pid())).find("0::/" + host.parent_cgroup() + "\n"),
        std::string::npos);
  }
}

TEST(JailerTest, AnIdCollidingWithALiveOrLeftOverJailIsRefused) {
  REQUIRE_ROOT();
  JailHost host;
  auto second_run = [&](const std::string& id) {
    Subprocess p({JailerBinary(), "--id", id, "--exec-file", EmberBinary(), "--uid", "41999",
                  "--gid", "41999", "--chroot-base-dir", host.base(), "--parent-cgroup",
                  host.parent_cgroup(), "--cgroup", "pids.max=8"});
    std::optional<int> code = p.WaitExit(seconds(20));
    return std::make_pair(code, p.err());
  };
  {
    Jail jail(host, Spec("taken"));
    ASSERT_TRUE(jail.WaitReady()) << jail.jailer().err();
    const std::string before = host.Snapshot();
    auto [code, err] = second_run("taken");
    EXPECT_EQ(code, std::optional<int>(kExitClaimJail)) << err;
    EXPECT_EQ(err, StrFormat("ember-jailer: claim jail: jail taken is in use by pid %d (%s)\n",
                             jail.pid(), jail.root().c_str()));
    EXPECT_EQ(host.Snapshot(), before) << "the live jail was not touched";
    EXPECT_EQ(jail.api().Get("/")->status, 200);
    // Ended without --cleanup: its directory and pid file stay, and so does the refusal.
    jail.Stop();
    auto [code2, err2] = second_run("taken");
    EXPECT_EQ(code2, std::optional<int>(kExitClaimJail)) << err2;
    EXPECT_NE(err2.find("left by an earlier run"), std::string::npos) << err2;
    EXPECT_NE(err2.find("--cleanup"), std::string::npos) << err2;
  }
  // ~Jail ran --cleanup: the id is free again.
  Jail again(host, Spec("taken"));
  EXPECT_TRUE(again.WaitReady()) << again.jailer().err();
}

// Jailers racing for one id: exactly one builds the jail and becomes ember; every other is
// refused before it made anything, so nothing of the winner's is removed.
TEST(JailerTest, JailersRacingForOneIdLeaveOneWinner) {
  REQUIRE_ROOT();
  JailHost host;
  mkdir((host.base() + "/ember").c_str(), 0755);  // the shared level, which --cleanup keeps
  const std::string before = host.Snapshot();
  const std::string root = host.JailDir("contested") + "/root";
  PlaceSharedLibraries(root);  // the sanitizer build's ember is dynamic
  std::vector<std::unique_ptr<Subprocess>> racers;
  for (int i = 0; i < 8; i++) {
    racers.push_back(std::make_unique<Subprocess>(std::vector<std::string>{
        JailerBinary(), "--id", "contested", "--exec-file", EmberBinary(), "--uid",
        std::to_string(41900 + i), "--gid", std::to_string(41900 + i), "--chroot-base-dir",
        host.base(), "--parent-cgroup", host.parent_cgroup()}));
  }
  ASSERT_TRUE(ApiClient(root + "/run/ember.socket").WaitUntilAccepting(seconds(20)));
  const pid_t winner = static_cast<pid_t>(atoi(Slurp(root + "/ember.pid").c_str()));
  int refused = 0;
  for (auto& r : racers) {
    if (r->pid() == winner) continue;
    std::optional<int> code = r->WaitExit(seconds(20));
    EXPECT_EQ(code, std::optional<int>(kExitClaimJail)) << r->err();
    refused += code == kExitClaimJail;
  }
  EXPECT_EQ(refused, 7);
  EXPECT_EQ(ApiClient(root + "/run/ember.socket").Get("/")->status, 200) << "the winner serves";
  for (auto& r : racers) {
    if (r->pid() == winner) {
      r->Kill(SIGKILL);
      r->WaitExit(seconds(20));
    }
  }
  EXPECT_EQ(host.Cleanup("contested"), std::optional<int>(0));
  EXPECT_EQ(host.Snapshot(), before);
}

// Every invalid invocation: one line on stderr naming the step, that step's exit code, and the
// base directory and the cgroup hierarchies exactly as before.
TEST(JailerTest, BadInputIsRefusedAndLeavesNothingBehind) {
  REQUIRE_ROOT();
  JailHost host;
  const std::string& base = host.base();
  const std::string not_exec = host.dir().Write("not-executable", "x");
  const std::string garbage = host.dir().Write("garbage-exec", std::string(4096, 'z'));
  chmod(garbage.c_str(), 0755);
  const std::string readonly = host.dir().path() + "/readonly";
  mkdir(readonly.c_str(), 0755);
  ASSERT_EQ(mount(readonly.c_str(), readonly.c_str(), nullptr, MS_BIND, nullptr), 0);
  ASSERT_EQ(mount(nullptr, readonly.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr),
            0);
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{readonly};
  const bool have_v1_memory = !HierarchyOf("memory").empty();

  auto args = [&](std::vector<std::string> extra, const std::string& exec = "",
                  const std::string& other_base = "") {
    std::vector<std::string> a = {JailerBinary(),
                                  "--id",
                                  "bad-input",
                                  "--exec-file",
                                  exec.empty() ? EmberBinary() : exec,
                                  "--uid",
                                  "41998",
                                  "--gid",
                                  "41998",
                                  "--chroot-base-dir",
                                  other_base.empty() ? base : other_base,
                                  "--parent-cgroup",
                                  host.parent_cgroup()};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  struct Case {
    std::vector<std::string> argv;
    int code;
    std::string message;
  };
  std::vector<Case> cases = {
      {{JailerBinary()}, kExitArguments, "ember-jailer: arguments: --id is required"},
      {args({"--bogus"}), kExitArguments, "unknown flag --bogus"},
      {args({"--uid", "7"}), kExitArguments, "--uid given more than once"},
      {{JailerBinary(), "--id", "a/b", "--exec-file", EmberBinary(), "--uid", "1", "--gid", "1"},
       kExitArguments,
       "invalid value for --id"},
      {args({"--cgroup", "memory"}), kExitArguments, "invalid value for --cgroup"},
      {args({"--cgroup-version", "3"}), kExitArguments, "invalid value for --cgroup-version"},
      {{JailerBinary(), "--id", "a", "--exec-file", EmberBinary(), "--uid", "1", "--gid", "1",
        "--parent-cgroup", "../x"},
       kExitArguments,
       "invalid value for --parent-cgroup"},
      {args({"--resource-limit", "core=0"}), kExitArguments, "invalid value for --resource-limit"},
      {args({"--", "--id", "x"}), kExitArguments, "--id after \"--\""},
      {args({}, host.dir().path() + "/no-such-ember"), kExitValidate,
       "ember-jailer: validate: exec file " + host.dir().path() +
           "/no-such-ember: realpath: ENOENT"},
      {args({}, host.dir().path()), kExitValidate, "is not a regular file"},
      {args({}, not_exec), kExitValidate, "is not executable"},
      {args({}, "", host.dir().path() + "/no-such-base"), kExitValidate,
       "chroot base dir " + host.dir().path() + "/no-such-base: realpath: ENOENT"},
      {args({}, "", not_exec), kExitValidate, "is not a directory"},
      {args({}, "", readonly), kExitValidate,
       "ember-jailer: validate: chroot base dir: faccessat(" + readonly + ", W_OK|X_OK): EROFS"},
      {args({"--netns", "/var/run/netns/ember-no-such-netns"}), kExitValidate,
       "netns: open(/var/run/netns/ember-no-such-netns): ENOENT"},
      {args({"--netns", "/proc/self/ns/pid"}), kExitValidate, "is not a network namespace"},
      {args({"--resource-limit", "no-file=4000000000"}), kExitValidate,
       "above the kernel's fs.nr_open"},
      {args({"--cgroup", "nosuchcontroller.max=1"}), kExitValidate,
       "no cgroup v1 hierarchy has the nosuchcontroller controller"},
      // Refused at the very end, by execve in a forked process: the first one cleans up.
      {args({"--new-pid-ns"}, garbage), kExitExec,
       "ember-jailer: exec: execve(/garbage-exec): ENOEXEC"},
      {args({"--daemonize"}, garbage), kExitExec,
       "ember-jailer: exec: execve(/garbage-exec): ENOEXEC"},
  };
  // Refused by the kernel after the jail's directories and cgroups were made: all undone.
  if (!HierarchyOf("pids").empty()) {
    cases.push_back({args({"--cgroup", "pids.max=1", "--cgroup", "pids.nosuchfile=1"}),
                     kExitJoinCgroups, "ember-jailer: join cgroups: open("});
  }
  if (have_v1_memory) {
    cases.push_back({args({"--cgroup", "memory.limit_in_bytes=lots"}), kExitJoinCgroups,
                     "write(" + host.CgroupDir(HierarchyOf("memory"), "bad-input") +
                         "/memory.limit_in_bytes, \"lots\"): EINVAL"});
  }
  // Something to find unchanged: an earlier, cleanly finished jail's shared level.
  mkdir((base + "/ember").c_str(), 0755);
  const std::string before = host.Snapshot();
  for (const Case& c : cases) {
    std::string joined;
    for (size_t i = 1; i < c.argv.size(); i++) joined += c.argv[i] + " ";
    SCOPED_TRACE(joined);
    Subprocess p(c.argv);
    std::optional<int> code = p.WaitExit(seconds(20));
    EXPECT_EQ(code, std::optional<int>(c.code)) << p.err();
    EXPECT_NE(p.err().find(c.message), std::string::npos) << p.err();
    EXPECT_EQ(CountLines(p.err(), "ember-jailer: "), 1) << "one line:\n" << p.err();
    EXPECT_TRUE(!p.err().empty() && p.err().back() == '\n');
    EXPECT_EQ(host.Snapshot(), before) << "the run left something behind";
  }
  // Without a forked process to report to, an exec failure happens after the privileges are
  // gone: the jail stays, and the message says how to remove it.
  Subprocess p(args({}, garbage));
  EXPECT_EQ(p.WaitExit(seconds(20)), std::optional<int>(kExitExec)) << p.err();
  EXPECT_NE(p.err().find("remove what is left with ember-jailer --cleanup --id bad-input"),
            std::string::npos)
      << p.err();
  Subprocess cleanup({JailerBinary(), "--cleanup", "--id", "bad-input", "--exec-file", garbage,
                      "--chroot-base-dir", base, "--parent-cgroup", host.parent_cgroup()});
  EXPECT_EQ(cleanup.WaitExit(seconds(20)), std::optional<int>(0)) << cleanup.err();
  EXPECT_TRUE(std::filesystem::exists(base + "/garbage-exec"));  // the shared level stays
  std::filesystem::remove(base + "/garbage-exec");
  EXPECT_EQ(host.Snapshot(), before);
}

TEST(JailerTest, CleanupRemovesAFinishedJailOnly) {
  REQUIRE_ROOT();
  JailHost host;
  const bool v1_pids = !HierarchyOf("pids").empty();
  JailSpec spec = Spec("finished");
  if (v1_pids) spec.flags = {"--cgroup", "pids.max=16"};
  // A client's bind mount into the jail (Kata mounts the guest's files so): --cleanup detaches
  // it and leaves what was mounted alone.
  const std::string outside = host.dir().path() + "/kernels";
  mkdir(outside.c_str(), 0755);
  host.dir().Write("kernels/vmlinux", "kernel bytes");
  Jail jail(host, spec);
  ASSERT_TRUE(jail.WaitReady()) << jail.jailer().err();
  const std::string mount_point = jail.root() + "/kernels";
  mkdir(mount_point.c_str(), 0755);
  ASSERT_EQ(mount(outside.c_str(), mount_point.c_str(), nullptr, MS_BIND, nullptr), 0);

  std::string err;
  EXPECT_EQ(host.Cleanup("finished", &err), std::optional<int>(kExitCleanup));
  EXPECT_EQ(err,
            StrFormat("ember-jailer: cleanup: jail finished is in use by pid %d: stop it first\n",
                      jail.pid()));
  EXPECT_EQ(jail.api().Get("/")->status, 200);
  jail.Stop();
  EXPECT_EQ(host.Cleanup("finished", &err), std::optional<int>(0)) << err;
  EXPECT_FALSE(std::filesystem::exists(host.JailDir("finished")));
  if (v1_pids) {
    EXPECT_FALSE(std::filesystem::exists(host.CgroupDir(HierarchyOf("pids"), "finished")));
  }
  EXPECT_EQ(Slurp(outside + "/vmlinux"), "kernel bytes");
  EXPECT_TRUE(std::filesystem::exists(host.base() + "/ember")) << "the shared level stays";
  EXPECT_EQ(host.Cleanup("finished", &err), std::optional<int>(0)) << "idempotent: " << err;
}

// ---------------------------------------------------------------------------------------------
// Tenants against each other.

constexpr int kMaxTenants = 32;

// errno of each attempt (0: it worked), made by a process with tenant A's uid and gid inside A's
// mount, network and PID namespaces, then once more from the host's mount namespace (as if A
// had escaped its own): against A itself (the controls) and against every other tenant.
struct CrossAccess {
  int own_binary, own_socket, own_init, host_own_binary;
  int other_binary[kMaxTenants], other_socket[kMaxTenants], other_kill[kMaxTenants];
  int host_other_binary[kMaxTenants], host_other_socket[kMaxTenants], host_other_kill[kMaxTenants];
};

int OpenErrno(const char* path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  close(fd);
  return 0;
}

int ConnectErrno(const char* path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path, sizeof(addr.sun_path) - 1);
  int r = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 ? 0 : errno;
  close(fd);
  return r;
}

int KillErrno(pid_t pid) { return kill(pid, 0) == 0 ? 0 : errno; }

// Forks a process that takes tenant `a`'s identity (and, with `enter`, its namespaces) and
// probes every jail; only system calls after the fork (the test is multi-threaded).
CrossAccess ProbeFrom(std::vector<std::unique_ptr<Jail>>& jails, size_t a) {
  CrossAccess result;
  memset(&result, 0xff, sizeof(result));
  std::vector<std::string> binaries, sockets;
  std::vector<pid_t> pids;
  for (auto& j : jails) {
    binaries.push_back(j->root() + "/ember");
    sockets.push_back(j->socket());
    pids.push_back(j->pid());
  }
  const std::string proc = "/proc/" + std::to_string(jails[a]->pid()) + "/ns/";
  const uid_t uid = jails[a]->spec().uid;
  const gid_t gid = jails[a]->spec().gid;
  const int net = open((proc + "net").c_str(), O_RDONLY | O_CLOEXEC);
  const int pidns = open((proc + "pid").c_str(), O_RDONLY | O_CLOEXEC);
  const int mnt = open((proc + "mnt").c_str(), O_RDONLY | O_CLOEXEC);
  int pipefd[2];
  if (net < 0 || pidns < 0 || mnt < 0 || pipe(pipefd) != 0) {
    ADD_FAILURE() << "cannot open tenant " << a << "'s namespaces (" << proc
                  << "): " << strerror(errno);
    return result;
  }
  auto become = [&] {
    return setgroups(0, nullptr) == 0 && setresgid(gid, gid, gid) == 0 &&
           setresuid(uid, uid, uid) == 0;
  };
  const pid_t outer = fork();
  if (outer == 0) {
    CrossAccess r;
    memset(&r, 0xff, sizeof(r));
    // From the host's mount namespace, with A's credentials.
    const pid_t host_side = fork();
    if (host_side == 0) {
      if (!become()) _exit(1);
      r.host_own_binary = OpenErrno(binaries[a].c_str());
      for (size_t j = 0; j < jails.size(); j++) {
        r.host_other_binary[j] = OpenErrno(binaries[j].c_str());
        r.host_other_socket[j] = ConnectErrno(sockets[j].c_str());
        r.host_other_kill[j] = KillErrno(pids[j]);
      }
      write(pipefd[1], &r, sizeof(r));
      _exit(0);
    }
    int status;
    waitpid(host_side, &status, 0);
    if (read(pipefd[0], &r, sizeof(r)) != sizeof(r)) _exit(2);
    // Inside A: its network and mount namespaces now, its PID namespace for the child.
    if (setns(net, CLONE_NEWNET) != 0 || setns(pidns, CLONE_NEWPID) != 0 ||
        setns(mnt, CLONE_NEWNS) != 0) {
      _exit(3);
    }
    const pid_t inside = fork();
    if (inside == 0) {
      if (!become()) _exit(1);
      r.own_binary = OpenErrno("/ember");
      r.own_socket = ConnectErrno("/run/ember.socket");
      r.own_init = KillErrno(1);
      for (size_t j = 0; j < jails.size(); j++) {
        r.other_binary[j] = OpenErrno(binaries[j].c_str());
        r.other_socket[j] = ConnectErrno(sockets[j].c_str());
        r.other_kill[j] = KillErrno(pids[j]);
      }
      write(pipefd[1], &r, sizeof(r));
      _exit(0);
    }
    waitpid(inside, &status, 0);
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 4);
  }
  close(pipefd[1]);
  int status = 0;
  waitpid(outer, &status, 0);
  // Two reports arrive on the pipe: the host-side one (consumed by `outer`) and the final one.
  ssize_t n = read(pipefd[0], &result, sizeof(result));
  close(pipefd[0]);
  close(net);
  close(pidns);
  close(mnt);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "probe process status " << status;
  EXPECT_EQ(n, static_cast<ssize_t>(sizeof(result)));
  return result;
}

// Tenant a reaches its own jail and nothing of any other's.
void ExpectIsolated(std::vector<std::unique_ptr<Jail>>& jails) {
  for (size_t a = 0; a < jails.size(); a++) {
    SCOPED_TRACE("tenant " + jails[a]->spec().id);
    CrossAccess r = ProbeFrom(jails, a);
    EXPECT_EQ(r.own_binary, 0) << "own /ember: " << strerror(r.own_binary);
    EXPECT_EQ(r.own_socket, 0) << "own API socket: " << strerror(r.own_socket);
    EXPECT_EQ(r.own_init, 0) << "own ember as pid 1: " << strerror(r.own_init);
    EXPECT_EQ(r.host_own_binary, 0) << "own /ember from the host: " << strerror(r.host_own_binary);
    for (size_t j = 0; j < jails.size(); j++) {
      if (j == a) continue;
      SCOPED_TRACE("against " + jails[j]->spec().id);
      // Inside A, B's files and sockets do not exist and B's process is in no namespace A sees.
      EXPECT_EQ(r.other_binary[j], ENOENT);
      EXPECT_EQ(r.other_socket[j], ENOENT);
      EXPECT_EQ(r.other_kill[j], ESRCH);
      // Even from the host's mount namespace, A's uid opens nothing of B's (0700 jail roots) and
      // cannot signal B's process.
      EXPECT_EQ(r.host_other_binary[j], EACCES);
      EXPECT_EQ(r.host_other_socket[j], EACCES);
      EXPECT_EQ(r.host_other_kill[j], EPERM);
    }
  }
}

TEST(JailerTest, TwentyTenantsCannotReachEachOther) {
  REQUIRE_ROOT();
  JailHost host;
  std::vector<std::unique_ptr<Jail>> jails;
  for (int i = 0; i < 20; i++) {
    JailSpec spec = Spec(StrFormat("tenant-%02d", i));
    spec.flags = {"--new-pid-ns"};
    jails.push_back(std::make_unique<Jail>(host, spec));
  }
  for (auto& j : jails) ASSERT_TRUE(j->WaitReady()) << j->spec().id << ": " << j->jailer().err();
  std::set<uid_t> uids;
  for (auto& j : jails) uids.insert(static_cast<uid_t>(atoi(StatusField(j->pid(), "Uid").c_str())));
  EXPECT_EQ(uids.size(), jails.size()) << "each ember runs as its own uid";
  ExpectIsolated(jails);
}

// ---------------------------------------------------------------------------------------------
// With KVM: the probe guest booted by jailed embers.

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i++) s[i] = static_cast<char>((i * 13 + 7) & 0xff);
  return s;
}

// The host side of the probe's listener on guest port 1024: CONNECT, send, read the echo.
std::string EchoThroughGuest(const std::string& uds, const std::string& payload) {
  const auto deadline = Clock::now() + seconds(120);
  while (Clock::now() < deadline) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", uds.c_str());
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        write(fd, "CONNECT 1024\n", 13) != 13) {
      close(fd);
      std::this_thread::yield();
      continue;
    }
    std::string line;
    char c;
    while (line.size() < 64) {
      pollfd p = {fd, POLLIN, 0};
      if (poll(&p, 1, 5000) <= 0 || read(fd, &c, 1) != 1) break;
      line += c;
      if (c == '\n') break;
    }
    if (line.rfind("OK ", 0) != 0) {
      close(fd);
      continue;
    }
    std::string echoed;
    std::thread reader([&] {
      char buf[65536];
      while (echoed.size() < payload.size() && Clock::now() < deadline) {
        pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0) break;
        echoed.append(buf, static_cast<size_t>(n));
      }
    });
    for (size_t done = 0; done < payload.size();) {
      ssize_t n = write(fd, payload.data() + done, payload.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    reader.join();
    close(fd);
    return echoed;
  }
  return "";
}

std::string BootArgs(const std::string& scenario) {
  return "console=ttyS0 reboot=k panic=1 probe=" + scenario;
}

// The exit code a guest-initiated reset gives: 0, except that a sanitizer build's
// LeakSanitizer cannot read /proc at exit inside a jail and ends the process with 1.
void ExpectCleanExit(std::optional<int> code, const std::string& err) {
  ASSERT_TRUE(code.has_value()) << "timed out\n" << err;
  if (EmberIsDynamic() && *code == 1 &&
      err.find("LeakSanitizer has encountered a fatal error") != std::string::npos) {
    return;
  }
  EXPECT_EQ(*code, 0) << err;
}

TEST(JailerBootTest, JailedProbeBootsOverTheApiWithBlockNetAndVsock) {
  REQUIRE_ROOT();
  REQUIRE_KVM();
  JailHost host;
  JailSpec spec = Spec("boots");
  NetNamespace ns;
  ASSERT_TRUE(ns.ok()) << ns.error();
  // A TAP the tenant may attach without CAP_NET_ADMIN: owned by its uid (tuntap(4)).
  ASSERT_EQ(
      ns.Ip({"tuntap", "add", "dev", "tap0", "mode", "tap", "user", std::to_string(spec.uid)}), "");
  ASSERT_EQ(ns.Ip({"addr", "add", "10.0.2.1/24", "dev", "tap0"}), "");
  ASSERT_EQ(ns.Ip({"link", "set", "tap0", "up"}), "");
  UdpEchoServer echo(ns, "10.0.2.1", 0);
  ASSERT_TRUE(echo.ok()) << echo.error();
  spec.flags = {"--netns", ns.path(), "--new-pid-ns"};
  const std::string memory = HierarchyOf("memory"), cpu = HierarchyOf("cpu"),
                    pids = HierarchyOf("pids");
  if (!memory.empty())
    spec.flags.insert(spec.flags.end(), {"--cgroup", "memory.limit_in_bytes=512M"});
  if (!cpu.empty()) spec.flags.insert(spec.flags.end(), {"--cgroup", "cpu.shares=512"});
  if (!pids.empty()) spec.flags.insert(spec.flags.end(), {"--cgroup", "pids.max=64"});
  spec.files["/probe.elf"] = GuestImage("probe.elf");
  TempDir images;
  spec.files["/rootfs.img"] = MakeProbeImage(images, "rootfs.img", 64 * 1024);
  Jail jail(host, spec);
  ASSERT_TRUE(jail.WaitReady()) << jail.jailer().err();
  ExpectJailedProcess(jail, /*new_pid_ns=*/true);
  struct stat netns;
  ASSERT_EQ(stat(ns.path().c_str(), &netns), 0);
  EXPECT_EQ(NamespaceOf(std::to_string(jail.pid()), "net"),
            StrFormat("net:[%lu]", static_cast<unsigned long>(netns.st_ino)))
      << "ember is in the namespace of --netns";
  UnixEchoListener listener(jail.root() + "/run/v.sock_1025", std::make_pair(spec.uid, spec.gid));
  ASSERT_TRUE(listener.ok());

  ApiClient api = jail.api();
  auto put = [&](const std::string& path, const std::string& body) {
    std::optional<ApiReply> r = api.Put(path, body);
    EXPECT_TRUE(r) << path;
    EXPECT_EQ(r ? r->status : 0, 204) << path << ": " << (r ? r->body : "") << jail.jailer().err();
  };
  // Every path is the jail's: the jailed ember sees nothing else.
  put("/boot-source",
      "{\"kernel_image_path\": \"/probe.elf\", \"boot_args\": \"" +
          BootArgs(StrFormat(
              "boot,blk,net,vsock probe.ip=10.0.2.15 probe.gw=10.0.2.1 "
              "probe.udp=10.0.2.1:%u probe.vsock_bytes=65536 probe.vsock_timeout_ms=120000",
              echo.port())) +
          "\"}");
  put("/drives/rootfs",
      R"({"drive_id": "rootfs", "path_on_host": "/rootfs.img", "is_root_device": true,)"
      R"( "is_read_only": false})");
  put("/network-interfaces/eth0",
      R"({"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:0a:00:02:0f"})");
  put("/vsock", R"({"guest_cid": 3, "uds_path": "/run/v.sock"})");
  put("/actions", R"({"action_type": "InstanceStart"})");

  ASSERT_TRUE(jail.jailer().WaitForStdout("probe: vsock listening 1024", seconds(120)))
      << jail.jailer().out() << jail.jailer().err();
  // The guest runs: every thread of ember is under its seccomp filter (vCPU, VMM and API roles).
  int threads = 0;
  for (const auto& task :
       std::filesystem::directory_iterator(StrFormat("/proc/%d/task", jail.pid()))) {
    const std::string comm = Trim(Slurp(task.path().string() + "/comm"));
    EXPECT_EQ(StatusFieldIn(task.path().string() + "/status", "Seccomp"), "2") << "thread " << comm;
    threads++;
  }
  EXPECT_GE(threads, 3) << "main/VMM, API and vCPU threads";
  const std::string payload = Pattern(100 * 1024);
  EXPECT_TRUE(EchoThroughGuest(jail.root() + "/run/v.sock", payload) == payload);
  std::optional<int> code = jail.WaitEmberExit(seconds(120));
  const std::string out = jail.jailer().out();
  ExpectCleanExit(code, out + jail.jailer().err());
  EXPECT_EQ(CountLines(out, "probe: done passed=4 failed=0"), 1) << out << jail.jailer().err();
  EXPECT_NE(out.find("probe: net ping 3/3"), std::string::npos) << out;
  EXPECT_NE(out.find("probe: net udp 3/3"), std::string::npos) << out;
  EXPECT_EQ(echo.echoed(), 3u);
  EXPECT_GE(listener.echoed(), 65536u);
  // What ember wrote went into the jail: the guest's write to the drive landed in its copy.
  const std::string image = Slurp(jail.root() + "/rootfs.img");
  ASSERT_EQ(image.size(), 64u * 1024);
  EXPECT_NE(image.substr(8 * 512, 512), Slurp(images.path() + "/rootfs.img").substr(8 * 512, 512));
}

// The limits bind: a guest that makes ember touch more memory than the cgroup allows is killed
// by the cgroup's OOM killer (the host's other processes, this test among them, live on); a CPU
// quota throttles a busy guest.
TEST(JailerBootTest, CgroupLimitsBind) {
  REQUIRE_ROOT();
  REQUIRE_KVM();
  const std::string memory = HierarchyOf("memory"), cpu = HierarchyOf("cpu");
  if (memory.empty() || cpu.empty()) GTEST_SKIP() << "no cgroup v1 memory and cpu hierarchies";
  JailHost host;
  TempDir images;
  // blk-bench reads 48 MiB into 64 buffers of 512 KiB: ember's preadv fills 32 MiB of guest RAM.
  const std::string image = MakeProbeImage(images, "bench.img", 48ull << 20);
  auto run = [&](const std::string& id, const std::vector<std::string>& cgroups) {
    JailSpec spec = Spec(id);
    spec.flags = cgroups;
    spec.files["/probe.elf"] = GuestImage("probe.elf");
    spec.files["/bench.img"] = image;
    spec.files["/vm.json"] = images.Write(
        id + ".json",
        "{\"boot-source\": {\"kernel_image_path\": \"/probe.elf\", \"boot_args\": \"" +
            BootArgs("blk-bench probe.bench_mib=48") +
            "\"}, \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 128}, \"drives\": "
            "[{\"drive_id\": \"d\", \"path_on_host\": \"/bench.img\", \"is_root_device\": false, "
            "\"is_read_only\": false}]}");
    spec.ember_args = {"--no-api", "--config-file", "/vm.json"};
    return std::make_unique<Jail>(host, spec);
  };
  {
    auto jail = run("oom", {"--cgroup", "memory.limit_in_bytes=24M"});
    std::optional<int> code = jail->WaitEmberExit(seconds(180));
    ASSERT_TRUE(code) << jail->jailer().out() << jail->jailer().err();
    EXPECT_EQ(*code, 128 + SIGKILL) << jail->jailer().out() << jail->jailer().err();
    const std::string oom = Slurp(host.CgroupDir(memory, "oom") + "/memory.oom_control");
    EXPECT_NE(oom.find("oom_kill 1"), std::string::npos) << oom;
    EXPECT_EQ(jail->jailer().out().find("probe: blk-bench read-done"), std::string::npos);
  }
  {
    auto jail = run("throttled",
                    {"--cgroup", "cpu.cfs_period_us=100000", "--cgroup", "cpu.cfs_quota_us=10000"});
    std::optional<int> code = jail->WaitEmberExit(seconds(300));
    ExpectCleanExit(code, jail->jailer().out() + jail->jailer().err());
    EXPECT_NE(jail->jailer().out().find("probe: blk-bench write-done"), std::string::npos)
        << jail->jailer().out();
    const std::string stat = Slurp(host.CgroupDir(cpu, "throttled") + "/cpu.stat");
    unsigned long long throttled = 0;
    sscanf(stat.c_str() + std::min(stat.size(), stat.find("nr_throttled ")), "nr_throttled %llu",
           &throttled);
    EXPECT_GT(throttled, 0u) << stat;
  }
}

TEST(JailerBootTest, TwentyTenantsRunProbesAndCannotReachEachOther) {
  REQUIRE_ROOT();
  REQUIRE_KVM();
  JailHost host;
  TempDir configs;
  std::vector<std::unique_ptr<Jail>> jails;
  for (int i = 0; i < 20; i++) {
    JailSpec spec = Spec(StrFormat("tenant-%02d", i));
    spec.flags = {"--new-pid-ns"};
    if (!HierarchyOf("memory").empty())
      spec.flags.insert(spec.flags.end(), {"--cgroup", "memory.limit_in_bytes=96M"});
    spec.files["/probe.elf"] = GuestImage("probe.elf");
    spec.files["/vm.json"] = configs.Write(
        spec.id + ".json",
        "{\"boot-source\": {\"kernel_image_path\": \"/probe.elf\", \"boot_args\": \"" +
            BootArgs("boot,idle probe.mem_mib=32") +
            "\"}, \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 32}}");
    spec.ember_args = {"--config-file", "/vm.json"};  // boots now and keeps its API socket
    jails.push_back(std::make_unique<Jail>(host, spec));
  }
  for (auto& j : jails) {
    ASSERT_TRUE(j->jailer().WaitForStdout("probe: idle", seconds(180)))
        << j->spec().id << ": " << j->jailer().out() << j->jailer().err();
    ASSERT_TRUE(j->WaitReady()) << j->spec().id;
  }
  for (auto& j : jails) {
    std::optional<ApiReply> r = j->api().Get("/");
    ASSERT_TRUE(r);
    EXPECT_NE(r->body.find("\"state\":\"Running\""), std::string::npos) << r->body;
  }
  ExpectIsolated(jails);
}

}  // namespace
}  // namespace ember::testing

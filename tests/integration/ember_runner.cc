#include "tests/integration/ember_runner.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

namespace ember::testing {

bool KvmUsable() {
  static const bool usable = [] {
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) return false;
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm >= 0) close(vm);
    close(kvm);
    return vm >= 0;
  }();
  return usable;
}

std::string EmberBinary() {
  const char* env = getenv("EMBER_BIN");
  return env ? env : BuildPath("bin/ember");
}

std::string GuestImage(const std::string& name) {
  const char* env = getenv("EMBER_GUEST_DIR");
  return (env ? std::string(env) : BuildPath("guest")) + "/" + name;
}

std::string WriteProbeConfig(const TempDir& dir, const ProbeVm& vm) {
  std::ostringstream json;
  json << "{\n  \"boot-source\": {\n    \"kernel_image_path\": \"" << GuestImage(vm.kernel)
       << "\",\n    \"boot_args\": \"console=ttyS0 reboot=k panic=1 " << vm.boot_args
       << "\"\n  },\n  \"machine-config\": {\"vcpu_count\": " << vm.vcpus
       << ", \"mem_size_mib\": " << vm.mem_mib << vm.machine_extra << "}" << vm.extra_json << "\n}\n";
  return dir.Write("config.json", json.str());
}

RunResult RunEmber(const std::vector<std::string>& args, const std::string& stdin_data,
                   std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {EmberBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  Subprocess p(argv);
  if (!stdin_data.empty()) p.WriteStdin(stdin_data);
  // stdin stays open (not EOF) so the guest can wait for input like on a terminal.
  RunResult r;
  r.exit_code = p.WaitExit(timeout);
  r.out = p.out();
  r.err = p.err();
  return r;
}

RunResult BootProbe(const ProbeVm& vm, const std::vector<std::string>& extra_args,
                    const std::string& stdin_data) {
  TempDir dir;
  std::string config = WriteProbeConfig(dir, vm);
  std::vector<std::string> args = {"--no-api", "--config-file", config};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  return RunEmber(args, stdin_data);
}

std::string MakeProbeImage(const TempDir& dir, const std::string& name, uint64_t bytes) {
  std::string data(bytes, '\0');
  for (uint64_t o = 0; o < bytes; o++) data[o] = static_cast<char>(ProbeImageByte(o));
  return dir.Write(name, data);
}

int CountLines(const std::string& text, const std::string& needle) {
  int n = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) n += line.find(needle) != std::string::npos;
  return n;
}

}  // namespace ember::testing

// What every benchmark computes the same way: medians, and a process's CPU time.
#pragma once

#include <dirent.h>
#include <sys/types.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

namespace ember::testing {

inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// CPU time of every live thread of `pid`, in seconds, from /proc/PID/task/*/schedstat
// (nanosecond resolution, unlike the tick-based /proc/PID/stat).
inline double ProcessCpuSeconds(pid_t pid) {
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (!d) return 0;
  unsigned long long total = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(dir + "/" + e->d_name + "/schedstat");
    unsigned long long ns = 0;
    if (in >> ns) total += ns;
  }
  closedir(d);
  return static_cast<double>(total) / 1e9;
}

}  // namespace ember::testing

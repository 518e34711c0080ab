// What every benchmark computes the same way: medians, and a process's CPU time.
#pragma once

#include <dirent.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <thread>
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

// CPU time of `pid` over a window in which its threads may end (ember's API workers end when
// idle, taking their CPU time out of /proc/PID/task): every thread's schedstat is sampled every
// `period` and a thread counts with its last sample; one that ends loses at most one period.
inline double ProcessCpuSecondsOver(pid_t pid, std::chrono::milliseconds window,
                                    std::chrono::milliseconds period = std::chrono::milliseconds(2)) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  std::map<std::string, unsigned long long> first, last;
  auto sample = [&] {
    DIR* d = opendir(dir.c_str());
    if (!d) return;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream in(dir + "/" + e->d_name + "/schedstat");
      unsigned long long ns = 0;
      if (!(in >> ns)) continue;
      first.emplace(e->d_name, ns);  // a thread born in the window counts from 0: see below
      last[e->d_name] = ns;
    }
    closedir(d);
  };
  sample();
  std::map<std::string, unsigned long long> at_start = first;
  const auto end = std::chrono::steady_clock::now() + window;
  while (std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(period);
    sample();
  }
  unsigned long long total = 0;
  for (const auto& [tid, ns] : last) {
    auto it = at_start.find(tid);
    total += ns - (it == at_start.end() ? 0 : it->second);
  }
  return static_cast<double>(total) / 1e9;
}

}  // namespace ember::testing

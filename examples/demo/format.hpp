// examples/demo/format.hpp — human-readable durations for spindle-demo's answers and table.
//
//   demo::format_duration(d)  "850ns", "12.3us", "640us", "4.21ms", "20.1ms", "150ms", "1.25s"
//
// Example:
//   format_duration(std::chrono::microseconds(1500))   // "1.50ms"
//
// Three significant digits at most, ASCII only ("us", not "µs"), so that printf widths
// line up in the live table. Thread safety: a pure function.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace demo {

inline std::string format_duration(std::chrono::nanoseconds d) {
  const double ns = static_cast<double>(d.count());
  char buf[32];
  if (ns < 1e3) {
    std::snprintf(buf, sizeof buf, "%.0fns", ns);
  } else if (ns < 1e4) {
    std::snprintf(buf, sizeof buf, "%.1fus", ns / 1e3);
  } else if (ns < 1e6) {
    std::snprintf(buf, sizeof buf, "%.0fus", ns / 1e3);
  } else if (ns < 1e7) {
    std::snprintf(buf, sizeof buf, "%.2fms", ns / 1e6);
  } else if (ns < 1e8) {
    std::snprintf(buf, sizeof buf, "%.1fms", ns / 1e6);
  } else if (ns < 1e9) {
    std::snprintf(buf, sizeof buf, "%.0fms", ns / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.2fs", ns / 1e9);
  }
  return buf;
}

}  // namespace demo

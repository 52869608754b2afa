// Internal: a log line at most once per interval for an event that may repeat very often.
//
//   spindle::detail::LogSink         where the exporter's messages go (one line each)
//   spindle::detail::RateLimitedLog  reports an event's first occurrence, then at most one
//                                    line per interval with how many were left out
//
// Example:
//   RateLimitedLog refused(sink, std::chrono::seconds(10));
//   refused.report("spindle exporter: refused a connection: 512 are open");
//   // at most one line per 10 s; the next says "(and 4,211 more since the last message)"
//
// A flood of refused connections or failed accepts must not become a
// flood of log lines (which would cost more than the events themselves).
//
// Thread safety: a RateLimitedLog is used by one thread (the server's).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace spindle::detail {

using LogSink = std::function<void(std::string_view line)>;

class RateLimitedLog {
 public:
  using Clock = std::chrono::steady_clock;

  /// Lines go to `sink` (which must not throw), at most one per `interval`.
  RateLimitedLog(LogSink sink, Clock::duration interval)
      : sink_(std::move(sink)), interval_(interval) {}

  /// One more occurrence of the event, described by `line`.
  void report(std::string_view line, Clock::time_point now = Clock::now()) noexcept {
    if (logged_ && now - last_ < interval_) {
      ++left_out_;
      return;
    }
    try {
      std::string text(line);
      if (left_out_ > 0) {
        text += " (and " + std::to_string(left_out_) + " more since the last message)";
      }
      if (sink_) sink_(text);
    } catch (...) {
      // Logging must not take the server down: this line is lost.
    }
    logged_ = true;
    last_ = now;
    left_out_ = 0;
  }

 private:
  LogSink sink_;                // where lines go
  Clock::duration interval_;    // the least time between two lines
  bool logged_ = false;         // a line was written
  Clock::time_point last_{};    // when
  std::uint64_t left_out_ = 0;  // occurrences since then that wrote no line
};

}  // namespace spindle::detail

// The flight recorder's ring and its Chrome trace-event writer (see
// flight_recorder.hpp and Handle::write_trace).

#include "flight_recorder.hpp"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <ostream>
#include <string>
#include <unordered_map>

#include "scheduler.hpp"
#include "spindle/runtime/detail/groups.hpp"
#include "spindle/runtime/errors.hpp"
#include "spindle/runtime/hooks.hpp"
#include "worker.hpp"

namespace spindle::detail {

FlightRecorder::FlightRecorder(std::size_t capacity)
    : mask_(std::bit_ceil(std::max<std::size_t>(capacity, 64)) - 1), slots_(new Slot[mask_ + 1]) {}

std::vector<TraceEvent> FlightRecorder::snapshot() const {
  // acquire: every slot below `before` was fully written.
  const std::uint64_t before = head_.load(std::memory_order_acquire);
  const std::uint64_t first = before > capacity() ? before - capacity() : 0;
  std::vector<TraceEvent> out;
  out.reserve(static_cast<std::size_t>(before - first));
  for (std::uint64_t i = first; i < before; ++i) out.push_back(read(slots_[i & mask_]));
  // Entries the worker overwrote while we copied them are the oldest ones:
  // drop everything below the new head's window, and the slot of the write
  // that may be in progress now (number `after`, which reuses the slot of
  // entry after - capacity).
  const std::uint64_t after = head_.load(std::memory_order_acquire);
  const std::uint64_t valid_from = after + 1 > capacity() ? after + 1 - capacity() : 0;
  if (valid_from > first) {
    const auto drop = static_cast<std::size_t>(std::min(valid_from - first, before - first));
    out.erase(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(drop));
  }
  return out;
}

namespace {

/// Appends `s` as a JSON string body (quotes not included).
void json_escape(std::string& out, std::string_view s) {
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
}

/// Microseconds with nanosecond precision, as Chrome's "ts" and "dur" want.
void append_us(std::string& out, std::int64_t ns) {
  char buf[40];
  const std::int64_t whole = ns / 1000;
  const std::int64_t frac = ns % 1000;
  std::snprintf(buf, sizeof buf, "%" PRId64 ".%03" PRId64, whole, frac < 0 ? -frac : frac);
  out += buf;
}

}  // namespace

void Core::write_trace(std::ostream& os) const {
  if (config_.flight_recorder_events == 0) {
    throw UsageError(
        "spindle: Handle::write_trace: this runtime has no flight recorder (enable it with "
        "Runtime::Builder::flight_recorder(events_per_worker))");
  }
  std::unordered_map<std::uint64_t, std::string> names;  // group id → monitor name
  auto name_of = [&](std::uint64_t group) -> const std::string& {
    auto it = names.find(group);
    if (it == names.end()) {
      std::string n = group == 0 ? std::string("unmonitored") : group_name(group);
      if (n.empty()) n = "monitor#" + std::to_string(group);
      it = names.emplace(group, std::move(n)).first;
    }
    return it->second;
  };
  // Every worker's events first, to start the timeline at the oldest one
  // (small numbers keep "ts" exact to the nanosecond in a double).
  std::vector<std::vector<TraceEvent>> rings(workers_.size());
  std::int64_t epoch = INT64_MAX;
  for (std::size_t w = 0; w < workers_.size(); ++w) {
    if (const FlightRecorder* rec = workers_[w]->recorder()) rings[w] = rec->snapshot();
    for (const TraceEvent& e : rings[w]) epoch = std::min(epoch, e.t_ns);
  }
  if (epoch == INT64_MAX) epoch = 0;
  std::string out;
  out.reserve(1 << 16);
  out += "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":\"spindle\",";
  out += "\"epoch_ns\":";
  out += std::to_string(epoch);
  out += ",\"clock\":\"the runtime's clock (Handle::now), ns since its epoch, at ts 0\"},";
  out += "\"traceEvents\":[";
  bool first = true;
  auto begin_event = [&] {
    if (!first) out += ',';
    first = false;
    out += "\n{";
  };
  for (std::size_t w = 0; w < workers_.size(); ++w) {
    begin_event();
    out += "\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":";
    out += std::to_string(w);
    out += ",\"args\":{\"name\":\"worker ";
    out += std::to_string(w);
    out += "\"}}";
    const std::vector<TraceEvent>& events = rings[w];
    const TraceEvent* open = nullptr;  // the poll start waiting for its end
    for (const TraceEvent& e : events) {
      switch (e.kind) {
        case TraceKind::kPollStart:
          open = &e;
          break;
        case TraceKind::kPollEnd: {
          if (open == nullptr || open->task != e.task) break;  // its start was overwritten
          begin_event();
          out += "\"name\":\"task ";
          out += std::to_string(e.task);
          out += " (";
          json_escape(out, name_of(open->group));
          out += ")\",\"cat\":\"poll\",\"ph\":\"X\",\"pid\":1,\"tid\":";
          out += std::to_string(w);
          out += ",\"ts\":";
          append_us(out, open->t_ns - epoch);
          out += ",\"dur\":";
          append_us(out, e.t_ns - open->t_ns);
          out += ",\"args\":{\"task\":";
          out += std::to_string(e.task);
          out += ",\"monitor\":\"";
          json_escape(out, name_of(open->group));
          out += "\",\"finished\":";
          out += (e.arg & 1) != 0 ? "true" : "false";
          out += "}}";
          open = nullptr;
          break;
        }
        case TraceKind::kWake:
        case TraceKind::kSteal:
        case TraceKind::kPark:
        case TraceKind::kUnpark: {
          begin_event();
          const char* name = e.kind == TraceKind::kWake    ? "wake"
                             : e.kind == TraceKind::kSteal ? "steal"
                             : e.kind == TraceKind::kPark  ? "park"
                                                           : "unpark";
          out += "\"name\":\"";
          out += name;
          out += "\",\"cat\":\"worker\",\"ph\":\"i\",\"s\":\"t\",\"pid\":1,\"tid\":";
          out += std::to_string(w);
          out += ",\"ts\":";
          append_us(out, e.t_ns - epoch);
          out += ",\"args\":{";
          if (e.kind == TraceKind::kWake) {
            out += "\"task\":";
            out += std::to_string(e.task);
            out += ",\"from\":\"";
            out += (e.arg & 3) == 1 ? "idle" : "its own poll";
            out += "\",\"self\":";
            out += (e.arg & 4) != 0 ? "true" : "false";
          } else if (e.kind == TraceKind::kSteal) {
            out += "\"tasks\":";
            out += std::to_string(e.arg);
          }
          out += "}}";
          break;
        }
      }
    }
    if (open != nullptr) {
      // The poll running now (or cut off by the snapshot): a begin event.
      begin_event();
      out += "\"name\":\"task ";
      out += std::to_string(open->task);
      out += " (";
      json_escape(out, name_of(open->group));
      out += ", still running)\",\"cat\":\"poll\",\"ph\":\"B\",\"pid\":1,\"tid\":";
      out += std::to_string(w);
      out += ",\"ts\":";
      append_us(out, open->t_ns - epoch);
      out += ",\"args\":{\"task\":";
      out += std::to_string(open->task);
      out += "}}";
    }
  }
  out += "\n]}\n";
  os.write(out.data(), static_cast<std::streamsize>(out.size()));
}

}  // namespace spindle::detail

namespace spindle {

void attribute_delay(const PollStart& poll, DelayBlameSink& sink) noexcept {
  if (poll.recorder == nullptr || poll.wake == WakeKind::kFirstPoll) return;
  poll.recorder->attribute(detail::trace_ns(poll.woken_at), detail::trace_ns(poll.now),
                           [&sink](std::uint64_t group, std::int64_t d) {
                             sink.add(group, std::chrono::nanoseconds(d));
                           });
}

}  // namespace spindle

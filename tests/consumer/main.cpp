// The smallest service: proves that a consumer's build finds spindle's
// headers, library and dependencies (Asio, Abseil, threads).
#include <spindle/exporter.hpp>
#include <spindle/monitor.hpp>
#include <spindle/runtime.hpp>

spindle::Task<int> answer() { co_return 42; }

int main() {
  auto rt = spindle::Runtime::Builder().worker_threads(1).build();
  auto mon = spindle::TaskMonitor::Builder().name("consumer").build();
  spindle::MetricsCollectable metrics;
  metrics.add_monitor(mon);
  const bool ok = rt.block_on(answer()) == 42 && rt.spawn(mon.instrument(answer())).join() == 42;
  return ok && mon.cumulative().instrumented_count == 1 ? 0 : 1;
}

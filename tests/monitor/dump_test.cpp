// Handle::dump(): the live task list with each task's monitor, spawn
// location, state and polls, and with poll_timing(true) its age and busy time.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <spindle/monitor.hpp>
#include <spindle/runtime.hpp>
#include <thread>
#include <vector>

#include "monitor/monitor_support.hpp"
#include "support/sync.hpp"

namespace {

using spindle::Handle;
using spindle::Runtime;
using spindle::Task;
using spindle::TaskMonitor;
using spindle::TaskSnapshot;
using spindle::TaskState;
using spindle::sync::oneshot;
using spindle::sync::Receiver;
using spindle::test::ClockedRuntime;
using spindle::test::ends_with;
using spindle::test::ManualClock;
using spindle::test::value;
using namespace std::chrono_literals;

/// The entry of task `id`, if listed.
std::optional<TaskSnapshot> find(const std::vector<TaskSnapshot>& tasks, spindle::TaskId id) {
  for (const TaskSnapshot& t : tasks) {
    if (t.id == id) return t;
  }
  return std::nullopt;
}

TEST(Dump, ListsLiveTasksWithMonitorLocationStatePollsAgeAndBusy) {
  ClockedRuntime c(/*poll_timing=*/true);
  TaskMonitor mon = c.monitor("svc");
  auto [tx, rx] = oneshot<int>();
  auto idle_task = mon.instrument([](Receiver<int> rx, ManualClock& clock) -> Task<int> {
    clock.advance(5us);
    co_return co_await rx;
  }(std::move(rx), *c.clock));
  auto idle = c.rt.spawn(std::move(idle_task));
  const unsigned idle_line = __LINE__ - 1;  // the line above
  c.run_queued();                           // the idle task's first poll: 5 us
  c.clock->advance(1ms);
  // A task that dumps from inside its own poll, and one queued behind it.
  auto runner_task = mon.instrument(
      []() -> Task<std::vector<TaskSnapshot>> { co_return Handle::current().dump(); }());
  auto runner = c.rt.spawn(std::move(runner_task));
  const unsigned runner_line = __LINE__ - 1;  // the line above
  auto queued = c.rt.spawn(value(1));
  const unsigned queued_line = __LINE__ - 1;  // the line above
  c.clock->advance(2ms);                      // t = 3.005 ms
  std::vector<TaskSnapshot> seen = c.join(runner);

  ASSERT_EQ(seen.size(), 4U);  // also the block_on driver
  auto i = find(seen, idle.id());
  ASSERT_TRUE(i.has_value());
  EXPECT_EQ(i->group, "svc");
  EXPECT_EQ(i->state, TaskState::kIdle);
  EXPECT_EQ(i->polls, 1U);
  EXPECT_TRUE(ends_with(i->location.file_name(), "dump_test.cpp"));
  EXPECT_EQ(i->location.line(), idle_line);
  EXPECT_EQ(i->age, 3005us);
  EXPECT_EQ(i->busy, 5us);
  EXPECT_FALSE(i->blocking);
  auto r = find(seen, runner.id());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->group, "svc");
  EXPECT_EQ(r->state, TaskState::kRunning);
  EXPECT_EQ(r->polls, 1U);
  EXPECT_EQ(r->location.line(), runner_line);
  EXPECT_EQ(r->age, 2ms);
  EXPECT_EQ(r->busy, 0ns);
  auto q = find(seen, queued.id());
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->group, "");
  EXPECT_EQ(q->state, TaskState::kScheduled);
  EXPECT_EQ(q->polls, 0U);
  EXPECT_EQ(q->location.line(), queued_line);
  EXPECT_EQ(q->age, 2ms);
  EXPECT_EQ(q->busy, 0ns);

  // The runner and the task queued behind it (polled before the driver
  // woke) finished: they are no longer listed; the idle one still is.
  EXPECT_TRUE(queued.is_finished());
  std::vector<TaskSnapshot> now = c.rt.handle().dump();
  ASSERT_EQ(now.size(), 1U);
  EXPECT_EQ(now[0].id, idle.id());
  EXPECT_EQ(now[0].age, 3005us);
  EXPECT_EQ(now[0].state, TaskState::kIdle);

  tx.send(1);
  EXPECT_EQ(c.join(idle), 1);
  EXPECT_TRUE(c.rt.handle().dump().empty());
}

TEST(Dump, WithoutPollTimingHasNoAgeOrBusy) {
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("svc");
  auto [tx, rx] = oneshot<int>();
  auto h = c.rt.spawn(mon.instrument(spindle::test::recv(std::move(rx))));
  c.run_queued();
  std::vector<TaskSnapshot> tasks = c.rt.handle().dump();
  ASSERT_EQ(tasks.size(), 1U);
  EXPECT_EQ(tasks[0].id, h.id());
  EXPECT_EQ(tasks[0].group, "svc");
  EXPECT_EQ(tasks[0].state, TaskState::kIdle);
  EXPECT_EQ(tasks[0].polls, 1U);
  EXPECT_FALSE(tasks[0].age.has_value());
  EXPECT_FALSE(tasks[0].busy.has_value());
  tx.send(1);
  c.join(h);
  EXPECT_TRUE(c.rt.handle().dump().empty());
}

TEST(Dump, ShowsATaskHoldingAWorkerAsRunningFromAnotherThread) {
  auto rt = Runtime::Builder().worker_threads(1).build();
  TaskMonitor mon = TaskMonitor::Builder().name("blocker").build();
  std::atomic<bool> release{false};
  spindle::test::Event started;
  auto blocker = rt.spawn(
      mon.instrument([](std::atomic<bool>& release, spindle::test::Event& started) -> Task<void> {
        started.set();
        while (!release.load()) std::this_thread::yield();
        co_return;
      }(release, started)));
  ASSERT_TRUE(started.wait());
  auto behind = rt.spawn(value(2));  // the only worker is busy: it waits
  std::vector<TaskSnapshot> tasks = rt.handle().dump();
  auto b = find(tasks, blocker.id());
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->state, TaskState::kRunning);
  EXPECT_EQ(b->group, "blocker");
  EXPECT_EQ(b->polls, 1U);
  auto w = find(tasks, behind.id());
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->state, TaskState::kScheduled);
  EXPECT_EQ(w->polls, 0U);
  release = true;
  blocker.join();
  EXPECT_EQ(behind.join(), 2);
  EXPECT_TRUE(spindle::test::eventually([&] { return rt.handle().dump().empty(); }));
}

}  // namespace

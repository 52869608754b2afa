// The owned-task registry (runtime/src/owned_tasks.hpp): white-box tests of
// OwnedTasks with counted fake cells (the grace period that keeps a visited
// cell alive, hand-offs between owners, close/quiesce/pop_any, and a race of
// owners, hand-offs and visitors), then the runtime around it with local
// queues of 4: tasks spawned on one worker and finished on another, spawns
// from foreign threads, shutdown racing with spawns and completions, dumps
// racing with completions. Per-task hooks count on_release, which the
// runtime calls exactly when it frees a task's cell: each must be 1.

#include "owned_tasks.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <spindle/runtime.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/counted.hpp"
#include "support/sync.hpp"

namespace {

using spindle::Cancelled;
using spindle::Handle;
using spindle::HookedTask;
using spindle::Instant;
using spindle::JoinHandle;
using spindle::PollStart;
using spindle::Runtime;
using spindle::RuntimeShutdown;
using spindle::Task;
using spindle::TaskHooks;
using spindle::TaskInfo;
using spindle::detail::CellBase;
using spindle::detail::CellVTable;
using spindle::detail::kComplete;
using spindle::detail::kRefOne;
using spindle::detail::OwnedTasks;
using spindle::sync::oneshot;
using spindle::sync::Receiver;
using spindle::sync::Sender;
using spindle::test::Counted;
using spindle::test::Event;
using spindle::test::eventually;
using spindle::test::LifetimeCounts;

// ---- the registry alone ----------------------------------------------------------

/// A cell that is never really freed: "freeing" it (the runtime's dealloc)
/// counts, so a test can see a double free, a leak, and a visit to a freed cell.
struct FakeCell : CellBase {
  FakeCell() noexcept : CellBase(&kVTable, std::noop_coroutine()) {}

  std::atomic<int> frees{0};  // times the registry freed this cell

  static void dealloc(CellBase* c) noexcept {
    static_cast<FakeCell*>(c)->frees.fetch_add(1, std::memory_order_acq_rel);
  }
  [[noreturn]] static void unused(CellBase*) noexcept { std::abort(); }
  [[noreturn]] static std::exception_ptr unused_output(CellBase*) noexcept { std::abort(); }
  static const CellVTable kVTable;
};
const CellVTable FakeCell::kVTable{&FakeCell::unused, &FakeCell::unused, &FakeCell::unused_output,
                                   &FakeCell::dealloc};

/// `n` cells with ids 1..n, each holding two references: the list's and a
/// completer's (as a spawned task's scheduler reference).
std::unique_ptr<FakeCell[]> make_cells(std::size_t n) {
  auto cells = std::make_unique<FakeCell[]>(n);
  for (std::size_t i = 0; i < n; ++i) {
    cells[i].id_ = i + 1;
    cells[i].state_.store(2 * kRefOne, std::memory_order_relaxed);
  }
  return cells;
}

/// What the runtime does when a task ends: COMPLETE, then release with the
/// completer's one reference.
void finish(OwnedTasks& owned, FakeCell& c, std::size_t caller) {
  c.state_.fetch_or(kComplete, std::memory_order_acq_rel);
  owned.release(&c, 1, caller);
}

int total_frees(const FakeCell* cells, std::size_t n) {
  int sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += cells[i].frees.load();
  return sum;
}

TEST(OwnedTasksRegistry, ACellFinishedOnItsOwnerIsFreedOnceItsBatchFills) {
  OwnedTasks owned(2, 4);
  auto cells = make_cells(4);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(owned.bind(&cells[i], 0));
  EXPECT_EQ(owned.live(), 4U);
  for (int i = 0; i < 3; ++i) finish(owned, cells[i], 0);
  EXPECT_EQ(owned.live(), 1U);                // unlinked at once
  EXPECT_EQ(total_frees(cells.get(), 4), 0);  // retired, waiting for the batch
  finish(owned, cells[3], 0);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(cells[i].frees.load(), 1) << "cell " << i;
  EXPECT_EQ(owned.live(), 0U);
}

TEST(OwnedTasksRegistry, ACellFinishedOnAnotherWorkerWaitsForItsOwnerToTakeItBack) {
  OwnedTasks owned(2, 4);
  auto cells = make_cells(1);
  ASSERT_TRUE(owned.bind(&cells[0], 0));
  finish(owned, cells[0], 1);  // worker 1 finished worker 0's task
  EXPECT_EQ(cells[0].frees.load(), 0);
  EXPECT_EQ(cells[0].state_.load() >> spindle::detail::kRefShift, 1U)  // the completer's went
      << "the completer must drop its own reference at once";
  EXPECT_EQ(owned.live(), 1U);  // listed until the owner takes it back
  owned.maintain(1);            // not the owner: nothing happens
  EXPECT_EQ(cells[0].frees.load(), 0);
  owned.maintain(0);
  EXPECT_EQ(cells[0].frees.load(), 1);
  EXPECT_EQ(owned.live(), 0U);
}

TEST(OwnedTasksRegistry, ARemoteShardCellIsFreedAtOnceByWhicheverWorkerFinishesIt) {
  OwnedTasks owned(2, 4);
  auto cells = make_cells(2);
  ASSERT_TRUE(owned.bind(&cells[0], OwnedTasks::kNotWorker));
  ASSERT_TRUE(owned.bind(&cells[1], OwnedTasks::kNotWorker));
  finish(owned, cells[0], 1);
  finish(owned, cells[1], OwnedTasks::kNotWorker);
  EXPECT_EQ(cells[0].frees.load(), 1);
  EXPECT_EQ(cells[1].frees.load(), 1);
  EXPECT_EQ(owned.live(), 0U);
}

TEST(OwnedTasksRegistry, AVisitorHoldsOffTheFreeingOfEveryCellItMayStandOn) {
  constexpr int kCells = 7;  // a batch of 4 and 3 more on the overflow chain
  OwnedTasks owned(1, 4);
  auto cells = make_cells(kCells);
  for (int i = 0; i < kCells; ++i) ASSERT_TRUE(owned.bind(&cells[i], 0));
  Event standing, go;
  std::vector<spindle::TaskId> seen;
  std::thread visitor([&] {
    owned.for_each([&](const CellBase* c) {
      seen.push_back(c->id_);
      if (seen.size() == 1) {
        standing.set();
        EXPECT_TRUE(go.wait());
      }
    });
  });
  ASSERT_TRUE(standing.wait());
  // The visitor stands on the newest cell. Finish them all on the owner.
  for (int i = 0; i < kCells; ++i) finish(owned, cells[i], 0);
  owned.maintain(0);
  EXPECT_EQ(owned.live(), 0U);
  EXPECT_EQ(total_frees(cells.get(), kCells), 0) << "a cell was freed under a visitor";
  go.set();
  visitor.join();
  // It walked on from an unlinked cell and skipped the finished ones.
  ASSERT_EQ(seen.size(), 1U);
  EXPECT_EQ(seen[0], static_cast<spindle::TaskId>(kCells));
  owned.maintain(0);
  for (int i = 0; i < kCells; ++i) EXPECT_EQ(cells[i].frees.load(), 1) << "cell " << i;
}

TEST(OwnedTasksRegistry, CloseRefusesLaterBindsOnWorkerListsAndRemoteShards) {
  OwnedTasks owned(2, 4);
  auto cells = make_cells(3);
  ASSERT_TRUE(owned.bind(&cells[0], 1));
  owned.close();
  EXPECT_FALSE(owned.bind(&cells[1], 0));
  EXPECT_FALSE(owned.bind(&cells[2], OwnedTasks::kNotWorker));
  EXPECT_EQ(owned.live(), 1U);
  owned.quiesce();
  EXPECT_EQ(owned.pop_any(), &cells[0]);
  EXPECT_EQ(owned.pop_any(), nullptr);
}

TEST(OwnedTasksRegistry, QuiesceAndPopAnyTakeEveryUnfinishedTaskExactlyOnce) {
  constexpr int kPer = 10;
  OwnedTasks owned(2, 4);
  auto cells = make_cells(3 * kPer);
  for (int i = 0; i < kPer; ++i) {
    ASSERT_TRUE(owned.bind(&cells[i], 0));
    ASSERT_TRUE(owned.bind(&cells[kPer + i], 1));
    ASSERT_TRUE(owned.bind(&cells[2 * kPer + i], OwnedTasks::kNotWorker));
  }
  std::set<const CellBase*> finished;
  for (int i = 0; i < 3; ++i) {
    finish(owned, cells[i], 0);             // retired on its owner
    finish(owned, cells[3 + i], 1);         // handed from worker 1 to worker 0
    finish(owned, cells[kPer + i], 0);      // handed from worker 0 to worker 1
    finish(owned, cells[2 * kPer + i], 1);  // a remote shard's
    for (int k : {i, 3 + i, kPer + i, 2 * kPer + i}) finished.insert(&cells[k]);
  }
  owned.close();
  owned.quiesce();  // the workers are gone: hand-offs taken in, retired cells freed
  for (const CellBase* c : finished) {
    EXPECT_EQ(static_cast<const FakeCell*>(c)->frees.load(), 1) << "task " << c->id_;
  }
  EXPECT_EQ(owned.live(), 3U * kPer - finished.size());
  std::set<CellBase*> popped;
  while (CellBase* c = owned.pop_any()) {
    EXPECT_TRUE(popped.insert(c).second) << "task " << c->id_ << " popped twice";
    EXPECT_EQ(finished.count(c), 0U) << "finished task " << c->id_ << " popped";
    // The list's reference is ours now, as shutdown_task's.
    spindle::detail::release_task(c);  // ... and the completer's it never used
    spindle::detail::release_task(c);
  }
  EXPECT_EQ(popped.size(), 3U * kPer - finished.size());
  EXPECT_EQ(owned.live(), 0U);
  for (int i = 0; i < 3 * kPer; ++i) EXPECT_EQ(cells[i].frees.load(), 1) << "cell " << i;
}

TEST(OwnedTasksRegistry, OwnersHandOffsAndVisitorsRaceWithoutLosingOrDoublingACell) {
  // Three owner threads bind cells on their own lists and finish each
  // either themselves or through another owner (a hand-off), while a
  // visitor walks the lists over and over and checks that it never stands
  // on a freed cell nor sees one twice in a walk.
  constexpr std::size_t kOwners = 3;
  constexpr std::size_t kPerOwner = 3000;
  OwnedTasks owned(kOwners, 4);
  auto cells = make_cells(kOwners * kPerOwner);
  std::mutex inbox_mu;
  std::vector<std::vector<FakeCell*>> inbox(kOwners);  // cells another owner finishes
  std::atomic<bool> stop{false};
  std::atomic<int> bad_visits{0};
  std::atomic<int> walks{0};
  std::thread visitor([&] {
    while (!stop.load()) {
      std::set<spindle::TaskId> ids;
      owned.for_each([&](const CellBase* c) {
        if (static_cast<const FakeCell*>(c)->frees.load(std::memory_order_acquire) != 0 ||
            !ids.insert(c->id_).second) {
          bad_visits.fetch_add(1);
        }
      });
      walks.fetch_add(1);
    }
  });
  std::atomic<std::size_t> done{0};
  std::vector<std::thread> owners;
  for (std::size_t w = 0; w < kOwners; ++w) {
    owners.emplace_back([&, w] {
      std::uint32_t rng = static_cast<std::uint32_t>(w) * 2654435761U + 1;
      for (std::size_t i = 0; i < kPerOwner; ++i) {
        FakeCell& c = cells[w * kPerOwner + i];
        ASSERT_TRUE(owned.bind(&c, w));
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        if (rng % 2 == 0) {
          finish(owned, c, w);
        } else {
          std::lock_guard<std::mutex> lock(inbox_mu);
          inbox[(w + 1 + rng % (kOwners - 1)) % kOwners].push_back(&c);
        }
        if (i % 8 == 0) {
          std::vector<FakeCell*> mine;
          {
            std::lock_guard<std::mutex> lock(inbox_mu);
            mine.swap(inbox[w]);
          }
          for (FakeCell* other : mine) finish(owned, *other, w);
          owned.maintain(w);
        }
      }
      done.fetch_add(1);
      // Finish what the others still send until every owner is done.
      while (done.load() < kOwners) {
        std::vector<FakeCell*> mine;
        {
          std::lock_guard<std::mutex> lock(inbox_mu);
          mine.swap(inbox[w]);
        }
        for (FakeCell* other : mine) finish(owned, *other, w);
        owned.maintain(w);
        std::this_thread::yield();
      }
    });
  }
  for (auto& t : owners) t.join();
  for (std::size_t w = 0; w < kOwners; ++w) {
    for (FakeCell* other : inbox[w]) finish(owned, *other, (w + 1) % kOwners);
  }
  EXPECT_TRUE(eventually([&] { return walks.load() >= 3; }));
  stop = true;
  visitor.join();
  owned.close();
  owned.quiesce();
  EXPECT_EQ(owned.pop_any(), nullptr);
  EXPECT_EQ(owned.live(), 0U);
  EXPECT_EQ(bad_visits.load(), 0);
  for (std::size_t i = 0; i < kOwners * kPerOwner; ++i) {
    ASSERT_EQ(cells[i].frees.load(), 1) << "cell " << i;
  }
}

// ---- the runtime around it ---------------------------------------------------------

/// True when the calling thread is not `home` (a child ran on another worker).
bool i_am_elsewhere(std::thread::id home) { return std::this_thread::get_id() != home; }

/// Hooks that count their own calls: on_release is the runtime freeing the
/// task's cell, so each must be called once, and after on_drop.
class CountingHooks final : public TaskHooks {
 public:
  void on_spawn(const TaskInfo&, Instant) noexcept override { spawned.fetch_add(1); }
  void on_poll_start(const PollStart&) noexcept override {}
  void on_poll_end(Instant, bool) noexcept override {}
  void on_drop(bool) noexcept override { dropped.fetch_add(1); }
  void on_release() noexcept override {
    if (dropped.load() != spawned.load()) out_of_order.fetch_add(1);
    released.fetch_add(1);
  }

  std::atomic<int> spawned{0};       // on_spawn calls
  std::atomic<int> dropped{0};       // on_drop calls
  std::atomic<int> released{0};      // on_release calls: the cell was freed
  std::atomic<int> out_of_order{0};  // on_release before on_drop
};

/// A fixed set of CountingHooks handed out one per task, from any thread.
class HookPool {
 public:
  explicit HookPool(std::size_t n) : hooks_(std::make_unique<CountingHooks[]>(n)), size_(n) {}

  /// The next unused hooks; null when all are taken.
  CountingHooks* take() noexcept {
    const std::size_t i = next_.fetch_add(1);
    return i < size_ ? &hooks_[i] : nullptr;
  }
  [[nodiscard]] std::size_t used() const noexcept { return std::min(next_.load(), size_); }
  [[nodiscard]] int released() const noexcept {
    int n = 0;
    for (std::size_t i = 0; i < used(); ++i) n += hooks_[i].released.load();
    return n;
  }
  /// "" when every task handed hooks was freed exactly once, after its drop.
  [[nodiscard]] std::string check() const {
    std::string bad;
    for (std::size_t i = 0; i < used(); ++i) {
      const CountingHooks& h = hooks_[i];
      if (h.released.load() != 1 || h.dropped.load() != h.spawned.load() ||
          h.out_of_order.load() != 0) {
        bad += " #" + std::to_string(i) + ": spawned " + std::to_string(h.spawned.load()) +
               " dropped " + std::to_string(h.dropped.load()) + " released " +
               std::to_string(h.released.load());
        if (bad.size() > 300) break;
      }
    }
    return bad;
  }

 private:
  std::unique_ptr<CountingHooks[]> hooks_;  // the hooks
  std::size_t size_;                        // how many
  std::atomic<std::size_t> next_{0};        // next one to hand out
};

TEST(OwnedTasks, TasksSpawnedOnOneWorkerAndFinishedOnAnotherAreFreedExactlyOnce) {
  constexpr int kChildren = 400;
  LifetimeCounts counts;
  HookPool pool(kChildren);
  {
    auto rt = Runtime::Builder().worker_threads(2).local_queue_capacity(4).lifo_slot(false).build();
    std::atomic<int> done{0};
    std::atomic<int> moved{0};
    // The parent spawns every child and then holds its worker until they
    // are all done: each runs, and finishes, on the other worker (stolen
    // from the parent's queue of 4 or taken from the injection queue).
    // Meanwhile the children's cells wait for the parent's worker, which is
    // busy: still listed, but COMPLETE, so a dump shows only the parent.
    const auto [all_done, dumped] =
        rt.block_on([](HookPool& pool, LifetimeCounts& counts, std::atomic<int>& done,
                       std::atomic<int>& moved) -> Task<std::pair<bool, std::size_t>> {
          const std::thread::id home = std::this_thread::get_id();
          for (int i = 0; i < kChildren; ++i) {
            spindle::spawn(HookedTask<void>(
                               [](std::thread::id home, std::atomic<int>& done,
                                  std::atomic<int>& moved, Counted) -> Task<void> {
                                 if (i_am_elsewhere(home)) moved.fetch_add(1);
                                 done.fetch_add(1);
                                 co_return;
                               }(home, done, moved, Counted(counts, i)),
                               pool.take()))
                .detach();
          }
          const bool finished = eventually([&] { return done.load() == kChildren; });
          co_return std::pair<bool, std::size_t>(finished, Handle::current().dump().size());
        }(pool, counts, done, moved));
    ASSERT_TRUE(all_done);
    EXPECT_EQ(moved.load(), kChildren);
    EXPECT_EQ(dumped, 1U) << "a dump listed finished tasks";
    // The parent's worker takes them back and frees them without new work.
    EXPECT_TRUE(eventually([&] { return pool.released() == kChildren; }))
        << pool.released() << " of " << kChildren << " freed";
    EXPECT_TRUE(eventually([&] { return rt.handle().counters().live_tasks == 0; }));
    EXPECT_EQ(counts.alive(), 0);
  }
  EXPECT_EQ(pool.check(), "");  // still once each after shutdown
  EXPECT_EQ(counts.errors(), 0);
}

TEST(OwnedTasks, TasksSpawnedFromForeignThreadsAreFreedOnceWhetherJoinedDetachedOrAborted) {
  constexpr int kThreads = 3;
  constexpr int kPerThread = 300;
  LifetimeCounts counts;
  HookPool pool(kThreads * kPerThread);
  {
    auto rt = Runtime::Builder().worker_threads(2).local_queue_capacity(4).build();
    Handle handle = rt.handle();
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, handle] {
        std::vector<JoinHandle<int>> hs;
        for (int i = 0; i < kPerThread; ++i) {
          hs.push_back(handle.spawn_with_hooks(
              [](Counted c) -> Task<int> {
                co_await spindle::yield_now();
                co_return c.value();
              }(Counted(counts, i)),
              pool.take()));
          if (i % 3 == 2) hs.back().abort();
        }
        for (int i = 0; i < kPerThread; ++i) {
          if (i % 3 == 0) {
            hs[i].detach();
          } else if (i % 3 == 1) {
            EXPECT_EQ(hs[i].join(), i);
          } else {
            try {
              (void)hs[i].join();  // may have finished before the abort
            } catch (const Cancelled&) {
            }
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_TRUE(eventually([&] { return pool.released() == kThreads * kPerThread; }))
        << pool.released() << " freed";
    EXPECT_EQ(counts.alive(), 0);
  }
  EXPECT_EQ(pool.check(), "");
  EXPECT_EQ(counts.errors(), 0);
}

TEST(OwnedTasks, ShutdownRacingWithSpawnsAndCompletionsFreesEveryTaskExactlyOnce) {
  constexpr int kRounds = 12;
  // Per spawner and round: more than either gets to before shutdown. Each
  // spawner has its own pool, so a fast one cannot use up the other's hooks
  // and end the round before shutdown meets it.
  constexpr std::size_t kHooksPerRound = 60000;
  LifetimeCounts counts;
  int raced = 0;  // rounds where shutdown refused a spawn (it met them running)
  for (int round = 0; round < kRounds; ++round) {
    HookPool inside_pool(kHooksPerRound);
    HookPool foreign_pool(kHooksPerRound);
    std::atomic<int> refused{0};
    {
      std::optional<Runtime> rt(
          Runtime::Builder().worker_threads(2).local_queue_capacity(4).build());
      Handle handle = rt->handle();
      Event busy;
      // Inside: a task keeps spawning children that hop between workers
      // (queues of 4) and finish, until shutdown refuses its spawns.
      rt->spawn([](HookPool& pool, LifetimeCounts& counts, std::atomic<int>& refused,
                   Event& busy) -> Task<void> {
          for (int i = 0;; ++i) {
            CountingHooks* hooks = pool.take();
            if (hooks == nullptr) co_return;
            try {
              spindle::spawn(HookedTask<void>(
                                 [](Counted, int n) -> Task<void> {
                                   for (int k = 0; k < n % 4; ++k) co_await spindle::yield_now();
                                 }(Counted(counts, i), i),
                                 hooks))
                  .detach();
            } catch (const RuntimeShutdown&) {
              refused.fetch_add(1);
              co_return;
            }
            if (i == 200) busy.set();
            if (i % 16 == 0) co_await spindle::yield_now();
          }
        }(inside_pool, counts, refused, busy))
          .detach();
      // Outside: a foreign thread spawns too, some tasks idle forever, some aborted.
      std::thread foreign([&, handle] {
        for (int i = 0;; ++i) {
          CountingHooks* hooks = foreign_pool.take();
          if (hooks == nullptr) return;
          try {
            if (i % 5 == 0) {
              auto [tx, rx2] = oneshot<int>();
              handle
                  .spawn_with_hooks(
                      [](Receiver<int> rx, Sender<int>, Counted) -> Task<void> {
                        (void)co_await rx;  // never sent: destroyed by shutdown
                      }(std::move(rx2), std::move(tx), Counted(counts, i)),
                      hooks)
                  .detach();
            } else {
              JoinHandle<void> h = handle.spawn_with_hooks(
                  [](Counted) -> Task<void> { co_await spindle::yield_now(); }(Counted(counts, i)),
                  hooks);
              if (i % 3 == 0) h.abort();
            }
          } catch (const RuntimeShutdown&) {
            refused.fetch_add(1);
            return;
          }
        }
      });
      ASSERT_TRUE(busy.wait());
      std::this_thread::sleep_for(std::chrono::microseconds(200 * (round % 4)));
      rt.reset();  // shutdown, while both spawners run
      foreign.join();
      if (refused.load() > 0) ++raced;
    }
    ASSERT_EQ(inside_pool.check(), "") << "round " << round << ", inside";
    ASSERT_EQ(foreign_pool.check(), "") << "round " << round << ", foreign";
    ASSERT_EQ(counts.alive(), 0) << "round " << round;
  }
  EXPECT_GT(raced, 0) << "shutdown never met a spawner: the test did not race";
  EXPECT_EQ(counts.errors(), 0);
}

TEST(OwnedTasks, DumpsRacingWithCompletionsSeeEachTaskAtMostOnce) {
  auto rt = Runtime::Builder().worker_threads(2).local_queue_capacity(4).poll_timing(true).build();
  Handle handle = rt.handle();
  std::atomic<bool> stop{false};
  std::atomic<int> dumps{0};
  std::atomic<int> duplicates{0};
  std::atomic<int> nonempty{0};
  std::thread dumper([&] {
    while (!stop.load()) {
      std::set<spindle::TaskId> ids;
      for (const spindle::TaskSnapshot& s : handle.dump()) {
        if (s.id == 0 || !ids.insert(s.id).second) duplicates.fetch_add(1);
      }
      if (!ids.empty()) nonempty.fetch_add(1);
      dumps.fetch_add(1);
    }
  });
  // Waves of tasks until enough dumps have met some of them.
  rt.block_on([](std::atomic<int>& nonempty) -> Task<void> {
    for (int wave = 0; wave < 30 || (nonempty.load() < 20 && wave < 100000); ++wave) {
      std::vector<JoinHandle<int>> hs;
      for (int i = 0; i < 100; ++i) {
        hs.push_back(spindle::spawn([](int i) -> Task<int> {
          for (int k = 0; k < i % 3; ++k) co_await spindle::yield_now();
          co_return i;
        }(i)));
      }
      for (int i = 0; i < 100; ++i) {
        const int v = co_await hs[i];
        EXPECT_EQ(v, i);
      }
    }
  }(nonempty));
  stop = true;
  dumper.join();
  EXPECT_EQ(duplicates.load(), 0);
  EXPECT_GE(nonempty.load(), 20);  // dumps did meet running tasks
  // Every task finished: none is listed, though their cells may still wait
  // in a retired batch.
  EXPECT_TRUE(eventually([&] { return handle.dump().empty(); }));
}

TEST(OwnedTasks, ACurrentThreadRuntimeFreesTheTasksItFinishedBeforeBlockOnReturns) {
  constexpr int kChildren = 10;  // fewer than a retired batch
  HookPool pool(kChildren);
  std::optional<Runtime> rt(Runtime::Builder().current_thread().local_queue_capacity(4).build());
  rt->block_on([](HookPool& pool) -> Task<void> {
    std::vector<JoinHandle<int>> hs;
    for (int i = 0; i < kChildren; ++i) {
      hs.push_back(spindle::spawn(HookedTask<int>(
          [](int i) -> Task<int> {
            co_await spindle::yield_now();
            co_return i;
          }(i),
          pool.take())));
    }
    for (int i = 0; i < kChildren; ++i) {
      const int v = co_await hs[i];
      EXPECT_EQ(v, i);
    }
  }(pool));
  // Nobody drives the runtime now: what block_on finished must be freed.
  EXPECT_EQ(pool.released(), kChildren);
  EXPECT_EQ(rt->handle().counters().live_tasks, 0U);
  rt.reset();
  EXPECT_EQ(pool.check(), "");
}

}  // namespace

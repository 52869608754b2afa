// White-box tests of the scheduler's queues (runtime/src): LocalQueue's
// push/pop order, overflow into the InjectionQueue, steal-half, index
// wrap-around at 2^32, and a concurrent owner-vs-stealers run in which every
// task must be seen exactly once.

#include "local_queue.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "injection_queue.hpp"

namespace {

using spindle::detail::CellBase;
using spindle::detail::CellVTable;
using spindle::detail::InjectionQueue;
using spindle::detail::LocalQueue;

// The queues only link and move CellBase pointers; they never call the vtable.
void no_finish(CellBase*) noexcept {}
void no_cancel(CellBase*) noexcept {}
std::exception_ptr no_drop(CellBase*) noexcept { return nullptr; }
void no_dealloc(CellBase*) noexcept {}
constexpr CellVTable kFakeVTable{&no_finish, &no_cancel, &no_drop, &no_dealloc};

// A set of fake cells, numbered by their position.
class FakeCells {
 public:
  explicit FakeCells(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      cells_.push_back(std::make_unique<CellBase>(&kFakeVTable, std::noop_coroutine()));
      cells_.back()->id_ = i;
    }
  }
  CellBase* operator[](std::size_t i) const { return cells_[i].get(); }
  [[nodiscard]] std::size_t size() const { return cells_.size(); }
  static std::size_t index(const CellBase* c) { return static_cast<std::size_t>(c->id_); }

 private:
  std::vector<std::unique_ptr<CellBase>> cells_;
};

constexpr std::uint32_t kNearWrap = 0xFFFFFFFFU - 2;  // three pushes from 2^32

// push_back_or_overflow with a refusal callback that must not be called.
bool push(LocalQueue& q, CellBase* c, InjectionQueue& inject) {
  return q.push_back_or_overflow(c, inject, [](CellBase*) { ADD_FAILURE() << "push refused"; });
}

std::vector<std::size_t> drain(InjectionQueue& inject) {
  std::vector<std::size_t> out;
  while (CellBase* c = inject.pop()) out.push_back(FakeCells::index(c));
  return out;
}

TEST(LocalQueue, PopsInPushOrderAcrossTheIndexWrapAround) {
  FakeCells cells(64);
  InjectionQueue inject;
  LocalQueue q(4, kNearWrap);
  EXPECT_TRUE(q.is_empty());
  EXPECT_EQ(q.remaining_slots(), 4U);
  std::size_t next_push = 0;
  std::size_t next_pop = 0;
  // 3 in, 3 out, repeatedly: the u32 indices cross 2^32 in the first rounds.
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 3; ++i) EXPECT_FALSE(push(q, cells[next_push++ % 64], inject));
    EXPECT_EQ(q.len(), 3U);
    EXPECT_EQ(q.remaining_slots(), 1U);
    for (int i = 0; i < 3; ++i) {
      CellBase* c = q.pop();
      ASSERT_NE(c, nullptr);
      EXPECT_EQ(FakeCells::index(c), next_pop++ % 64);
    }
    EXPECT_EQ(q.pop(), nullptr);
    EXPECT_TRUE(q.is_empty());
  }
  EXPECT_TRUE(inject.is_empty());
}

TEST(LocalQueue, FillsToCapacityWithoutOverflowing) {
  FakeCells cells(4);
  InjectionQueue inject;
  LocalQueue q(4, kNearWrap);
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(push(q, cells[i], inject));
  EXPECT_EQ(q.len(), 4U);
  EXPECT_EQ(q.remaining_slots(), 0U);
  EXPECT_TRUE(inject.is_empty());
}

TEST(LocalQueue, PushIntoAFullQueueMovesTheOlderHalfAndTheNewTaskToTheInjectionQueue) {
  FakeCells cells(5);
  InjectionQueue inject;
  LocalQueue q(4, kNearWrap);
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(push(q, cells[i], inject));
  EXPECT_TRUE(push(q, cells[4], inject));  // overflow
  EXPECT_EQ(inject.len(), 3U);
  EXPECT_EQ(drain(inject), (std::vector<std::size_t>{0, 1, 4}));
  EXPECT_EQ(q.len(), 2U);
  EXPECT_EQ(FakeCells::index(q.pop()), 2U);
  EXPECT_EQ(FakeCells::index(q.pop()), 3U);
  EXPECT_EQ(q.pop(), nullptr);
}

TEST(LocalQueue, OverflowAppendsBehindTasksAlreadyInTheInjectionQueue) {
  FakeCells cells(10);
  InjectionQueue inject;
  EXPECT_TRUE(inject.push(cells[9]));
  LocalQueue q(2, kNearWrap);
  EXPECT_FALSE(push(q, cells[0], inject));
  EXPECT_FALSE(push(q, cells[1], inject));
  EXPECT_TRUE(push(q, cells[2], inject));  // capacity 2: half is one task
  EXPECT_EQ(drain(inject), (std::vector<std::size_t>{9, 0, 2}));
  EXPECT_EQ(FakeCells::index(q.pop()), 1U);
}

TEST(LocalQueue, OverflowIntoAClosedInjectionQueueHandsEveryTaskToTheRefusalCallback) {
  FakeCells cells(5);
  InjectionQueue inject;
  LocalQueue q(4, kNearWrap);
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(push(q, cells[i], inject));
  inject.close();
  std::vector<std::size_t> refused;
  EXPECT_TRUE(q.push_back_or_overflow(
      cells[4], inject, [&](CellBase* c) { refused.push_back(FakeCells::index(c)); }));
  EXPECT_EQ(refused, (std::vector<std::size_t>{0, 1, 4}));
  EXPECT_EQ(q.len(), 2U);
}

TEST(LocalQueue, StealTakesTheOlderHalfAndReturnsOneToRunNow) {
  FakeCells cells(4);
  InjectionQueue inject;
  LocalQueue victim(4, kNearWrap);
  LocalQueue thief(4, kNearWrap + 1);
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(push(victim, cells[i], inject));
  std::uint32_t stolen = 0;
  CellBase* run_now = victim.steal_into(thief, stolen);
  ASSERT_NE(run_now, nullptr);
  EXPECT_EQ(stolen, 2U);
  EXPECT_EQ(FakeCells::index(run_now), 1U);  // the last of the stolen range
  EXPECT_EQ(thief.len(), 1U);
  EXPECT_EQ(FakeCells::index(thief.pop()), 0U);
  EXPECT_EQ(victim.len(), 2U);
  EXPECT_EQ(FakeCells::index(victim.pop()), 2U);
  EXPECT_EQ(FakeCells::index(victim.pop()), 3U);
  // The stolen slots are free again: the victim can fill up to capacity.
  FakeCells more(4);
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(push(victim, more[i], inject));
  EXPECT_TRUE(inject.is_empty());
}

TEST(LocalQueue, StealRoundsHalfUpAndTakesASingleTask) {
  FakeCells cells(3);
  InjectionQueue inject;
  LocalQueue victim(4, kNearWrap);
  LocalQueue thief(4);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(push(victim, cells[i], inject));
  std::uint32_t stolen = 0;
  EXPECT_EQ(FakeCells::index(victim.steal_into(thief, stolen)), 1U);
  EXPECT_EQ(stolen, 2U);
  EXPECT_EQ(FakeCells::index(thief.pop()), 0U);
  EXPECT_EQ(FakeCells::index(victim.steal_into(thief, stolen)), 2U);
  EXPECT_EQ(stolen, 1U);
  EXPECT_TRUE(thief.is_empty());
  EXPECT_TRUE(victim.is_empty());
}

TEST(LocalQueue, StealFromAnEmptyQueueTakesNothing) {
  LocalQueue victim(4, kNearWrap);
  LocalQueue thief(4);
  std::uint32_t stolen = 7;
  EXPECT_EQ(victim.steal_into(thief, stolen), nullptr);
  EXPECT_EQ(stolen, 0U);
}

TEST(LocalQueue, StealIsRefusedWhenTheThiefIsMoreThanHalfFull) {
  FakeCells cells(7);
  InjectionQueue inject;
  LocalQueue victim(4, kNearWrap);
  LocalQueue thief(4, kNearWrap);
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(push(victim, cells[i], inject));
  for (int i = 4; i < 7; ++i) EXPECT_FALSE(push(thief, cells[i], inject));
  std::uint32_t stolen = 0;
  EXPECT_EQ(victim.steal_into(thief, stolen), nullptr);
  EXPECT_EQ(stolen, 0U);
  EXPECT_EQ(victim.len(), 4U);
  EXPECT_EQ(thief.len(), 3U);
}

TEST(LocalQueue, StealIsCappedAtHalfTheThiefsCapacityAndLandsBehindItsOwnTasks) {
  FakeCells cells(9);
  InjectionQueue inject;
  LocalQueue victim(8, kNearWrap);
  LocalQueue thief(4, kNearWrap);
  for (int i = 0; i < 8; ++i) EXPECT_FALSE(push(victim, cells[i], inject));
  EXPECT_FALSE(push(thief, cells[8], inject));
  std::uint32_t stolen = 0;
  CellBase* run_now = victim.steal_into(thief, stolen);
  EXPECT_EQ(stolen, 2U);  // half of 8 is 4, but the thief takes at most 4 / 2
  EXPECT_EQ(FakeCells::index(run_now), 1U);
  EXPECT_EQ(victim.len(), 6U);
  EXPECT_EQ(FakeCells::index(thief.pop()), 8U);
  EXPECT_EQ(FakeCells::index(thief.pop()), 0U);
  EXPECT_EQ(thief.pop(), nullptr);
}

TEST(InjectionQueue, IsFifoInSingleAndBatchPops) {
  FakeCells cells(6);
  InjectionQueue inject;
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(inject.push(cells[i]));
  EXPECT_EQ(inject.len(), 6U);
  std::size_t count = 0;
  CellBase* first = inject.pop_batch(4, count);
  EXPECT_EQ(count, 4U);
  std::vector<std::size_t> got;
  for (CellBase* c = first; c != nullptr; c = c->sched().queue_next_)
    got.push_back(FakeCells::index(c));
  EXPECT_EQ(got, (std::vector<std::size_t>{0, 1, 2, 3}));
  EXPECT_EQ(inject.len(), 2U);
  EXPECT_EQ(drain(inject), (std::vector<std::size_t>{4, 5}));
  EXPECT_EQ(inject.pop_batch(3, count), nullptr);
  EXPECT_EQ(count, 0U);
}

TEST(InjectionQueue, RefusesPushesOnceClosedButKeepsWhatItHolds) {
  FakeCells cells(2);
  InjectionQueue inject;
  EXPECT_TRUE(inject.push(cells[0]));
  inject.close();
  EXPECT_FALSE(inject.push(cells[1]));
  EXPECT_EQ(drain(inject), (std::vector<std::size_t>{0}));
}

// Owner thread: pushes every task (overflowing into `inject`) and pops some;
// stealer threads: steal into their own queues and pop what they took. In
// the end every task must have been taken exactly once, wherever it went.
void run_owner_against_stealers(int num_stealers, std::uint32_t capacity, std::size_t tasks) {
  FakeCells cells(tasks);
  auto seen = std::make_unique<std::atomic<int>[]>(tasks);
  InjectionQueue inject;
  LocalQueue owner_q(capacity, 0xFFFFFFFFU - 100);
  std::atomic<bool> owner_done{false};
  std::atomic<bool> len_wrapped{false};
  auto take = [&](CellBase* c) { seen[FakeCells::index(c)].fetch_add(1); };

  std::vector<std::thread> stealers;
  for (int s = 0; s < num_stealers; ++s) {
    stealers.emplace_back([&, s] {
      LocalQueue mine(capacity, 0xFFFFFFFFU - 7 * static_cast<std::uint32_t>(s));
      for (;;) {
        bool done = owner_done.load();
        std::uint32_t stolen = 0;
        if (CellBase* c = owner_q.steal_into(mine, stolen)) {
          take(c);
          while (CellBase* d = mine.pop()) take(d);
        } else if (done) {
          break;
        }
        // Another thread's view of the length is approximate, but never a
        // wrapped-around "negative" count.
        if (owner_q.len() > (1U << 31)) len_wrapped = true;
      }
    });
  }
  std::uint32_t rng = 12345;
  for (std::size_t i = 0; i < tasks; ++i) {
    (void)owner_q.push_back_or_overflow(cells[i], inject,
                                        [](CellBase*) { ADD_FAILURE() << "refused"; });
    rng = rng * 1664525U + 1013904223U;
    if ((rng >> 28) < 6) {  // pop now and then, racing the stealers for the head
      if (CellBase* c = owner_q.pop()) take(c);
    }
  }
  owner_done = true;
  for (auto& t : stealers) t.join();
  while (CellBase* c = owner_q.pop()) take(c);
  while (CellBase* c = inject.pop()) take(c);
  EXPECT_FALSE(len_wrapped.load());
  for (std::size_t i = 0; i < tasks; ++i) ASSERT_EQ(seen[i].load(), 1) << "task " << i;
}

TEST(LocalQueue, OwnerAgainstOneStealerSeesEveryTaskOnce) {
  run_owner_against_stealers(1, 4, 100'000);
}

TEST(LocalQueue, OwnerAgainstThreeStealersSeesEveryTaskOnce) {
  run_owner_against_stealers(3, 4, 100'000);
}

TEST(LocalQueue, OwnerAgainstStealersWithALargerQueueSeesEveryTaskOnce) {
  run_owner_against_stealers(2, 64, 100'000);
}

}  // namespace

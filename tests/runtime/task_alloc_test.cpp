// White-box tests of task_alloc's per-thread heaps (runtime/src/task_alloc.cpp):
// a block freed on another thread returns to the heap that allocated it, a heap
// outlives its thread and is adopted by the next one, and many threads freeing one
// thread's blocks while it keeps allocating lose nothing and hand out no block twice.
// Sanitizer builds bypass the heaps (plain new/delete per block): there the reuse
// checks are skipped and the stress run still runs, under ASan or TSan.

#include "spindle/runtime/detail/task_alloc.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

namespace {

using spindle::detail::task_alloc;
using spindle::detail::task_alloc_trim;
using spindle::detail::task_free;

#if defined(SPINDLE_SANITIZER_BUILD)
constexpr bool kHeaps = false;
#else
constexpr bool kHeaps = true;
#endif

TEST(TaskAlloc, BlocksAreAlignedForAnyFundamentalTypeAndWritable) {
  for (std::size_t size : {1u, 15u, 64u, 65u, 200u, 1024u, 1025u, 5000u}) {
    void* p = task_alloc(size);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % alignof(std::max_align_t), 0u) << size;
    std::memset(p, 0xab, size);
    task_free(p, size);
  }
}

TEST(TaskAlloc, ABlockFreedOnTheSameThreadIsReusedFirst) {
  if (!kHeaps) GTEST_SKIP() << "sanitizer build: heaps bypassed";
  void* a = task_alloc(100);
  task_free(a, 100);
  void* b = task_alloc(120);  // same 128-byte class
  EXPECT_EQ(a, b);
  task_free(b, 120);
}

TEST(TaskAlloc, ABlockFreedOnAnotherThreadReturnsToItsOwner) {
  if (!kHeaps) GTEST_SKIP() << "sanitizer build: heaps bypassed";
  // Drain this thread's cached 256-byte blocks so that the next allocation must
  // come from the remote list (or from the system allocator if the hand-back failed).
  std::vector<void*> mine;
  void* p = task_alloc(250);
  std::thread([p] { task_free(p, 250); }).join();
  // The local list may hold other 256-byte blocks from earlier tests: use them up.
  bool found = false;
  for (int i = 0; i < 5000 && !found; ++i) {
    void* q = task_alloc(250);
    found = (q == p);
    mine.push_back(q);
  }
  EXPECT_TRUE(found) << "the block freed on another thread never came back";
  for (void* q : mine) task_free(q, 250);
}

TEST(TaskAlloc, AnExitedThreadsHeapIsAdoptedWithItsLateFrees) {
  if (!kHeaps) GTEST_SKIP() << "sanitizer build: heaps bypassed";
  // Thread A allocates and exits while the block is still in use; we free it after
  // A's exit (a remote free into an abandoned heap); thread B, the next new thread,
  // adopts a heap and must be able to keep allocating and freeing normally.
  void* p = nullptr;
  std::thread([&p] { p = task_alloc(500); }).join();
  ASSERT_NE(p, nullptr);
  std::memset(p, 0x5a, 500);
  task_free(p, 500);
  bool reused = false;
  std::thread([&reused, p] {
    std::vector<void*> blocks;
    for (int i = 0; i < 64; ++i) {
      blocks.push_back(task_alloc(500));
      reused = reused || blocks.back() == p;
    }
    for (void* q : blocks) task_free(q, 500);
  }).join();
  // Heaps are adopted last-abandoned first, and A's was the last one abandoned.
  EXPECT_TRUE(reused) << "the adopted heap did not hand back the late-freed block";
}

TEST(TaskAlloc, TrimKeepsTheHeapUsable) {
  std::vector<void*> blocks;
  for (int i = 0; i < 20'000; ++i) blocks.push_back(task_alloc(64));
  std::thread([&blocks] {
    for (void* p : blocks) task_free(p, 64);
  }).join();
  task_alloc_trim();  // settles 20,000 remote blocks: keeps 4,096, releases the rest
  blocks.clear();
  for (int i = 0; i < 20'000; ++i) {
    void* p = task_alloc(64);
    std::memset(p, i & 0xff, 64);
    blocks.push_back(p);
  }
  EXPECT_EQ(std::set<void*>(blocks.begin(), blocks.end()).size(), blocks.size());
  for (void* p : blocks) task_free(p, 64);
  task_alloc_trim();
}

// One producer allocates and stamps blocks; four consumers check the stamp and free
// them (remote frees) while the producer keeps allocating, partly from what came
// back. A block handed out twice shows up as a torn stamp or a duplicate live block.
TEST(TaskAlloc, ConcurrentRemoteFreesWhileTheOwnerAllocatesLoseNothing) {
  constexpr int kConsumers = 4;
  constexpr int kBlocks = 200'000;
  constexpr std::size_t kSize = 192;
  struct Slot {
    std::atomic<void*> block{nullptr};
  };
  std::vector<Slot> ring(1024);
  std::atomic<int> freed{0};
  std::atomic<bool> bad{false};
  std::atomic<bool> done{false};

  std::vector<std::thread> consumers;
  for (int c = 0; c < kConsumers; ++c) {
    consumers.emplace_back([&, c] {
      while (!done.load(std::memory_order_acquire) || freed.load() < kBlocks) {
        bool any = false;
        for (std::size_t i = static_cast<std::size_t>(c); i < ring.size(); i += kConsumers) {
          void* p = ring[i].block.exchange(nullptr, std::memory_order_acq_rel);
          if (p == nullptr) continue;
          any = true;
          const auto* words = static_cast<const std::uint64_t*>(p);
          const std::uint64_t stamp = words[0];
          for (std::size_t w = 1; w < kSize / 8; ++w) {
            if (words[w] != stamp) bad.store(true);
          }
          task_free(p, kSize);
          freed.fetch_add(1);
        }
        if (!any) std::this_thread::yield();
        if (freed.load() >= kBlocks) break;
      }
    });
  }
  for (int n = 0; n < kBlocks; ++n) {
    auto* words = static_cast<std::uint64_t*>(task_alloc(kSize));
    for (std::size_t w = 0; w < kSize / 8; ++w) words[w] = static_cast<std::uint64_t>(n);
    // Park it in a free ring slot for a consumer.
    for (std::size_t i = static_cast<std::size_t>(n) % ring.size();; i = (i + 1) % ring.size()) {
      void* expected = nullptr;
      if (ring[i].block.compare_exchange_strong(expected, words, std::memory_order_acq_rel)) break;
    }
    if (n % 4096 == 0) task_alloc_trim();
  }
  done.store(true, std::memory_order_release);
  for (auto& t : consumers) t.join();
  EXPECT_FALSE(bad.load()) << "a block was handed out while still in use";
  EXPECT_EQ(freed.load(), kBlocks);
  task_alloc_trim();
}

}  // namespace

// tests/support/counted.hpp — a value that counts its own lifetime events.
//
//   spindle::test::LifetimeCounts  the tallies of one family of Counted objects
//   spindle::test::Counted         a movable, copyable value that reports to its tallies
//
// Tests use Counted to prove that coroutine frames and channel values are
// constructed and destroyed exactly once, whatever path (completion, abort,
// shutdown, a dropped channel end) disposes of them. Pass a Counted by value
// to a coroutine and it lives in the frame: its destruction is the frame's.
//
// Example:
//   spindle::test::LifetimeCounts counts;
//   {
//     auto task = [](spindle::test::Counted c) -> spindle::Task<void> { co_return; }(
//         spindle::test::Counted(counts));
//   }
//   EXPECT_EQ(counts.alive(), 0);
//   EXPECT_EQ(counts.errors(), 0);
//
// Thread safety: the tallies are atomics, so Counted objects of one family may
// live and die on different threads. One Counted object is not thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>

namespace spindle::test {

/// Tallies of one family of Counted objects.
struct LifetimeCounts {
  std::atomic<int> value_constructed{0};  // Counted(counts, value)
  std::atomic<int> copy_constructed{0};   // Counted(const Counted&)
  std::atomic<int> move_constructed{0};   // Counted(Counted&&)
  std::atomic<int> assigned{0};           // copy or move assignments
  std::atomic<int> destroyed{0};          // destructor runs on a live object
  std::atomic<int> misuse{0};             // destroyed twice / used after destruction

  /// Every object ever constructed, whatever the constructor.
  [[nodiscard]] int constructed() const {
    return value_constructed.load() + copy_constructed.load() + move_constructed.load();
  }
  /// Objects constructed and not yet destroyed.
  [[nodiscard]] int alive() const { return constructed() - destroyed.load(); }
  /// Lifetime errors seen (double destruction, use after destruction).
  [[nodiscard]] int errors() const { return misuse.load(); }
};

/// A value that reports its constructions and destructions to a LifetimeCounts.
class Counted {
 public:
  explicit Counted(LifetimeCounts& counts, int value = 0) noexcept
      : counts_(&counts), value_(value) {
    counts_->value_constructed.fetch_add(1);
  }
  Counted(const Counted& other) noexcept : counts_(other.counts_), value_(other.value()) {
    counts_->copy_constructed.fetch_add(1);
  }
  Counted(Counted&& other) noexcept
      : counts_(other.counts_), value_(std::exchange(other.value_, kMovedFrom)) {
    other.check();
    counts_->move_constructed.fetch_add(1);
  }
  Counted& operator=(const Counted& other) noexcept {
    check();
    value_ = other.value();
    counts_->assigned.fetch_add(1);
    return *this;
  }
  Counted& operator=(Counted&& other) noexcept {
    check();
    other.check();
    value_ = std::exchange(other.value_, kMovedFrom);
    counts_->assigned.fetch_add(1);
    return *this;
  }
  ~Counted() {
    if (magic_ != kAlive) {
      counts_->misuse.fetch_add(1);
      return;
    }
    magic_ = kDead;
    counts_->destroyed.fetch_add(1);
  }

  /// The value given at construction (kMovedFrom once moved from).
  [[nodiscard]] int value() const noexcept {
    check();
    return value_;
  }
  [[nodiscard]] bool moved_from() const noexcept { return value() == kMovedFrom; }

  static constexpr int kMovedFrom = -1;

 private:
  static constexpr std::uint32_t kAlive = 0xC0FFEE11U;
  static constexpr std::uint32_t kDead = 0xDEADBEEFU;

  void check() const noexcept {
    if (magic_ != kAlive) counts_->misuse.fetch_add(1);
  }

  LifetimeCounts* counts_;        // the family's tallies (outlive every member)
  int value_;                     // payload, kMovedFrom once moved from
  std::uint32_t magic_ = kAlive;  // kDead after destruction: catches a second destruction
};

}  // namespace spindle::test

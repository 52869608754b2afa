// Internal: a spindle::Histogram as a Prometheus native histogram.
//
//   spindle::detail::kNativeSchema         the native schema the exporter uses (5)
//   spindle::detail::kNativeZeroThreshold  the zero bucket's bound: 64 ns, in seconds
//   spindle::detail::NativeBuckets         a native histogram's zero count, spans and deltas
//   spindle::detail::to_native             a Histogram's counts placed in native buckets
//   spindle::detail::native_index          the native bucket that receives a spindle bucket
//   spindle::detail::native_lower_bound / native_upper_bound  a native bucket's bounds (s)
//
// Example:
//   NativeBuckets nb;
//   to_native(h, nb);   // nb.zero_count, nb.spans, nb.deltas: Histogram message fields 7, 12, 13
//
// The two bucket layouts do not align. spindle's buckets are linear within
// each power of two (10 per octave, each at most 10% of its lower bound
// wide, Histogram's overview); a native histogram of schema s has
// geometric buckets, index i covering (2^((i-1)/2^s), 2^(i/2^s)] seconds.
// A native bucket cannot be split, so each spindle bucket's count goes,
// whole, into one native bucket: the one holding the spindle bucket's
// representative value, its midpoint (lower_bound + upper_bound) / 2 (what
// Histogram::quantile() reports for the middle rank of that bucket):
//
//   bucket 0 (≤ 64 ns, and zero)   -> the zero bucket, zero_threshold = 64 ns
//   bucket b = 1 … 300             -> native index of (lower_bound(b) + upper_bound(b)) / 2
//   bucket 301 (> 2^36 ns, +Inf)   -> native index of 2^36 ns (68.72 s), where
//                                     Histogram::quantile() reports its ranks
//
// Schema 5 (32 buckets per power of two, each 2^(1/32) ≈ 1.0219 times the
// one before, so 2.19% wide) gives every spindle bucket a native bucket of
// its own (two representatives are at least 4.69% apart: a spindle bucket
// is at least ⌊2^k/10⌋ ns wide in octave k, whose representatives are
// ≤ 2^(k+1); the +Inf bucket's is 2.5% above bucket 300's) and keeps the
// error bound below well inside 10%. Schema 4 (4.4% wide) would give a bound
// of 9.9% and merge bucket 300 with the +Inf bucket; schema 6 would only add
// empty buckets. Native indexes strictly increase with the spindle bucket
// (tests/exporter/native_histogram_test.cpp checks all 302), so the
// cumulative count up to any spindle bucket equals the cumulative count up
// to its native bucket: a quantile's rank falls in corresponding buckets on
// both sides.
//
// Error bound. Let the q-quantile's rank fall in spindle bucket (lo, hi],
// with representative m = (lo + hi) / 2 in native bucket (L, U], U/L =
// 2^(1/32). Histogram::quantile() returns Q_s in (lo, hi]; PromQL's
// histogram_quantile() over the native series returns Q_p in (L, U] (Prometheus
// interpolates within the native bucket; 2.42 linearly). Since hi − lo ≤ 10% of
// lo and U − L < 2.19% of m ≤ 2.41% of lo:
//
//   |Q_p − Q_s| ≤ |Q_p − m| + |m − Q_s| < 2.41% lo + 5% lo ≤ 7.5% of Q_s
//
// and the same bound holds against the true quantile, which also lies in
// (lo, hi]. So histogram_quantile() over the native series is within 7.5%
// (within 10%, as DESIGN.md asks) of the in-process quantile and of the
// truth for quantiles in (64 ns, 2^36 ns]. In the zero bucket both report
// a value in [0, 64 ns] (PromQL takes 0 as its lower bound when there are
// no negative buckets); above 2^36 ns spindle says 68.72 s and PromQL a
// value within 2.19% of it.
//
// Spans. Consecutive populated native buckets are one span; a gap of at
// most kMaxFilledGap empty buckets is filled with zero counts (one delta
// each, a byte or two) rather than starting a new span (two varints and a
// message header). A histogram with no observation outside the zero
// bucket has no span; the exporter then writes the no-op span (offset 0,
// length 0) that marks the message as a native histogram.
//
// Units: spindle counts nanoseconds, the native buckets are in seconds
// (the exported series' unit); the conversion is exact to a double's
// precision and does not move any representative across a native bound by
// more than that.
//
// Thread safety: the functions keep no state but a table computed once
// (thread-safe static initialization); a NativeBuckets is used by one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "spindle/runtime/histogram.hpp"

namespace spindle::detail {

/// The exporter's native schema: 2^5 buckets per power of two.
inline constexpr std::int32_t kNativeSchema = 5;
/// The zero bucket's threshold, in seconds: Histogram::upper_bound(0) (64 ns).
inline constexpr double kNativeZeroThreshold = 64e-9;
/// Empty native buckets filled with zero counts instead of starting a span.
inline constexpr std::int32_t kMaxFilledGap = 2;

/// One span of consecutive native buckets.
struct NativeSpan {
  std::int32_t offset = 0;   // the first span: its first index; others: empty buckets before it
  std::uint32_t length = 0;  // buckets in it
  friend bool operator==(const NativeSpan&, const NativeSpan&) = default;
};

/// The native histogram's buckets (the positive ones: spindle has no
/// negative durations above the zero bucket).
struct NativeBuckets {
  std::uint64_t zero_count = 0;      // observations ≤ 64 ns
  std::vector<NativeSpan> spans;     // populated native buckets, by index
  std::vector<std::int64_t> deltas;  // each bucket's count minus the previous one's
};

/// The native index that receives spindle bucket `b` (1 ≤ b < Histogram::kBuckets).
[[nodiscard]] std::int32_t native_index(std::size_t b) noexcept;
/// The representative value of spindle bucket `b` (1 ≤ b < kBuckets), in
/// seconds: its midpoint, or 2^36 ns for the +Inf bucket.
[[nodiscard]] double native_representative(std::size_t b) noexcept;
/// The bounds of native bucket `index` at kNativeSchema, in seconds:
/// (native_lower_bound, native_upper_bound].
[[nodiscard]] double native_lower_bound(std::int32_t index) noexcept;
[[nodiscard]] double native_upper_bound(std::int32_t index) noexcept;

/// `h`'s counts as native buckets, written over `out` (whose vectors keep
/// their capacity). Throws std::bad_alloc (from growing `out`).
void to_native(const Histogram& h, NativeBuckets& out);

}  // namespace spindle::detail

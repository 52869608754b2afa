// Internal: gzip bodies for scrapers that accept them (zlib, Debian's zlib1g-dev).
//
//   spindle::detail::accepts_gzip   whether an Accept-Encoding value allows gzip
//   spindle::detail::gzip_compress  a string compressed into the gzip format (RFC 1952)
//   spindle::detail::GzipStream     the same, fed in pieces (the endpoint feeds it the text
//                                   as it is written, so the whole text never exists)
//   spindle::detail::kGzipLevel     the zlib level the endpoint uses
//
// Example:
//   if (accepts_gzip(request.accept_encoding)) gzip_compress(text, body);
//
// Prometheus asks for gzip on every scrape (`Accept-Encoding: gzip`); the
// text format compresses about tenfold (100 monitors: ~1 MB to ~60 KB).
// Level 1 (zlib's fastest) is used: higher levels save a few percent more
// at several times the CPU (bench/README.md has the figures).
//
// Thread safety: the functions keep no state; distinct strings may be
// compressed at once.
#pragma once

#include <zlib.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace spindle::detail {

/// zlib's compression level for scrape bodies (1 = fastest).
inline constexpr int kGzipLevel = 1;

/// Whether `accept_encoding` (Accept-Encoding values, comma-separated)
/// lists `gzip` (or `x-gzip`, or `*`) without q=0. Case-insensitive.
[[nodiscard]] bool accepts_gzip(std::string_view accept_encoding) noexcept;

/// A gzip stream written over a string from its start: write() the input
/// in pieces, then finish(). The string only grows (kept at its largest
/// size from scrape to scrape, it is not zero-filled each time).
class GzipStream {
 public:
  /// Compresses at `level` (0-9) into `out`. Throws std::bad_alloc.
  explicit GzipStream(std::string& out, int level = kGzipLevel);
  ~GzipStream();
  GzipStream(const GzipStream&) = delete;
  GzipStream& operator=(const GzipStream&) = delete;

  /// Compresses `in` (its bytes are not needed afterwards). Throws
  /// std::bad_alloc, or std::runtime_error when zlib fails.
  void write(std::string_view in);
  /// Ends the stream; returns the compressed size (the first bytes of
  /// `out`). Throws as write().
  std::size_t finish();

 private:
  void deflate_all(int flush);

  std::string& out_;  // the compressed bytes, then unused room
  z_stream zs_{};     // zlib's state
};

/// Replaces `out` with `in` in the gzip format at `level` (0-9); `out`'s
/// memory is reused. Throws std::bad_alloc, or std::runtime_error when
/// zlib fails (it does not on valid input and memory).
void gzip_compress(std::string_view in, std::string& out, int level = kGzipLevel);

/// The same written over `out` from its start, growing it only when the
/// compressed bytes do not fit (`out` is kept at its largest size from
/// scrape to scrape, so that it is not zero-filled each time); returns
/// their size. Throws as gzip_compress.
std::size_t gzip_compress_over(std::string_view in, std::string& out, int level = kGzipLevel);

}  // namespace spindle::detail

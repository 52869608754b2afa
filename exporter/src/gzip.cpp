#include "gzip.hpp"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <new>
#include <stdexcept>

namespace spindle::detail {

namespace {

char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Whether a `q=` weight is zero ("0", "0.", "0.0", "0.000"): RFC 9110 §12.4.2.
bool is_zero_weight(std::string_view q) noexcept {
  if (q.empty() || q.front() != '0') return false;
  q.remove_prefix(1);
  if (q.empty()) return true;
  if (q.front() != '.') return false;
  q.remove_prefix(1);
  return q.size() <= 3 && std::all_of(q.begin(), q.end(), [](char c) { return c == '0'; });
}

// Whether the parameters after a coding (";q=0.5;x=y") leave it acceptable.
bool acceptable(std::string_view params) noexcept {
  while (!params.empty()) {
    const std::size_t semi = params.find(';');
    const std::string_view param = trim(params.substr(0, semi));
    params = semi == std::string_view::npos ? std::string_view() : params.substr(semi + 1);
    const std::size_t eq = param.find('=');
    if (eq == std::string_view::npos) continue;
    if (iequals(trim(param.substr(0, eq)), "q") && is_zero_weight(trim(param.substr(eq + 1)))) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool accepts_gzip(std::string_view accept_encoding) noexcept {
  bool star = false;     // "*" accepted
  bool refused = false;  // gzip named with q=0
  while (!accept_encoding.empty()) {
    const std::size_t comma = accept_encoding.find(',');
    const std::string_view item = accept_encoding.substr(0, comma);
    accept_encoding =
        comma == std::string_view::npos ? std::string_view() : accept_encoding.substr(comma + 1);
    const std::size_t semi = item.find(';');
    const std::string_view coding = trim(item.substr(0, semi));
    const bool ok =
        acceptable(semi == std::string_view::npos ? std::string_view() : item.substr(semi + 1));
    if (iequals(coding, "gzip") || iequals(coding, "x-gzip")) {
      if (ok) return true;
      refused = true;
    } else if (coding == "*") {
      star = ok;
    }
  }
  return star && !refused;
}

GzipStream::GzipStream(std::string& out, int level) : out_(out) {
  // windowBits 15 + 16: the gzip wrapper (header and CRC-32 trailer).
  constexpr int kGzipWindowBits = 15 + 16;
  constexpr int kMemLevel = 8;
  if (deflateInit2(&zs_, level, Z_DEFLATED, kGzipWindowBits, kMemLevel, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    throw std::bad_alloc();  // (or a bad level, which the callers never pass)
  }
  if (out_.size() < 4096) out_.resize(4096);
}

GzipStream::~GzipStream() { deflateEnd(&zs_); }

void GzipStream::write(std::string_view in) {
  // zlib's interface is not const-correct: next_in is only read.
  constexpr std::size_t kMaxChunk = std::numeric_limits<uInt>::max();
  while (!in.empty()) {
    const std::size_t n = std::min(in.size(), kMaxChunk);
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs_.avail_in = static_cast<uInt>(n);
    deflate_all(Z_NO_FLUSH);
    in.remove_prefix(n);
  }
}

std::size_t GzipStream::finish() {
  zs_.next_in = nullptr;
  zs_.avail_in = 0;
  deflate_all(Z_FINISH);
  return static_cast<std::size_t>(zs_.total_out);
}

// Runs deflate until it has taken all the input (and, for Z_FINISH,
// written the end of the stream), growing the output by half when full.
void GzipStream::deflate_all(int flush) {
  constexpr std::size_t kMaxChunk = std::numeric_limits<uInt>::max();
  for (;;) {
    const auto done = static_cast<std::size_t>(zs_.total_out);
    if (done == out_.size()) out_.resize(out_.size() + out_.size() / 2);
    zs_.next_out = reinterpret_cast<Bytef*>(out_.data() + done);
    zs_.avail_out = static_cast<uInt>(std::min(out_.size() - done, kMaxChunk));
    const int rc = deflate(&zs_, flush);
    if (rc == Z_STREAM_END) return;
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      throw std::runtime_error(std::string("zlib deflate: ") + (zs_.msg ? zs_.msg : "failed"));
    }
    // Done when the input is taken and deflate did not fill the output
    // (it may hold more back otherwise).
    if (flush != Z_FINISH && zs_.avail_in == 0 && zs_.avail_out != 0) return;
  }
}

std::size_t gzip_compress_over(std::string_view in, std::string& out, int level) {
  GzipStream z(out, level);
  z.write(in);
  return z.finish();
}

void gzip_compress(std::string_view in, std::string& out, int level) {
  out.resize(gzip_compress_over(in, out, level));
}

}  // namespace spindle::detail

#include "basic_auth.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <utility>

namespace spindle::detail {

namespace {

// The 6-bit value of a base64 character, or -1.
int sextet(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; };
           return lower(x) == lower(y);
         });
}

}  // namespace

std::optional<std::string> decode_base64(std::string_view encoded) {
  std::size_t n = encoded.size();
  // Padding ('=' or "==") only ends a whole group of four.
  if (n > 0 && encoded[n - 1] == '=') {
    if (n % 4 != 0) return std::nullopt;
    --n;
    if (encoded[n - 1] == '=') --n;
  }
  if (n % 4 == 1) return std::nullopt;  // 6 bits cannot end a byte
  std::string out;
  out.reserve(n / 4 * 3 + 2);
  std::uint32_t bits = 0;  // bits read and not yet output (at most 12)
  int count = 0;           // how many
  for (std::size_t i = 0; i < n; ++i) {
    const int v = sextet(encoded[i]);
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xFFu));
      bits &= (1u << count) - 1;
    }
  }
  return out;
}

bool equal_in_constant_time(std::string_view a, std::string_view b) noexcept {
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  const std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const auto ca = static_cast<unsigned char>(i < a.size() ? a[i] : '\0');
    const auto cb = static_cast<unsigned char>(i < b.size() ? b[i] : '\0');
    diff |= static_cast<unsigned>(ca ^ cb);
  }
  return diff == 0;
}

bool basic_credentials_match(std::string_view authorization, std::string_view user,
                             std::string_view password) {
  const std::size_t space = authorization.find(' ');
  if (space == std::string_view::npos || !iequals(authorization.substr(0, space), "basic")) {
    return false;
  }
  std::string_view encoded = authorization.substr(space + 1);
  while (!encoded.empty() && encoded.front() == ' ') encoded.remove_prefix(1);
  while (!encoded.empty() && encoded.back() == ' ') encoded.remove_suffix(1);
  const std::optional<std::string> decoded = decode_base64(encoded);
  if (!decoded) return false;
  // The user name cannot contain ':' (RFC 7617); the password may.
  const std::size_t colon = decoded->find(':');
  if (colon == std::string::npos) return false;
  const std::string_view given(*decoded);
  // Both compared in full: which of the two was wrong takes no less time.
  const bool user_ok = equal_in_constant_time(given.substr(0, colon), user);
  const bool password_ok = equal_in_constant_time(given.substr(colon + 1), password);
  return user_ok && password_ok;
}

BasicAuth::BasicAuth(std::string user, std::string password, std::string_view realm)
    : user_(std::move(user)),
      password_(std::move(password)),
      challenge_("Basic realm=\"" + std::string(realm) + "\"") {}

bool BasicAuth::allows(std::optional<std::string_view> authorization) const noexcept {
  if (!authorization) return false;
  try {
    return basic_credentials_match(*authorization, user_, password_);
  } catch (const std::exception&) {
    return false;  // out of memory decoding the header: refused like a wrong password
  }
}

}  // namespace spindle::detail

// Internal: HTTP basic authentication (RFC 7617) for the exporter's endpoint.
//
//   spindle::detail::decode_base64            standard base64 (RFC 4648 §4) to bytes
//   spindle::detail::equal_in_constant_time   a comparison whose time does not tell where
//                                             two strings differ
//   spindle::detail::basic_credentials_match  checks an Authorization header value
//   spindle::detail::BasicAuth                the exporter's check: credentials and challenge
//
// Example:
//   BasicAuth auth("prometheus", secret, "spindle");
//   if (!auth.allows(request.authorization)) reply(401, {"WWW-Authenticate", auth.challenge()});
//
// A request passes when its Authorization header is `Basic <base64 of
// user:password>` (scheme case-insensitive) with both parts equal to the
// configured ones. Both parts are compared in full, in time that depends
// only on their lengths, so that the time taken does not tell how many
// leading bytes of a guess were right. Anything else (no header, two of
// them, another scheme, bad base64, no ':', wrong user or password) gets
// 401 Unauthorized with `WWW-Authenticate: Basic realm="<realm>"` and a
// short body without any metric (the HTTP server sends it).
//
// Thread safety: the functions are pure; a BasicAuth is immutable after
// construction, so any thread may call allows() at once.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace spindle::detail {

/// Decodes standard base64 ('+', '/'; '=' padding optional). Returns
/// nullopt for a character outside the alphabet, misplaced padding or a
/// length no encoding has.
[[nodiscard]] std::optional<std::string> decode_base64(std::string_view encoded);

/// Whether `a` equals `b`, looking at every byte of the longer one.
[[nodiscard]] bool equal_in_constant_time(std::string_view a, std::string_view b) noexcept;

/// Whether `authorization` (an Authorization header value) carries
/// `user` and `password` in the basic scheme.
[[nodiscard]] bool basic_credentials_match(std::string_view authorization, std::string_view user,
                                           std::string_view password);

/// The credentials a request must carry, and the challenge of a 401.
class BasicAuth {
 public:
  /// `user` must be non-empty and without ':' (checked by the exporter's
  /// options); `realm` is named in the challenge.
  BasicAuth(std::string user, std::string password, std::string_view realm);

  /// Whether `authorization` (the request's one Authorization header
  /// value; nullopt when it had none, or more than one) carries the
  /// credentials. Never throws: out of memory is a refusal.
  [[nodiscard]] bool allows(std::optional<std::string_view> authorization) const noexcept;
  /// The WWW-Authenticate value: Basic realm="<realm>".
  [[nodiscard]] const std::string& challenge() const noexcept { return challenge_; }

 private:
  std::string user_;       // the expected user name
  std::string password_;   // the expected password
  std::string challenge_;  // the WWW-Authenticate value
};

}  // namespace spindle::detail

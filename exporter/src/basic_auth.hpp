// Internal: HTTP basic authentication (RFC 7617) for the exporter's endpoint.
//
//   spindle::detail::decode_base64            standard base64 (RFC 4648 §4) to bytes
//   spindle::detail::equal_in_constant_time   a comparison whose time does not tell where
//                                             two strings differ
//   spindle::detail::basic_credentials_match  checks an Authorization header value
//   spindle::detail::BasicAuthHandler         civetweb's authorization hook: 401 unless they match
//
// Example:
//   BasicAuthHandler auth("prometheus", secret, "spindle");
//   server.addAuthHandler("/metrics", auth);   // before addHandler: never served without it
//
// civetweb's public header has no base64 decoder (and its own basic auth
// wants an htpasswd file of digests), so the header is decoded here.
// A request passes when its Authorization header is `Basic <base64 of
// user:password>` (scheme case-insensitive) with both parts equal to the
// configured ones. Both parts are compared in full, in time that depends
// only on their lengths, so that the time taken does not tell how many
// leading bytes of a guess were right. Anything else (no header, another
// scheme, bad base64, no ':', wrong user or password) gets
// 401 Unauthorized with `WWW-Authenticate: Basic realm="<realm>"` and a
// short body without any metric.
//
// Thread safety: the functions are pure; a BasicAuthHandler is immutable
// after construction, so civetweb's threads may call authorize() at once.
#pragma once

#include <CivetServer.h>

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

/// civetweb's authorization hook for the metrics path (see above).
class BasicAuthHandler final : public CivetAuthHandler {
 public:
  /// `user` must be non-empty and without ':' (checked by the exporter's
  /// options); `realm` is named in the challenge.
  BasicAuthHandler(std::string user, std::string password, std::string_view realm);

  /// True when the request carries the credentials; otherwise sends the
  /// 401 response and returns false (civetweb then stops the request).
  /// Never throws.
  bool authorize(CivetServer* server, mg_connection* conn) override;

 private:
  std::string user_;       // the expected user name
  std::string password_;   // the expected password
  std::string challenge_;  // the WWW-Authenticate value: Basic realm="..."
};

}  // namespace spindle::detail

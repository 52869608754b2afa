// Internal: the exporter's TLS settings as an Asio SSL context (OpenSSL 3, Debian's libssl-dev).
//
//   spindle::detail::TlsFiles          the PEM files of PrometheusExporter::Options::tls
//   spindle::detail::make_tls_context  loads them into an asio::ssl::context, or says why not
//
// Example:
//   auto ctx = make_tls_context({.certificate_file = "server.pem", .private_key_file = "key.pem",
//                                .client_ca_file = "ca.pem"});   // throws ConfigError
//
// The context is a TLS server's: TLS 1.2 at least (SSLv3, TLS 1.0 and 1.1
// are off), OpenSSL's default cipher list, the certificate chain and key
// checked against each other. With a client CA file, a client must present
// a certificate that chains to one of those CAs (mutual TLS): without one,
// or with another, the handshake fails and the connection is closed
// before any HTTP is read. The files are read once, here: a renewed
// certificate takes effect when a new exporter is constructed.
//
// Thread safety: make_tls_context may be called from any thread; the
// context is then only used by the exporter's server thread.
#pragma once

#include <asio/ssl/context.hpp>
#include <memory>
#include <string>

namespace spindle::detail {

struct TlsFiles {
  std::string certificate_file;  // PEM: the server's certificate, then its chain
  std::string private_key_file;  // PEM: its private key, not encrypted
  std::string client_ca_file;    // PEM: CAs a client certificate must chain to; "": none asked
};

/// A server context with `files` loaded. Throws ConfigError naming the
/// Options::tls field and file that cannot be used, and OpenSSL's reason.
[[nodiscard]] std::shared_ptr<asio::ssl::context> make_tls_context(const TlsFiles& files);

}  // namespace spindle::detail

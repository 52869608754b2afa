#include "tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <asio/error.hpp>
#include <asio/ssl/error.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string_view>

#include "spindle/runtime/errors.hpp"

namespace spindle::detail {

namespace {

[[noreturn]] void fail(std::string_view field, const std::string& file, std::string_view why) {
  throw ConfigError("spindle exporter: Options::tls." + std::string(field) + " \"" + file +
                    "\" cannot be used: " + std::string(why));
}

// A clearer message than OpenSSL's for the common case of a wrong path.
void check_readable(std::string_view field, const std::string& file) {
  if (file.empty()) fail(field, file, "it is empty (a PEM file is needed)");
  std::ifstream in(file, std::ios::binary);
  if (!in) fail(field, file, std::strerror(errno));
}

}  // namespace

std::shared_ptr<asio::ssl::context> make_tls_context(const TlsFiles& files) {
  check_readable("certificate_file", files.certificate_file);
  check_readable("private_key_file", files.private_key_file);
  if (!files.client_ca_file.empty()) check_readable("client_ca_file", files.client_ca_file);

  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::single_dh_use);
  SSL_CTX* native = ctx->native_handle();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) {
    throw ConfigError("spindle exporter: OpenSSL refused TLS 1.2 as the minimum version");
  }

  asio::error_code ec;
  ctx->use_certificate_chain_file(files.certificate_file, ec);
  if (ec)
    fail("certificate_file", files.certificate_file,
         "not a PEM certificate (" + ec.message() + ")");
  ctx->use_private_key_file(files.private_key_file, asio::ssl::context::pem, ec);
  if (ec && ec.category() == asio::error::get_ssl_category() &&
      ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH) {
    fail("private_key_file", files.private_key_file,
         "it is not the key of the certificate in \"" + files.certificate_file + "\"");
  }
  if (ec)
    fail("private_key_file", files.private_key_file,
         "not a PEM private key (" + ec.message() + ")");
  if (SSL_CTX_check_private_key(native) != 1) {
    fail("private_key_file", files.private_key_file,
         "it is not the key of the certificate in \"" + files.certificate_file + "\"");
  }

  if (!files.client_ca_file.empty()) {
    ctx->load_verify_file(files.client_ca_file, ec);
    if (ec)
      fail("client_ca_file", files.client_ca_file, "no PEM CA certificate (" + ec.message() + ")");
    // Tells clients which CAs are accepted (the CertificateRequest's list).
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.client_ca_file.c_str());
    if (names == nullptr) {
      fail("client_ca_file", files.client_ca_file, "no CA certificate could be read from it");
    }
    SSL_CTX_set_client_CA_list(native, names);  // takes ownership
    ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
  } else {
    ctx->set_verify_mode(asio::ssl::verify_none);
  }
  return ctx;
}

}  // namespace spindle::detail

// HTTPS on the exporter (OpenSSL 3 through asio::ssl): a CA, the server's
// and clients' certificates are made at test time with the `openssl`
// command (make_test_certs.sh); then a verifying client scrapes, mutual TLS
// accepts the CA's client and refuses the others, plain HTTP on the TLS
// port fails cleanly, and bad files are configuration errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <array>
#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl.hpp>
#include <asio/write.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "http_client.hpp"
#include "scrape_support.hpp"
#include "spindle/exporter.hpp"
#include "spindle/monitor.hpp"

#ifndef SPINDLE_EXPORTER_TEST_DIR
#error "SPINDLE_EXPORTER_TEST_DIR (tests/exporter) must be defined"
#endif

namespace {

using spindle::PrometheusExporter;
using ::testing::HasSubstr;

/// The certificates of make_test_certs.sh, made once for the suite.
class Certificates {
 public:
  static const Certificates& get() {
    static const Certificates certs;
    return certs;
  }
  [[nodiscard]] std::string file(const std::string& name) const { return dir_ + "/" + name; }
  [[nodiscard]] bool ok() const noexcept { return ok_; }

 private:
  Certificates() {
    char pattern[] = "/tmp/spindle-exporter-tls-XXXXXX";
    if (mkdtemp(pattern) == nullptr) return;
    dir_ = pattern;
    const std::string cmd =
        std::string(SPINDLE_EXPORTER_TEST_DIR) + "/make_test_certs.sh " + dir_ + " >/dev/null 2>&1";
    ok_ = std::system(cmd.c_str()) == 0;
  }
  ~Certificates() {
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }

  std::string dir_;  // the files
  bool ok_ = false;  // the script succeeded
};

struct TlsResult {
  bool handshake_ok = false;  // the client's handshake completed
  std::string error;          // the first error the client saw ("" for none)
  std::string response;       // every byte of HTTP read
};

/// An HTTPS GET of /metrics from a client that verifies the server with
/// ca.crt and presents `client` ("client", "rogue-client", or "" for none).
TlsResult https_get(std::uint16_t port, const std::string& client,
                    const std::string& extra_headers = "") {
  const Certificates& certs = Certificates::get();
  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.load_verify_file(certs.file("ca.crt"));
  ctx.set_verify_mode(asio::ssl::verify_peer);
  if (!client.empty()) {
    ctx.use_certificate_chain_file(certs.file(client + ".crt"));
    ctx.use_private_key_file(certs.file(client + ".key"), asio::ssl::context::pem);
  }
  asio::ssl::stream<asio::ip::tcp::socket> stream(io, ctx);
  stream.set_verify_callback(asio::ssl::host_name_verification("127.0.0.1"));
  stream.next_layer().connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  TlsResult r;
  asio::error_code ec;
  stream.handshake(asio::ssl::stream_base::client, ec);
  if (ec) {
    r.error = ec.message();
    return r;
  }
  r.handshake_ok = true;
  const std::string request =
      "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers + "Connection: close\r\n\r\n";
  asio::write(stream, asio::buffer(request), ec);
  std::array<char, 65536> buf{};
  while (!ec) {
    const std::size_t n = stream.read_some(asio::buffer(buf), ec);
    r.response.append(buf.data(), n);
  }
  // A server closing without close_notify shows as stream_truncated; an
  // answer that arrived in full is what matters.
  if (ec != asio::error::eof && ec != asio::ssl::error::stream_truncated) r.error = ec.message();
  return r;
}

class ExporterTls : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Certificates::get().ok()) {
      GTEST_SKIP() << "make_test_certs.sh failed (is the openssl command installed?)";
    }
  }
  static PrometheusExporter::Tls tls(bool mutual) {
    const Certificates& c = Certificates::get();
    return {.certificate_file = c.file("server.crt"),
            .private_key_file = c.file("server.key"),
            .client_ca_file = mutual ? c.file("ca.crt") : ""};
  }
  spindle::TaskMonitor monitor_ = spindle::TaskMonitor::Builder().name("checkout").build();
};

TEST_F(ExporterTls, AVerifyingClientScrapesOverHttps) {
  ASSERT_TRUE(PrometheusExporter::tls_supported());
  PrometheusExporter exporter({.bind_address = "127.0.0.1:0", .tls = tls(false)});
  exporter.add_monitor(monitor_);
  const TlsResult r = https_get(exporter.port(), "");
  EXPECT_TRUE(r.handshake_ok) << r.error;
  EXPECT_EQ(r.error, "");
  const auto responses = spindle::test::parse_responses(r.response);
  ASSERT_EQ(responses.size(), 1u) << r.response.substr(0, 200);
  EXPECT_EQ(responses[0].status, 200);
  EXPECT_THAT(responses[0].body, HasSubstr("spindle_task_live_tasks{monitor=\"checkout\"} 0"));
  // gzip over TLS too.
  const TlsResult z = https_get(exporter.port(), "", "Accept-Encoding: gzip\r\n");
  const auto zipped = spindle::test::parse_responses(z.response);
  ASSERT_EQ(zipped.size(), 1u);
  EXPECT_EQ(zipped[0].headers.at("content-encoding"), "gzip");
  const auto text = spindle::test::gunzip(zipped[0].body);
  ASSERT_TRUE(text.has_value());
  EXPECT_THAT(*text, HasSubstr("spindle_task_live_tasks{monitor=\"checkout\"} 0"));
}

TEST_F(ExporterTls, MutualTlsAcceptsTheCasClientAndRefusesTheOthers) {
  std::mutex mu;
  std::vector<std::string> lines;
  PrometheusExporter exporter(
      {.bind_address = "127.0.0.1:0", .tls = tls(true), .log = [&](std::string_view l) {
         std::lock_guard lock(mu);
         lines.emplace_back(l);
       }});
  exporter.add_monitor(monitor_);

  const TlsResult good = https_get(exporter.port(), "client");
  EXPECT_EQ(good.error, "");
  EXPECT_THAT(good.response, ::testing::StartsWith("HTTP/1.1 200 OK"));

  // TLS 1.3 lets the client finish its handshake before the server checks
  // the client's certificate: the refusal may show on the first read.
  for (const char* client : {"", "rogue-client"}) {
    SCOPED_TRACE(client[0] == '\0' ? "no client certificate" : client);
    const TlsResult bad = https_get(exporter.port(), client);
    EXPECT_NE(bad.error, "") << "refused";
    EXPECT_EQ(bad.response, "") << "not one byte of HTTP";
  }
  std::lock_guard lock(mu);
  ASSERT_EQ(lines.size(), 1u) << "two failed handshakes, one line per 10 s";
  EXPECT_THAT(lines[0], HasSubstr("TLS handshake"));
}

TEST_F(ExporterTls, PlainHttpToTheTlsPortGetsAPlain400AndIsClosed) {
  PrometheusExporter exporter({.bind_address = "127.0.0.1:0", .tls = tls(true)});
  exporter.add_monitor(monitor_);
  const std::string raw = spindle::test::http_exchange(
      exporter.port(), "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const auto responses = spindle::test::parse_responses(raw);
  ASSERT_EQ(responses.size(), 1u) << raw;
  EXPECT_EQ(responses[0].status, 400);
  EXPECT_THAT(responses[0].body, HasSubstr("HTTPS"));
  EXPECT_EQ(responses[0].body.find("spindle_"), std::string::npos);
  // The server is unharmed.
  EXPECT_THAT(https_get(exporter.port(), "client").response, ::testing::StartsWith("HTTP/1.1 200"));
}

TEST_F(ExporterTls, BasicAuthWorksOverTls) {
  PrometheusExporter exporter({.bind_address = "127.0.0.1:0",
                               .basic_auth = PrometheusExporter::BasicAuth{"prometheus", "pw"},
                               .tls = tls(false)});
  EXPECT_THAT(https_get(exporter.port(), "").response, ::testing::StartsWith("HTTP/1.1 401"));
  EXPECT_THAT(
      https_get(exporter.port(), "",
                "Authorization: " + spindle::test::basic_authorization("prometheus", "pw") + "\r\n")
          .response,
      ::testing::StartsWith("HTTP/1.1 200"));
}

/// Runs `make` expecting a ConfigError; returns its message.
template <class F>
std::string config_error(F&& make) {
  try {
    make();
  } catch (const spindle::ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigError";
  return {};
}

TEST_F(ExporterTls, UnusableFilesAreConfigErrorsNamingTheFieldAndFile) {
  const Certificates& c = Certificates::get();
  const auto make = [](PrometheusExporter::Tls t) {
    return [t] { PrometheusExporter e({.bind_address = "127.0.0.1:0", .tls = t}); };
  };
  std::string msg = config_error(
      make({.certificate_file = c.file("missing.crt"), .private_key_file = c.file("server.key")}));
  EXPECT_THAT(msg, HasSubstr("Options::tls.certificate_file"));
  EXPECT_THAT(msg, HasSubstr("missing.crt"));
  EXPECT_THAT(msg, HasSubstr("No such file"));

  msg = config_error(
      make({.certificate_file = c.file("server.crt"), .private_key_file = c.file("client.key")}));
  EXPECT_THAT(msg, HasSubstr("Options::tls.private_key_file"));
  EXPECT_THAT(msg, HasSubstr("not the key of the certificate"));

  const std::string garbage = c.file("garbage.pem");
  std::ofstream(garbage) << "not a certificate\n";
  msg = config_error(make({.certificate_file = garbage, .private_key_file = c.file("server.key")}));
  EXPECT_THAT(msg, HasSubstr("Options::tls.certificate_file"));
  EXPECT_THAT(msg, HasSubstr("not a PEM certificate"));

  msg = config_error(make({.certificate_file = c.file("server.crt"),
                           .private_key_file = c.file("server.key"),
                           .client_ca_file = garbage}));
  EXPECT_THAT(msg, HasSubstr("Options::tls.client_ca_file"));

  msg = config_error(make({.certificate_file = "", .private_key_file = c.file("server.key")}));
  EXPECT_THAT(msg, HasSubstr("it is empty"));
}

}  // namespace

#include "server_start.hpp"

#include <CivetServer.h>
#include <civetweb.h>

#include <exception>
#include <string_view>

#include "spindle/exporter/errors.hpp"

namespace spindle::detail {

namespace {

// Where the log callback records messages: set by StartupLog on the thread
// that constructs the server, for the duration of the construction; null
// on every other thread (civetweb's own), whose messages take civetweb's
// default path (no log file is configured, so they are dropped as before).
thread_local std::string* t_startup_log = nullptr;

int record_startup_message(const mg_connection* /*conn*/, const char* message) {
  if (t_startup_log == nullptr || message == nullptr) return 0;  // civetweb's default handling
  if (!t_startup_log->empty()) *t_startup_log += "; ";
  *t_startup_log += message;
  return 1;  // handled
}

/// Records civetweb's log messages on this thread while it lives.
class StartupLog {
 public:
  StartupLog() { t_startup_log = &text_; }
  ~StartupLog() { t_startup_log = nullptr; }
  StartupLog(const StartupLog&) = delete;
  StartupLog& operator=(const StartupLog&) = delete;
  [[nodiscard]] const std::string& text() const noexcept { return text_; }

 private:
  std::string text_;  // the messages so far, "; "-separated
};

// What a failure means, from civetweb's message (which embeds strerror).
std::string_view reason_for(std::string_view log) {
  if (log.find("Address already in use") != std::string_view::npos) {
    return "the port is already in use (another process or exporter listens on it)";
  }
  if (log.find("Cannot assign requested address") != std::string_view::npos) {
    return "the address is not one of this machine's";
  }
  if (log.find("Permission denied") != std::string_view::npos) {
    return "permission denied (ports below 1024 need privileges)";
  }
  if (log.find("invalid port spec") != std::string_view::npos ||
      log.find("cannot bind") != std::string_view::npos) {
    return "the HTTP server rejected the address";
  }
  return "the HTTP server could not start";
}

}  // namespace

bool civetweb_has_ipv6() noexcept { return mg_check_feature(8) != 0; }

std::unique_ptr<CivetServer> start_server(const std::string& bind_address,
                                          const std::vector<std::string>& options) {
  CivetCallbacks callbacks;  // zero-initialised by its constructor; civetweb copies it
  callbacks.log_message = &record_startup_message;
  StartupLog log;
  try {
    return std::make_unique<CivetServer>(options, &callbacks);
  } catch (const std::exception& e) {
    std::string detail = log.text().empty() ? std::string(e.what()) : log.text();
    throw ExporterError("spindle exporter: cannot listen on " + bind_address + ": " +
                        std::string(reason_for(detail)) + " (civetweb: " + detail + ")");
  }
}

}  // namespace spindle::detail

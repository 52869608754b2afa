#include "metrics_handler.hpp"

#include <civetweb.h>

#include <exception>
#include <string>
#include <utility>

#include "text_format.hpp"

namespace spindle::detail {

MetricsHandler::MetricsHandler(std::shared_ptr<const MetricsCollectable> collectable)
    : collectable_(std::move(collectable)) {}

bool MetricsHandler::handleGet(CivetServer* /*server*/, mg_connection* conn) {
  std::string body;
  try {
    body = collectable_->text();
  } catch (const std::exception&) {
    // Collect() never throws; only the text's memory can fail.
    mg_send_http_error(conn, 500, "%s", "spindle exporter: out of memory writing the scrape\n");
    return true;
  }
  mg_send_http_ok(conn, kTextFormatContentType, static_cast<long long>(body.size()));
  // A scraper that hung up makes this fail: nothing more to do for it.
  mg_write(conn, body.data(), body.size());
  return true;
}

}  // namespace spindle::detail

// Internal: the exporter's GET handler, civetweb's side of a scrape.
//
//   spindle::detail::MetricsHandler  answers GET <path> with the collectable's text
//
// Example:
//   MetricsHandler handler(collectable);
//   server.addHandler("/metrics", handler);   // must outlive the server's last request
//
// A scrape: MetricsCollectable::text() (Collect(), then spindle's own
// text-format writer, text_format.hpp), then `200 OK` with Content-Type
// `text/plain; version=0.0.4; charset=utf-8`, Content-Length and the body
// in one write. The response is not compressed (Accept-Encoding is
// ignored). If the text cannot be built (out of memory) the answer is
// 500 instead: a handler exception would end civetweb's thread. Other
// methods than GET are not handled here (civetweb answers them as before).
//
// Thread safety: immutable after construction; civetweb's threads may
// call handleGet() at once (the collectable is safe to read concurrently).
#pragma once

#include <CivetServer.h>

#include <memory>

#include "spindle/exporter/metrics_collectable.hpp"

namespace spindle::detail {

class MetricsHandler final : public CivetHandler {
 public:
  explicit MetricsHandler(std::shared_ptr<const MetricsCollectable> collectable);

  using CivetHandler::handleGet;
  /// Serves one scrape (see above). Blocks on the collectable's reading
  /// and on sending the body. Never throws; always returns true (handled).
  bool handleGet(CivetServer* server, mg_connection* conn) override;

 private:
  std::shared_ptr<const MetricsCollectable> collectable_;  // what each scrape reads
};

}  // namespace spindle::detail

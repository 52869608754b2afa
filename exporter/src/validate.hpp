// Internal: checks of what users hand the exporter, each with a message that
// names the bad value and says what is accepted.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace spindle::detail {

/// True when `s` is well-formed UTF-8 (Prometheus label values must be).
bool is_valid_utf8(std::string_view s) noexcept;

/// True for a Prometheus label name: [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__".
bool is_valid_label_name(std::string_view name) noexcept;

/// Throws ConfigError for the first constant label that is invalid,
/// reserved, one of spindle's own labels, or has a non-UTF-8 value.
void check_const_labels(const std::map<std::string, std::string>& labels);

/// Throws UsageError unless `name` can be a `monitor` or `runtime` label
/// value: non-empty, valid UTF-8. `what` is "monitor" or "runtime".
void check_source_name(std::string_view name, std::string_view what);

/// Throws ConfigError unless `address` is "PORT" or "HOST:PORT" with a
/// port in 0..65535 and a host of letters, digits, '.', '-', or an IPv6
/// literal in brackets ("[::1]:9464").
void check_bind_address(std::string_view address);

/// Throws ConfigError unless `path` is an absolute URL path without
/// spaces, control characters, '?' or '#'.
void check_path(std::string_view path, std::string_view field = "path");

}  // namespace spindle::detail

#include "scrape_support.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

#include "support/sync.hpp"

namespace spindle::test {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

HttpResponse http_get(std::uint16_t port, const std::string& path,
                      const std::optional<std::string>& authorization) {
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                        "\r\nConnection: close\r\n";
  if (authorization) request += "Authorization: " + *authorization + "\r\n";
  request += "\r\n";
  asio::write(socket, asio::buffer(request));

  std::string raw;
  std::array<char, 65536> buf{};
  asio::error_code ec;
  for (;;) {
    const std::size_t n = socket.read_some(asio::buffer(buf), ec);
    raw.append(buf.data(), n);
    if (ec) break;  // eof: the server closed the connection
  }
  if (ec != asio::error::eof && ec != asio::error::connection_reset) {
    ADD_FAILURE() << "reading the response: " << ec.message();
  }

  HttpResponse r;
  const std::size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    ADD_FAILURE() << "no HTTP header in the response: " << raw.substr(0, 200);
    return r;
  }
  std::istringstream head(raw.substr(0, head_end));
  std::string line;
  std::getline(head, line);
  if (line.rfind("HTTP/1.", 0) == 0 && line.size() >= 12) r.status = std::stoi(line.substr(9, 3));
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    r.headers[lower(line.substr(0, colon))] = value;
  }
  r.body = raw.substr(head_end + 4);
  if (auto it = r.headers.find("content-length"); it != r.headers.end()) {
    const std::size_t len = std::stoul(it->second);
    EXPECT_EQ(r.body.size(), len) << "body shorter or longer than Content-Length";
    if (r.body.size() > len) r.body.resize(len);
  }
  return r;
}

std::string basic_authorization(std::string_view user, std::string_view password) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const std::string in = std::string(user) + ":" + std::string(password);
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const auto n = (static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << 16) |
                   (static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8) |
                   static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 2]));
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (const std::size_t rest = in.size() - i; rest > 0) {
    std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << 16;
    if (rest == 2) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += rest == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return "Basic " + out;
}

// ---- parsing -----------------------------------------------------------------

std::string Scrape::type(const std::string& family) const {
  const auto it = types.find(family);
  return it == types.end() ? std::string() : it->second;
}

std::vector<Sample> Scrape::find(const std::string& name, const LabelMap& match) const {
  std::vector<Sample> out;
  for (const Sample& s : samples) {
    if (s.name != name) continue;
    bool ok = true;
    for (const auto& [k, v] : match) {
      const auto it = s.labels.find(k);
      if (it == s.labels.end() || it->second != v) {
        ok = false;
        break;
      }
    }
    if (ok) out.push_back(s);
  }
  return out;
}

double Scrape::value(const std::string& name, const LabelMap& match) const {
  const std::vector<Sample> found = find(name, match);
  if (found.size() != 1) {
    std::string labels;
    for (const auto& [k, v] : match) labels += k + "=" + v + " ";
    ADD_FAILURE() << "expected exactly one sample " << name << " {" << labels << "}, found "
                  << found.size();
    return std::numeric_limits<double>::quiet_NaN();
  }
  return found.front().value;
}

double Scrape::sum(const std::string& name, const LabelMap& match) const {
  double total = 0;
  for (const Sample& s : find(name, match)) total += s.value;
  return total;
}

namespace {

// Parses `key="value",...}` starting after '{'; returns the position after '}'.
std::size_t parse_labels(std::string_view line, std::size_t pos, LabelMap& labels, bool& ok) {
  ok = false;
  while (pos < line.size()) {
    if (line[pos] == '}') {
      ok = true;
      return pos + 1;
    }
    const std::size_t eq = line.find('=', pos);
    if (eq == std::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"') return pos;
    const std::string key(line.substr(pos, eq - pos));
    std::string value;
    std::size_t i = eq + 2;
    for (; i < line.size() && line[i] != '"'; ++i) {
      if (line[i] == '\\' && i + 1 < line.size()) {
        ++i;
        value += line[i] == 'n' ? '\n' : line[i];
      } else {
        value += line[i];
      }
    }
    if (i >= line.size()) return pos;
    labels[key] = value;
    pos = i + 1;
    if (pos < line.size() && line[pos] == ',') ++pos;
  }
  return pos;
}

// HELP text escapes only '\' (as \\) and newline (as \n); any other
// backslash stands for itself.
std::string unescape_help(std::string_view escaped) {
  std::string help;
  for (std::size_t i = 0; i < escaped.size(); ++i) {
    if (escaped[i] == '\\' && i + 1 < escaped.size() &&
        (escaped[i + 1] == '\\' || escaped[i + 1] == 'n')) {
      ++i;
      help += escaped[i] == 'n' ? '\n' : '\\';
    } else {
      help += escaped[i];
    }
  }
  return help;
}

}  // namespace

Scrape parse_scrape(std::string_view text) {
  Scrape s;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    if (line.rfind("# TYPE ", 0) == 0 || line.rfind("# HELP ", 0) == 0) {
      const std::string_view rest = line.substr(7);
      const std::size_t space = rest.find(' ');
      const std::string name(rest.substr(0, space));
      const std::string arg(space == std::string_view::npos ? "" : rest.substr(space + 1));
      if (line[2] == 'T') {
        s.types[name] = arg;
      } else {
        s.helps[name] = unescape_help(arg);
      }
      continue;
    }
    if (line.front() == '#') continue;
    Sample sample;
    std::size_t pos = line.find_first_of("{ ");
    if (pos == std::string_view::npos) {
      ADD_FAILURE() << "cannot parse scrape line: " << line;
      continue;
    }
    sample.name = std::string(line.substr(0, pos));
    if (line[pos] == '{') {
      bool ok = false;
      pos = parse_labels(line, pos + 1, sample.labels, ok);
      if (!ok) {
        ADD_FAILURE() << "cannot parse the labels of: " << line;
        continue;
      }
    }
    while (pos < line.size() && line[pos] == ' ') ++pos;
    const std::string value(line.substr(pos, line.find(' ', pos) - pos));
    char* parse_end = nullptr;
    sample.value = std::strtod(value.c_str(), &parse_end);
    if (value.empty() || parse_end != value.c_str() + value.size()) {
      ADD_FAILURE() << "cannot parse the value of: " << line;
      continue;
    }
    s.samples.push_back(std::move(sample));
  }
  return s;
}

// ---- promtool ----------------------------------------------------------------

PromtoolResult promtool_check(const std::string& body) {
  PromtoolResult r;
  char path[] = "/tmp/spindle-exporter-scrape-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) {
    r.output = "mkstemp failed";
    return r;
  }
  close(fd);
  {
    std::ofstream out(path, std::ios::binary);
    out << body;
  }
  const std::string cmd = std::string("promtool check metrics < ") + path + " 2>&1";
  if (FILE* p = popen(cmd.c_str(), "r")) {
    std::array<char, 4096> buf{};
    std::size_t n = 0;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
    const int status = pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  unlink(path);
  return r;
}

// ---- ParkedTasks -------------------------------------------------------------

namespace {

Task<void> parked_task(int yields, sync::Notify& notify, std::atomic<bool>& released) {
  for (int i = 0; i < yields; ++i) co_await yield_now();
  for (;;) {
    // Created before the check, so a notify_waiters() after it is seen.
    auto notified = notify.notified();
    if (released.load()) co_return;
    co_await notified;
  }
}

}  // namespace

ParkedTasks::ParkedTasks(const Handle& rt, const TaskMonitor& monitor, int n, int yields)
    : monitor_(monitor),
      expected_polls_(monitor.cumulative().total_poll_count +
                      static_cast<std::uint64_t>(n) * static_cast<std::uint64_t>(yields + 1)) {
  for (int i = 0; i < n; ++i) {
    tasks_.push_back(rt.spawn(monitor.instrument(parked_task(yields, notify_, released_))));
  }
}

ParkedTasks::~ParkedTasks() { release(); }

bool ParkedTasks::wait_parked() const {
  return eventually([&] { return monitor_.cumulative().total_poll_count >= expected_polls_; }) &&
         eventually([&] { return notify_.waiter_count() == tasks_.size(); });
}

void ParkedTasks::release() {
  released_.store(true);
  notify_.notify_waiters();
  for (JoinHandle<void>& t : tasks_) {
    if (!t.valid()) continue;
    try {
      t.join();
    } catch (const std::exception&) {
      // Cancelled by a runtime shutdown: nothing to release.
    }
  }
  tasks_.clear();
}

}  // namespace spindle::test

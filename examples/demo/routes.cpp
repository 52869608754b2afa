// examples/demo/routes.cpp — the handlers of spindle-demo's routes (see routes.hpp).
//
// Each handler is the work of one request and runs as a root task under its route's
// TaskMonitor. The "cause" handlers do on a worker thread what the seed talk warns about;
// their fixed twins do the same work the way spindle wants it done:
//
//   blocking-sleep   std::this_thread::sleep_for parks the *worker thread*: every task
//                    queued behind it on that worker waits (scheduled delay), and the
//                    sleep itself is one long poll. Fixed: spawn_blocking moves the sleep
//                    to the blocking pool; the task is idle while it waits.
//   file-read        read(2) of a 16 MiB file (from the page cache: mostly the kernel's
//                    copy, about 3 ms of CPU with the checksum) is synchronous I/O and CPU on the
//                    worker. Fixed: the same read on the blocking pool.
//   big-loop         10 ms of computation in one poll. Fixed: the same work in 0.5 ms
//                    slices with co_await yield_now() between them, so queued tasks run
//                    in between (the slices show up as self-wakes).
//   lock             the lock is held across an await (a 5 ms timer) while other requests
//                    want it. The waiters take it the way blocking code does: they block
//                    their worker thread. A std::mutex cannot be used for this at all —
//                    the task may resume on another worker, and unlocking a std::mutex
//                    from a thread that does not own it is undefined behaviour — so the
//                    lock is a ThreadBlockingLock (std::mutex + condition variable, which
//                    any thread may release) with the same effect on the worker. Left at
//                    that, it deadlocks: the holder's timer fires on a worker that is
//                    blocked waiting for the holder. So each wait is bounded (2 ms) and
//                    followed by a 1 ms back-off (an async sleep), which frees the worker
//                    to run the holder: the service degrades — slow polls on /lock, long
//                    scheduled delays for every task on the blocked workers, the holder's
//                    5 ms await stretching — but never hangs. (Backing off with
//                    yield_now() instead is far worse: the waiter is polled again before
//                    the worker next services its timers and sockets, which it does only
//                    every 61 polls when busy, so the holder's await stretches ~20x and
//                    the whole service saturates.) Fixed: spindle::sync::Mutex, whose
//                    waiters wait as tasks (idle time) while the workers stay free.
//   slow-downstream  a 50 ms timer standing for a slow backend: long idle, fast polls,
//                    no scheduling delay. Not a bug in the service; nothing to fix here.
//   victim           a well-behaved cooperative task: 20 steps of 20 us of computation,
//                    co_await yield_now() after each. It never blocks and never waits for
//                    an event, so its time is its (short) polls and the waits for a worker
//                    after each yield: wherever another task holds the worker, those waits
//                    grow, and the verdict is "scheduled" with that task as the culprit.
//                    Nothing to fix in it: fix the culprit's polls, or add workers.
#include "routes.hpp"

#include <mutex>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <spindle/sync/mutex.hpp>
#include <system_error>
#include <thread>
#include <utility>

#include "format.hpp"
#include "http.hpp"

namespace demo {

namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

// A lock that blocks the calling *thread* while it waits, like std::mutex, but that any
// thread may release (a task holding it across an await may resume on another worker).
// Its own mutex is held only inside try_lock_for() and unlock(), never across an await.
class ThreadBlockingLock {
 public:
  // Waits at most `d`, blocking the calling thread; true when the lock was taken.
  bool try_lock_for(nanoseconds d) {
    const auto deadline = std::chrono::steady_clock::now() + d;
    std::lock_guard<std::mutex> lock(mu_);
    while (locked_) {
      if (cv_.wait_until(mu_, deadline) == std::cv_status::timeout && locked_) return false;
    }
    locked_ = true;
    return true;
  }
  void unlock() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      locked_ = false;
    }
    cv_.notify_one();
  }

 private:
  std::mutex mu_;                                  // guards locked_; held only inside these calls
  std::condition_variable_any cv_;            // signalled by unlock()
  bool locked_ = false;  // a task holds the lock
};

// Unlocks a ThreadBlockingLock when the handler's frame goes away (also when the task
// is destroyed mid-await at shutdown).
class ThreadBlockingLockHolder {
 public:
  explicit ThreadBlockingLockHolder(ThreadBlockingLock& lock) noexcept : lock_(&lock) {}
  ThreadBlockingLockHolder(const ThreadBlockingLockHolder&) = delete;
  ThreadBlockingLockHolder& operator=(const ThreadBlockingLockHolder&) = delete;
  ~ThreadBlockingLockHolder() { lock_->unlock(); }

 private:
  ThreadBlockingLock* lock_;  // held by us
};

// A file of pseudo-random bytes in the temp directory, removed when destroyed.
class TempFile {
 public:
  explicit TempFile(std::size_t bytes) {
    std::string pattern = (std::filesystem::temp_directory_path() / "spindle-demo-XXXXXX").string();
    const int fd = ::mkstemp(pattern.data());
    if (fd < 0) {
      throw std::system_error(errno, std::generic_category(),
                              "spindle-demo: cannot create a temp file like " + pattern);
    }
    path_ = pattern;
    std::vector<std::uint64_t> chunk(128 * 1024);  // 1 MiB
    std::uint64_t x = 0x9E3779B97F4A7C15ULL;
    std::size_t left = bytes;
    while (left > 0) {
      for (auto& word : chunk) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        word = x;
      }
      const std::size_t n = std::min(left, chunk.size() * sizeof(std::uint64_t));
      const char* p = reinterpret_cast<const char*>(chunk.data());
      std::size_t done = 0;
      while (done < n) {
        const ssize_t w = ::write(fd, p + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
          const int err = errno;
          ::close(fd);
          std::filesystem::remove(path_);
          throw std::system_error(err, std::generic_category(), "spindle-demo: writing " + path_);
        }
        done += static_cast<std::size_t>(w);
      }
      left -= n;
    }
    ::close(fd);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;  // where the file is
};

// What reading the file produced.
struct FileDigest {
  std::uint64_t bytes = 0;     // bytes read
  std::uint64_t checksum = 0;  // sum of the 64-bit words (so the read cannot be elided)
};

// Reads the whole file with plain blocking read(2) calls. Throws std::system_error.
FileDigest read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + path);
  std::vector<unsigned char> buffer(1024 * 1024);
  FileDigest digest;
  for (;;) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      throw std::system_error(err, std::generic_category(), "read " + path);
    }
    if (n == 0) break;
    const auto got = static_cast<std::size_t>(n);
    digest.bytes += got;
    std::size_t i = 0;
    for (; i + sizeof(std::uint64_t) <= got; i += sizeof(std::uint64_t)) {
      std::uint64_t word = 0;
      std::memcpy(&word, buffer.data() + i, sizeof word);
      digest.checksum += word;  // cheap next to the read itself (a memcpy per word)
    }
    for (; i < got; ++i) digest.checksum += buffer[i];
  }
  ::close(fd);
  return digest;
}

// Computes (xorshift rounds) until `d` has passed on the steady clock, without awaiting.
std::uint64_t compute_for(nanoseconds d, std::uint64_t x) {
  x |= 1;  // xorshift never leaves 0
  const auto end = std::chrono::steady_clock::now() + d;
  do {
    for (int i = 0; i < 1024; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
    }
  } while (std::chrono::steady_clock::now() < end);
  return x;
}

std::uint64_t seed() noexcept {
  return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
}

}  // namespace

// The handlers' shared state. Every running handler holds a reference, so it outlives
// them all (also the frames the runtime destroys at shutdown).
class Workload {
 public:
  explicit Workload(const Timings& t) : timings(t), file(t.file_bytes) {}

  const Timings timings;                      // the durations
  const TempFile file;                        // /file-read's file
  ThreadBlockingLock blocking_lock;           // /lock's lock
  spindle::sync::Mutex<std::uint64_t> mutex;  // /lock-fixed's lock (counts its holders)
};

namespace {

using WorkloadPtr = std::shared_ptr<Workload>;

nanoseconds or_default(const RouteArgs& args, nanoseconds d) {
  return args.ms ? nanoseconds(*args.ms) : d;
}

std::string mib(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

spindle::Task<std::string> healthy(WorkloadPtr w, RouteArgs args) {
  const nanoseconds d = or_default(args, w->timings.healthy_sleep);
  co_await spindle::sleep(d);
  co_return "awaited a " + format_duration(d) + " timer";
}

spindle::Task<std::string> blocking_sleep(WorkloadPtr w, RouteArgs args) {
  const nanoseconds d = or_default(args, w->timings.blocking_sleep);
  std::this_thread::sleep_for(d);  // the cause: the worker thread sleeps
  co_return "std::this_thread::sleep_for(" + format_duration(d) + ") on a worker thread";
}

spindle::Task<std::string> blocking_sleep_fixed(WorkloadPtr w, RouteArgs args) {
  const nanoseconds d = or_default(args, w->timings.blocking_sleep);
  // The job is started in its own statement: see file_read_fixed() below.
  spindle::JoinHandle<void> job = spindle::spawn_blocking([d] { std::this_thread::sleep_for(d); });
  co_await job;
  co_return "std::this_thread::sleep_for(" + format_duration(d) + ") on the blocking pool";
}

spindle::Task<std::string> file_read(WorkloadPtr w, RouteArgs /*args*/) {
  const FileDigest digest = read_file(w->file.path());  // the cause: blocking I/O on the worker
  co_return "read " + mib(digest.bytes) + " synchronously on a worker thread (checksum " +
      std::to_string(digest.checksum) + ")";
}

spindle::Task<std::string> file_read_fixed(WorkloadPtr w, RouteArgs /*args*/) {
  // Not `co_await spindle::spawn_blocking([path = ...] {...})`: GCC 12 destroys a closure
  // with a non-trivial capture twice when it is a temporary inside a co_await expression
  // (a double free; clang is fine). Starting the job in its own statement avoids it.
  spindle::JoinHandle<FileDigest> job =
      spindle::spawn_blocking([path = w->file.path()] { return read_file(path); });
  const FileDigest digest = co_await job;
  co_return "read " + mib(digest.bytes) + " on the blocking pool (checksum " +
      std::to_string(digest.checksum) + ")";
}

spindle::Task<std::string> big_loop(WorkloadPtr w, RouteArgs args) {
  const nanoseconds d = or_default(args, w->timings.big_loop);
  const std::uint64_t x = compute_for(d, seed());  // the cause: one long poll
  co_return "computed for " + format_duration(d) + " without awaiting (" +
      std::to_string(x % 1000) + ")";
}

spindle::Task<std::string> big_loop_fixed(WorkloadPtr w, RouteArgs args) {
  const nanoseconds total = or_default(args, w->timings.big_loop);
  const nanoseconds slice = w->timings.yield_every;
  std::uint64_t x = seed();
  int slices = 0;
  for (nanoseconds left = total; left > nanoseconds(0); left -= slice) {
    x = compute_for(std::min(left, slice), x);
    ++slices;
    co_await spindle::yield_now();  // let the tasks queued behind us run
  }
  co_return "computed for " + format_duration(total) + " in " + std::to_string(slices) +
      " slices, yielding between them (" + std::to_string(x % 1000) + ")";
}

spindle::Task<std::string> lock(WorkloadPtr w, RouteArgs args) {
  const nanoseconds hold = or_default(args, w->timings.lock_hold);
  const auto asked = std::chrono::steady_clock::now();
  int blocked_waits = 0;
  // The cause: waiting blocks the worker thread. Bounded and followed by a back-off so
  // that the worker can also run the holder (see the file comment): degraded, never
  // deadlocked.
  while (!w->blocking_lock.try_lock_for(w->timings.lock_wait_slice)) {
    ++blocked_waits;
    co_await spindle::sleep(w->timings.lock_wait_slice / 2);
  }
  const ThreadBlockingLockHolder held(w->blocking_lock);
  const auto got = std::chrono::steady_clock::now();
  co_await spindle::sleep(hold);  // ...and the lock is held across an await
  co_return "waited " + format_duration(got - asked) + " for a thread-blocking lock (" +
      std::to_string(blocked_waits) + " blocked waits of " +
      format_duration(w->timings.lock_wait_slice) + "), then held it across a " +
      format_duration(hold) + " await";
}

spindle::Task<std::string> lock_fixed(WorkloadPtr w, RouteArgs args) {
  const nanoseconds hold = or_default(args, w->timings.lock_hold);
  const auto asked = std::chrono::steady_clock::now();
  auto guard = co_await w->mutex.lock();  // waiters wait as tasks: the worker stays free
  const auto got = std::chrono::steady_clock::now();
  ++*guard;
  co_await spindle::sleep(hold);
  co_return "waited " + format_duration(got - asked) +
      " for spindle::sync::Mutex as a task, then held it across a " + format_duration(hold) +
      " await";
}

spindle::Task<std::string> victim(WorkloadPtr w, RouteArgs /*args*/) {
  const nanoseconds step = w->timings.victim_step;
  std::uint64_t x = seed();
  for (int i = 0; i < w->timings.victim_steps; ++i) {
    x = compute_for(step, x);
    co_await spindle::yield_now();  // ready at once: what follows is waiting for a worker
  }
  co_return "computed " + std::to_string(w->timings.victim_steps) + " steps of " +
      format_duration(step) + ", yielding after each (" + std::to_string(x % 1000) + ")";
}

spindle::Task<std::string> slow_downstream(WorkloadPtr w, RouteArgs args) {
  const nanoseconds d = or_default(args, w->timings.downstream);
  co_await spindle::sleep(d);  // stands for a call to a slow backend
  co_return "waited " + format_duration(d) + " for the (simulated) downstream service";
}

}  // namespace

// ---- Timings, RouteArgs ----------------------------------------------------------------

Timings Timings::normal() {
  return {.healthy_sleep = milliseconds(1),
          .blocking_sleep = milliseconds(20),
          .file_bytes = 16 * 1024 * 1024,
          .big_loop = milliseconds(10),
          .yield_every = std::chrono::microseconds(500),
          .lock_hold = milliseconds(5),
          .lock_wait_slice = milliseconds(2),
          .downstream = milliseconds(50),
          .victim_steps = 20,
          .victim_step = std::chrono::microseconds(20)};
}

Timings Timings::quick() {
  return {.healthy_sleep = milliseconds(1),
          .blocking_sleep = milliseconds(5),
          .file_bytes = 2 * 1024 * 1024,
          .big_loop = milliseconds(3),
          .yield_every = std::chrono::microseconds(500),
          .lock_hold = milliseconds(2),
          .lock_wait_slice = milliseconds(1),
          .downstream = milliseconds(10),
          .victim_steps = 20,
          .victim_step = std::chrono::microseconds(20)};
}

std::optional<RouteArgs> RouteArgs::parse(std::string_view query, std::string& error) {
  RouteArgs args;
  const std::optional<std::string_view> ms = http::query_value(query, "ms");
  if (!ms) return args;
  int value = -1;
  const auto [end, ec] = std::from_chars(ms->data(), ms->data() + ms->size(), value);
  if (ec != std::errc() || end != ms->data() + ms->size() || value < 0 || value > kMaxMs) {
    error = "ms must be a whole number of milliseconds from 0 to " + std::to_string(kMaxMs) +
            ", not '" + std::string(*ms) + "'";
    return std::nullopt;
  }
  args.ms = milliseconds(value);
  return args;
}

// ---- RouteTable --------------------------------------------------------------------------

RouteTable::RouteTable(const Timings& timings)
    : timings_(timings), workload_(std::make_shared<Workload>(timings)) {
  const Timings& t = timings_;
  struct Spec {
    const char* name;
    std::string description;
    const char* fixed_by;
    Handler handler;
  };
  const Spec specs[] = {
      {"healthy", "async work: awaits a " + format_duration(t.healthy_sleep) + " timer", "",
       &healthy},
      {"blocking-sleep",
       "std::this_thread::sleep_for(" + format_duration(t.blocking_sleep) +
           ") inside the task: the worker thread sleeps",
       "/blocking-sleep-fixed", &blocking_sleep},
      {"blocking-sleep-fixed", "the same sleep via co_await spindle::spawn_blocking(...)", "",
       &blocking_sleep_fixed},
      {"file-read",
       "a synchronous read(2) of a " + mib(t.file_bytes) + " temp file inside the task",
       "/file-read-fixed", &file_read},
      {"file-read-fixed", "the same read via co_await spindle::spawn_blocking(...)", "",
       &file_read_fixed},
      {"big-loop",
       "computes for " + format_duration(t.big_loop) + " without awaiting (one long poll)",
       "/big-loop-fixed", &big_loop},
      {"big-loop-fixed",
       "the same work, co_await spindle::yield_now() every " + format_duration(t.yield_every), "",
       &big_loop_fixed},
      {"lock",
       "a thread-blocking lock held across a " + format_duration(t.lock_hold) +
           " await; waiters block their worker (" + format_duration(t.lock_wait_slice) +
           " at a time, then back off: it degrades instead of deadlocking)",
       "/lock-fixed", &lock},
      {"lock-fixed", "spindle::sync::Mutex held across the same await: waiters wait as tasks", "",
       &lock_fixed},
      {"slow-downstream",
       "awaits a " + format_duration(t.downstream) +
           " 'backend' (a timer): long idle, not a bug in the service",
       "", &slow_downstream},
      {"victim",
       std::to_string(t.victim_steps) + " steps of " + format_duration(t.victim_step) +
           ", co_await spindle::yield_now() after each: well-behaved, it waits for workers "
           "that other routes hold",
       "", &victim},
  };
  for (const Spec& s : specs) {
    routes_.push_back(Route{.name = s.name,
                            .path = std::string("/") + s.name,
                            .description = s.description,
                            .fixed_by = s.fixed_by,
                            .monitor = spindle::TaskMonitor::Builder()
                                           .name(s.name)
                                           .slow_poll_threshold(kSlowPollThreshold)
                                           .long_delay_threshold(kLongDelayThreshold)
                                           .build(),
                            .handler = s.handler});
  }
}

const Route* RouteTable::find(std::string_view path) const noexcept {
  for (const Route& r : routes_) {
    if (r.path == path) return &r;
  }
  return nullptr;
}

std::optional<std::size_t> RouteTable::index_of(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    if (routes_[i].name == name) return i;
  }
  return std::nullopt;
}

std::string RouteTable::index_text() const {
  std::string out =
      "spindle-demo: the seed talk's causes of slow tasks, each with its fixed twin.\n"
      "Every route's handling runs as a task under its own TaskMonitor (the `monitor` label\n"
      "of the spindle_task_* series on /metrics). GET or HEAD:\n\n";
  for (const Route& r : routes_) {
    char line[64];
    std::snprintf(line, sizeof line, "  %-22s ", r.path.c_str());
    out += line;
    out += r.description;
    if (!r.fixed_by.empty()) out += "\n  " + std::string(23, ' ') + "-> fixed by " + r.fixed_by;
    out += "\n";
  }
  out += "\nAdd ?ms=N (0-" + std::to_string(RouteArgs::kMaxMs) +
         ") to override a route's duration, e.g. /blocking-sleep?ms=150 trips the stall "
         "detector.\n";
  return out;
}

spindle::JoinHandle<std::string> RouteTable::spawn(const Route& route, RouteArgs args) const {
  return spindle::spawn(route.monitor.instrument(route.handler(workload_, args)));
}

}  // namespace demo

// tests/compilers/probe.hpp — what the compiler probes of tests/compilers share.
//
//   probe::Task<T>             a minimal lazy coroutine task (symmetric transfer), no spindle
//   probe::Park / drive()      a suspension point that the test resumes by hand, and the loop
//   probe::Counts / Counted    a value that tallies its constructions and destructions
//   probe::Outcome / observe() runs one case in a forked child: its report, or the signal
//   probe::kKnownMiscompiler   true when this compiler is one README.md lists (GCC < 13)
//   probe::check()             prints one line per case and records a failure
//
// Each probe program (one per pattern of README.md's "Known compiler issues")
// runs the miscompiled form and the README's rewrite of it, each in a child
// process so that a crash is an observation rather than the end of the test.
// On a compiler that README.md lists, the miscompiled form must misbehave (so
// the list stays true); everywhere, the rewrite must behave (so the advice
// stays true). The programs use plain C++20 coroutines, not spindle, so that
// what they show is the compiler's doing.
//
// Thread safety: single-threaded programs; the child is a fork() of the parent.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <coroutine>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <utility>

namespace probe {

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
// GCC 13 has the fixes of GCC bugs 106188 (2022-09-07) and 99576/100611/
// 101367/101976 (2022-12-04); Debian 12's GCC 12.2.0 has neither.
inline constexpr bool kKnownMiscompiler = true;
#else
inline constexpr bool kKnownMiscompiler = false;
#endif

inline std::string compiler() {
#if defined(__clang__)
  return "Clang " __clang_version__;
#elif defined(__GNUC__)
  return "GCC " __VERSION__;
#else
  return "an unknown compiler";
#endif
}

/// The one coroutine the test resumes by hand (see Park and drive()).
inline std::coroutine_handle<> parked;  // NOLINT: a test's global

/// An awaiter that always suspends and leaves the handle in `parked`.
struct Park {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept { parked = h; }
  void await_resume() const noexcept {}
};

/// A lazy task: starts when awaited (or resumed), hands its value to the
/// awaiter, then resumes the awaiter (symmetric transfer).
template <class T>
class Task {
 public:
  struct promise_type {
    T value{};
    std::coroutine_handle<> continuation = std::noop_coroutine();
    Task get_return_object() {
      return Task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct Final {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        return h.promise().continuation;
      }
      void await_resume() noexcept {}
    };
    Final final_suspend() noexcept { return {}; }
    void return_value(T v) { value = std::move(v); }
    void unhandled_exception() { std::terminate(); }
  };

  Task(Task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
  Task& operator=(Task&&) = delete;
  ~Task() {
    if (h_) h_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) noexcept {
    h_.promise().continuation = caller;
    return h_;
  }
  T await_resume() { return std::move(h_.promise().value); }

  /// Runs the task from the test: resumes it, then whatever it parked, at
  /// most `steps` times. True when it finished.
  bool drive(int steps = 16) {
    parked = nullptr;
    h_.resume();
    for (int i = 0; i < steps && !h_.done() && parked; ++i) {
      std::coroutine_handle<> next = std::exchange(parked, nullptr);
      next.resume();
    }
    return h_.done();
  }
  [[nodiscard]] const T& result() const { return h_.promise().value; }

 private:
  explicit Task(std::coroutine_handle<promise_type> h) : h_(h) {}
  std::coroutine_handle<promise_type> h_;
};

/// Tallies of Counted objects.
struct Counts {
  int constructed = 0;  // by any constructor
  int destroyed = 0;
};
inline Counts counts;  // NOLINT: a test's global

/// A value with a non-trivial destructor that tallies its lifetime in `counts`.
struct Counted {
  int payload;
  explicit Counted(int p) : payload(p) { ++counts.constructed; }
  Counted(const Counted& o) : payload(o.payload) { ++counts.constructed; }
  Counted(Counted&& o) noexcept : payload(o.payload) { ++counts.constructed; }
  Counted& operator=(const Counted&) = default;
  Counted& operator=(Counted&&) = default;
  ~Counted() { ++counts.destroyed; }
};

/// How one case ended in its child process.
struct Outcome {
  bool exited = false;  // false: killed by a signal
  int status = 0;       // the exit status, or the signal number
  std::string report;   // what the child wrote to its pipe before it ended

  [[nodiscard]] std::string describe() const {
    std::string how = exited ? "exit " + std::to_string(status)
                             : "killed by signal " + std::to_string(status) + " (" +
                                   strsignal(status) + ")";
    return report.empty() ? how : "'" + report + "', " + how;
  }
  /// The child exited normally and reported exactly `expected`.
  [[nodiscard]] bool reported(const std::string& expected) const {
    return exited && status == 0 && report == expected;
  }
};

/// Runs `body` (which returns the report, a std::string) in a forked child
/// and waits for it: at most 10 seconds, after which SIGALRM ends it.
template <class Body>
Outcome observe(Body body) {
  std::fflush(nullptr);
  int fds[2];
  if (pipe(fds) != 0) {
    std::perror("pipe");
    std::exit(2);
  }
  const pid_t pid = fork();
  if (pid < 0) {
    std::perror("fork");
    std::exit(2);
  }
  if (pid == 0) {
    close(fds[0]);
    alarm(10);
    const std::string report = body();
    (void)!write(fds[1], report.data(), report.size());
    _exit(0);
  }
  close(fds[1]);
  Outcome out;
  char buf[256];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) out.report.append(buf, n);
  close(fds[0]);
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  out.exited = WIFEXITED(wstatus);
  out.status = out.exited ? WEXITSTATUS(wstatus) : WTERMSIG(wstatus);
  return out;
}

inline int failures = 0;  // NOLINT: a test's global

/// Prints "<what>: <outcome> -- <verdict>" and counts a failure when !ok.
inline void check(const char* what, const Outcome& out, bool ok, const char* expectation) {
  std::printf("%s: %s -- %s (expected: %s)\n", what, out.describe().c_str(), ok ? "ok" : "FAIL",
              expectation);
  if (!ok) ++failures;
}

/// The exit status of a probe program: 0 when every check held.
inline int finish(const char* pattern) {
  std::printf("%s with %s: %s\n", pattern, compiler().c_str(),
              failures == 0 ? "as README.md says" : "NOT as README.md says");
  return failures == 0 ? 0 : 1;
}

}  // namespace probe

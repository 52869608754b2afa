// tests/compilers/lambda_temporary_in_co_await.cpp — README.md "Known compiler issues" (b).
//
// GCC 12 (bugs 99576, 100611 and 101367; fixed for GCC 13 on 2022-12-04):
// a lambda with captures, created as a temporary inside a `co_await`
// expression that suspends (`co_await spawn_blocking([s = std::string(...)]
// {...})`), has its captures destroyed twice: the coroutine keeps a second
// copy of the closure in its frame and destroys both. A captured std::string
// is freed twice (glibc: "free(): double free detected").
//
// Rewrite: create the awaitable in its own statement (`auto job =
// spawn_blocking(f); co_await job;`), or name the lambda and move it.
#include <string>

#include "probe.hpp"

namespace {

// Stands for spawn_blocking(f): runs f now, returns something that suspends.
template <class F>
probe::Park run(F f) {
  f();
  return {};
}

probe::Task<int> temporary_closure() {
  co_await run([c = probe::Counted(1)] { (void)c; });
  co_return 1;
}

probe::Task<int> named_closure() {
  auto f = [c = probe::Counted(1)] { (void)c; };
  co_await run(std::move(f));
  co_return 1;
}

probe::Task<int> temporary_closure_with_string() {
  co_await run([s = std::string("a string too long for the small-string buffer")] { (void)s; });
  co_return 1;
}

probe::Task<int> named_closure_with_string() {
  auto f = [s = std::string("a string too long for the small-string buffer")] { (void)s; };
  co_await run(std::move(f));
  co_return 1;
}

template <class MakeTask>
std::string run_counted(MakeTask make) {
  probe::counts = {};
  {
    probe::Task<int> t = make();
    if (!t.drive()) return "did not finish";
  }
  return "constructed " + std::to_string(probe::counts.constructed) + ", destroyed " +
         std::to_string(probe::counts.destroyed);
}

template <class MakeTask>
std::string run_string(MakeTask make) {
  probe::Task<int> t = make();
  return t.drive() ? "finished" : "did not finish";
}

}  // namespace

int main() {
  // A named closure moved into run(): the closure and its moved-to copy.
  const std::string named = "constructed 2, destroyed 2";
  const probe::Outcome rewrite = probe::observe([] { return run_counted(named_closure); });
  probe::check("auto f = [c] {...}; co_await run(std::move(f))", rewrite, rewrite.reported(named),
               named.c_str());
  const probe::Outcome rewrite_s = probe::observe([] { return run_string(named_closure_with_string); });
  probe::check("the same with a std::string capture", rewrite_s, rewrite_s.reported("finished"),
               "finished");

  const std::string once = "constructed 1, destroyed 1";
  const std::string twice = "constructed 1, destroyed 2";
  const probe::Outcome pattern = probe::observe([] { return run_counted(temporary_closure); });
  const probe::Outcome pattern_s =
      probe::observe([] { return run_string(temporary_closure_with_string); });
  if (probe::kKnownMiscompiler) {
    probe::check("co_await run([c = Counted()] {...})", pattern, pattern.reported(twice),
                 "miscompiled: the capture is destroyed twice");
    probe::check("co_await run([s = std::string()] {...})", pattern_s, !pattern_s.exited,
                 "miscompiled: a double free kills the program");
  } else {
    probe::check("co_await run([c = Counted()] {...})", pattern, pattern.reported(once),
                 once.c_str());
    probe::check("co_await run([s = std::string()] {...})", pattern_s,
                 pattern_s.reported("finished"), "finished");
  }
  return probe::finish("a capturing lambda temporary in a co_await expression");
}

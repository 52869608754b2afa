// tests/compilers/co_await_in_condition.cpp — README.md "Known compiler issues" (a).
//
// GCC 12 (bug 106188, with 106713; fixed for GCC 13 on 2022-09-07): a
// coroutine that declares no local variable and has a `co_await` in the
// condition of an `if` (or `while`, `switch`) is given a frame without the
// scope that holds its resume point. Resumed for the first time, it starts
// over at its initial suspend point and suspends again: its body never runs,
// the task it awaits never starts, and whoever waits for it waits forever.
// (Some shapes of the body end in an illegal instruction instead.)
//
// Rewrite: `bool ok = co_await x; if (ok) ...` (the declaration is enough).
#include "probe.hpp"

namespace {

bool child_started = false;

// Suspends once, as a task that waits on I/O or a yield would, then yields v.
probe::Task<bool> child(bool v) {
  child_started = true;
  co_await probe::Park{};
  co_return v;
}

// The pattern: no local variable anywhere in the body.
probe::Task<int> branch_on_co_await() {
  if (co_await child(true)) {
    co_return 1;
  } else {
    co_return 2;
  }
}

// The rewrite README.md recommends.
probe::Task<int> branch_on_a_local() {
  const bool ok = co_await child(true);
  if (ok) {
    co_return 1;
  } else {
    co_return 2;
  }
}

template <class MakeTask>
std::string run(MakeTask make) {
  child_started = false;
  probe::Task<int> t = make();
  const bool done = t.drive();
  return "child started " + std::to_string(child_started) + ", done " + std::to_string(done) +
         ", branch " + std::to_string(done ? t.result() : 0);
}

}  // namespace

int main() {
  const std::string correct = "child started 1, done 1, branch 1";

  const probe::Outcome rewrite = probe::observe([] { return run(branch_on_a_local); });
  probe::check("bool ok = co_await x; if (ok)", rewrite, rewrite.reported(correct), correct.c_str());

  const probe::Outcome pattern = probe::observe([] { return run(branch_on_co_await); });
  if (probe::kKnownMiscompiler) {
    // What GCC 12.2 does: the first resume re-enters the initial suspend
    // point, so the child never starts and the task never finishes (or the
    // program dies of an illegal instruction).
    const bool miscompiled =
        pattern.reported("child started 0, done 0, branch 0") || !pattern.exited;
    probe::check("if (co_await x)", pattern, miscompiled,
                 "miscompiled: the body never runs, or a crash");
  } else {
    probe::check("if (co_await x)", pattern, pattern.reported(correct), correct.c_str());
  }
  return probe::finish("co_await in an if condition");
}

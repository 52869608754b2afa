// tests/compilers/aggregate_temporary_in_co_await.cpp — README.md "Known compiler issues" (c).
//
// GCC 12 (bug 101976, fixed with 99576 for GCC 13 on 2022-12-04): an
// aggregate initialized with braces as a temporary inside a `co_await`
// expression that suspends (`co_await ch.send(Msg{Counted(...)})`) has its
// members destroyed twice: the coroutine keeps a second copy of each member
// temporary in its frame and destroys both. A std::string member then ends in
// a crash: "free(): invalid pointer", "double free detected" or, for the short
// string below, a segmentation fault.
//
// Rewrite: build the value in its own statement (`Msg m{Counted(...)};
// co_await ch.send(std::move(m));`).
#include <string>
#include <vector>

#include "probe.hpp"

namespace {

struct Msg {
  probe::Counted value;
  int seq;
};

struct TextMsg {
  std::string text;
  int seq;
};

// Stands for an mpsc Sender: send() takes the value by value, queues it, and
// returns something that suspends (a full channel).
template <class T>
struct Channel {
  std::vector<T> queue;
  probe::Park send(T v) {
    queue.push_back(std::move(v));
    return {};
  }
};

probe::Task<int> send_temporary(Channel<Msg>& ch) {
  co_await ch.send(Msg{probe::Counted(7), 1});
  co_return 1;
}

probe::Task<int> send_named(Channel<Msg>& ch) {
  Msg m{probe::Counted(7), 1};
  co_await ch.send(std::move(m));
  co_return 1;
}

probe::Task<int> send_temporary_text(Channel<TextMsg>& ch) {
  co_await ch.send(TextMsg{std::string("short"), 1});
  co_return 1;
}

probe::Task<int> send_named_text(Channel<TextMsg>& ch) {
  TextMsg m{std::string("short"), 1};
  co_await ch.send(std::move(m));
  co_return 1;
}

template <class Send>
std::string run_counted(Send send) {
  probe::counts = {};
  {
    Channel<Msg> ch;
    ch.queue.reserve(1);  // no reallocation: one move into the queue
    probe::Task<int> t = send(ch);
    if (!t.drive()) return "did not finish";
    if (ch.queue.size() != 1 || ch.queue[0].value.payload != 7) return "lost the value";
  }
  return "constructed " + std::to_string(probe::counts.constructed) + ", destroyed " +
         std::to_string(probe::counts.destroyed);
}

template <class Send>
std::string run_text(Send send) {
  Channel<TextMsg> ch;
  {
    probe::Task<int> t = send(ch);
    if (!t.drive()) return "did not finish";
  }
  return ch.queue.size() == 1 && ch.queue[0].text == "short" ? "delivered" : "lost the value";
}

}  // namespace

int main() {
  // m's Counted, the parameter's (moved from m), the queue's.
  const std::string named = "constructed 3, destroyed 3";
  const probe::Outcome rewrite = probe::observe([] { return run_counted(send_named); });
  probe::check("Msg m{...}; co_await ch.send(std::move(m))", rewrite, rewrite.reported(named),
               named.c_str());
  const probe::Outcome rewrite_t = probe::observe([] { return run_text(send_named_text); });
  probe::check("the same with a std::string member", rewrite_t, rewrite_t.reported("delivered"),
               "delivered");

  // The temporary is the parameter (guaranteed copy elision), then the queue's.
  const std::string correct = "constructed 2, destroyed 2";
  const probe::Outcome pattern = probe::observe([] { return run_counted(send_temporary); });
  const probe::Outcome pattern_t = probe::observe([] { return run_text(send_temporary_text); });
  if (probe::kKnownMiscompiler) {
    probe::check("co_await ch.send(Msg{Counted(7), 1})", pattern,
                 pattern.reported("constructed 2, destroyed 3"),
                 "miscompiled: the member temporary is destroyed twice");
    probe::check("co_await ch.send(TextMsg{std::string(), 1})", pattern_t, !pattern_t.exited,
                 "miscompiled: destroying the string twice kills the program");
  } else {
    probe::check("co_await ch.send(Msg{Counted(7), 1})", pattern, pattern.reported(correct),
                 correct.c_str());
    probe::check("co_await ch.send(TextMsg{std::string(), 1})", pattern_t,
                 pattern_t.reported("delivered"), "delivered");
  }
  return probe::finish("a brace-initialized aggregate temporary in a co_await expression");
}

// Snippets for the compile-time checks of spindle::sync (check_compile.cmake,
// registered in CMakeLists.txt): each SNIPPET_* macro selects one. The
// misuses must fail to compile with a message that says what is wrong; the
// correct uses (SNIPPET_CORRECT_USE) must compile cleanly with the same
// command, which proves that a failure is the misuse's and not the harness's.
// Not part of any test binary.

#include <memory>
#include <optional>
#include <spindle/runtime.hpp>
#include <spindle/sync/mpsc.hpp>
#include <spindle/sync/mutex.hpp>
#include <spindle/sync/notify.hpp>
#include <spindle/sync/oneshot.hpp>
#include <spindle/sync/semaphore.hpp>

namespace ss = spindle::sync;

/// A value type whose destructor may throw.
struct ThrowingDestructor {
  ~ThrowingDestructor() noexcept(false) {}
};

/// A value type that cannot be moved.
struct Pinned {
  Pinned() = default;
  Pinned(Pinned&&) = delete;
};

spindle::Task<int> use(ss::mpsc::Sender<int> tx, ss::mpsc::Receiver<int> rx,
                       ss::Semaphore& sem, ss::Mutex<int>& mutex, ss::Notify& notify) {
#if defined(SNIPPET_CORRECT_USE)
  co_await tx.send(1);
  std::optional<int> got = co_await rx.recv();
  std::optional<int> more = rx.try_recv();
  ss::SemaphorePermit permit = co_await sem.acquire();
  ss::MutexGuard<int> guard = co_await mutex.lock();
  co_await notify.notified();
  auto [otx, orx] = ss::oneshot<std::unique_ptr<int>>();
  auto [utx, urx] = ss::mpsc::unbounded_channel<std::unique_ptr<int>>();
  (void)otx.send(std::make_unique<int>(1));
  co_return *got + more.value_or(0) + static_cast<int>(permit.count()) + *guard +
      (orx.try_recv().has_value() ? 1 : 0) + (utx.valid() && urx.valid() ? 1 : 0);
#elif defined(SNIPPET_DISCARDED_SEND)
  tx.send(1);
#elif defined(SNIPPET_DISCARDED_RECV)
  rx.recv();
#elif defined(SNIPPET_DISCARDED_TRY_RECV)
  rx.try_recv();
#elif defined(SNIPPET_DISCARDED_ACQUIRE)
  sem.acquire(2);
#elif defined(SNIPPET_DISCARDED_LOCK)
  mutex.lock();
#elif defined(SNIPPET_DISCARDED_NOTIFIED)
  notify.notified();
#elif defined(SNIPPET_REFERENCE_VALUE)
  auto channel = ss::mpsc::channel<int&>(4);
#elif defined(SNIPPET_CONST_VALUE)
  auto channel = ss::mpsc::unbounded_channel<const int>();
#elif defined(SNIPPET_PINNED_VALUE)
  auto channel = ss::mpsc::channel<Pinned>(4);
#elif defined(SNIPPET_THROWING_DESTRUCTOR_VALUE)
  auto channel = ss::mpsc::channel<ThrowingDestructor>(4);
#elif defined(SNIPPET_VOID_ONESHOT)
  auto channel = ss::oneshot<void>();
#else
#error "define one SNIPPET_* macro"
#endif
  co_return 0;
}

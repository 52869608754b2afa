// Internal: Clang thread-safety annotations for spindle's public headers.
//
// Public headers cannot use Abseil's macros (Abseil is not a dependency of
// spindle's users), so they spell the same attributes themselves; private
// code may use either (they are the same Clang attributes). Under GCC they
// expand to nothing; under Clang with -Wthread-safety they are checked.
#pragma once

#if defined(__clang__)
#define SPINDLE_ANNOTATE(x) __attribute__((x))
#else
#define SPINDLE_ANNOTATE(x)
#endif

/// A class that is a lock (a capability in Clang's terms).
#define SPINDLE_CAPABILITY(name) SPINDLE_ANNOTATE(capability(name))
/// An RAII class that holds a lock for its lifetime.
#define SPINDLE_SCOPED_CAPABILITY SPINDLE_ANNOTATE(scoped_lockable)
/// A data member that may only be touched while holding `mu`.
#define SPINDLE_GUARDED_BY(mu) SPINDLE_ANNOTATE(guarded_by(mu))
/// A function that must be called with the lock(s) held.
#define SPINDLE_REQUIRES(...) SPINDLE_ANNOTATE(requires_capability(__VA_ARGS__))
/// A function that takes the lock(s) and returns holding them.
#define SPINDLE_ACQUIRE(...) SPINDLE_ANNOTATE(acquire_capability(__VA_ARGS__))
/// A function that releases the lock(s).
#define SPINDLE_RELEASE(...) SPINDLE_ANNOTATE(release_capability(__VA_ARGS__))
/// A function that must not be called with the lock(s) held (it takes them).
#define SPINDLE_EXCLUDES(...) SPINDLE_ANNOTATE(locks_excluded(__VA_ARGS__))
/// A function that tries to take the lock; holds it when it returns `ok`.
#define SPINDLE_TRY_ACQUIRE(...) SPINDLE_ANNOTATE(try_acquire_capability(__VA_ARGS__))

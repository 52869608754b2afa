// A runtime-only service: proves that find_package(spindle COMPONENTS runtime)
// brings spindle::runtime with its headers, library and dependencies (Asio,
// threads) and, for an installed sanitizer build, its -fsanitize flags.
#include <spindle/runtime.hpp>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CONSUMER_HAS_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define CONSUMER_HAS_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CONSUMER_HAS_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define CONSUMER_HAS_TSAN 1
#endif
#if defined(EXPECT_SANITIZER_address) && !defined(CONSUMER_HAS_ASAN)
#error "linked an AddressSanitizer spindle, but this file is not compiled with -fsanitize=address"
#endif
#if defined(EXPECT_SANITIZER_thread) && !defined(CONSUMER_HAS_TSAN)
#error "linked a ThreadSanitizer spindle, but this file is not compiled with -fsanitize=thread"
#endif

spindle::Task<int> answer() { co_return 42; }

int main() {
  auto rt = spindle::Runtime::Builder().worker_threads(1).build();
  return rt.block_on(answer()) == 42 && rt.spawn(answer()).join() == 42 ? 0 : 1;
}

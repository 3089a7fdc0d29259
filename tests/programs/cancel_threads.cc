// Threads cancelled while they allocate: ROUNDS times, 16 threads allocate and free in a loop
// (std::string, std::map, malloc) with deferred cancellation, reaching pthread_testcancel every
// 8 rounds; main cancels and joins them. main leaks 10 blocks of 123 bytes from leak_site.
// Plain, it prints "done ROUNDS rounds" and exits 0. Under heapledger with unwind=libunwind,
// libunwind's pipe reads inside malloc were cancellation points: the forced unwind through
// malloc ended in std::terminate (exit 134) in every run.
//   cancel_threads [ROUNDS]
#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {

void free_current(void* p) {
  std::free(*static_cast<void**>(p));
  *static_cast<void**>(p) = nullptr;
}

void* worker(void* arg) {
  void* current = nullptr;
  pthread_cleanup_push(free_current, &current);
  unsigned s = static_cast<unsigned>(reinterpret_cast<long>(arg)) * 31 + 7;
  for (long it = 0;; ++it) {
    s = s * 1103515245 + 12345;
    current = std::malloc((s >> 8) % 5000 + 1);
    std::string text(100 + s % 200, 'q');
    {
      std::map<int, std::string> m;
      for (int k = 0; k < 20; ++k) m[k] = text;
    }
    if (it % 8 == 0) pthread_testcancel();
    std::free(current);
    current = nullptr;
  }
  pthread_cleanup_pop(0);
  return nullptr;
}

}  // namespace

__attribute__((noinline)) void leak_site(int i) {
  char* volatile p = static_cast<char*>(std::malloc(123));
  std::memset(p, i, 123);
  p = nullptr;
}

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  for (int i = 0; i < 10; ++i) leak_site(i);
  for (int r = 0; r < rounds; ++r) {
    std::vector<pthread_t> threads(16);
    for (long i = 0; i < 16; ++i)
      pthread_create(&threads[i], nullptr, worker, reinterpret_cast<void*>(i));
    usleep(20000 + (r * 7919) % 30000);
    for (pthread_t t : threads) pthread_cancel(t);
    for (pthread_t t : threads) {
      void* result;
      pthread_join(t, &result);
      if (result != PTHREAD_CANCELED) std::puts("not cancelled");
    }
  }
  std::printf("done %d rounds\n", rounds);
  return 0;
}

// Not in the test suite: the program behind the README's figures for threads that fork while
// the exit report is written (Known limits). 24 threads allocate strings in a loop, 8 threads
// fork in a loop (each child allocates, then _exits or execs /bin/true), and after DELAY us
// main calls exit(5). Leaks 24 blocks of 48 bytes (one per allocating thread).
//   /usr/bin/time -f "%e s" env LD_PRELOAD=build-bench/lib/libheapledger.so
//       HEAPLEDGER_OPTIONS=log=none:json=/tmp/r.json build-bench/tests/programs/fork_during_report
//   (one command line)
//   (and with log=none alone, no report; and without LD_PRELOAD)
//   fork_during_report [DELAY]
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

std::atomic<int> g_ready{0};

void allocate_forever(unsigned seed) {
  std::vector<std::string> kept(50);
  for (unsigned s = seed;;) {
    s = s * 1103515245 + 12345;
    kept[s % 50] = std::string((s >> 8) % 3000, 'c');
  }
}

void fork_forever() {
  for (int k = 0;; ++k) {
    const pid_t child = fork();
    if (child == 0) {
      std::string text(1000, 'k');
      char* volatile block = static_cast<char*>(std::malloc(10));
      (void)block;
      if (k % 2) execl("/bin/true", "true", static_cast<char*>(nullptr));
      _exit(0);
    }
    int status;
    if (child > 0) waitpid(child, &status, 0);
  }
}

}  // namespace

__attribute__((noinline)) void leak_site(int i) {
  char* volatile p = static_cast<char*>(std::malloc(48));
  std::memset(p, i, 48);
  p = nullptr;
}

int main(int argc, char** argv) {
  const int delay_us = argc > 1 ? std::atoi(argv[1]) : 300000;
  for (int t = 0; t < 24; ++t)
    std::thread([t] {
      leak_site(t);
      ++g_ready;
      allocate_forever(static_cast<unsigned>(t) + 1);
    }).detach();
  for (int t = 0; t < 8; ++t) std::thread(fork_forever).detach();
  while (g_ready < 24) usleep(100);
  usleep(delay_us);
  std::exit(5);
}

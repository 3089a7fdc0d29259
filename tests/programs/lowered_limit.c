#define _GNU_SOURCE
// Lowers its own address-space limit to 4 GiB (`soft`: the soft limit only; `both`: soft and
// hard; `data`: the data limit's soft one instead), reads it back three ways, then uses it: 1 MiB
// blocks, a thread and a 1 GiB mapping fit, a 6 GiB block and a 5 GiB mapping do not, and a
// 3 GiB mapping fits after a 3 GiB block was freed, as without heapledger. Leaks three of the 1 MiB
// blocks (3,145,728 bytes) from lost_blocks. A forked child reads the limit back too, and a program
// it runs (exec) starts with it. Under heapledger its reservations (2.9 TB of address space, 215
// GiB of it writable) counted against the limit: every malloc over 32 KiB failed, no thread
// started, the report was lost.
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define GiB (1ul << 30)

static void* kept[3];

void lost_blocks(void) {
  for (int i = 0; i < 3; i++) {
    kept[i] = malloc(1 << 20);
    if (kept[i]) memset(kept[i], i + 1, 1 << 20);
  }
}

static void say_limit(const char* how, const struct rlimit* l) {
  printf("%s: soft %lu GiB, hard %s\n", how, (unsigned long)(l->rlim_cur / GiB),
         l->rlim_max == RLIM_INFINITY ? "unlimited"
         : l->rlim_max == 4 * GiB     ? "4 GiB"
                                      : "other");
}

static void* thread_main(void* arg) { return arg; }

// 1 MiB blocks, one after another, until told to stop; counts the ones refused.
static volatile int g_stop;
static void* allocating(void* arg) {
  long* refused = arg;
  while (!g_stop) {
    void* p = malloc(1 << 20);
    if (!p) ++*refused;
    free(p);
  }
  return NULL;
}

int main(int argc, char** argv) {
  const int both = argc > 1 && strcmp(argv[1], "both") == 0;
  const int data = argc > 1 && strcmp(argv[1], "data") == 0;
  const int resource = data ? RLIMIT_DATA : RLIMIT_AS;
  struct rlimit want = {4 * GiB, both ? 4 * GiB : RLIM_INFINITY};
  if (setrlimit(resource, &want) != 0) return perror("setrlimit"), 2;
  struct rlimit back;
  getrlimit(resource, &back);
  say_limit("getrlimit", &back);
  prlimit(0, resource, NULL, &back);
  say_limit("prlimit", &back);
  prlimit(getpid(), resource, NULL, &back);
  say_limit("prlimit(getpid())", &back);
  // Asking for more than the hard limit is refused, as the kernel refuses it, and prlimit then
  // leaves the old value's struct as it was.
  struct rlimit over = {8 * GiB, 4 * GiB};
  printf("soft above hard: %s\n", setrlimit(resource, &over) == 0 ? "accepted" : "refused");
  errno = 0;
  printf("getrlimit into a bad pointer: %s\n",
         getrlimit(resource, (struct rlimit*)16) == 0 ? "ok" : strerror(errno));
  errno = 0;
  printf("setrlimit from a bad pointer: %s\n",
         setrlimit(resource, (struct rlimit*)16) == 0 ? "ok" : strerror(errno));
  // Memory the kernel may not write: refused and left as it was (heapledger's copy through
  // /proc/thread-self/mem, a first version's, wrote the limit into it: a review's).
  static const struct rlimit read_only = {1, 2};
  errno = 0;
  const int into_read_only = getrlimit(resource, (struct rlimit*)&read_only);
  printf("getrlimit into read-only memory: %s, left %lu/%lu\n",
         into_read_only == 0 ? "ok" : strerror(errno),
         (unsigned long)*(volatile const rlim_t*)&read_only.rlim_cur,
         (unsigned long)*(volatile const rlim_t*)&read_only.rlim_max);
  struct rlimit untouched = {111, 222};
  prlimit(0, resource, &over, &untouched);
  printf("refused prlimit, old value: %lu/%lu\n", (unsigned long)untouched.rlim_cur,
         (unsigned long)untouched.rlim_max);
  // One struct for both: the new value is read before the old one is written.
  struct rlimit same = {3 * GiB, want.rlim_max};
  prlimit(0, resource, &same, &same);
  say_limit("prlimit(new, old in one): old", &same);
  getrlimit(resource, &back);
  say_limit("prlimit(new, old in one): now", &back);
  setrlimit(resource, &want);
  pthread_t thread;
  const int started = pthread_create(&thread, NULL, thread_main, NULL) == 0;
  if (started) pthread_join(thread, NULL);
  printf("thread: %s\n", started ? "started" : "refused");

  int fit = 0;
  for (int i = 0; i < 8; i++) {
    void* p = malloc(1 << 20);
    if (p) memset(p, 7, 1 << 20), fit++;
    free(p);
  }
  printf("1 MiB blocks: %d of 8\n", fit);
  lost_blocks();
  printf("kept: %s\n", kept[0] && kept[1] && kept[2] ? "3" : "not all");
  void* big = malloc(6 * GiB);
  printf("6 GiB block: %s\n", big ? "got it" : "refused");
  free(big);
  void* m = mmap(NULL, GiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  printf("1 GiB mapping: %s\n", m != MAP_FAILED ? "got it" : "refused");
  if (m != MAP_FAILED) munmap(m, GiB);
  m = mmap(NULL, 5 * GiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  printf("5 GiB mapping: %s\n", m != MAP_FAILED ? "got it" : "refused");
  if (m != MAP_FAILED) munmap(m, 5 * GiB);
  // A block it freed is its room again (heapledger's quarantine holds the freed mapping).
  void* freed = malloc(3 * GiB);
  printf("3 GiB block: %s\n", freed ? "got it" : "refused");
  free(freed);
  m = mmap(NULL, 3 * GiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  printf("3 GiB mapping after freeing it: %s\n", m != MAP_FAILED ? "got it" : "refused");
  if (m != MAP_FAILED) munmap(m, 3 * GiB);

  // An exec that fails leaves the process as it was, also for its other threads meanwhile.
  char* const none[] = {"no-such-program", NULL};
  execv("/no/such/program", none);
  long refused = 0;
  pthread_t worker;
  if (pthread_create(&worker, NULL, allocating, &refused) == 0) {
    for (int i = 0; i < 300; i++) execvp("no-such-program", none);
    g_stop = 1;
    pthread_join(worker, NULL);
  }
  printf("1 MiB blocks refused beside failed execs: %ld\n", refused);
  void* after = malloc(1 << 20);
  printf("after a failed exec, 1 MiB block: %s\n", after ? "got it" : "refused");
  free(after);

  fflush(stdout);
  pid_t child = fork();
  if (child == 0) {
    getrlimit(resource, &back);
    say_limit("child", &back);
    void* p = malloc(1 << 20);
    printf("child 1 MiB block: %s\n", p ? "got it" : "refused");
    free(p);
    exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  // A program it runs starts with the limit it set (in KiB, as the shell shows it).
  child = fork();
  if (child == 0) {
    execlp("sh", "sh", "-c",
           data ? "echo \"exec'd: soft $(ulimit -S -d) KiB\""
                : "echo \"exec'd: soft $(ulimit -S -v) KiB\"",
           (char*)NULL);
    _exit(127);
  }
  waitpid(child, &status, 0);
  for (int i = 0; i < 3; i++) kept[i] = NULL;
  return 0;
}

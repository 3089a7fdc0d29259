// Tracker memory and exit-report cost: allocates N blocks of 32 bytes from four call sites and
// keeps them all live. Prints its resident set once they are allocated, then leaves with exit(0)
// (the exit report runs) or _exit(0) (no report), so the two runs differ only by the report.
//   live_blocks N exit|_exit
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HL_NOINLINE __attribute__((noinline))

HL_NOINLINE static void* site_a(void) { return malloc(32); }
HL_NOINLINE static void* site_b(void) { return malloc(32); }
HL_NOINLINE static void* site_c(void) { return malloc(32); }
HL_NOINLINE static void* site_d(void) { return malloc(32); }

// VmRSS and VmHWM from /proc/self/status, in KiB.
static void read_rss(long* rss_kb, long* hwm_kb) {
  char line[256];
  FILE* f = fopen("/proc/self/status", "r");
  *rss_kb = *hwm_kb = -1;
  if (!f) return;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "VmRSS:", 6) == 0) *rss_kb = atol(line + 6);
    if (strncmp(line, "VmHWM:", 6) == 0) *hwm_kb = atol(line + 6);
  }
  fclose(f);
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s N exit|_exit\n", argv[0]);
    return 2;
  }
  long n = atol(argv[1]);
  int quick_exit = strcmp(argv[2], "_exit") == 0;
  void* (*const sites[4])(void) = {site_a, site_b, site_c, site_d};
  void** blocks = malloc((size_t)n * sizeof *blocks);
  if (!blocks) return 1;
  for (long i = 0; i < n; ++i) {
    blocks[i] = sites[i & 3]();
    if (!blocks[i]) return 1;
    memset(blocks[i], (int)i, 32);
  }
  long rss_kb, hwm_kb;
  read_rss(&rss_kb, &hwm_kb);
  printf("live_blocks n=%ld rss_kb=%ld hwm_kb=%ld\n", n, rss_kb, hwm_kb);
  fflush(stdout);
  if (quick_exit) _exit(0);
  exit(0);
}

// Calls every malloc-family entry point once and checks glibc's semantics: sizes, alignment,
// contents, errno on failure. Prints one line per check; exit status 0 only if all pass.
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hl_sink.h"

static int failures;

static void check(int ok, const char* what) {
  printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  if (!ok) ++failures;
}

static int aligned(const void* p, size_t align) { return p && (uintptr_t)p % align == 0; }

// volatile: the compiler must not fold or warn about the impossible sizes at compile time.
static volatile size_t huge = SIZE_MAX;

static void check_malloc(void) {
  unsigned char* p = malloc(100);
  check(p != NULL && malloc_usable_size(p) >= 100, "malloc(100), usable size >= 100");
  if (p) hl_fill(p, 100, 1);
  check(p && hl_check(p, 100, 1), "malloc(100) contents hold");
  free(p);
  void* z = malloc(0);
  check(z != NULL, "malloc(0) returns a pointer");
  free(z);
  free(NULL);
  check(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) == 0");
  errno = 0;
  void* m = malloc(huge);
  check(m == NULL && errno == ENOMEM, "malloc(SIZE_MAX) -> NULL, ENOMEM");
  errno = 0;
  m = malloc(huge / 2 + 1);
  check(m == NULL && errno == ENOMEM, "malloc(PTRDIFF_MAX + 1) -> NULL, ENOMEM");
}

static void check_calloc(void) {
  unsigned char* p = calloc(7, 13);
  check(p && hl_all_zero(p, 91) && malloc_usable_size(p) >= 91, "calloc(7, 13) zeroed");
  free(p);
  errno = 0;
  void* o = calloc(huge / 3 + 1, 4);
  check(o == NULL && errno == ENOMEM, "calloc overflow -> NULL, ENOMEM");
  errno = 0;
  o = calloc(huge / 2, 1);
  check(o == NULL && errno == ENOMEM, "calloc(SIZE_MAX / 2, 1) -> NULL, ENOMEM");
  // All that malloc_usable_size says the block has reads zero, as glibc clears its whole chunk.
  int dirty = 0;
  for (size_t size = 1; size < 3000; size += 37) {
    unsigned char* used = malloc(size);
    memset(used, 0xff, malloc_usable_size(used));
    free(used);
    unsigned char* z = calloc(1, size);
    dirty += !hl_all_zero(z, malloc_usable_size(z));
    free(z);
  }
  check(dirty == 0, "calloc: zero up to malloc_usable_size");
}

static void check_realloc(void) {
  unsigned char* p = realloc(NULL, 50);
  check(p != NULL && malloc_usable_size(p) >= 50, "realloc(NULL, 50) allocates");
  if (!p) return;
  hl_fill(p, 50, 3);
  p = realloc(p, 5000);
  check(p && hl_check(p, 50, 3) && malloc_usable_size(p) >= 5000, "realloc grow keeps contents");
  if (!p) return;
  p = realloc(p, 10);
  check(p && hl_check(p, 10, 3), "realloc shrink keeps contents");
  if (!p) return;
  errno = 0;
  unsigned char* q = realloc(p, huge);
  check(q == NULL && errno == ENOMEM && hl_check(p, 10, 3),
        "realloc(p, SIZE_MAX) -> NULL, ENOMEM, p intact");
  q = realloc(p, 0);
  check(q == NULL, "realloc(p, 0) frees p and returns NULL");
}

// A failed reallocarray leaves its argument valid, which GCC's use-after-free analysis ignores.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuse-after-free"
static void check_reallocarray(void) {
  unsigned char* a = reallocarray(NULL, 10, 20);
  check(a != NULL && malloc_usable_size(a) >= 200, "reallocarray(NULL, 10, 20) allocates");
  if (!a) return;
  hl_fill(a, 200, 5);
  a = reallocarray(a, 20, 20);
  check(a && hl_check(a, 200, 5), "reallocarray grow keeps contents");
  if (!a) return;
  errno = 0;
  void* b = reallocarray(a, huge / 2, 4);
  check(b == NULL && errno == ENOMEM && hl_check(a, 200, 5),
        "reallocarray overflow -> NULL, ENOMEM, p intact");
  free(a);
}
#pragma GCC diagnostic pop

static void check_aligned(void) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  void* v = valloc(100);
  check(aligned(v, page) && malloc_usable_size(v) >= 100, "valloc(100) page aligned");
  free(v);
  void* pv = pvalloc(100);
  check(aligned(pv, page) && malloc_usable_size(pv) >= page,
        "pvalloc(100) page aligned, usable size >= page");
  free(pv);
  void* ma = memalign(128, 100);
  check(aligned(ma, 128) && malloc_usable_size(ma) >= 100, "memalign(128, 100)");
  free(ma);
  void* aa = aligned_alloc(64, 128);
  check(aligned(aa, 64) && malloc_usable_size(aa) >= 128, "aligned_alloc(64, 128)");
  free(aa);
  errno = 0;
  void* hm = memalign(64, huge);
  check(hm == NULL && errno == ENOMEM, "memalign(64, SIZE_MAX) -> NULL, ENOMEM");
  errno = 0;
  void* ha = aligned_alloc(64, huge - 63);
  check(ha == NULL && errno == ENOMEM, "aligned_alloc(64, huge) -> NULL, ENOMEM");
  errno = 0;
  void* over = memalign(huge, 1);
  check(over == NULL && errno == EINVAL, "memalign(SIZE_MAX, 1) -> NULL, EINVAL");
  errno = 0;
  over = aligned_alloc(huge / 2 + 2, 100);
  check(over == NULL && errno == EINVAL, "aligned_alloc(2^63 + 1, 100) -> NULL, EINVAL");
  errno = 0;
  over = memalign(huge / 4 + 2, 1);
  check(over == NULL && errno == ENOMEM, "memalign(2^62 + 1, 1) -> NULL, ENOMEM");
}

static void check_options(void) {
  check(mallopt(M_MXFAST, 1000) == 0, "mallopt(M_MXFAST, 1000) -> 0 (out of range)");
  check(mallopt(M_MXFAST, 64) == 1, "mallopt(M_MXFAST, 64) -> 1");
  check(mallopt(M_MMAP_THRESHOLD, 256 * 1024) == 1, "mallopt(M_MMAP_THRESHOLD, 256 KiB) -> 1");
  check(mallopt(M_ARENA_MAX, 2) == 1, "mallopt(M_ARENA_MAX, 2) -> 1");
}

static void check_posix_memalign(void) {
  void* p = NULL;
  int rc = posix_memalign(&p, 32, 100);
  check(rc == 0 && aligned(p, 32) && malloc_usable_size(p) >= 100, "posix_memalign(32, 100)");
  free(p);
  static const size_t bad[] = {0, 3, 4, 24, 48};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    void* untouched = &p;
    rc = posix_memalign(&untouched, bad[i], 100);
    char what[96];
    snprintf(what, sizeof what, "posix_memalign(align %zu) -> EINVAL, pointer untouched", bad[i]);
    check(rc == EINVAL && untouched == &p, what);
  }
  // Called through a pointer: GCC takes the builtin to leave errno alone, and would not read it.
  int (*volatile memalign_fn)(void**, size_t, size_t) = posix_memalign;
  void* untouched = &p;
  errno = 0;
  rc = memalign_fn(&untouched, 64, huge);
  // errno as glibc's leaves it (its allocator's): a perror() after the call says ENOMEM
  check(rc == ENOMEM && untouched == &p && errno == ENOMEM,
        "posix_memalign(64, SIZE_MAX) -> ENOMEM");
  errno = 0;
  rc = memalign_fn(&untouched, 3, 100);
  check(rc == EINVAL && errno == 0, "posix_memalign(3, 100) -> EINVAL, errno untouched");
  errno = 0;
  rc = memalign_fn(&untouched, 64, 100);
  check(rc == 0 && errno == 0, "posix_memalign(64, 100) -> 0, errno untouched");
  free(untouched);
}

// libc allocates on the program's behalf; those blocks must be freeable with free().
static void check_libc_internal(void) {
  char* s = strdup("heapledger");
  check(s && strcmp(s, "heapledger") == 0, "strdup");
  free(s);
  char* f = NULL;
  int n = asprintf(&f, "%d-%s", 42, "x");
  check(n == 4 && f && strcmp(f, "42-x") == 0, "asprintf");
  free(f);
  FILE* mem = open_memstream(&f, &(size_t){0});
  check(mem != NULL, "open_memstream");
  if (mem) {
    fprintf(mem, "%0500d", 1);
    fclose(mem);
    check(f && strlen(f) == 500, "open_memstream grows its buffer");
    free(f);
  }
}

int main(void) {
  check_malloc();
  check_calloc();
  check_realloc();
  check_reallocarray();
  check_aligned();
  check_posix_memalign();
  check_options();
  check_libc_internal();
  printf("misc_api: %d failures\n", failures);
  return failures == 0 ? 0 : 1;
}

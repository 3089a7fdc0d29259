// What loading a shared object costs on this machine: dlopen()s each object named, one after
// another in this process, and prints the wall time of each. A short process under heapledger
// pays this for the runtime module (libheapledger_runtime.so with libunwind and liblzma) at its
// start, and for the reporter (with libdw, libelf, libz, libbz2) at its exit: docs/internals.md,
// "What each step of the start costs". An object already loaded by an earlier one costs nothing.
//   dlopen_cost OBJECT...   e.g. dlopen_cost liblzma.so.5 libunwind.so.8
//   build/lib/libheapledger_runtime.so
#include <dlfcn.h>
#include <stdio.h>
#include <time.h>

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: dlopen_cost OBJECT...\n");
    return 2;
  }
  int status = 0;
  for (int i = 1; i < argc; ++i) {
    const double start = now_us();
    void* handle = dlopen(argv[i], RTLD_NOW | RTLD_LOCAL);
    const double took = now_us() - start;
    if (handle) {
      printf("%-60s %8.1f us\n", argv[i], took);
    } else {
      printf("%-60s not loaded: %s\n", argv[i], dlerror());
      status = 1;
    }
  }
  return status;
}

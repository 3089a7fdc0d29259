// Loads and unloads two same-sized plugins in turn, 20 times each; each leaks one block per load
// (111 bytes from plugin A, 222 from plugin B). The report must name the right plugin and
// function for every block although both plugins occupy the same addresses.
#include <dlfcn.h>
#include <stdio.h>

static int call(const char* path, const char* symbol) {
  void* handle = dlopen(path, RTLD_NOW);
  if (!handle) return 1;
  void* (*fn)(void) = (void* (*)(void))dlsym(handle, symbol);
  if (!fn || !fn()) return 1;
  return dlclose(handle);
}

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  for (int i = 0; i < 20; ++i)
    if (call(argv[1], "reuse_alloc_a") || call(argv[2], "reuse_alloc_b")) return 1;
  printf("dl_reuse: done\n");
  return 0;
}

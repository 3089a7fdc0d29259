// dlopens libleaky_plugin.so (next to this executable, or argv[1]), calls plugin_leak() (leaks 777
// bytes) and plugin_churn(), then dlcloses it, so the report must symbolize an unloaded module.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int plugin_path(char* out, size_t size) {
  static const char kName[] = "libleaky_plugin.so";
  ssize_t n = readlink("/proc/self/exe", out, size - 1);
  if (n <= 0) return 0;
  out[n] = '\0';
  char* slash = strrchr(out, '/');
  if (!slash || (size_t)(slash + 1 - out) + sizeof kName > size) return 0;
  memcpy(slash + 1, kName, sizeof kName);
  return 1;
}

int main(int argc, char** argv) {
  char path[PATH_MAX];
  if (argc > 1) {
    snprintf(path, sizeof path, "%s", argv[1]);
  } else if (!plugin_path(path, sizeof path)) {
    fprintf(stderr, "leak_dlopen: cannot locate the plugin\n");
    return 2;
  }
  void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    fprintf(stderr, "leak_dlopen: %s\n", dlerror());
    return 2;
  }
  void (*leak)(void) = (void (*)(void))dlsym(handle, "plugin_leak");
  int (*churn)(void) = (int (*)(void))dlsym(handle, "plugin_churn");
  if (!leak || !churn) return 2;
  if (!churn()) return 1;
  leak();
  if (dlclose(handle) != 0) return 3;
  // The plugin is really gone: the report has to symbolize it after it was unmapped.
  void* again = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
  printf("leak_dlopen: plugin called and closed, still loaded: %s\n", again ? "yes" : "no");
  return 0;
}

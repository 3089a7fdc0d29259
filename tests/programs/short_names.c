// A C function with a one-letter name: reported as "g", not run through the C++ demangler
// (which reads a bare "g" as the type __float128).
#include <stdlib.h>

#include "hl_sink.h"

__attribute__((noinline)) void g(void) { hl_sink(malloc(24)); }

int main(void) {
  g();
  return 0;
}

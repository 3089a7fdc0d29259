// A statically linked program: LD_PRELOAD cannot take effect, and `heapledger run` must warn.
// Exit status 4, so that pass-through is visible.
#include <stdio.h>

int main(void) {
  printf("static_hello: running without the dynamic linker\n");
  return 4;
}

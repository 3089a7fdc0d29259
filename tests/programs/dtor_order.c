// Linked with libdtor_lib.so (dtor_lib.c), whose destructor runs after the program's: see there.
#include <stdio.h>

void lib_setup(void);

int main(void) {
  lib_setup();
  puts("dtor_order: done");
  return 0;
}

// The smallest leak there is: main allocates, drops the result and returns. Nothing the program
// can reach points at the block, but copies of its address are left in the stack below main's
// frame (by malloc and everything it called), where the exit path's frames run next.
//   leak_discarded   exits 0; 123 bytes definitely lost
#include <stdlib.h>

int main(void) {
  (void)!malloc(123);
  return 0;
}

// Prints errno as main finds it: C has it zero at program start, whatever ran before main.
#include <errno.h>
#include <stdio.h>

int main(void) {
  printf("errno %d\n", errno);
  return 0;
}

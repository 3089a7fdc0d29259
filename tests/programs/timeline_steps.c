// Live memory that steps up and down: three times, a 1 MiB block is allocated, held 30 ms and
// freed, then nothing is held for 30 ms. Exits 0 with nothing leaked.
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void pause_ms(long ms) {
  struct timespec ts = {0, ms * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

int main(void) {
  for (int i = 0; i < 3; ++i) {
    char* volatile block = malloc(1 << 20);
    memset(block, i, 1 << 20);
    pause_ms(30);
    free(block);
    pause_ms(30);
  }
  return 0;
}

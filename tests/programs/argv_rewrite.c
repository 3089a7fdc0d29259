// A program that blanks one of its words, as openssl blanks a password given with -k, then
// leaks 42 bytes. The report's argv has the words it started with, the blanked one empty:
//   argv_rewrite keep secret-word last  ->  [argv_rewrite, keep, "", last]
// (read at exit only, it had one empty word per blanked byte: 14 words).
#include <stdlib.h>
#include <string.h>

#include "hl_sink.h"

int main(int argc, char** argv) {
  if (argc > 2) memset(argv[2], 0, strlen(argv[2]));
  hl_sink(malloc(42));
  return 0;
}

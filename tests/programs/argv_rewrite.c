// A program that hides two of its words, as openssl writes NULs over a password given with -k
// and curl writes spaces (here x's) over one given with -u, then leaks 42 bytes. The report's
// argv has the words it started with, each as the program left it:
//   argv_rewrite keep secret-word pass last  ->  [argv_rewrite, keep, "", xxxx, last]
// (read at exit alone, the NULs made one empty word per byte; taken at start alone, the report
// showed both secrets). With "title" first, it writes a new title over its whole command line
// instead, NUL-padded, as setproctitle does (nginx, redis, postgres):
//   argv_rewrite title a b c  ->  ["argv_rewrite: worker process"]
#include <stdlib.h>
#include <string.h>

#include "hl_sink.h"

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "title") == 0) {
    char* const end = argv[argc - 1] + strlen(argv[argc - 1]);
    static const char kTitle[] = "argv_rewrite: worker process";
    memset(argv[0], 0, (size_t)(end - argv[0]));
    memcpy(argv[0], kTitle, sizeof kTitle < (size_t)(end - argv[0]) ? sizeof kTitle - 1 : 0);
    hl_sink(malloc(42));
    return 0;
  }
  if (argc > 2) memset(argv[2], 0, strlen(argv[2]));
  if (argc > 3) memset(argv[3], 'x', strlen(argv[3]));
  hl_sink(malloc(42));
  return 0;
}

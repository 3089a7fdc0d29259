// File descriptor numbers are the program's own: heapledger's libunwind opens a pipe when it
// starts (it writes a byte from an address into it to see whether the address is readable), and
// that pipe took descriptors 3 and 4. `first` prints the number its first open() gets (3).
// `clobber` closes every descriptor from 3 up, opens an input file and an output file (argv[2],
// argv[3]), allocates 1,000 times through a function built without unwind information (so
// libunwind checks addresses through its pipe), then reads the input and writes "OUT\n" to the
// output: libunwind read bytes out of the input and wrote memory into the output.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void* alloc_without_cfi(size_t n);

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "first") == 0) {
    int fd = open("/dev/null", O_RDONLY);
    printf("first descriptor: %d\n", fd);
    return 0;
  }
  if (argc < 4 || strcmp(argv[1], "clobber") != 0) return 2;
  for (int fd = 3; fd < 8192; fd++) close(fd);
  int in = open(argv[2], O_RDONLY);
  int out = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  for (int i = 0; i < 1000; i++) free(alloc_without_cfi((size_t)(i % 300 + 1)));
  char buf[64];
  ssize_t got = read(in, buf, sizeof buf);
  ssize_t put = write(out, "OUT\n", 4);
  printf("descriptors %d %d, read %zd, wrote %zd\n", in, out, got, put);
  return 0;
}

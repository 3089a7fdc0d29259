// Built without PIE, it takes the address of operator delete, which gives the executable a
// canonical PLT entry for it: the dynamic linker then names that entry as the symbol's address,
// while every call still reaches the allocator's own operators. Makes two mismatched frees
// (malloc / delete, new / free), which must be reported as such.
//   operator_address
#include <cstdio>
#include <cstdlib>
#include <new>

using Deleter = void (*)(void*);
__attribute__((noinline)) Deleter deleter() { return &::operator delete; }

int main(int argc, char**) {
  int* p = static_cast<int*>(std::malloc(sizeof(int)));
  delete p;  // mismatched: malloc / delete
  int* q = new int(argc);
  std::printf("q=%d\n", *q);
  std::free(q);  // mismatched: new / free
  std::printf("deleter %s\n", deleter() ? "taken" : "none");
  return 0;
}

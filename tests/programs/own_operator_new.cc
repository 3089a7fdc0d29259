// A program with an operator new of its own (on malloc), an operator delete of its own (on
// free), or an operator new[] of its own (on operator new), and the rest of the family the C++
// library's: its deletes are right, not mismatched frees. Leaks 3 blocks of 40 bytes from
// leak_site().
//   own_operator_new
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "hl_sink.h"

#if defined(HL_OWN_DELETE)
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#elif defined(HL_OWN_NEW_ARRAY)  // as the standard's own does: the block is operator new's
void* operator new[](std::size_t n) { return ::operator new(n); }
#else
void* operator new(std::size_t n) {
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
#endif

__attribute__((noinline)) static void leak_site() {
  for (int i = 0; i < 3; ++i) hl_sink(std::malloc(40));  // HL_LEAK_SITE leak_site
}

int main() {
  for (int i = 0; i < 50; ++i) delete new int(i);
  std::vector<std::string> v;
  for (int i = 0; i < 100; ++i) v.push_back(std::string(50, 'x'));
  int* array = new int[10];
  delete[] array;
  leak_site();
  std::printf("ok %zu\n", v.size());
  return 0;
}

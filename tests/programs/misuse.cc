// Heap misuse, one of each, from named functions; the program runs on and exits 0 (heapledger
// reports each error and leaves the heap alone):
//   double_free_site:  free() of a block already freed
//   interior_free_site: free() of a pointer 8 bytes into a 64-byte block (the block itself is
//                      then freed); likewise large_interior_free_site, 40,000 bytes into a
//                      100,000-byte block, and slack_free_site, 4 bytes past the end of a 100-byte
//                      block (inside the 112 bytes the pools gave it); before_free_site, 8
//                      bytes before a 3,072-byte block (the only live one of its size class);
//                      and beyond_free_site, 8 bytes past its end (the next slot's, no block's)
//   stack_free_site:   free() of a stack address
//   global_free_site:  free() of a global array (in the executable's static data)
//   array_delete_site: `delete` of a `new[]` block
//   cookie_delete_site: `delete` of a `new[]` array of 3 objects with a destructor (16 bytes each):
//                      new[] handed out the 56-byte block past its 8-byte count of elements, so
//                      this is a free 8 bytes inside it (the array is then deleted with delete[])
//   free_new_site:     free() of a `new` block
//   sized_delete_site: sized delete with the wrong size
//   large_double_free_site: free() of a 1 MiB block already freed, after another 1 MiB block was
//                      allocated (which must not have been given the freed block's address)
//   realloc_new_site:  realloc() of a 100,000-byte `new[]` block to 200,000 bytes (a remap)
//   realloc_new_split_site: the same of one split by madvise (not remapped: copied), reported
//                      once (it was twice: by the realloc and by the copy's free)
//   split_double_free_site: free() of a 100-byte block already freed, after a realloc that
//                      could not remap a large block (split by madvise) and copied it, then
//                      another 100-byte malloc (the freed block must still be held back)
//   huge_double_free_site: the same after a malloc of SIZE_MAX / 2 failed
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include <stdint.h>
#include <sys/mman.h>

__attribute__((noinline)) void double_free_site(void* p) { std::free(p); }
__attribute__((noinline)) void interior_free_site(char* p) { std::free(p + 8); }
__attribute__((noinline)) void large_interior_free_site(char* p) { std::free(p + 40000); }
__attribute__((noinline)) void slack_free_site(char* p) { std::free(p + 104); }
__attribute__((noinline)) void before_free_site(char* p) { std::free(p - 8); }
__attribute__((noinline)) void beyond_free_site(char* p) { std::free(p + 3080); }
__attribute__((noinline)) void stack_free_site(void* p) { std::free(p); }
__attribute__((noinline)) void global_free_site(void* p) { std::free(p); }
char g_global_buffer[64];
__attribute__((noinline)) void array_delete_site(int* p) { delete p; }
struct WithDestructor {
  char bytes[16];
  ~WithDestructor() { bytes[0] = 0; }
};
__attribute__((noinline)) void cookie_delete_site(WithDestructor* p) { delete p; }
__attribute__((noinline)) void free_new_site(int* p) { std::free(p); }
__attribute__((noinline)) void sized_delete_site(void* p) { ::operator delete(p, 7); }
__attribute__((noinline)) void large_double_free_site(void* p) { std::free(p); }
__attribute__((noinline)) void* realloc_new_site(void* p) { return std::realloc(p, 200000); }
__attribute__((noinline)) void* realloc_new_split_site(void* p) { return std::realloc(p, 400000); }
__attribute__((noinline)) void split_double_free_site(void* p) { std::free(p); }
__attribute__((noinline)) void huge_double_free_site(void* p) { std::free(p); }

// Frees `freed` a second time (through site) after `between` ran, while a block of the same size
// taken meanwhile holds a pattern: the second free must not have freed it.
void double_free_after(void (*between)(), void (*site)(void*)) {
  void* freed = std::malloc(100);
  std::free(freed);
  between();
  auto* taken = static_cast<unsigned char*>(std::malloc(100));
  std::memset(taken, 0x5a, 100);
  site(freed);
  auto* next = static_cast<unsigned char*>(std::malloc(100));
  std::memset(next, 0xa5, 100);
  if (taken[0] != 0x5a) std::printf("misuse: a block freed twice was handed out again\n");
  std::free(next);
  std::free(taken);
}

void split_realloc() {
  auto* big = static_cast<char*>(std::malloc(200000));
  char* page =
      reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(big) + 8192) & ~uintptr_t{4095});
  madvise(page, 4096, MADV_DONTFORK);  // the mapping in two parts: it cannot be remapped
  std::free(std::realloc(big, 400000));
}

void huge_malloc() {
  void* volatile huge = std::malloc(SIZE_MAX / 2);
  std::free(huge);
}

int main(int argc, char**) {
  void* a = std::malloc(24);
  std::free(a);
  double_free_site(a);
  char* b = static_cast<char*>(std::malloc(64));
  interior_free_site(b);
  std::free(b);
  char* c = static_cast<char*>(std::malloc(100000));
  large_interior_free_site(c);
  std::free(c);
  char* d = static_cast<char*>(std::malloc(100));
  slack_free_site(d);
  std::free(d);
  char* e = static_cast<char*>(std::malloc(3072));
  before_free_site(e);
  beyond_free_site(e);
  std::free(e);
  int local = 0;
  void* volatile on_stack = &local;
  stack_free_site(on_stack);
  global_free_site(g_global_buffer);
  array_delete_site(new int[4]);
  {
    auto* objects = new WithDestructor[3];
    cookie_delete_site(objects);
    delete[] objects;
  }
  free_new_site(new int(5));
  sized_delete_site(::operator new(16));
  void* big = std::malloc(1 << 20);
  std::memset(big, 1, 1 << 20);
  std::free(big);
  void* other = std::malloc(1 << 20);
  std::memset(other, 2, 1 << 20);
  large_double_free_site(big);
  if (static_cast<unsigned char*>(other)[(1 << 20) - 1] != 2) std::printf("misuse: other block changed\n");
  std::free(other);
  std::free(realloc_new_site(new char[100000]));
  {
    auto* split = new char[200000];
    madvise(reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(split) + 8192) & ~uintptr_t{4095}),
            4096, MADV_DONTFORK);
    std::free(realloc_new_split_site(split));
  }
  double_free_after(split_realloc, split_double_free_site);
  double_free_after(huge_malloc, huge_double_free_site);
  std::printf("misuse: still running (%d)\n", argc);
  return 0;
}

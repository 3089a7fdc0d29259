// Heap misuse, one of each, from named functions; the program runs on and exits 0 (heapledger
// reports each error and leaves the heap alone):
//   double_free_site:  free() of a block already freed
//   interior_free_site: free() of a pointer 8 bytes into a 64-byte block (the block itself is
//                      then freed); likewise large_interior_free_site, 40,000 bytes into a
//                      100,000-byte block, and slack_free_site, 4 bytes past the end of a 100-byte
//                      block (inside the 112 bytes the pools gave it)
//   stack_free_site:   free() of a stack address
//   array_delete_site: `delete` of a `new[]` block
//   free_new_site:     free() of a `new` block
//   sized_delete_site: sized delete with the wrong size
//   large_double_free_site: free() of a 1 MiB block already freed, after another 1 MiB block was
//                      allocated (which must not have been given the freed block's address)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

__attribute__((noinline)) void double_free_site(void* p) { std::free(p); }
__attribute__((noinline)) void interior_free_site(char* p) { std::free(p + 8); }
__attribute__((noinline)) void large_interior_free_site(char* p) { std::free(p + 40000); }
__attribute__((noinline)) void slack_free_site(char* p) { std::free(p + 104); }
__attribute__((noinline)) void stack_free_site(void* p) { std::free(p); }
__attribute__((noinline)) void array_delete_site(int* p) { delete p; }
__attribute__((noinline)) void free_new_site(int* p) { std::free(p); }
__attribute__((noinline)) void sized_delete_site(void* p) { ::operator delete(p, 7); }
__attribute__((noinline)) void large_double_free_site(void* p) { std::free(p); }

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
  int local = 0;
  void* volatile on_stack = &local;
  stack_free_site(on_stack);
  array_delete_site(new int[4]);
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
  std::printf("misuse: still running (%d)\n", argc);
  return 0;
}

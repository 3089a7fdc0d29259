// operator new's failure paths with and without a new_handler: the handler is called until it
// throws, nothrow forms return null, bad alignments throw. Output must not change under heapledger.
#include <new>
#include <cstdio>
#include <cstdint>
static int calls = 0;
static void handler() { ++calls; if (calls >= 3) throw std::bad_alloc(); }
int main() {
  std::set_new_handler(handler);
  void* p = ::operator new(SIZE_MAX / 2, std::nothrow);
  std::printf("nothrow with throwing handler: %p after %d handler calls\n", p, calls);
  calls = 0;
  try { void* q = ::operator new(SIZE_MAX / 2); std::printf("unexpected %p\n", q); } catch (const std::bad_alloc&) { std::printf("throwing new: bad_alloc after %d handler calls\n", calls); }
  std::set_new_handler(nullptr);
  int* a = new (std::nothrow) int[SIZE_MAX / 16]; std::printf("nothrow array no handler: %p\n", (void*)a);
  try { (void)::operator new(64, std::align_val_t(3)); } catch (const std::bad_alloc&) { std::printf("bad alignment: bad_alloc\n"); }
  return 0;
}

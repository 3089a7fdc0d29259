// Blocks the program refers to only through an interior pointer of a shape memcheck's default
// heuristics recognise; each must count as still reachable, not possibly lost:
//   second_base_site: a `C : A, B` held through a global `B*` (multipleinheritance: a vtable
//                     pointer at the start and where the pointer points), 32 bytes;
//   string_body_site: a 40-byte block laid out as the old ABI's copy-on-write std::string
//                     (length 10, capacity 15, reference count, characters), held through a
//                     pointer to its characters, 24 bytes in (stdstring).
// not_a_base_site: a 32-byte block held 16 bytes in, with no vtables: possibly lost.
// guarded_site: a 64 KiB block with a page made inaccessible inside it (a coroutine stack's
// guard), held through a pointer to that page: possibly lost; and beside that pointer, in the
// same global, the only pointer to next_to_guard_site's 100 bytes: still reachable. (Reading the
// guard page to check for a vtable faulted, and the fault ended the scan of the global there:
// both came out definitely lost.)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <sys/mman.h>

struct A {
  virtual ~A() = default;
  virtual long a() { return x; }
  long x = 1;
};
struct B {
  virtual ~B() = default;
  virtual long b() { return y; }
  long y = 2;
};
struct C : A, B {
  long a() override { return 3; }
};
static_assert(sizeof(C) == 32);

B* g_second_base;
char* g_string_body;
char* g_not_a_base;
struct Guarded {
  char* guard;
  void* pad[3];
  void* beside;
};
Guarded g_guarded;

__attribute__((noinline)) B* second_base_site() { return new C; }

__attribute__((noinline)) char* string_body_site() {
  auto* rep = static_cast<std::uint64_t*>(std::malloc(40));
  rep[0] = 10;  // length
  rep[1] = 15;  // capacity: 24 + 15 + 1 = 40
  rep[2] = 0;   // reference count
  std::memcpy(reinterpret_cast<char*>(rep) + 24, "ten chars!", 11);
  return reinterpret_cast<char*>(rep) + 24;
}

__attribute__((noinline)) char* not_a_base_site() {
  auto* p = static_cast<std::uint64_t*>(std::malloc(32));
  std::memset(p, 0, 32);
  return reinterpret_cast<char*>(p) + 16;
}

__attribute__((noinline)) char* guarded_site() {
  auto* block = static_cast<char*>(std::aligned_alloc(4096, 64 * 1024));
  if (mprotect(block + 32 * 1024, 4096, PROT_NONE) != 0) std::abort();
  return block + 32 * 1024;
}
__attribute__((noinline)) void* next_to_guard_site() { return std::malloc(100); }

int main() {
  g_second_base = second_base_site();
  g_string_body = string_body_site();
  g_not_a_base = not_a_base_site();
  g_guarded.guard = guarded_site();
  g_guarded.beside = next_to_guard_site();
  std::printf("heuristics: %ld %s %d\n", g_second_base->b(), g_string_body,
              g_guarded.beside != nullptr);
  return 0;
}

// Leaks 2 x 48-byte Node from leak_new(), new int[25] (100 bytes) from leak_new_array(), and one
// Node from app::leak_named(int) (a mangled name); everything else is deleted. Exit status 0.
#include <cstdio>
#include <memory>
#include <vector>

#include "hl_sink.h"

struct Node {
  long v[6];
};
static_assert(sizeof(Node) == 48);

extern "C" __attribute__((noinline)) void leak_new() {
  for (int i = 0; i < 2; ++i) {
    Node* n = new Node{};
    hl_sink(n);
  }
}

extern "C" __attribute__((noinline)) void leak_new_array() {
  int* a = new int[25];
  hl_sink(a);
}

namespace app {
__attribute__((noinline)) void leak_named(int count) {
  for (int i = 0; i < count; ++i) hl_sink(new Node{});
}
}  // namespace app

// new/delete of every shape: none of these may be reported.
extern "C" __attribute__((noinline)) void churn_new() {
  for (int i = 0; i < 100; ++i) {
    Node* n = new Node{};
    hl_sink(n);
    delete n;
    char* c = new char[i + 1];
    hl_sink(c);
    delete[] c;
  }
  auto owned = std::make_unique<Node>();
  hl_sink(owned.get());
  std::vector<int> v(1000, 7);
  hl_sink(v.data());
}

int main() {
  churn_new();
  leak_new();
  leak_new_array();
  app::leak_named(1);
  std::printf("leak_new: leaked 2 x 48, 1 x 100 and 1 x 48 bytes\n");
  return 0;
}

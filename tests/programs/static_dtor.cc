// Memory a global object allocates in its constructor and frees in its static destructor: the
// exit report is written after static destructors, so none of it may be reported.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

struct Registry {
  Registry();
  ~Registry();
  std::vector<std::string*> names;
  void* raw = nullptr;
};

__attribute__((noinline)) std::string* static_alloc(const char* s) { return new std::string(s, 40); }

Registry::Registry() {
  for (int i = 0; i < 3; ++i) names.push_back(static_alloc("a name long enough to leave SSO...."));
  raw = std::malloc(333);
}

Registry::~Registry() {
  for (std::string* s : names) delete s;
  std::free(raw);
}

Registry g_registry;

int main() {
  static Registry function_static;  // destroyed at exit too
  std::printf("static_dtor: %zu names\n", g_registry.names.size() + function_static.names.size());
  return 0;
}

// A C++ library's static objects, made by its constructor, which runs before heapledger's (the
// executable's libraries come first in the initialisation order): a new[] kept until exit and a
// vector built and freed at once (a sized delete). Linked by own_operator_header_statics, whose
// operators keep a size header: both must reach them then too.
#include <memory>
#include <numeric>
#include <vector>

namespace {
std::unique_ptr<char[]> g_scratch(new char[64]);  // delete[] at exit
const int g_total = [] {
  std::vector<int> v(1000);
  std::iota(v.begin(), v.end(), 1);
  return std::accumulate(v.begin(), v.end(), 0);
}();
}  // namespace

int header_statics_total() { return g_scratch ? g_total : -1; }

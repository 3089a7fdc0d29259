// Whole-process workload: C++ containers built and torn down repeatedly. Each round fills a
// std::map<std::string, std::vector<int>>, a std::unordered_map<std::string, int> and a
// std::list<std::string>, looks things up, then destroys them all.
//   cpp_objects ROUNDS [KEYS]
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

std::uint64_t next_random(std::uint64_t& s) {  // xorshift64*
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  return s * 0x2545F4914F6CDD1DULL;
}

// Longer than the small-string buffer, so every key is a heap allocation.
std::string make_key(std::uint64_t n) { return "bench/object/key/" + std::to_string(n); }

std::uint64_t one_round(int keys, std::uint64_t& rng) {
  std::map<std::string, std::vector<int>> tree;
  std::unordered_map<std::string, int> hash;
  std::list<std::string> list;
  for (int i = 0; i < keys; ++i) {
    std::uint64_t r = next_random(rng);
    std::string key = make_key(r % (4 * static_cast<std::uint64_t>(keys)));
    std::vector<int>& v = tree[key];
    for (int j = 0, n = 1 + static_cast<int>(r >> 40) % 24; j < n; ++j) v.push_back(j);
    hash[key] += static_cast<int>(v.size());
    list.push_back(std::move(key));
  }
  std::uint64_t sum = 0;
  for (const std::string& key : list) {
    auto it = hash.find(key);
    if (it != hash.end()) sum += static_cast<std::uint64_t>(it->second);
  }
  for (auto it = tree.begin(); it != tree.end();) {  // erase every other entry, then the rest
    sum += it->second.size();
    it = tree.erase(it);
    if (it != tree.end()) ++it;
  }
  list.sort();
  sum += list.front().size() + tree.size();
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s ROUNDS [KEYS]\n", argv[0]);
    return 2;
  }
  int rounds = std::atoi(argv[1]);
  int keys = argc > 2 ? std::atoi(argv[2]) : 20000;
  std::uint64_t rng = 0x2545F4914F6CDD1DULL, sum = 0;
  for (int r = 0; r < rounds; ++r) sum += one_round(keys, rng);
  std::printf("cpp_objects rounds=%d keys=%d checksum=%llx\n", rounds, keys,
              static_cast<unsigned long long>(sum));
  return 0;
}

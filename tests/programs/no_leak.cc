// Frees everything it allocates, through the C++ runtime: std::string, vector, map, iostream,
// std::thread, an exception thrown and caught. No leak may be attributed to this program.
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

int word_counts() {
  std::map<std::string, int> counts;
  std::istringstream text("the quick brown fox jumps over the lazy dog the end");
  for (std::string word; text >> word;) ++counts[word];
  return counts["the"];
}

long threaded_sum() {
  std::mutex mu;
  long total = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&mu, &total, t] {
      std::vector<std::unique_ptr<long>> owned;
      for (int i = 0; i < 1000; ++i) owned.push_back(std::make_unique<long>(t * 1000 + i));
      long local = 0;
      for (const auto& p : owned) local += *p;
      std::lock_guard<std::mutex> lock(mu);
      total += local;
    });
  }
  for (auto& th : threads) th.join();
  return total;
}

std::string caught_message() {
  try {
    throw std::runtime_error(std::string("a message long enough to need the heap: ") +
                             std::string(64, 'x'));
  } catch (const std::exception& e) {
    return std::string(e.what()).substr(0, 9);
  }
}

}  // namespace

int main() {
  std::vector<std::string> lines;
  for (int i = 0; i < 100; ++i) lines.push_back("line number " + std::to_string(i));
  std::cout << "no_leak: " << lines.size() << " lines, 'the' x" << word_counts() << ", sum "
            << threaded_sum() << ", caught '" << caught_message() << "'" << std::endl;
  return 0;
}

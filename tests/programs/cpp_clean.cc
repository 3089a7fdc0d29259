// A C++ program that uses iostreams, threads, exceptions, regex and locales and frees everything
// it allocates: the report must contain no definite, indirect or possible leak at all (the
// runtimes' own one-off allocations are still reachable at exit).
#include <iostream>
#include <locale>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

int count_matches(const std::string& text) {
  std::regex word(R"((\w+)@(\w+)\.com)");
  int n = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), word); it != std::sregex_iterator(); ++it) ++n;
  return n;
}

int threaded_work() {
  std::vector<std::thread> threads;
  std::vector<int> results(4);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([t, &results] {
      std::map<std::string, std::vector<int>> m;
      for (int i = 0; i < 500; ++i) m["key" + std::to_string(i % 50)].push_back(i * t);
      results[t] = static_cast<int>(m.size());
    });
  for (auto& th : threads) th.join();
  return results[0] + results[3];
}

int exceptions() {
  int caught = 0;
  for (int i = 0; i < 10; ++i) {
    try {
      auto owned = std::make_unique<std::vector<int>>(100, i);
      throw std::runtime_error("failure number " + std::to_string(i) + " with a long message");
    } catch (const std::exception& e) {
      caught += e.what()[0] == 'f';
    }
  }
  return caught;
}

std::string formatted() {
  std::ostringstream out;
  out.imbue(std::locale::classic());
  out << std::fixed << 3.25 << ' ' << std::hex << 255;
  std::locale loc("C");
  out << ' ' << std::use_facet<std::ctype<char>>(loc).toupper('x');
  return out.str();
}

}  // namespace

int main() {
  std::cout << "matches " << count_matches("a@b.com c@d.com nothing e@f.com") << '\n';
  std::cout << "threads " << threaded_work() << '\n';
  std::cout << "exceptions " << exceptions() << '\n';
  std::cout << "format " << formatted() << std::endl;
  return 0;
}

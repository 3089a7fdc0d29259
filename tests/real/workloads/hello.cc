// C++ source the real-program test compiles with g++ under heapledger, then runs.
#include <algorithm>
#include <iostream>
#include <map>
#include <string>
#include <vector>

template <typename T>
T total(const std::vector<T>& values) {
  T sum{};
  for (const T& v : values) sum += v;
  return sum;
}

int main() {
  std::vector<int> numbers;
  for (int i = 0; i < 100; ++i) numbers.push_back(i * i % 37);
  std::sort(numbers.begin(), numbers.end());
  std::map<std::string, int> names{{"one", 1}, {"two", 2}, {"three", 3}};
  std::cout << "total " << total(numbers) << ", median " << numbers[50] << ", names "
            << names.size() << std::endl;
  return numbers.front() == 0 ? 0 : 1;
}

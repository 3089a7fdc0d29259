// Link-mode consumer: global new/delete come from heapledger because the program links it.
#include <heapledger/heapledger.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

__attribute__((noinline)) int* consumer_leak() { return new int[10]; }  // 40 bytes, never freed

int main() {
  std::vector<std::string> words{"link", "mode", "works"};
  int* volatile leaked = consumer_leak();
  leaked[0] = static_cast<int>(words.size());
  std::printf("%s %s %s\n", words[0].c_str(), words[1].c_str(), words[2].c_str());
  return std::strcmp(heapledger_version(), "0.1.0") == 0 ? 0 : 1;
}

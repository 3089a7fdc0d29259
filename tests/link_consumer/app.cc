// Link-mode consumer: global new/delete come from heapledger because the program links it.
#include <heapledger/heapledger.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#define HL_TEXT(x) #x
#define HL_VERSION_TEXT(major, minor, patch) HL_TEXT(major) "." HL_TEXT(minor) "." HL_TEXT(patch)
constexpr const char* kHeaderVersion =
    HL_VERSION_TEXT(HEAPLEDGER_VERSION_MAJOR, HEAPLEDGER_VERSION_MINOR, HEAPLEDGER_VERSION_PATCH);

__attribute__((noinline)) int* consumer_leak() { return new int[10]; }  // 40 bytes, never freed

int main() {
  std::vector<std::string> words{"link", "mode", "works"};
  int* volatile leaked = consumer_leak();
  leaked[0] = static_cast<int>(words.size());
  std::printf("%s %s %s\n", words[0].c_str(), words[1].c_str(), words[2].c_str());
  // The header's version is the library's (the header is written by hand; the library's comes
  // from the project's version): a bump of one without the other fails here.
  return std::strcmp(heapledger_version(), kHeaderVersion) == 0 ? 0 : 1;
}

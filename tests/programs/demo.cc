// The bundled demo for scripts/run.sh: a small "app" with three kinds of leak and a clear peak.
//   demo::Cache::put        overwriting a key leaks the old 256-byte entry (1 block)
//   demo::make_scratch      a helper's new int[40] that its caller never deletes (160 bytes)
//   demo::worker_step       a worker thread's 512-byte malloc, never freed
//   demo::load_batch        64 x 64 KiB held at once (the 4 MiB peak), all freed afterwards
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>

#include "hl_sink.h"

namespace demo {

struct Entry {
  char key[32];
  char value[224];
};
static_assert(sizeof(Entry) == 256);

class Cache {
 public:
  ~Cache() {
    for (auto& [key, entry] : entries_) delete entry;
  }
  // The bug: an existing entry under `key` is overwritten, not deleted.
  __attribute__((noinline)) void put(int key, const char* value) {
    auto* entry = new Entry{};
    std::snprintf(entry->key, sizeof entry->key, "key-%d", key);
    std::snprintf(entry->value, sizeof entry->value, "%s", value);
    entries_[key] = entry;
  }
  std::size_t size() const { return entries_.size(); }

 private:
  std::map<int, Entry*> entries_;
};

__attribute__((noinline)) int* make_scratch(int n) {
  int* scratch = new int[n];
  for (int i = 0; i < n; ++i) scratch[i] = i * i;
  return scratch;
}

__attribute__((noinline)) long summarize(int n) {
  int* scratch = make_scratch(n);
  long sum = 0;
  for (int i = 0; i < n; ++i) sum += scratch[i];
  return sum;  // the bug: scratch is never deleted
}

__attribute__((noinline)) void worker_step(int id) {
  char* line = static_cast<char*>(std::malloc(512));
  std::snprintf(line, 512, "worker %d finished", id);
  hl_sink(line);  // the bug: the line buffer is dropped
}

__attribute__((noinline)) char* load_batch(int i) {
  char* batch = new char[64 * 1024];
  std::memset(batch, i, 64 * 1024);
  return batch;
}

// Holds 64 batches at once (the peak), then frees them all.
__attribute__((noinline)) long process_batches() {
  char* batches[64];
  for (int i = 0; i < 64; ++i) batches[i] = load_batch(i);
  long checksum = 0;
  for (int i = 0; i < 64; ++i) checksum += batches[i][i];
  for (int i = 0; i < 64; ++i) delete[] batches[i];
  return checksum;
}

}  // namespace demo

int main() {
  demo::Cache cache;
  cache.put(1, "alpha");
  cache.put(2, "beta");
  cache.put(3, "gamma");
  cache.put(2, "beta, updated");
  long checksum = demo::process_batches();
  long sum = demo::summarize(40);
  std::thread worker(demo::worker_step, 1);
  worker.join();
  std::printf("demo: %zu cache entries, processed 64 batches of 64 KiB (checksum %ld)\n",
              cache.size(), checksum);
  std::printf("demo: sum of squares below 40 is %ld\n", sum);
  return 0;
}

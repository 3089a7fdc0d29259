// ThreadDirectory: a record's thread number to the thread's id and name, the name read again as
// the thread ends and, for one still running, when asked.
#include "tracker/thread_directory.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>

namespace heapledger::detail {
namespace {

pid_t own_tid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

std::string found_name(const ThreadDirectory& d, std::uint32_t number, pid_t* tid) {
  char name[16] = "x";
  return d.find(number, tid, name) ? name : "(not found)";
}

TEST(ThreadDirectory, ANumberNeverEnteredIsNotFound) {
  auto d = std::make_unique<ThreadDirectory>();
  pid_t tid = -1;
  EXPECT_EQ(found_name(*d, 7, &tid), "(not found)");
  d->enter(7, own_tid());
  EXPECT_EQ(found_name(*d, 8, &tid), "(not found)");         // the same chunk, another number
  EXPECT_EQ(found_name(*d, 7 + 1024, &tid), "(not found)");  // the next chunk
}

// A running thread's name is read when asked (a pool names its workers after they start); an
// ended one's is the name it had as it ended.
TEST(ThreadDirectory, NamesAreReadAtTheEndOrWhenAsked) {
  auto d = std::make_unique<ThreadDirectory>();
  pid_t worker_tid = 0;
  std::thread worker([&] {
    worker_tid = own_tid();
    prctl(PR_SET_NAME, "first");
    d->enter(3, worker_tid);
    pid_t tid = 0;
    EXPECT_EQ(found_name(*d, 3, &tid), "first");
    EXPECT_EQ(tid, worker_tid);
    prctl(PR_SET_NAME, "renamed");
    EXPECT_EQ(found_name(*d, 3, &tid), "renamed");  // running: /proc's name now
    prctl(PR_SET_NAME, "at-its-end");
    d->leave(3);
    prctl(PR_SET_NAME, "after-leave");
  });
  worker.join();
  pid_t tid = 0;
  EXPECT_EQ(found_name(*d, 3, &tid), "at-its-end");
  EXPECT_EQ(tid, worker_tid);
}

// Records keep 19 bits of the number: a number past them is the entry of the one it wraps to.
// Taken by a second thread, it names neither (the older blocks were named as the newer
// thread's: a review's).
TEST(ThreadDirectory, NumbersWrapAsRecordsKeepThemAndATakenOneNamesNoThread) {
  auto d = std::make_unique<ThreadDirectory>();
  d->enter(5 + (Record::kThreadMask + 1), own_tid());
  pid_t tid = 0;
  EXPECT_NE(found_name(*d, 5, &tid), "(not found)");
  EXPECT_EQ(tid, own_tid());
  d->enter(5, own_tid() + 1);
  EXPECT_EQ(found_name(*d, 5, &tid), "(not found)");
}

}  // namespace
}  // namespace heapledger::detail

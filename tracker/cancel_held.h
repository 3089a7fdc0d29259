// Thread cancellation held off while the tracker calls into libunwind from inside an allocation
// function (and, before tracker/eh_frame.h, into libdw). Its reads and writes are cancellation
// points (libunwind tells whether an address is readable by passing a byte through a pipe; libdw
// opened and read the module file), and a cancel acted on there unwound the thread out through
// malloc, which the C++ runtime turns into std::terminate: a program that cancels its threads
// aborted in every run under unwind=libunwind (a user trial; tests/programs/cancel_threads).
// glibc's malloc is no cancellation point; ours must not be one either.
#pragma once

#include <pthread.h>

namespace heapledger::detail {

class CancelHeld {
 public:
  CancelHeld() { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &before_); }
  ~CancelHeld() { pthread_setcancelstate(before_, nullptr); }
  CancelHeld(const CancelHeld&) = delete;
  CancelHeld& operator=(const CancelHeld&) = delete;

 private:
  int before_ = PTHREAD_CANCEL_ENABLE;
};

}  // namespace heapledger::detail

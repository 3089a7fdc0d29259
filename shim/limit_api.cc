// setrlimit, getrlimit and prlimit, interposed for two resources: the address-space and data
// limits (RLIMIT_AS, RLIMIT_DATA) a program sets for itself, which heapledger's own mappings count
// against (see space_limit.h). Every other resource, and another process's limits, go to the
// kernel as they are. glibc's own calls (pthread_create reading the stack limit, say) are not seen,
// and need not be.
#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim/config.h"
#include "shim/space_limit.h"

using namespace heapledger::detail;

namespace {

int as_libc(int error) {
  if (error == 0) return 0;
  errno = error;
  return -1;
}

bool is_self(pid_t pid) { return pid == 0 || pid == getpid(); }

int any_limit(pid_t pid, int resource, const rlimit* want, rlimit* old) {
  if ((resource == RLIMIT_AS || resource == RLIMIT_DATA) && is_self(pid))
    return as_libc(space_limit::set(resource, want, old));
  return static_cast<int>(syscall(SYS_prlimit64, pid, resource, want, old));
}

}  // namespace

// As <sys/resource.h> declares them (its resource type is int in C++, except prlimit's); the 64
// forms are the same functions on 64-bit Linux.
extern "C" HL_EXPORT int setrlimit(__rlimit_resource_t resource, const rlimit* limit) noexcept {
  return any_limit(0, resource, limit, nullptr);
}
extern "C" HL_EXPORT int setrlimit64(__rlimit_resource_t resource, const rlimit64* limit) noexcept {
  return any_limit(0, resource, reinterpret_cast<const rlimit*>(limit), nullptr);
}
extern "C" HL_EXPORT int getrlimit(__rlimit_resource_t resource, rlimit* limit) noexcept {
  return any_limit(0, resource, nullptr, limit);
}
extern "C" HL_EXPORT int getrlimit64(__rlimit_resource_t resource, rlimit64* limit) noexcept {
  return any_limit(0, resource, nullptr, reinterpret_cast<rlimit*>(limit));
}
extern "C" HL_EXPORT int prlimit(pid_t pid, enum __rlimit_resource resource, const rlimit* want,
                                 rlimit* old) noexcept {
  return any_limit(pid, resource, want, old);
}
extern "C" HL_EXPORT int prlimit64(pid_t pid, enum __rlimit_resource resource, const rlimit64* want,
                                   rlimit64* old) noexcept {
  return any_limit(pid, resource, reinterpret_cast<const rlimit*>(want),
                   reinterpret_cast<rlimit*>(old));
}

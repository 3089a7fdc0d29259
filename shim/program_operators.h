// A program with a global operator new or delete of its own. The C++ standard lets a program
// replace just operator new(size_t) and operator delete(void*): every other form (new[],
// nothrow, sized and array deletes, and the aligned forms' like them) calls those, as
// libstdc++'s definitions do. heapledger defines all twenty forms, and its own served the
// program's size-header operators' blocks to the program's delete and the other way round: a
// program of header-based operators crashed in std::stable_sort (nothrow new, then delete), or
// leaked and reported false invalid frees at every sized delete (a review's). Where a form's
// libstdc++ definition would reach one of the program's, heapledger's form calls libstdc++'s.
#pragma once

namespace heapledger::detail::program_operators {

// Whether the program defines any of the twenty itself (in the executable, or a library ahead of
// heapledger's in the lookup order): its blocks may then reach any of the entry points (the
// tracker's family checks stand down). At start (dlsym must work); decides which forms go
// through libstdc++'s too, if no call of one did yet (see new_delete.cc).
bool take();

}  // namespace heapledger::detail::program_operators

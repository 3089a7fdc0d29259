/* heapledger's public header, for programs that link the library (find_package(heapledger) +
   heapledger::heapledger). Linking alone replaces the allocator and writes the exit report;
   this header only tells a program which heapledger it runs with. */
#ifndef HEAPLEDGER_HEAPLEDGER_H
#define HEAPLEDGER_HEAPLEDGER_H

#define HEAPLEDGER_VERSION_MAJOR 0
#define HEAPLEDGER_VERSION_MINOR 1
#define HEAPLEDGER_VERSION_PATCH 0

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library the program is running with, e.g. "0.1.0". */
const char* heapledger_version(void);

#ifdef __cplusplus
}
#endif

#endif

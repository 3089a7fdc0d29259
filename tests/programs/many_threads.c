// 20,000 threads, one after another, each allocating and freeing 10 blocks: the per-thread
// counters are recycled between threads, and every allocation and free must still be counted.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
void* volatile sink;
static void* work(void* a) { (void)a; for (int i = 0; i < 10; ++i) { sink = malloc(100); free(sink); } return 0; }
int main(void) { for (int i = 0; i < 20000; ++i) { pthread_t t; pthread_create(&t, 0, work, 0); pthread_join(t, 0); } puts("ok"); return 0; }

/*  bench_proc.h — what the benchmarks under tests/bench share: a free
    loopback port and worker processes that echo their payload.
*/

#ifndef BENCH_PROC_H
#define BENCH_PROC_H

#include "arb_worker.h"

#include <sys/types.h>

//  A free loopback port, found before any ZeroMQ context exists, or -1.
int bench_free_port (void);

//  Forks a worker process: SLOTS light slots, every task echoed back. With
//  go >= 0 it connects only once a byte arrives on that descriptor.
pid_t bench_spawn_echo_worker (const char *endpoint, int slots, int go);

#endif

/*  bench_proc.h — what the benchmarks under tests/bench share: worker
    processes that echo their payload, and tools/'s arb_benchproc (a free
    loopback port: arb_benchproc_free_port).
*/

#ifndef BENCH_PROC_H
#define BENCH_PROC_H

#include "arb_benchproc.h"
#include "arb_worker.h"

#include <sys/types.h>

//  Forks a worker process: SLOTS light slots, every task echoed back. With
//  go >= 0 it connects only once a byte arrives on that descriptor.
pid_t bench_spawn_echo_worker (const char *endpoint, int slots, int go);

#endif

/*  arb_benchfloor.h — arbiter-bench's R1: the floor a transport puts
    under W1. A forked server answers one request at a time, after a
    durable write like a one-task commit's (two WAL frames: 8,240 bytes
    written in place, then fdatasync), over a plain TCP socket read and
    written by its one thread, or over ZeroMQ (ROUTER, DEALER), whose I/O
    threads carry every message to and from the threads that use it.
    Neither side does anything else, so the difference between the two is
    what the transport costs a durable round trip on this machine
    (BENCHMARKS.md, "R1").
*/
#ifndef ARB_BENCHFLOOR_H
#define ARB_BENCHFLOOR_H
#include "arb_benchkit.h"

typedef enum {
    ARB_BENCHFLOOR_TCP,
    ARB_BENCHFLOOR_ZMQ
} arb_benchfloor_transport_t;

//  count round trips of a 100-byte request and a 30-byte reply over
//  transport, on loopback; with sync, the server writes and fdatasyncs a
//  file in dir before each reply. Fills the rate and the median and p99
//  time of one round trip. Returns 0, or -1 if the server could not be
//  started or a round trip failed (the server is gone either way).
int arb_benchfloor_roundtrip (const char *dir,
                              arb_benchfloor_transport_t transport,
                              int count,
                              bool sync,
                              arb_benchkit_sync_t *out);

#endif

/*  arb_benchkit.h — what arbiter-bench and arbiter-peers share: the clock,
    100-byte payloads that carry their submit time, latency figures, the
    fdatasync probe, a process tree's memory, the load average, and the
    results consumer processes write into shared memory.

    Both tools measure the same shapes (BENCHMARKS.md):

      W1  submit one task at a time, each acknowledged after it is durable
      W2  W1's producer + consumers of one slot each, end to end
      P1  one task per request, up to a window of requests in flight,
          counted at the durable acknowledgement
      P2  P1's producer + consumers of up to `prefetch` tasks each, end to end

    Latency always comes from the timestamp in the payload (CLOCK_MONOTONIC,
    which every process of the machine shares).
*/

#ifndef ARB_BENCHKIT_H
#define ARB_BENCHKIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define ARB_BENCHKIT_STAMP 16  //  hex digits of the submit time at the head of a payload

//  Monotonic microseconds (shared by every process on the machine).
int64_t arb_benchkit_now_us (void);

//  Fills payload (size bytes, size >= ARB_BENCHKIT_STAMP) with the time
//  now and letters after it. Returns the time written.
int64_t arb_benchkit_stamp (char *payload, size_t size);

//  The time a payload carries, or -1 if it carries none.
int64_t arb_benchkit_stamp_of (const void *payload, size_t size);

//  Sleeps until the monotonic time at_us (returns at once if past).
void arb_benchkit_sleep_until (int64_t at_us);

//  Latency figures of n values in µs (sorted in place), in ms.
typedef struct {
    size_t n;
    double p50, p90, p99, max, mean;
} arb_benchkit_lat_t;

arb_benchkit_lat_t arb_benchkit_latency (int64_t *values, size_t n);

//  The fdatasync probe: count writes of `bytes` bytes, each made durable,
//  in a new file in dir. How (arb_benchkit_sync_how_t): appended and
//  fdatasynced, as a journal commit does; overwritten at the same offset
//  and fdatasynced; or, as the task log writes with --sync full, records
//  one after another into a file of zeros, each written with the 4 KiB
//  block it lies in by O_DIRECT and RWF_DSYNC (falling back to the page
//  cache where the file system refuses O_DIRECT). Fills the mean rate and
//  the median, p99 and longest time of one durable write, and how many
//  took over ARB_BENCHKIT_STALL_US. Returns 0 or -1.
typedef enum {
    ARB_BENCHKIT_APPEND,
    ARB_BENCHKIT_OVERWRITE,
    ARB_BENCHKIT_DIRECT,
} arb_benchkit_sync_how_t;

typedef struct {
    int count;
    double seconds;
    double per_s;   //  count / seconds
    double p50_us;  //  one durable write
    double p99_us;
    double max_us;  //  the longest
    int stalls;     //  writes that took over ARB_BENCHKIT_STALL_US: the
                    //  disk's own pauses, which a durable ack waits out
} arb_benchkit_sync_t;

#define ARB_BENCHKIT_STALL_US 2000

int arb_benchkit_fsync_probe (const char *dir,
                              int count,
                              size_t bytes,
                              arb_benchkit_sync_how_t how,
                              arb_benchkit_sync_t *out);

//  Resident memory of pid and all its descendants, in KiB ("VmRSS:"), or
//  -1 if pid is gone.
long arb_benchkit_tree_rss_kb (pid_t pid);

//  CPU time pid has used so far (user + system, all its threads), in
//  seconds, or -1.
double arb_benchkit_cpu_s (pid_t pid);

//  The page faults pid has taken so far that read nothing from disk (all
//  its threads: a fresh page of memory each, mostly), or -1.
long arb_benchkit_minflt (pid_t pid);

//  The 1-minute load average now.
double arb_benchkit_load (void);

//  Results that consumer processes (forked) write, in shared memory:
//  each finished task takes the next slot of lat; the one that makes
//  done reach `expect` writes end_us.
typedef struct {
    _Atomic int64_t done;
    _Atomic int64_t end_us;
    _Atomic int stop;  //  set by the parent: consumers return
    int64_t expect;
    int64_t capacity;
    int64_t lat[];  //  µs, submit (payload stamp) to the consumer's ack
} arb_benchkit_shared_t;

//  Maps a shared block for capacity latencies (MAP_SHARED | MAP_ANONYMOUS:
//  children forked after see it). NULL on failure.
arb_benchkit_shared_t *arb_benchkit_shared_new (int64_t capacity);
void arb_benchkit_shared_reset (arb_benchkit_shared_t *shared, int64_t expect);
void arb_benchkit_shared_free (arb_benchkit_shared_t **shared_p);

//  A consumer finished the task whose payload is given: its latency goes
//  into the shared block (at its ack, now).
void arb_benchkit_shared_done (arb_benchkit_shared_t *shared, const void *payload, size_t size);

//  Waits until the consumers have finished `expect` tasks, or nothing was
//  finished for stall_ms. Returns true if all were.
bool arb_benchkit_shared_wait (arb_benchkit_shared_t *shared, int stall_ms);

//  Command-line values, read by arb_options' parser, as the daemons read
//  theirs: text, the value of the long option name ("tasks" for --tasks,
//  as getopt_long's table has it), must be a whole number from min to
//  max; it goes into *value. Anything else ("10x", "", "-5", a number too
//  large) is refused with "PROGRAM: --NAME: why" and a hint on stderr, and
//  -1 returned: the caller exits 2, having started nothing. Returns 0 or
//  -1.
int arb_benchkit_whole (
    const char *program, const char *name, const char *text, int min, int max, int *value);

//  The same for seconds ("30", "0.25"), from 0 to max_ms: text is only
//  checked, as it is passed on as it is (a broker's --retention).
int arb_benchkit_seconds (const char *program, const char *name, const char *text, uint64_t max_ms);

//  arbiterd's bound on --retention (3660 days), which the benchmarks pass on
#define ARB_BENCHKIT_RETENTION_MAX_MS (3660ull * 24 * 3600 * 1000)

//  A usage error a tool finds itself (an option that needs another, an
//  argument left over), printed as the refusals above: "PROGRAM: what"
//  and a hint on stderr. The caller exits 2.
void arb_benchkit_refuse (const char *program, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Whether every name of list (--workloads' comma-separated value) is
//  one of known's ("A1,A2,A3"), or "all" where all is true; each that is
//  not is said on stderr, "PROGRAM: unknown workload NAME (A1, A2, A3)".
//  The caller exits 2 on false.
bool
arb_benchkit_workloads_known (const char *program, const char *list, const char *known, bool all);

//  Prints the head of a JSON line: {"system": ..., "workload": ..., "load": ...
//  (no closing brace): the caller adds its fields and ends with "}\n".
void arb_benchkit_json_head (FILE *out, const char *system, const char *workload, const char *what);

#endif

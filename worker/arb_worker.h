/*  arb_worker.h — the worker runtime: takes tasks from the broker and runs
    them in handler functions.

    A worker owns one connection to the broker (its own ZMTP connection to
    a tcp:// broker without CURVE, else a DEALER socket: docs/worker.md),
    used only by the thread that calls arb_worker_run(). It registers (REGISTER -> WELCOME) with
    the names of its handlers, so that the broker sends it only tasks it can
    run (a "*" handler: any), and learns the broker's payload limit; gives
    the broker one credit per free slot on the queues it listens to, runs
    every dispatched task in a free slot, and answers with RESULT. Results
    that finish in one loop turn travel in one RESULT message and the slots
    they free in one CREDIT: throughput never depends on a round trip per
    task.

    Slots run in one of two modes:

      light   as many threads as slots, started once by arb_worker_run(),
              taking jobs from one queue. A STOP from the broker (timeout,
              cancel) sets the job's cancelled flag; the handler should poll
              arb_job_is_cancelled() and return. The slot is free again only
              when the handler returns.
      heavy   one forked process per task, in a process group of its own
              that dies with the worker, kill -9 included (docs/worker.md,
              "When the worker dies"). The child runs the handler, sends its result, error and emitted
              items back through a pipe and _exits; it never touches
              ZeroMQ. A STOP sends SIGTERM to the child's process group, and
              SIGKILL after the grace period. SIGTERM has its default action
              in the child (it dies); a handler that wants to clean up
              installs its own SIGTERM handler and exits within the grace.
              A heavy handler must return, not call exit(): exit() would run
              the parent's atexit handlers (czmq's) in the child.

    Each result stays with the worker until the broker acknowledges it
    after its commit (RESULT_OK): sent again when no answer comes, claimed
    when the worker registers again. The worker re-registers when the
    broker answers ERROR 410 (it restarted or declared this worker dead)
    or when it finds itself silent for the liveness window (nothing from
    the broker, or stopped): then before it starts anything that came
    meanwhile. Its REGISTER claims the tasks it still runs and the results
    it keeps; the broker gives back those nobody else has had, so each runs
    once, and the worker drops the rest.

    Shutdown (SIGINT/SIGTERM, seen through czmq's zsys_interrupted, or
    arb_worker_stop): the worker cancels its credit, lets running tasks
    finish for at most the drain time, sends their results, says BYE and
    returns. After the drain time, or on a second signal, running tasks are
    stopped (light: cancelled flag, heavy: killed) and their leases given
    back by the BYE, so they run again elsewhere without losing an attempt.
*/

#ifndef ARB_WORKER_H
#define ARB_WORKER_H

#include "arb_curve.h"
#include "arb_job.h"

typedef struct _arb_worker_t arb_worker_t;

typedef enum {
    ARB_WORKER_LIGHT = 0,  //  slots are threads
    ARB_WORKER_HEAVY = 1,  //  one forked process per task
} arb_worker_mode_t;

#define ARB_WORKER_ENDPOINT   "tcp://127.0.0.1:7700"  //  when neither argument nor $ARBITER_BROKER
#define ARB_WORKER_SLOTS_MAX  1024
#define ARB_WORKER_QUEUES_MAX 64     //  queues on one subscription (the codec's limit)
#define ARB_WORKER_GRACE_MS   5000   //  SIGTERM -> SIGKILL of a stopped heavy task
#define ARB_WORKER_DRAIN_MS   30000  //  shutdown: time running tasks get to finish

//  A task handler. Returns 0 for success (the result set with
//  arb_job_set_result, empty if none) or -1 for failure (the error set with
//  arb_job_fail, "handler failed" if none). In light mode handlers run on
//  several threads at once; arg is shared by them.
typedef int (arb_handler_fn) (arb_job_t *job, void *arg);

//  ---------------------------------------------------------------------
//  The worker.

//  Creates a worker. endpoint NULL: $ARBITER_BROKER, else
//  ARB_WORKER_ENDPOINT. name NULL: "host.pid" (the name fan-out tasks use to
//  address this worker). Defaults: one light slot, queue "default".
//  Returns NULL if name is not a name the broker takes (longer than
//  ARB_NAME_MAX, or not printable UTF-8: arb_name_check).
arb_worker_t *arb_worker_new (const char *endpoint, const char *name);

//  Destroys a worker that is not running. Accepts NULL; nulls *self_p.
void arb_worker_destroy (arb_worker_t **self_p);

//  Registers the handler for tasks called task_name ("*": every name that
//  has no handler of its own). The worker tells the broker these names
//  when it registers, and the broker sends it only tasks of those names;
//  with a "*" handler, tasks of any name. Returns 0, or -1 if task_name is
//  empty, too long, not printable UTF-8 or already has a handler, or if the worker has
//  ARB_HANDLES_MAX named handlers already.
int arb_worker_handle (arb_worker_t *self, const char *task_name, arb_handler_fn *fn, void *arg);

//  Takes tasks from queue (may be called several times; no call at all
//  means "default"). Returns 0, or -1 for an empty, too long or not
//  printable (arb_name_check) name, or more
//  than ARB_WORKER_QUEUES_MAX queues.
int arb_worker_listen (arb_worker_t *self, const char *queue);

//  Slot count (1..ARB_WORKER_SLOTS_MAX, clamped) and mode.
void arb_worker_set_slots (arb_worker_t *self, int slots, arb_worker_mode_t mode);

//  Heavy mode: time between SIGTERM and SIGKILL of a stopped task. Light
//  mode: how long a forced shutdown waits for cancelled handlers.
void arb_worker_set_grace (arb_worker_t *self, int grace_ms);

//  Shutdown: how long running tasks may still run after a stop request.
void arb_worker_set_drain (arb_worker_t *self, int drain_ms);

//  How long arb_worker_run waits for the broker's first answer (WELCOME)
//  before it gives up and returns -1; 0 (the default) waits for ever. While
//  the broker does not answer, at start or after losing it, the worker
//  logs so every few seconds; once registered, it never gives up.
void arb_worker_set_connect_timeout (arb_worker_t *self, int timeout_ms);

//  Largest result or emitted item in bytes (default ARB_PAYLOAD_DEFAULT_MAX).
//  The worker also learns the broker's --max-payload when it registers, and
//  the smaller of the two holds: a bigger result fails its task here
//  ("result of N bytes is over the M-byte limit"), as the broker would fail
//  it. Payloads are taken up to the larger of the two.
void arb_worker_set_max_payload (arb_worker_t *self, size_t max_payload);

//  Connects with this certificate and broker key (borrowed; the worker
//  keeps a copy), for a broker that runs with --curve (arb_curve.h).
//  Without it, ARBITER_CERT and ARBITER_BROKER_KEY from the environment
//  count if they are set. A broker whose handshake refuses the worker
//  (no certificate where it wants one, one it does not allow, a wrong
//  broker key, a certificate where it runs without --curve) before its
//  first WELCOME ends the run at once, saying why ("the broker refused
//  the connection"), whatever the connect timeout; once registered, the
//  worker logs why with its "cannot reach the broker" and goes on trying.
//  One that refuses its REGISTER (403: the certificate is not a
//  worker's or an admin's) ends the run.
void arb_worker_set_curve (arb_worker_t *self, const arb_curve_t *curve);

//  What the worker logs, as a syslog level (LOG_ERR .. LOG_DEBUG; default
//  LOG_INFO). LOG_DEBUG logs every task.
void arb_worker_set_log_level (arb_worker_t *self, int level);

//  Runs until arb_worker_stop() or SIGINT/SIGTERM (czmq's zsys_interrupted,
//  which it resets to 0 on the first signal so that it can see a second
//  one). Blocks the calling thread, which owns the broker socket. Returns 0
//  once stopped, or -1 if it could not start (bad endpoint, no handler,
//  ARBITER_CERT or ARBITER_BROKER_KEY that name no usable certificate and
//  key), could not reach the broker within the connect timeout, or the
//  broker refused its handshake before the first WELCOME or refused to
//  register it (403).
int arb_worker_run (arb_worker_t *self);

//  Asks a running worker to stop, as SIGTERM would (a second call forces
//  the stop, as a second signal would). Thread-safe and async-signal-safe.
void arb_worker_stop (arb_worker_t *self);

#endif

/*  arb_job.h — one task as a handler sees it: its input, its parents'
    results, and what the handler leaves (result or error, emitted items).

    The runtime (arb_worker*.c) keeps one job per slot and reuses it from
    task to task. In light mode the slot's thread runs the handler while
    the run thread may only set the cancelled flag (atomic). In heavy mode
    the forked child runs the handler on its copy of the job, and every
    emitted item and the outcome travel back as a report through a pipe;
    the parent reads the report into its own copy of the job, so that both
    modes end with the same job state for the runtime to send.

    The report is a byte stream of records in host byte order (both ends
    are the same binary on the same machine):

        'E' u32 queue_len u64 size  queue payload      an emitted item
        'R' u64 size  data                             success and its result
        'F' u32 len   text                             failure and its error

    A child writes its E records as it emits and ends with one R or F.
*/

#ifndef ARB_JOB_H
#define ARB_JOB_H

#include "arb_proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _arb_job_t arb_job_t;

//  ---------------------------------------------------------------------
//  For handlers. A job lives only as long as the handler call: every
//  pointer a getter returns is borrowed and valid until then.

uint64_t arb_job_id (arb_job_t *self);
uint32_t arb_job_attempt (arb_job_t *self);  //  1 for the first attempt
const char *arb_job_name (arb_job_t *self);
const char *arb_job_queue (arb_job_t *self);
//  The payload. Its bytes are followed by a NUL byte (not counted in the
//  size), so a text payload can be read as a C string.
const uint8_t *arb_job_payload (arb_job_t *self);
size_t arb_job_payload_size (arb_job_t *self);

//  The task's persistent arguments, given beside its input (pipe steps),
//  with their size in *size; empty if it has none. Bytes, not a C string.
const uint8_t *arb_job_args (arb_job_t *self, size_t *size);

//  The task's dependencies (DAG parents) with their outcomes. A parent's
//  name is its ref in the DAG, or "" if it had none; its state is an
//  arb_state_t (succeeded, or dead/cancelled/skipped for a task that runs
//  on its parents' failure), its error why it did not succeed ("" if it
//  did); its result is bytes of the given size, not a C string. index must
//  be below arb_job_parent_count.
size_t arb_job_parent_count (arb_job_t *self);
const char *arb_job_parent_name (arb_job_t *self, size_t index);
uint64_t arb_job_parent_id (arb_job_t *self, size_t index);
uint32_t arb_job_parent_state (arb_job_t *self, size_t index);
const char *arb_job_parent_error (arb_job_t *self, size_t index);
const uint8_t *arb_job_parent_result (arb_job_t *self, size_t index, size_t *size);

//  The largest result (or emitted item) the task may leave, in bytes: the
//  smaller of the worker's max payload and the broker's.
size_t arb_job_max_payload (arb_job_t *self);

//  Sets the task's result (a copy; replaces an earlier one). Returns 0, or
//  -1 if size is over arb_job_max_payload: the error text is then "result
//  of N bytes is over the M-byte limit", so `return arb_job_set_result
//  (...)` fails the task.
int arb_job_set_result (arb_job_t *self, const void *data, size_t size);

//  Sets the error text of a failing task (truncated to ARB_TEXT_MAX bytes).
//  Returns -1, so a handler can `return arb_job_fail (job, "...")`.
int arb_job_fail (arb_job_t *self, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

//  Whether the broker asked to stop this task (timeout or cancel), or the
//  worker is stopping by force. Light mode: the handler should return soon.
//  Heavy mode: a stop kills the process instead, so this stays false.
bool arb_job_is_cancelled (arb_job_t *self);

//  Whether the task's soft timeout has passed (DISPATCH's soft_timeout_ms,
//  `arbiter submit --soft-timeout`, counted from when the task took its
//  slot): a warning, before the hard timeout stops it, that the handler
//  should wrap up. Polled like arb_job_is_cancelled, in light and heavy
//  slots alike; false for a task without one. An --exec command gets
//  SIGUSR1 instead (arb_exec.h).
bool arb_job_is_soft_timed_out (arb_job_t *self);

//  The task's soft timeout in ms (0: none).
uint64_t arb_job_soft_timeout_ms (arb_job_t *self);

//  Whether the handler runs in a heavy slot's own process, whose process
//  group the worker kills on a stop (so a command it starts should stay in
//  that group rather than make its own).
bool arb_job_is_heavy (arb_job_t *self);

//  Routing: stages a copy of data as a new task for queue, named like the
//  queue (as the broker names an EMIT item without a name: a routed
//  task is taken by the queue's workers, whatever sent it). The broker enqueues staged items in the same transaction that
//  stores this task's success, and drops them if the attempt ends any other
//  way. Items may go out before the handler returns, so a handler can emit
//  more than fits in memory. Returns 0, or -1 for a queue name that is
//  empty, too long or not printable UTF-8 (arb_name_check: the broker would
//  refuse the whole EMIT), a size over the max payload, or a broken report
//  pipe.
int arb_job_emit (arb_job_t *self, const char *queue, const void *data, size_t size);

//  ---------------------------------------------------------------------
//  Outside a worker: to run a handler in a test or a tool.

//  Creates a job for task id with the given name, queue (NULL: "default")
//  and a copy of the payload; attempt 1.
arb_job_t *
arb_job_new (uint64_t id, const char *name, const char *queue, const void *payload, size_t size);

//  Destroys a job. Accepts NULL; nulls *self_p.
void arb_job_destroy (arb_job_t **self_p);

//  Sets the attempt number (1 for the first).
void arb_job_set_attempt (arb_job_t *self, uint32_t attempt);

//  Sets a copy of the task's persistent arguments.
void arb_job_set_args (arb_job_t *self, const void *args, size_t size);

//  Adds a succeeded DAG parent with a copy of its result (name NULL: none).
void arb_job_add_parent (
    arb_job_t *self, const char *name, uint64_t id, const void *result, size_t size);

//  Sets the soft timeout, to pass soft_timeout_ms from now (0: none).
void arb_job_set_soft_timeout (arb_job_t *self, uint64_t soft_timeout_ms);

//  Sets the cancelled flag, as a STOP does. Thread-safe.
void arb_job_cancel (arb_job_t *self);

//  What the handler left: the result (its size in *size; NULL and 0 if
//  none), the error text ("" if none), and how many items it emitted.
const uint8_t *arb_job_result (arb_job_t *self, size_t *size);
const char *arb_job_error (arb_job_t *self);
size_t arb_job_emitted (arb_job_t *self);

//  ---------------------------------------------------------------------
//  For the runtime (arb_worker*.c) only.

//  Creates an idle job for a slot (no task yet).
arb_job_t *arb_job_new_idle (void);

//  Hands a full EMIT message to whoever sends it (light mode: the slot's
//  thread passes it to the run thread). Takes ownership of *emit_p.
typedef void (arb_job_flush_fn) (arb_msg_t **emit_p, void *arg);

//  Readies the job for a dispatched task. Borrows task's strings and
//  parents (the caller keeps the DISPATCH alive), takes task->payload.
//  Clears what the previous task left; starts the soft timeout's clock.
void arb_job_start (arb_job_t *self, arb_dispatch_task_t *task);

//  Drops what the task left (payload, result, staged items): the slot is
//  free. Keeps buffers worth reusing.
void arb_job_finish (arb_job_t *self);

//  The lease the task was dispatched under.
uint64_t arb_job_lease (arb_job_t *self);

//  The monotonic time (zclock_mono, ms) the soft timeout passes; 0: none.
int64_t arb_job_soft_at (arb_job_t *self);

void arb_job_set_max_payload (arb_job_t *self, size_t max_payload);
void arb_job_set_flush (arb_job_t *self, arb_job_flush_fn *fn, void *arg);

//  Heavy child: report to this pipe from now on.
void arb_job_set_report_fd (arb_job_t *self, int fd);

//  The result frame (NULL: empty), for the caller to own.
zframe_t *arb_job_take_result (arb_job_t *self);

//  Staged items not yet flushed, as an EMIT message for the caller to own,
//  or NULL if none.
arb_msg_t *arb_job_take_emits (arb_job_t *self);

//  Heavy child: writes the outcome (rc 0 success, -1 failure) as the last
//  report record. Returns 0, or -1 if the pipe broke.
int arb_job_write_outcome (arb_job_t *self, int rc);

//  Heavy parent: reads what the child has written so far to fd (non
//  blocking) into this job: E records become staged items, R or F the
//  outcome. Returns 0 while the pipe is open, 1 at its end, -1 for a
//  report that breaks the format or the limits (the child is then
//  misbehaving and should be killed).
int arb_job_read_report (arb_job_t *self, int fd);

//  Heavy parent: whether the child's report held its outcome, and which
//  (0 success, -1 failure).
bool arb_job_has_outcome (arb_job_t *self);
int arb_job_outcome (arb_job_t *self);

#endif

/*  arb_task.h — the broker's in-memory record of an unfinished task.

    Every task that is not final (waiting, scheduled, ready, running) has
    one of these, owned by the scheduler (arb_sched); a task that reaches a
    final state is written to the journal and its record freed, so memory
    follows the backlog, not the history. The journal row is the truth; this
    record adds what only memory needs: heap positions, the lease, and
    (within a budget) a cached copy of the payload.

    It is a plain struct, not an opaque class: only the scheduler and the
    broker loop touch it, both in the broker's one thread, and a getter per
    field would hide nothing.
*/

#ifndef ARB_TASK_H
#define ARB_TASK_H

#include "arb_proto.h"

typedef struct _arb_queue_t arb_queue_t;
typedef struct _arb_session_t arb_session_t;

typedef struct _arb_task_t arb_task_t;

//  An item a running task routes to another queue, staged until the task
//  succeeds (then enqueued in the same transaction) or its attempt ends
//  otherwise (then dropped).
typedef struct {
    char *queue;        //  owned
    char *name;         //  owned
    zframe_t *payload;  //  owned
} arb_emit_t;

//  What only some tasks need: options away from their defaults, a lease
//  (present or past), workflow links, staged EMIT items (watchers are
//  arb_watch's, apart from the record). A plain
//  queued task has none of it (its ext is NULL, and reads see zeros), so
//  that a backlog costs only the small record below (issue 11: a million
//  queued tasks). Fields ordered by size, without padding.
typedef struct {
    //  options, 0 when not given
    uint64_t backoff_ms;
    uint64_t backoff_cap_ms;
    uint64_t timeout_ms;       //  0: none
    uint64_t soft_timeout_ms;  //  0: none; the worker warns the handler this long into an attempt
    uint64_t not_before_ms;    //  Unix ms: earliest start (scheduled)
    uint64_t expires_ms;       //  Unix ms: dropped if not started by then; 0 never
    uint64_t retention_ms;     //  0: queue or broker default
    uint64_t window_ms;        //  a fan-out copy: its endpoint timeout, counted again from a
                               //  lost lease (0 after a restart that could not tell it: the
                               //  default)

    //  while running
    uint64_t lease;          //  current lease; 0 when not leased
    uint64_t last_lease;     //  the lease its worker lost (or was taken back from it: a
                             //  session ended out of step), should it come back; 0 none
    uint64_t last_worker;    //  who held last_lease (arb_session_worker): only it may claim it
    uint64_t claimed_lease;  //  the lease a worker claimed it back under (REGISTER), which a
                             //  later REGISTER of that worker may name again; 0 none
    arb_session_t *session;  //  borrowed: the worker holding the lease
    uint64_t started_ms;     //  Unix ms the current attempt began
    arb_task_t *lease_prev;  //  the session's other leases (intrusive list)
    arb_task_t *lease_next;
    zlist_t *emits;       //  owned staged EMIT items (arb_emit_t *) of the current lease
    uint32_t emit_bytes;  //  the payload bytes of emits (at most ARB_EMIT_BYTES_MAX)
    uint32_t sub;         //  the subscription it was sent on

    //  workflows
    uint64_t flow;      //  the DAG, group or pipe it belongs to; 0 none
    uint64_t origin;    //  a fan-out copy: the task it copies; 0 none
    uint32_t parents;   //  its dependencies (edges in the journal's deps table)
    uint32_t copies;    //  a fan-out task: its endpoint copies
    uint32_t pending;   //  waiting: parents (or copies) not final yet
    bool skip;          //  waiting: an edge said it will be skipped
    bool last_lost;     //  last_lease counted in lost (a claim gives that back)
    bool leased;        //  leased since the broker started: a lease from before no
                        //  longer claims it
    bool emit_refused;  //  an EMIT of this lease was refused: its success cannot be kept
} arb_task_ext_t;

//  The record every unfinished task has. Fields are ordered by size, so
//  that it has no padding.
struct _arb_task_t {
    uint64_t id;
    arb_queue_t *queue;   //  borrowed from the scheduler
    const char *name;     //  borrowed: the handler name, kept once per name by the scheduler
    void *cache;          //  owned copy of payload and headers, one block (arb_sched's
                          //  payload cache); NULL: read them from the journal
    arb_task_ext_t *ext;  //  owned, or NULL: all zeros (arb_task_ext, arb_task_ext_rw)

    uint64_t created_ms;  //  Unix ms
    uint64_t ready_ms;    //  Unix ms it became ready (aging); kept at the head
    uint64_t listed_ms;   //  Unix ms it became ready, for its queue's oldest age: kept
                          //  when it goes back to the head (given back)
    uint64_t seq;         //  order of arrival in its queue, for FIFO ties; kept at the head
    uint64_t timer_ms;    //  monotonic ms the timer fires (start, or timeout)
    size_t ready_slot;    //  position in its queue's heap, or ARB_HEAP_NONE
    size_t timer_slot;    //  position in the timer heap, or ARB_HEAP_NONE
    void *parked;         //  handle in its name's list of tasks held back by the name's
                          //  limit, or NULL

    //  its queue's lists (arb_queue): every unfinished task, and the ready
    //  ones in the order they became ready
    arb_task_t *queue_prev;  //  borrowed, NULL at either end
    arb_task_t *queue_next;
    arb_task_t *ready_prev;  //  borrowed, NULL at either end or when not ready
    arb_task_t *ready_next;

    int32_t priority;
    uint32_t attempts;  //  attempts started
    uint32_t max_attempts;
    uint32_t lost;          //  leases lost with their worker
    uint32_t delivered;     //  times handed out to a worker (dispatch, TAKE), this lease included
    uint32_t payload_size;  //  bytes of its payload, at most UINT32_MAX (its queue's ready bytes)
    uint32_t ready_turn;    //  arb_sched's turn it last became ready in (arb_sched_dispatch_early)
    uint8_t state;          //  arb_state_t: waiting, scheduled, ready or running
    bool head;              //  released: dispatched before everything of its priority
    bool jitter;            //  exponential backoff is jittered
    uint8_t backoff;        //  arb_backoff_t
    bool aside;             //  ready_slot is in its queue's heap of its name (arb_queue.h)
    uint8_t input;          //  workflows: ARB_INPUT_*
    bool has_children;      //  workflows: some task depends on it
    bool has_args;          //  it has persistent arguments (in the journal)
    bool fresh;             //  new and ready this turn: the scheduler may make it cold
    bool unwatched;         //  its submitter said nobody asks about it after its end (its
                            //  journal row keeps it)
};

//  All zeros: what arb_task_ext reads for a task without ext.
extern const arb_task_ext_t arb_task_ext_zero;

//  A task's less common fields, to read (borrowed; all zeros if it has none).
static inline const arb_task_ext_t *
arb_task_ext (const arb_task_t *task)
{
    return task->ext ? task->ext : &arb_task_ext_zero;
}

//  A task's less common fields, to write: made (all zeros) if it had none.
arb_task_ext_t *arb_task_ext_rw (arb_task_t *task);

//  When a ready task read from its journal row became ready, as near as
//  the row tells (the row keeps no such time): the latest of its creation,
//  its earliest start and its last attempt's start, never after now_ms.
uint64_t arb_task_ready_since (const arb_task_t *task, uint64_t now_ms);

//  Whether an ext holds nothing but options that the task's journal row
//  keeps and a read of it restores (backoff, timeouts, retention): a ready
//  task with such an ext may go cold as one without (arb_queue.h). Tasks
//  the gateway submits carry a retention, many carry a timeout.
bool arb_task_ext_is_options (const arb_task_ext_t *ext);

//  Sets a task's payload_size from a payload of size bytes (UINT32_MAX
//  and more count as UINT32_MAX: the journal's read of the row agrees).
void arb_task_set_payload_size (arb_task_t *task, uint64_t size);

//  Frees a task's ext and what it owns (staged EMIT items).
void arb_task_free_ext (arb_task_t *task);

//  Frees a task's staged EMIT items (its lease ended without success).
void arb_task_drop_emits (arb_task_t *task);

#endif

/*  arb_sched.h — the scheduler: every unfinished task, queue, worker
    session, lease and timer of the broker, in memory.

    It decides, and the broker carries out: the broker journals a change
    and sends messages; the scheduler only moves tasks between its
    structures, and calls the broker's hooks when it hands a task to a
    worker or finds one expired. It has no socket and no journal, and it
    takes the time as arguments, so it can be tested alone (both Unix ms,
    for what is stored, and monotonic ms, for timers).

    Matching work with credit: a queue is marked dirty when it gains a
    ready task or one of its consumers gains credit; arb_sched_dispatch
    visits only dirty queues and hands their tasks round-robin to the
    subscriptions with credit, one task per subscription per round, so
    workers share a queue fairly and a pass's dispatches to one worker
    still leave in one message (a turn has two passes: before its commit,
    arb_sched_dispatch_early, and after it).

    Task names: a worker may say which task names it runs (its session's
    handles); a subscription gets only tasks of those names. When such a
    subscription's turn comes, the tasks ahead that it does not run are set
    aside in their queue, by name, keeping their order (arb_queue.h); a
    subscription that runs a name takes from those in their place. So a
    task whose workers are busy, or that no worker of its queue runs (it
    waits for a handler: arb_sched_is_unhandled), holds back no other; each
    task is set aside at most once, and a subscription's turn costs a look
    at the first task of each name set aside, never a walk through the
    queue. While every consumer runs every name nothing is set aside and
    dispatch costs what it did without names.

    Timers: one heap, keyed by monotonic ms, holds scheduled tasks (their
    start) and running tasks with a timeout (their deadline); a task is in
    it for at most one reason at a time.

    Owned by the broker's loop thread.
*/

#ifndef ARB_SCHED_H
#define ARB_SCHED_H

#include "arb_queue.h"
#include "arb_session.h"

typedef struct _arb_sched_t arb_sched_t;

typedef struct {
    uint64_t aging_ms;     //  ms of waiting worth one priority level; 0 strict priorities
    uint64_t liveness_ms;  //  a worker silent this long is dead
    uint64_t cache_bytes;  //  budget for payloads kept in memory
    uint64_t epoch;        //  broker start count: the high bits of every lease
    size_t hot_max;        //  ready tasks a queue keeps in memory before the rest goes
                           //  cold (arb_queue.h); 0: ARB_HOT_MAX. Only with the warm and
                           //  thaw hooks.
} arb_sched_config_t;

//  The default of hot_max: a queue's head of 4,096 tasks is about 1 MiB
//  of records, and a read back of half of it one statement.
#define ARB_HOT_MAX 4096

typedef struct {
    //  Hand task (now leased to sub) to its worker. Return 0; or -1 if it
    //  cannot be sent now, and the scheduler puts it back at the head.
    int (*dispatch) (void *arg, arb_session_t *session, arb_sub_t *sub, arb_task_t *task);
    //  A ready task passed its expiry before a worker took it: the broker
    //  ends it (arb_sched_finish).
    void (*expired) (void *arg, arb_task_t *task);
    //  The cold backlog (arb_queue.h), both NULL: none. warm: read up to
    //  max cold tasks of queue back, in dispatch order from priority and
    //  id on (journal order: priority DESC, id), calling arb_sched_thaw for
    //  each row not in memory and arb_sched_cold_read after. thaw: the
    //  task of id is not in memory; if the journal has it as a cold task
    //  of its queue, read it back (arb_sched_thaw) and return it, else
    //  NULL.
    void (*warm) (void *arg, arb_queue_t *queue, int32_t priority, uint64_t id, size_t max);
    arb_task_t *(*thaw) (void *arg, uint64_t id);
    void *arg;
} arb_sched_hooks_t;

arb_sched_t *arb_sched_new (const arb_sched_config_t *config, const arb_sched_hooks_t *hooks);

//  Destroys the scheduler with every task, queue and session it holds.
void arb_sched_destroy (arb_sched_t **self_p);

//  ---------------------------------------------------------------------
//  Tasks

//  A new task record for queue (created if needed) and name, not
//  yet known to the scheduler: the caller fills it, journals it, then adds it.
arb_task_t *arb_sched_new_task (arb_sched_t *self, const char *queue, const char *name);

//  A new task record that is a copy of a row read back from the journal
//  (arb_journal_task_fn), with its queue and name; not yet added.
arb_task_t *arb_sched_task_from_row (arb_sched_t *self,
                                     const arb_task_t *row,
                                     const char *queue,
                                     const char *name);

//  Frees a task record that was never added.
void arb_sched_discard_task (arb_sched_t *self, arb_task_t **task_p);

//  Takes ownership of a task and places it by its state: waiting stays
//  aside; scheduled goes to the timers (ready at once if its time has come);
//  ready goes to its queue.
void arb_sched_add (arb_sched_t *self, arb_task_t *task, uint64_t now_ms, uint64_t mono_ms);

//  The unfinished task of id, or NULL. A cold task is read back (the
//  thaw hook) and is hot from then on: find is for callers that act on
//  the task. find_hot looks in memory only: for reads that the journal
//  answers as well for a cold task (STATUS, the state of a submit).
arb_task_t *arb_sched_find (arb_sched_t *self, uint64_t id);
arb_task_t *arb_sched_find_hot (arb_sched_t *self, uint64_t id);
//  Tasks in memory (cold ones are not: arb_sched_cold_count).
size_t arb_sched_task_count (arb_sched_t *self);
//  Walks all unfinished tasks (borrowed), in no order: the first, then
//  each next one; NULL at the end. Nothing may add or end a task during
//  the walk (collect ids first).
arb_task_t *arb_sched_first_task (arb_sched_t *self);
arb_task_t *arb_sched_next_task (arb_sched_t *self);

//  ---------------------------------------------------------------------
//  The cold backlog (arb_queue.h)
//
//  A task added ready, plain (arb_queue.h) and new is fresh: at the next
//  settle (the start of arb_sched_dispatch, when no caller holds a task
//  pointer, after the turn's commit) it goes cold if its queue holds
//  more than hot_max ready tasks and it sorts after all of them, or if
//  its queue has cold tasks and it sorts after the first of them: its
//  record is freed, its row stays (ready) in the journal.

void arb_sched_settle (arb_sched_t *self);

//  Ready tasks in the journal only, in all queues.
uint64_t arb_sched_cold_count (arb_sched_t *self);

//  While loading (start-up) a task made ready gets its id's own seq.
void arb_sched_set_loading (arb_sched_t *self, bool loading);

//  Whether a row read at start-up may stay cold (ready, plain, its queue
//  keeps cold tasks), and count it so: its record is never made. now_ms:
//  Unix ms, the start.
bool
arb_sched_add_cold (arb_sched_t *self, const arb_task_t *row, const char *queue, uint64_t now_ms);

//  Adds a record read back from a cold row (arb_sched_task_from_row): hot
//  again, in its place. The hooks call it.
void arb_sched_thaw (arb_sched_t *self, arb_task_t *task, uint64_t now_ms);

//  The warm hook's end (arb_queue_cold_read).
void arb_sched_cold_read (
    arb_sched_t *self, arb_queue_t *queue, int32_t priority, uint64_t id, bool more);

//  Reads every cold task of queue back (a queue-wide operation whose
//  tasks' ends others hear of, one by one).
void arb_sched_thaw_all (arb_sched_t *self, arb_queue_t *queue);

//  Ends every cold task of queue in memory: counted in final_state and
//  finished now_ms, the cold count back to 0; returns how many. The
//  caller ends their rows in the journal (one statement over the queue).
uint64_t
arb_sched_end_cold (arb_sched_t *self, arb_queue_t *queue, int final_state, uint64_t now_ms);

//  Moves a task to its queue (head: before everything of its priority,
//  in its old place among the other tasks back at the head).
void arb_sched_make_ready (
    arb_sched_t *self, arb_task_t *task, bool head, uint64_t now_ms, uint64_t mono_ms);

//  Moves a task to the timers, to start at not_before_ms (Unix).
void arb_sched_make_scheduled (
    arb_sched_t *self, arb_task_t *task, uint64_t not_before_ms, uint64_t now_ms, uint64_t mono_ms);

//  Moves a task to waiting (its parents are not done).
void arb_sched_make_waiting (arb_sched_t *self, arb_task_t *task);

//  Removes a task from everything, counts its final state, and frees it.
//  Its watchers must have been told by the caller (arb_watch).
void arb_sched_finish (arb_sched_t *self, arb_task_t **task_p, int final_state, uint64_t now_ms);

//  The payload cache. It keeps, within the budget (cache_bytes), a copy
//  of the payload and headers of recently submitted tasks so that their
//  dispatch needs no read; every other payload stays in the journal only.
//  The copy is one block of exactly the bytes it holds, never the frame
//  the payload arrived in (libzmq's zero-copy receive would keep the whole
//  receive buffer behind it alive), and the budget counts the block as the
//  allocator holds it.
//
//  Keeps a copy of payload (and headers, size 0: none) for task if the
//  budget has room; returns whether it did.
bool arb_sched_cache_put (arb_sched_t *self,
                          arb_task_t *task,
                          const void *payload,
                          size_t payload_size,
                          const void *headers,
                          size_t headers_size);

//  If task's payload is cached, sets *payload and *headers (size 0 when it
//  has none) to its bytes, borrowed from the cache until the copy is
//  dropped (arb_sched_cache_drop, or the task's end), and returns true. Returns false, setting nothing, when the
//  payload is only in the journal.
bool
arb_sched_cache_view (arb_sched_t *self, arb_task_t *task, arb_bin_t *payload, arb_bin_t *headers);

//  Drops task's cached copy, if it has one (a dispatched task rarely needs
//  its payload again; a retry reads it back from the journal).
void arb_sched_cache_drop (arb_sched_t *self, arb_task_t *task);

//  Bytes the payload cache holds now, as the allocator counts them.
uint64_t arb_sched_cache_used (arb_sched_t *self);

//  ---------------------------------------------------------------------
//  Queues

//  The queue of that name, created if needed.
arb_queue_t *arb_sched_queue (arb_sched_t *self, const char *name);
arb_queue_t *arb_sched_find_queue (arb_sched_t *self, const char *name);
//  All queues, for walks (borrowed; zhashx of name -> arb_queue_t).
zhashx_t *arb_sched_queues (arb_sched_t *self);
//  A queue's settings changed (resumed, limit raised): look at it again.
void arb_sched_touch_queue (arb_sched_t *self, arb_queue_t *queue);

//  Frees a queue that holds nothing (arb_queue_is_idle), so that memory
//  follows the queues in use, not every name ever seen.
void arb_sched_forget_queue (arb_sched_t *self, arb_queue_t *queue);

//  Forgets a queue whose tasks have all ended: its settings, limits and
//  counts go back to nothing, and it is freed unless it has consumers.
//  The queue pointer is invalid after.
void arb_sched_clear_queue (arb_sched_t *self, arb_queue_t *queue);

//  The sessions that have credit on a queue now (a session with many
//  subscriptions on it counts once). O(consumers of the queue).
size_t arb_sched_consumers (arb_sched_t *self, arb_queue_t *queue);

//  Fills tasks with up to max ready tasks of queue, borrowed, in the order
//  they would be handed out, without taking them: none from a paused or
//  held queue, and none that has expired (at most ARB_PEEK_SKIP_MAX of
//  those are looked past). Returns how many.
#define ARB_PEEK_SKIP_MAX 10000
size_t arb_sched_peek (arb_sched_t *self,
                       arb_queue_t *queue,
                       arb_task_t **tasks,
                       size_t max,
                       uint64_t now_ms,
                       uint64_t mono_ms);

//  The limit of a task name (created unset, with its running count).
//  After changing it, call arb_sched_touch_name.
arb_limit_t *arb_sched_name_limit (arb_sched_t *self, const char *name);
void arb_sched_touch_name (arb_sched_t *self, const char *name);

//  The task names that have a limit (borrowed; zhashx of name -> entry),
//  and an entry's name and limit.
zhashx_t *arb_sched_limited_names (arb_sched_t *self);
const char *arb_sched_limited_name (void *entry);
const arb_limit_t *arb_sched_limited_limit (void *entry);

//  ---------------------------------------------------------------------
//  Sessions and credit

//  The session of a routing id (peer_size bytes), or NULL.
arb_session_t *arb_sched_session (arb_sched_t *self, const uint8_t *peer, size_t peer_size);

//  A new session for a routing id (any old one must have been ended).
arb_session_t *arb_sched_open_session (arb_sched_t *self, zframe_t *identity, uint64_t mono_ms);

//  All sessions (borrowed; zhashx of key -> arb_session_t).
zhashx_t *arb_sched_sessions (arb_sched_t *self);

//  Adds credit to a subscription, creating it with queues if it is new;
//  cancel ends it. Returns 0, or -1 if a new subscription names no queue.
int arb_sched_credit (arb_sched_t *self,
                      arb_session_t *session,
                      uint32_t sub,
                      const char **queues,
                      size_t queue_count,
                      int32_t credit,
                      bool cancel);

//  Whether input from a session's peer waits unread (then it is not
//  silent, however old its last message read).
typedef bool (arb_sched_unread_fn) (void *arg, arb_session_t *session);

//  The first session silent past the liveness window at mono_ms, or NULL;
//  with unread, one with nothing waiting unread.
arb_session_t *arb_sched_silent_session (arb_sched_t *self,
                                         uint64_t mono_ms,
                                         arb_sched_unread_fn *unread,
                                         void *arg);

//  Ends a session: the caller must have ended every lease first
//  (arb_sched_unlease on each of arb_session_first_lease).
void arb_sched_close_session (arb_sched_t *self, arb_session_t **session_p);

//  ---------------------------------------------------------------------
//  Leases

//  The running task whose current lease this is, or NULL (unknown task,
//  or an ended lease: a late result).
arb_task_t *arb_sched_leased (arb_sched_t *self, uint64_t id, uint64_t lease);

//  Ends a task's lease: it leaves its worker and its timeout timer. The
//  task stays `running` until the caller moves it on.
void arb_sched_unlease (arb_sched_t *self, arb_task_t *task);

//  Holds every queue that has ready tasks until until_ms (monotonic). The
//  broker does this at start-up: the journal does not record dispatches,
//  so a task that was running when the broker stopped is ready again, and
//  its worker may still be running it and claim it back (arb_sched_adopt).
void arb_sched_hold_ready (arb_sched_t *self, uint64_t until_ms);

#define ARB_LEASE_BITS 40  //  lease = epoch << 40 | sequence: unique across restarts

//  Whether session (registered: its REGISTER claims the task in `held`),
//  whose worker still runs task under lease or keeps its result, may have
//  it back. Either the task is ready, nobody has had it since, and the
//  lease is the one this worker lost or had taken back in this run
//  (last_lease, last_worker), or, if it has none, a lease of an earlier
//  run (which the journal does not keep) for a task this run has never
//  leased; or the task runs under that very lease (or the one an earlier
//  claim named) in this session or in an older session of the same worker
//  (a REGISTER whose WELCOME the worker never saw). A peer that never
//  registered, a lease that does not match, another worker: no.
bool
arb_sched_can_adopt (arb_sched_t *self, arb_task_t *task, arb_session_t *session, uint64_t lease);

//  What arb_sched_adopt did.
typedef enum {
    ARB_ADOPT_KEPT,    //  the session had it already
    ARB_ADOPT_MOVED,   //  from an older session of the same worker, running on
    ARB_ADOPT_LEASED,  //  from ready to running
} arb_adopt_t;

//  Leases the task to session (arb_sched_can_adopt said yes), as the same
//  attempt (a running task keeps its timeout); a lost lease taken back is
//  no longer counted as lost. No hook is called and no credit is taken:
//  the task is in a slot already.
arb_adopt_t arb_sched_adopt (
    arb_sched_t *self, arb_task_t *task, arb_session_t *session, uint64_t lease, uint64_t mono_ms);

//  Takes a running task back from its session without counting the
//  attempt: to the head of its queue with head, else in its place. The
//  lease it had stays claimable by the same worker (last_lease), as one
//  not lost: the session ended out of step with its worker (a DISPATCH
//  that was never delivered, leases the worker does not know of), and
//  the worker may still run it.
void arb_sched_give_back (
    arb_sched_t *self, arb_task_t *task, bool head, uint64_t now_ms, uint64_t mono_ms);

//  Whether a ready task waits for a handler: workers serve its queue, and
//  none of them runs its name. Costs a look at each of the queue's
//  consumers.
bool arb_sched_is_unhandled (arb_sched_t *self, arb_task_t *task);

//  Sets the timer of a task that has none (just popped) to mono_ms.
void arb_sched_rearm (arb_sched_t *self, arb_task_t *task, uint64_t mono_ms);

//  Moves the timer of a leased task with a timeout to mono_ms.
void arb_sched_retime (arb_sched_t *self, arb_task_t *task, uint64_t mono_ms);

//  Matches ready tasks of dirty queues with credit; calls hooks.dispatch
//  for each task handed out.
void arb_sched_dispatch (arb_sched_t *self, uint64_t now_ms, uint64_t mono_ms);

//  The same before the turn's commit, for tasks that were ready at the
//  last commit only: a hand-out writes nothing, so such a task may go at
//  once, while one made ready since (submitted, retried, given back) waits
//  for the commit that records it. A queue whose next task is such a one
//  stops there and stays dirty for arb_sched_dispatch. In a turn that
//  loosened a queue's or a name's settings (arb_sched_touch_queue,
//  arb_sched_touch_name) or ended a lease under a running limit, it hands
//  out nothing: what they let through waits for their commit too.
//  Settles nothing.
void arb_sched_dispatch_early (arb_sched_t *self, uint64_t now_ms, uint64_t mono_ms);

//  The turn's transaction is committed: what it made ready may go early.
void arb_sched_committed (arb_sched_t *self);

//  Session's WELCOME was made in this turn (arb_session_set_welcome_turn):
//  it gets no DISPATCH (arb_sched_take holds a TAKE's session itself) nor
//  HEARTBEAT before the commit; and whether a session's WELCOME still
//  waits for the turn's commit.
void arb_sched_welcome (arb_sched_t *self, arb_session_t *session);
bool arb_sched_welcome_waits (arb_sched_t *self, arb_session_t *session);

//  Leases up to max ready tasks of queue to session outside any credit
//  (sub 0 in their lease), calling hooks.dispatch for each. Returns how many.
//  Puts the tasks of queue that wait for their name's limit (parked: ready,
//  but out of the queue) back into it, in their old places; dispatch holds
//  them back again. O(parked tasks of every name).
void arb_sched_unpark_queue (arb_sched_t *self, arb_queue_t *queue);

size_t arb_sched_take (arb_sched_t *self,
                       arb_session_t *session,
                       const char *queue,
                       size_t max,
                       uint64_t now_ms,
                       uint64_t mono_ms);

//  ---------------------------------------------------------------------
//  Timers

//  Monotonic ms of the next timer (scheduled start, timeout, expiry of a
//  ready task, rate-limit wake-up), or UINT64_MAX.
uint64_t arb_sched_next_timer (arb_sched_t *self);

//  The next task whose timer is due at mono_ms, taken off the timers: a
//  scheduled task (the caller makes it ready), a running one (its timeout
//  passed) or a ready one (it expired: the caller ends it). NULL when none is due. Also wakes rate-limited queues.
arb_task_t *arb_sched_pop_timer (arb_sched_t *self, uint64_t mono_ms);

#endif
